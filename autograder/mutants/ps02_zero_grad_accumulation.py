"""The ps02_zero_grad_accumulation matrix: each accumulation bug students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, grade_cells

NAME = "ps02_zero_grad_accumulation"

TASK = "train_epoch_accumulated"
ZERO_GRAD = "        optimizer.zero_grad()\n"
LOOP = "        for xb, yb in window:\n"
SCALED_BACKWARD = "(loss * len(yb) / n).backward()"
STEP = "        optimizer.step()\n"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    Mutant("no_zero_grad", "optimizer.zero_grad() left out",
           edits={TASK: [(ZERO_GRAD, "")]},
           fails={"audit_large_batch_gradient": "previous window", "audit_zero_grad_at_window_start": "still held"}),
    Mutant("zero_grad_every_micro_batch", "optimizer.zero_grad() inside the micro-batch loop",
           edits={TASK: [(ZERO_GRAD, ""), (LOOP, LOOP + "    " + ZERO_GRAD)]},
           fails={"test_train_epoch_accumulated": "differs from one step",
                  "audit_large_batch_gradient": "only the last micro-batch",
                  "audit_zero_grad_at_window_start": "inside the micro-batch loop"}),
    Mutant("loss_not_scaled", "backward() on the unscaled micro-batch loss: sums, not averages",
           edits={TASK: [(SCALED_BACKWARD, "loss.backward()")]},
           fails={"test_train_epoch_accumulated": "differs from one step", "audit_large_batch_gradient": "too large"}),
    Mutant("tail_dropped", "the leftover window shorter than accum_steps is skipped",
           edits={TASK: [("        n = sum(", "        if len(window) < accum_steps:\n            break\n        n = sum(")]},
           fails={"audit_steps_per_window": "leftover window was dropped",
                  "audit_zero_grad_at_window_start": "backward() reached the loss",
                  "audit_accumulated_epoch_loss": "loss_fn was called"}),
    Mutant("step_every_micro_batch", "optimizer.step() after every micro-batch",
           edits={TASK: [(STEP, ""), ("            total += loss.item() * len(yb)\n",
                                      "            total += loss.item() * len(yb)\n            optimizer.step()\n")]},
           fails={"test_train_epoch_accumulated": "differs from one step", "audit_large_batch_gradient": "was not",
                  "audit_steps_per_window": "after every micro-batch"}),
    Mutant("divide_by_accum_steps", "each loss divided by accum_steps, wrong for the leftover window and a short micro-batch",
           edits={TASK: [(SCALED_BACKWARD, "(loss / accum_steps).backward()")]},
           fails={"audit_large_batch_gradient": "divided by accum_steps"}),
    Mutant("reports_scaled_loss", "returns the mean of the losses after scaling them for backward()",
           edits={TASK: [("            " + SCALED_BACKWARD + "\n",
                          "            loss = loss * len(yb) / n\n            loss.backward()\n")]},
           fails={"audit_accumulated_epoch_loss": "before scaling"}),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_set_to_none_false", "zero_grad(set_to_none=False): zeroed tensors instead of None",
           edits={TASK: [("optimizer.zero_grad()", "optimizer.zero_grad(set_to_none=False)")]}),
    Mutant("alt_scale_gradients", "no look-ahead: sum len(yb) * loss, then divide the gradients before step()",
           edits={TASK: [(
               "    total, count = 0.0, 0\n"
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
               "    return total / count\n",
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
]
