"""The ps02_zero_grad_accumulation matrix: each accumulation bug students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, grade_cells

NAME = "ps02_zero_grad_accumulation"

TASK = "train_epoch_accumulated"
VISIBLE = "test_train_epoch_accumulated"
ZERO_GRAD = "        optimizer.zero_grad()\n"
LOOP = "        for xb, yb in window:\n"
LOSS = "            loss = loss_fn(model(xb), yb)\n"
SCALED_BACKWARD = "(loss * len(yb) / n).backward()"
TOTAL = "            total += loss.item() * len(yb)\n"
STEP = "        optimizer.step()\n"
RETURN = "    return total / count\n"
BODY = ("    total, count = 0.0, 0\n"
        "    batches = iter(loader)\n"
        "    while window := list(itertools.islice(batches, accum_steps)):\n"
        "        n = sum(len(yb) for _, yb in window)\n"
        "        optimizer.zero_grad()\n"
        "        for xb, yb in window:\n"
        "            loss = loss_fn(model(xb), yb)\n"
        "            (loss * len(yb) / n).backward()\n"
        "            total += loss.item() * len(yb)\n"
        "        optimizer.step()\n"
        "        count += n\n"
        "    return total / count\n")
WRONG_GRADIENT = "differs from the gradient of the window's samples"  # the visible test's general diagnosis
WRONG_LOSS = "but the epoch's mean loss per sample is"  # the visible test on the returned loss

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    Mutant("hardcoded_loss", "computes the loss with nn.functional.cross_entropy instead of the loss_fn passed in",
           edits={TASK: [(LOSS, "            loss = nn.functional.cross_entropy(model(xb), yb)\n")]},
           breaks=("R1.1",),
           fails={"audit_zero_grad_at_window_start": "loss_fn was never called",
                  "audit_accumulated_epoch_loss": "loss_fn was never called"}),
    Mutant("step_every_micro_batch", "optimizer.step() after every micro-batch",
           edits={TASK: [(STEP, ""), (TOTAL, TOTAL + "            optimizer.step()\n")]},
           breaks=("R1.2",),
           fails={VISIBLE: "after every micro-batch", "audit_large_batch_gradient": "was not",
                  "audit_steps_per_window": "after every micro-batch"}),
    Mutant("tail_dropped", "the leftover window shorter than accum_steps is skipped",
           edits={TASK: [("        n = sum(", "        if len(window) < accum_steps:\n            break\n        n = sum(")]},
           breaks=("R1.3",), headline=True,
           fails={VISIBLE: "leftover window was dropped",
                  "audit_steps_per_window": "leftover window was dropped",
                  "audit_zero_grad_at_window_start": "backward() reached the loss",
                  "audit_accumulated_epoch_loss": "loss_fn was called"}),
    Mutant("no_zero_grad", "optimizer.zero_grad() left out",
           edits={TASK: [(ZERO_GRAD, "")]},
           breaks=("R1.4",), headline=True,
           fails={VISIBLE: "still held window 1's gradient",
                  "audit_large_batch_gradient": "previous window", "audit_zero_grad_at_window_start": "still held"}),
    Mutant("zero_grad_every_micro_batch", "optimizer.zero_grad() inside the micro-batch loop",
           edits={TASK: [(ZERO_GRAD, ""), (LOOP, LOOP + "    " + ZERO_GRAD)]},
           breaks=("R1.5",),
           fails={VISIBLE: WRONG_GRADIENT,
                  "audit_large_batch_gradient": "only the last micro-batch",
                  "audit_zero_grad_at_window_start": "inside the micro-batch loop"}),
    Mutant("loss_not_scaled", "backward() on the unscaled micro-batch loss: sums, not averages",
           edits={TASK: [(SCALED_BACKWARD, "loss.backward()")]},
           breaks=("R1.6",), headline=True,
           fails={VISIBLE: "times the gradient of the window's mean loss", "audit_large_batch_gradient": "too large"}),
    Mutant("divide_by_accum_steps", "each loss divided by accum_steps, wrong for the leftover window and a short micro-batch",
           edits={TASK: [(SCALED_BACKWARD, "(loss / accum_steps).backward()")]},
           breaks=("R1.7",),
           fails={VISIBLE: WRONG_GRADIENT, "audit_large_batch_gradient": "divided by accum_steps"}),
    Mutant("equal_weight_per_micro_batch", "each loss divided by the window's number of micro-batches, whatever their sizes",
           edits={TASK: [(SCALED_BACKWARD, "(loss / len(window)).backward()")]},
           breaks=("R1.7",),
           fails={VISIBLE: WRONG_GRADIENT, "audit_large_batch_gradient": "the same weight"}),
    Mutant("returns_tensor", "sums the loss tensors instead of their .item(): returns a tensor holding every graph",
           edits={TASK: [(TOTAL, "            total += loss * len(yb)\n")]},
           breaks=("R1.8",),
           fails={VISIBLE: "returned a Tensor", "audit_accumulated_epoch_loss": "torch.Tensor"}),
    Mutant("reports_scaled_loss", "returns the mean of the losses after scaling them for backward()",
           edits={TASK: [("            " + SCALED_BACKWARD + "\n",
                          "            loss = loss * len(yb) / n\n            loss.backward()\n")]},
           breaks=("R1.9",),
           fails={VISIBLE: WRONG_LOSS, "audit_accumulated_epoch_loss": "before scaling"}),
    Mutant("mean_of_batch_means", "returns the plain mean of the micro-batch losses, the short one weighing as much",
           edits={TASK: [(TOTAL, "            total += loss.item()\n"),
                         ("        count += n\n", "        count += len(window)\n")]},
           breaks=("R1.10",),
           fails={VISIBLE: WRONG_LOSS, "audit_accumulated_epoch_loss": "plain mean"}),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_set_to_none_false", "zero_grad(set_to_none=False): zeroed tensors instead of None",
           edits={TASK: [("optimizer.zero_grad()", "optimizer.zero_grad(set_to_none=False)")]}),
    Mutant("alt_scale_gradients", "no look-ahead: sum len(yb) * loss, then divide the gradients before step()",
           edits={TASK: [(BODY,
               "    total, count, in_window = 0.0, 0, 0\n"
               "    for i, (xb, yb) in enumerate(loader):\n"
               "        if i % accum_steps == 0:\n"
               "            optimizer.zero_grad()\n"
               "            in_window = 0\n"
               "        loss = loss_fn(model(xb), yb)\n"
               "        (loss * len(yb)).backward()\n"
               "        in_window += len(yb)\n"
               "        total += loss.item() * len(yb)\n"
               "        count += len(yb)\n"
               "        if (i + 1) % accum_steps == 0 or i + 1 == len(loader):\n"
               "            for p in model.parameters():\n"
               "                if p.grad is not None:\n"
               "                    p.grad /= in_window\n"
               "            optimizer.step()\n"
               "    return total / count\n")]}),
    Mutant("alt_sliced_windows_numpy_float", "windows sliced from list(loader), gradients cleared by p.grad = None, "
           "zero_grad after the step, a numpy.float64 returned",
           edits={TASK: [(BODY,
               "    import numpy as np\n"
               "    micro = list(loader)\n"
               "    weighted, seen = np.float64(0.0), 0\n"
               "    for start in range(0, len(micro), accum_steps):\n"
               "        window = micro[start:start + accum_steps]\n"
               "        samples = sum(target.shape[0] for _, target in window)\n"
               "        for xb, yb in window:\n"
               "            micro_loss = loss_fn(model(xb), yb)\n"
               "            (micro_loss * (yb.shape[0] / samples)).backward()\n"
               "            weighted += np.float64(micro_loss.item()) * yb.shape[0]\n"
               "            seen += yb.shape[0]\n"
               "        optimizer.step()\n"
               "        for p in model.parameters():\n"
               "            p.grad = None\n"
               "    return weighted / seen\n")]}),
    Mutant("alt_float_subclass_model_zero_grad", "model.zero_grad() instead of the optimizer's, a float subclass returned",
           edits={TASK: [(ZERO_GRAD, "        model.zero_grad()\n"),
                         (RETURN, "    class EpochLoss(float):\n        pass\n\n    return EpochLoss(total / count)\n")]}),
    Mutant("alt_noisy", "correct, and loud: logging to stderr per step, prints to stdout and stderr, a warning, and a "
           "terminal tqdm bar nested inside a tqdm.auto bar",
           edits={TASK: [
               ("    total, count = 0.0, 0\n",
                "    import logging\n"
                "    import math\n"
                "    import sys\n"
                "    import warnings\n"
                "    from tqdm import tqdm as terminal_tqdm\n"
                "    from tqdm.auto import tqdm as auto_tqdm\n"
                "    logging.basicConfig()\n"
                "    logger = logging.getLogger(\"accumulation\")\n"
                "    logger.setLevel(logging.INFO)\n"
                "    warnings.warn(f\"accumulating {accum_steps} micro-batches per step\")\n"
                "    total, count = 0.0, 0\n"),
               ("    batches = iter(loader)\n",
                "    batches = iter(auto_tqdm(loader, desc=\"micro-batches\"))\n"
                "    steps = terminal_tqdm(total=math.ceil(len(loader) / accum_steps), desc=\"steps\", leave=False)\n"),
               (STEP, STEP + "        steps.update()\n"
                             "        logger.info(\"stepped on %d samples\", n)\n"),
               (RETURN, "    steps.close()\n"
                        "    print(f\"epoch done: {count} samples\")\n"
                        "    print(\"epoch done\", file=sys.stderr)\n"
                        "    logger.warning(\"mean loss %.4f\", total / count)\n" + RETURN),
           ]}),
]
