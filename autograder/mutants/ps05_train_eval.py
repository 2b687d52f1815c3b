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
EVAL_RETURN = '    return {"loss": total / count, "accuracy": correct / count}\n'
EVAL_TOTAL = "            total += loss_fn(output, yb).item() * len(yb)\n"
KEEP_BEST = "            best_state = copy.deepcopy(model.state_dict())\n"
LOAD_BEST = "    if patience is not None:\n        model.load_state_dict(best_state)\n"
EPOCH_START = "    for _ in range(epochs):\n        model.train()\n"
TRAIN_LOOP = "        for xb, yb in train_loader:\n"
ZERO_GRAD = "            optimizer.zero_grad()\n"
STEP = "            optimizer.step()\n"
FIT_TOTAL = "            total += loss.item() * len(yb)\n"
VALIDATE = "        scores = evaluate(model, val_loader, loss_fn)\n"
IMPROVED = '        if scores["loss"] < best_loss:\n'
RESET = '            best_loss, waited = scores["loss"], 0\n'
STOP = "            if patience is not None and waited >= patience:\n"
BREAK = "                break\n"
FIT_BODY = (
    '    history = {"train_loss": [], "val_loss": [], "val_accuracy": []}\n'
    '    best_loss, best_state, waited = float("inf"), None, 0\n'
    + EPOCH_START + "        total, count = 0.0, 0\n" + TRAIN_LOOP + ZERO_GRAD
    + "            loss = loss_fn(model(xb), yb)\n            loss.backward()\n" + STEP + FIT_TOTAL
    + "            count += len(yb)\n" + VALIDATE
    + '        history["train_loss"].append(total / count)\n'
    '        history["val_loss"].append(scores["loss"])\n'
    '        history["val_accuracy"].append(scores["accuracy"])\n'
    + IMPROVED + RESET + KEEP_BEST + "        else:\n            waited += 1\n" + STOP + BREAK + LOAD_BEST
    + "    return history\n")

