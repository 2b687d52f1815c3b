"""The ps05_train_eval matrix: the mode, no_grad and early-stopping bugs students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, grade_cells

NAME = "ps05_train_eval"

EVAL_LOOP = (
    "    with torch.no_grad():\n"
    "        for xb, yb in loader:\n"
    "            output = model(xb)\n"
    "            total += loss_fn(output, yb).item() * len(yb)\n"
    "            correct += (output.argmax(dim=1) == yb).sum().item()\n"
    "            count += len(yb)\n")
RESTORE = "    model.train(was_training)\n"
KEEP_BEST = "            best_state = copy.deepcopy(model.state_dict())\n"
LOAD_BEST = "    if patience is not None:\n        model.load_state_dict(best_state)\n"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    Mutant("no_eval", "evaluate never calls model.eval(): Dropout and BatchNorm stay in train mode",
           edits={"evaluate": [("    model.eval()\n", "")]},
           fails={"test_evaluate": "Dropout still drops units", "audit_eval_deterministic": "Dropout was still dropping",
                  "audit_batchnorm_untouched": "running statistics"}),
    Mutant("no_no_grad", "evaluate runs with autograd on",
           edits={"evaluate": [(EVAL_LOOP, EVAL_LOOP.replace("    with torch.no_grad():\n", "").replace("\n    ", "\n")
                                .replace("        for xb", "    for xb", 1))]},
           fails={"audit_no_graph": "torch.no_grad()"}),
    Mutant("train_mode_not_restored", "evaluate leaves the model in eval mode",
           edits={"evaluate": [(RESTORE, "")]},
           fails={"test_evaluate": "leave it in train mode", "audit_mode_restored": "left in eval mode"}),
    Mutant("forced_train_mode", "evaluate ends with model.train() whatever the caller's mode was",
           edits={"evaluate": [(RESTORE, "    model.train()\n")]},
           fails={"audit_mode_restored": "not always train"}),
    Mutant("accuracy_per_batch", "accuracy is the mean of the batches' accuracies",
           edits={"evaluate": [("(output.argmax(dim=1) == yb).sum().item()", "(output.argmax(dim=1) == yb).float().mean().item()"),
                               ('"accuracy": correct / count', '"accuracy": correct / len(loader)')]},
           fails={"audit_evaluate_values": "averaged the batches' accuracies"}),
    Mutant("best_weights_not_restored", "early stopping keeps the last epoch's weights",
           edits={"fit": [(LOAD_BEST, "")]},
           fails={"audit_early_stopping": "of the best epoch"}),
    Mutant("best_state_not_copied", "best_state = model.state_dict(): references to the live tensors",
           edits={"fit": [(KEEP_BEST, KEEP_BEST.replace("copy.deepcopy(model.state_dict())", "model.state_dict()"))]},
           fails={"audit_early_stopping": "of the best epoch"}),
    Mutant("patience_off_by_one", "stops only after patience + 1 epochs without improvement",
           edits={"fit": [("waited >= patience", "waited > patience")]},
           fails={"audit_early_stopping": "should have stopped"}),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_try_finally_inference_mode", "evaluate in torch.inference_mode(), the mode restored in a finally block",
           edits={"evaluate": [
               (EVAL_LOOP + RESTORE,
                "    try:\n" + EVAL_LOOP.replace("torch.no_grad()", "torch.inference_mode()")
                .replace("\n    ", "\n        ").replace("    with", "        with", 1)
                + "    finally:\n        model.train(was_training)\n")]}),
    Mutant("alt_best_epoch_index", "early stopping by the index of the best epoch; best weights cloned tensor by tensor",
           edits={"fit": [
               ("    best_loss, best_state, waited = float(\"inf\"), None, 0\n    for _ in range(epochs):\n",
                "    best_loss, best_state, best_epoch = float(\"inf\"), None, 0\n    for epoch in range(epochs):\n"),
               ("            best_loss, waited = scores[\"loss\"], 0\n" + KEEP_BEST +
                "        else:\n            waited += 1\n            if patience is not None and waited >= patience:\n"
                "                break\n",
                "            best_loss, best_epoch = scores[\"loss\"], epoch\n"
                "            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}\n"
                "        elif patience is not None and epoch - best_epoch >= patience:\n"
                "            break\n")]}),
]