# Every cell that runs fit, for a bug in evaluate that fit's history carries along.
FIT_CELLS = ("test_fit", "test_early_stopping", "audit_history", "audit_early_stopping", "audit_no_patience")

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    # evaluate
    Mutant("first_batch_only", "evaluate looks at the first batch of the loader only",
           edits={"evaluate": [("        for xb, yb in loader:\n", "        for xb, yb in [next(iter(loader))]:\n")]},
           fails={"audit_evaluate_values": "mean loss per sample",
                  **{cell: "then evaluates val_loader" for cell in FIT_CELLS if cell.startswith("audit_")}},
           breaks=("R1.1",)),
    Mutant("no_eval", "evaluate never calls model.eval(): Dropout and BatchNorm stay in train mode",
           edits={"evaluate": [("    model.eval()\n", "")]},
           fails={"test_evaluate": "Dropout still drops units", "audit_eval_deterministic": "Dropout was still dropping",
                  "audit_batchnorm_untouched": "running statistics"}, breaks=("R1.2",), headline=True),
    Mutant("no_no_grad", "evaluate runs with autograd on",
           edits={"evaluate": [(EVAL_LOOP, EVAL_LOOP.replace("    with torch.no_grad():\n", "").replace("\n    ", "\n")
                                .replace("        for xb", "    for xb", 1))]},
           fails={"audit_no_graph": "torch.no_grad()"}, breaks=("R1.3",)),
    Mutant("returns_tuple", "evaluate returns (loss, accuracy), not a dict",
           edits={"evaluate": [(EVAL_RETURN, "    return total / count, correct / count\n")]},
           fails={"test_evaluate": "return {'loss': ..., 'accuracy': ...}", "audit_eval_deterministic": "returned a tuple",
                  "audit_evaluate_values": "returned a tuple", "audit_train_mode": "TypeError",
                  **{cell: "TypeError" for cell in FIT_CELLS}}, breaks=("R1.4",)),
    Mutant("tensor_values", "evaluate sums the loss tensors: the loss it returns is a tensor",
           edits={"evaluate": [(EVAL_TOTAL, EVAL_TOTAL.replace(".item()", ""))]},
           fails={"test_evaluate": "Python floats", "audit_eval_deterministic": "not a Python float",
                  "audit_evaluate_values": "not a Python float", "test_fit": "should hold floats",
                  "audit_history": "not a Python float", "audit_early_stopping": "not a Python float",
                  "audit_no_patience": "not a Python float"}, breaks=("R1.5",)),
    Mutant("loss_per_batch", "the loss is the mean of the batches' mean losses",
           edits={"evaluate": [(EVAL_TOTAL, EVAL_TOTAL.replace(" * len(yb)", "")),
                               (EVAL_RETURN, EVAL_RETURN.replace('"loss": total / count', '"loss": total / len(loader)'))]},
           fails={"audit_evaluate_values": "weight each batch's loss by its size"}, breaks=("R1.6",)),
    Mutant("accuracy_per_batch", "accuracy is the mean of the batches' accuracies",
           edits={"evaluate": [("(output.argmax(dim=1) == yb).sum().item()", "(output.argmax(dim=1) == yb).float().mean().item()"),
                               ('"accuracy": correct / count', '"accuracy": correct / len(loader)')]},
           fails={"audit_evaluate_values": "averaged the batches' accuracies"}, breaks=("R1.7",)),
    Mutant("train_mode_not_restored", "evaluate leaves the model in eval mode",
           edits={"evaluate": [(RESTORE, "")]},
           fails={"test_evaluate": "leave it in train mode", "audit_mode_restored": "left in eval mode"},
           breaks=("R1.8",), headline=True),
    Mutant("forced_train_mode", "evaluate ends with model.train() whatever the caller's mode was",
           edits={"evaluate": [(RESTORE, "    model.train()\n")]},
           fails={"audit_mode_restored": "not always train"}, breaks=("R1.9",)),
    # fit: each epoch
    Mutant("drops_short_batch", "fit skips the short last batch of train_loader",
           edits={"fit": [(TRAIN_LOOP, TRAIN_LOOP + "            if len(yb) < train_loader.batch_size:\n"
                                                    "                continue\n")]},
           fails={"audit_history": "every one of the", "audit_early_stopping": "every one of the",
                  "audit_no_patience": "every one of the"}, breaks=("R2.1",)),
    Mutant("step_per_epoch", "fit accumulates the whole epoch's gradients and steps once per epoch",
           edits={"fit": [(ZERO_GRAD, ""), (STEP, ""),
                          (TRAIN_LOOP, "        optimizer.zero_grad()\n" + TRAIN_LOOP),
                          (VALIDATE, "        optimizer.step()\n" + VALIDATE)]},
           fails={"audit_history": "one per epoch", "test_early_stopping": "fit(..., patience=2)"}, breaks=("R2.2",)),
    Mutant("no_zero_grad", "fit never zeroes the gradients: each step follows the sum of every gradient so far",
           edits={"fit": [(ZERO_GRAD, "")]},
           fails={"audit_history": "zero the gradients"}, breaks=("R2.2",)),
    Mutant("no_train_call", "fit never calls model.train(): a model passed in eval mode trains in eval mode",
           edits={"fit": [(EPOCH_START, "    for _ in range(epochs):\n")]},
           fails={"test_early_stopping": "some training steps ran in eval mode", "audit_train_mode": "model.train()"},
           breaks=("R2.3",), headline=True),
    Mutant("train_once", "fit calls model.train() once, before the loop: a validation that leaves eval mode on wins",
           edits={"fit": [(EPOCH_START, "    model.train()\n    for _ in range(epochs):\n")]},
           fails={"test_early_stopping": "some training steps ran in eval mode", "audit_train_mode": "not once before"},
           breaks=("R2.3",), headline=True),
    Mutant("validates_before_training", "fit evaluates at the start of each epoch, before training",
           edits={"fit": [("            count += len(yb)\n" + VALIDATE, "            count += len(yb)\n"),
                          (EPOCH_START, "    for _ in range(epochs):\n" + VALIDATE + "        model.train()\n")]},
           fails={"test_fit": "record evaluate(model, val_loader, loss_fn) after each epoch", "test_early_stopping": "",
                  "audit_history": "Each epoch trains first", "audit_early_stopping": "Each epoch trains first",
                  "audit_no_patience": "Each epoch trains first"}, breaks=("R2.4",)),
    # fit: the history
    Mutant("history_tuple", "fit returns a tuple of the three lists",
           edits={"fit": [("    return history\n", '    return history["train_loss"], history["val_loss"], history["val_accuracy"]\n')]},
           fails={"test_fit": "return a dict", "test_early_stopping": "", "audit_history": "fit returned a tuple",
                  "audit_early_stopping": "fit returned a tuple", "audit_no_patience": "fit returned a tuple"},
           breaks=("R2.5",)),
    Mutant("tensor_train_loss", "fit sums the loss tensors (detached): train_loss holds tensors",
           edits={"fit": [(FIT_TOTAL, FIT_TOTAL.replace("loss.item()", "loss.detach()"))]},
           fails={"test_fit": "should hold floats", "audit_history": "not a Python float",
                  "audit_early_stopping": "not a Python float", "audit_no_patience": "not a Python float"},
           breaks=("R2.6",)),
    Mutant("train_loss_per_batch", "train_loss is the mean of the batches' mean losses",
           edits={"fit": [(FIT_TOTAL, FIT_TOTAL.replace(" * len(yb)", "")),
                          ('history["train_loss"].append(total / count)', 'history["train_loss"].append(total / len(train_loader))')]},
           fails={"audit_history": "weight each batch loss by its size"}, breaks=("R2.7",)),
    # fit: stopping
    Mutant("none_guard_missing", "fit compares with patience even when it is None",
           edits={"fit": [(STOP, "            if waited >= patience:\n")]},
           fails={"audit_no_patience": "TypeError"}, breaks=("R2.8",)),
    Mutant("best_restored_without_patience", "fit loads the best weights back even with patience=None",
           edits={"fit": [(LOAD_BEST, "    model.load_state_dict(best_state)\n")]},
           fails={"audit_no_patience": "other weights than those of its last epoch"}, breaks=("R2.9",)),
    Mutant("patience_off_by_one", "stops only after patience + 1 epochs without improvement",
           edits={"fit": [("waited >= patience", "waited > patience")]},
           fails={"test_early_stopping": "should stop after epoch 6", "audit_early_stopping": "should have stopped"},
           breaks=("R2.10",)),
    Mutant("waited_not_reset", "the count of epochs without improvement is never reset: not 'in a row'",
           edits={"fit": [(RESET, '            best_loss = scores["loss"]\n')]},
           fails={"test_early_stopping": "reset the count", "audit_early_stopping": "reset the count"},
           breaks=("R2.10",), headline=True),
    Mutant("tie_is_improvement", "a val_loss equal to the best counts as an improvement",
           edits={"fit": [(IMPROVED, IMPROVED.replace("<", "<="))]},
           fails={"test_early_stopping": "improving means strictly lower", "audit_early_stopping": "strictly lower"},
           breaks=("R2.11",), headline=True),
    Mutant("best_weights_not_restored", "early stopping keeps the last epoch's weights",
           edits={"fit": [(LOAD_BEST, "")]},
           fails={"test_early_stopping": "not those of the best epoch (4", "audit_early_stopping": "of the best epoch"},
           breaks=("R2.12", "R2.13"), headline=True),
    Mutant("best_state_not_copied", "best_state = model.state_dict(): references to the live tensors",
           edits={"fit": [(KEEP_BEST, KEEP_BEST.replace("copy.deepcopy(model.state_dict())", "model.state_dict()"))]},
           fails={"test_early_stopping": "not those of the best epoch (4", "audit_early_stopping": "of the best epoch"},
           breaks=("R2.12",), headline=True),
    Mutant("restore_only_on_stop", "the best weights are loaded back only when fit stops early",
           edits={"fit": [(LOAD_BEST, ""), (BREAK, "                model.load_state_dict(best_state)\n" + BREAK)]},
           fails={"test_early_stopping": "also when it never stops early", "audit_early_stopping": "without stopping early"},
           breaks=("R2.13",), headline=True),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_try_finally_inference_mode", "evaluate in torch.inference_mode(), the mode restored in a finally block",
           edits={"evaluate": [
               (EVAL_LOOP + RESTORE,
                "    try:\n" + EVAL_LOOP.replace("torch.inference_mode()", "torch.no_grad()")
                .replace("torch.no_grad()", "torch.inference_mode()")
                .replace("\n    ", "\n        ").replace("    with", "        with", 1)
                + "    finally:\n        model.train(was_training)\n")]}),
    Mutant("alt_best_epoch_index", "early stopping by the index of the best epoch; best weights cloned tensor by tensor",
           edits={"fit": [
               ("    best_loss, best_state, waited = float(\"inf\"), None, 0\n    for _ in range(epochs):\n",
                "    best_loss, best_state, best_epoch = float(\"inf\"), None, 0\n    for epoch in range(epochs):\n"),
               (RESET + KEEP_BEST + "        else:\n            waited += 1\n" + STOP + BREAK,
                "            best_loss, best_epoch = scores[\"loss\"], epoch\n"
                "            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}\n"
                "        elif patience is not None and epoch - best_epoch >= patience:\n"
                "            break\n")]}),
    Mutant("alt_other_types", "OrderedDicts, numpy.float64 values and tuples of floats; while loops, enumerate, "
           "a counter of stale epochs, model.zero_grad(), the best weights kept as a deep copy of the model",
           edits={"evaluate": [(EVAL_LOOP + RESTORE + EVAL_RETURN,
                                "    loss_sum, right, seen = np.float64(0.0), 0, 0\n"
                                "    batches = iter(loader)\n"
                                "    with torch.no_grad():\n"
                                "        while (batch := next(batches, None)) is not None:\n"
                                "            xb, yb = batch\n"
                                "            logits = model(xb)\n"
                                "            loss_sum += np.float64(loss_fn(logits, yb).item()) * yb.shape[0]\n"
                                "            right += int((logits.argmax(1) == yb).sum())\n"
                                "            seen += yb.shape[0]\n"
                                "    if was_training:\n"
                                "        model.train()\n"
                                "    return OrderedDict(loss=loss_sum / seen, accuracy=np.float64(right) / seen)\n"),
                               ("    was_training = model.training\n",
                                "    import numpy as np\n    from collections import OrderedDict\n"
                                "    was_training = model.training\n")],
                  "fit": [(FIT_BODY,
                           "    import numpy as np\n"
                           "    from collections import OrderedDict\n"
                           "    train_losses, val_losses, val_accuracies = [], [], []\n"
                           "    best, best_model, stale, epoch = np.inf, None, 0, 0\n"
                           "    while epoch < epochs:\n"
                           "        epoch += 1\n"
                           "        model.train(True)\n"
                           "        sums = np.zeros(2)\n"
                           "        for i, (inputs, targets) in enumerate(train_loader):\n"
                           "            model.zero_grad()\n"
                           "            batch_loss = loss_fn(model(inputs), targets)\n"
                           "            batch_loss.backward()\n"
                           "            optimizer.step()\n"
                           "            sums += (batch_loss.item() * len(targets), len(targets))\n"
                           "        train_losses.append(sums[0] / sums[1])\n"
                           "        result = evaluate(model, val_loader, loss_fn)\n"
                           "        val_losses.append(result[\"loss\"])\n"
                           "        val_accuracies.append(result[\"accuracy\"])\n"
                           "        if patience is None:\n"
                           "            continue\n"
                           "        if result[\"loss\"] < best:\n"
                           "            best, best_model, stale = result[\"loss\"], copy.deepcopy(model), 0\n"
                           "            continue\n"
                           "        stale += 1\n"
                           "        if stale == patience:\n"
                           "            break\n"
                           "    if best_model is not None:\n"
                           "        model.load_state_dict(best_model.state_dict())\n"
                           "    return OrderedDict(train_loss=tuple(train_losses), val_loss=tuple(val_losses),\n"
                           "                       val_accuracy=tuple(val_accuracies))\n")]}),
    Mutant("alt_noisy", "correct, and loud: logging to stderr, prints to stdout and stderr, a warning, and a terminal "
           "tqdm bar nested inside a tqdm.auto bar",
           edits={"evaluate": [("    was_training = model.training\n",
                                "    import warnings\n"
                                "    warnings.warn(\"evaluating without autograd\")\n"
                                "    was_training = model.training\n")],
                  "fit": [("    history = {",
                           "    import logging\n"
                           "    import sys\n"
                           "    from tqdm import tqdm as terminal_tqdm\n"
                           "    from tqdm.auto import tqdm as auto_tqdm\n"
                           "    logging.basicConfig()\n"
                           "    logger = logging.getLogger(\"fit\")\n"
                           "    logger.setLevel(logging.INFO)\n"
                           "    history = {"),
                          ("    for _ in range(epochs):\n", "    for _ in auto_tqdm(range(epochs), desc=\"epochs\"):\n"),
                          (TRAIN_LOOP, "        for xb, yb in terminal_tqdm(train_loader, desc=\"batches\", leave=False):\n"),
                          (FIT_TOTAL, FIT_TOTAL + "            logger.info(\"batch loss %.4f\", loss.item())\n"),
                          (VALIDATE, VALIDATE + "        logger.warning(\"val_loss %.4f\", scores[\"loss\"])\n"
                                               "        print(f\"epoch done: {scores}\")\n"
                                               "        print(\"epoch done\", file=sys.stderr)\n")]}),
]
