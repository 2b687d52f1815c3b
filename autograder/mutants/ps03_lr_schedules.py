"""The ps03_lr_schedules matrix: the schedule and scheduler bugs students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, grade_cells

NAME = "ps03_lr_schedules"

LOOP = "train_with_scheduler"
SCHEDULER_STEP = "            scheduler.step()\n"
RECORD_LR = "            history[\"lr\"].append(optimizer.param_groups[0][\"lr\"])\n"
RECORD_LOSS = "            history[\"loss\"].append(loss.item())\n"
OPTIMIZER_STEP = "            optimizer.step()\n"
CLAMP = "    if step >= total_steps:\n        return min_lr\n"

MAKE_BODY = ("    if kind == \"step\":\n"
             "        return torch.optim.lr_scheduler.StepLR(optimizer, **kwargs)\n"
             "    if kind == \"warmup_cosine\":\n"
             "        return WarmupCosineLR(optimizer, **kwargs)\n")
RAISE_UNKNOWN = "    raise ValueError(f\"unknown scheduler kind {kind!r}: use 'step' or 'warmup_cosine'\")\n"
GET_LR = "return [warmup_cosine(self.last_epoch, base_lr=base"
LOOP_HEAD = "    for _ in range(epochs):\n        for xb, yb in loader:\n"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    # Task 1: step_decay
    Mutant("step_decay_early", "(step + 1) // step_size: the first decay comes one step early",
           edits={"step_decay": [("step // step_size", "(step + 1) // step_size")]},
           breaks=("R1.1",),
           fails={"test_step_decay": "the table says", "audit_step_decay": "The decay comes early",
                  "test_make_scheduler": "but step_decay gives"}),
    Mutant("step_decay_smooth", "gamma ** (step / step_size): the LR decays at every step",
           edits={"step_decay": [("step // step_size", "step / step_size")]},
           breaks=("R1.2",),
           fails={"test_step_decay": "the table says", "audit_step_decay": "integer division",
                  "test_make_scheduler": "but step_decay gives"}),
    Mutant("step_decay_tensor", "the LR computed with a tensor gamma: step_decay returns a torch.Tensor",
           edits={"step_decay": [("base_lr * gamma ** (step // step_size)",
                                  "base_lr * torch.tensor(gamma) ** (step // step_size)")]},
           breaks=("R1.3",),
           fails={"test_step_decay": "should return a float", "audit_step_decay": "not a Python float"}),
    # Task 2: warmup_cosine
    Mutant("warmup_off_by_one", "the warmup starts at base_lr / warmup_steps instead of 0",
           edits={"warmup_cosine": [("base_lr * step / warmup_steps", "base_lr * (step + 1) / warmup_steps")]},
           breaks=("R2.1",),
           fails={"test_warmup_cosine": "warmup phase", "audit_warmup_cosine_edges": "one step ahead",
                  "audit_scheduler_lrs": "one step later"}),
    Mutant("cosine_from_base_plus_min", "the cosine phase starts at base_lr + min_lr",
           edits={"warmup_cosine": [("(base_lr - min_lr) * (1 + math.cos", "base_lr * (1 + math.cos")]},
           breaks=("R2.2",),
           fails={"test_warmup_cosine": "cosine phase", "audit_warmup_cosine_edges": "end of the warmup",
                  "audit_cosine_matches_torch": "CosineAnnealingLR", "audit_scheduler_lrs": "its schedule gives"}),
    Mutant("cosine_progress_over_total", "the cosine's progress divided by total_steps, not by the decay's length",
           edits={"warmup_cosine": [("/ (total_steps - warmup_steps)", "/ total_steps")]},
           breaks=("R2.2",),
           fails={"test_warmup_cosine": "cosine phase", "audit_warmup_cosine_edges": "the cosine phase goes",
                  "audit_scheduler_lrs": "its schedule gives"}),
    Mutant("cosine_not_clamped", "no clamp past total_steps: the cosine climbs back up",
           edits={"warmup_cosine": [(CLAMP, "")]},
           breaks=("R2.3",),
           fails={"audit_warmup_cosine_edges": "climbs back up"}),
    Mutant("warmup_divides_at_zero", "step <= warmup_steps for the warmup: divides by zero when warmup_steps=0",
           edits={"warmup_cosine": [("if step < warmup_steps:", "if step <= warmup_steps:")]},
           breaks=("R2.4",),
           fails={"audit_cosine_matches_torch": "ZeroDivisionError"}),
    Mutant("min_lr_required", "the default of min_lr taken out of the signature",
           edits={"warmup_cosine": [("total_steps, min_lr=0.0):", "total_steps, min_lr):")]},
           breaks=("R2.5",),
           fails={"audit_warmup_cosine_edges": "min_lr is optional"}),
    Mutant("cosine_tensor", "the cosine computed with torch.cos on a tensor: warmup_cosine returns a tensor",
           edits={"warmup_cosine": [("(1 + math.cos(math.pi * progress))",
                                     "(1 + torch.cos(torch.tensor(math.pi * progress, dtype=torch.float64)))")]},
           breaks=("R2.6",),
           fails={"audit_warmup_cosine_edges": "not a Python float", "audit_cosine_matches_torch": "not a Python float",
                  "test_make_scheduler": "but warmup_cosine gives"}),
    # Task 3: make_scheduler
    Mutant("schedule_not_scheduler", "make_scheduler returns the schedule as a function, not a torch scheduler",
           edits={"make_scheduler": [(MAKE_BODY,
               "    base = optimizer.param_groups[0][\"lr\"]\n"
               "    if kind == \"step\":\n"
               "        return lambda step: step_decay(step, base_lr=base, **kwargs)\n"
               "    if kind == \"warmup_cosine\":\n"
               "        return lambda step: warmup_cosine(step, base_lr=base, **kwargs)\n")]},
           breaks=("R3.1",),
           fails={"test_make_scheduler": "not a torch LRScheduler", "audit_scheduler_lrs": "not a torch scheduler"}),
    Mutant("step_kind_exponential", "kind='step' built as ExponentialLR(gamma): step_size ignored",
           edits={"make_scheduler": [("return torch.optim.lr_scheduler.StepLR(optimizer, **kwargs)",
                                      "return torch.optim.lr_scheduler.ExponentialLR(optimizer, kwargs[\"gamma\"])")]},
           breaks=("R3.2",),
           fails={"test_make_scheduler": "but step_decay gives", "audit_scheduler_lrs": "its schedule gives"}),
    Mutant("get_lr_one_step_late", "get_lr reads the schedule at self.last_epoch + 1",
           edits={"make_scheduler": [(GET_LR, "return [warmup_cosine(self.last_epoch + 1, base_lr=base")]},
           breaks=("R3.3",),
           fails={"test_make_scheduler": "but warmup_cosine gives", "audit_scheduler_lrs": "one step later"}),
    Mutant("min_lr_read_from_kwargs", "make_scheduler reads kwargs['min_lr']: a KeyError when it is left out",
           edits={"make_scheduler": [("return WarmupCosineLR(optimizer, **kwargs)",
                                      "return WarmupCosineLR(optimizer, kwargs[\"warmup_steps\"], "
                                      "kwargs[\"total_steps\"], kwargs[\"min_lr\"])")]},
           breaks=("R3.4",),
           fails={"audit_scheduler_lrs": "min_lr is optional"}),
    Mutant("scheduler_first_group_only", "every parameter group follows the first group's base LR",
           edits={"make_scheduler": [("min_lr=self.min_lr) for base in self.base_lrs]",
                                      "min_lr=self.min_lr) for base in [self.base_lrs[0]] * len(self.base_lrs)]")]},
           breaks=("R3.5",),
           fails={"audit_scheduler_lrs": "its own base LR"}),
    Mutant("unknown_kind_returns_none", "no raise at the end: an unknown kind returns None",
           edits={"make_scheduler": [(RAISE_UNKNOWN, "")]},
           breaks=("R3.6",),
           fails={"test_make_scheduler": "should raise a ValueError", "audit_unknown_kind": "instead of raising"}),
    Mutant("unknown_kind_keyerror", "kinds looked up in a dict: an unknown kind raises KeyError",
           edits={"make_scheduler": [(MAKE_BODY + RAISE_UNKNOWN,
               "    makers = {\"step\": torch.optim.lr_scheduler.StepLR, \"warmup_cosine\": WarmupCosineLR}\n"
               "    return makers[kind](optimizer, **kwargs)\n")]},
           breaks=("R3.6",),
           fails={"test_make_scheduler": "should raise a ValueError", "audit_unknown_kind": "not a ValueError"}),
    Mutant("unknown_kind_unnamed", "the ValueError does not say which kinds exist",
           edits={"make_scheduler": [(RAISE_UNKNOWN, "    raise ValueError(f\"unknown scheduler kind {kind!r}\")\n")]},
           breaks=("R3.7",),
           fails={"audit_unknown_kind": "does not name the kinds"}),
    # Task 4: train_with_scheduler
    Mutant("one_epoch_short", "range(1, epochs): one pass over the loader too few",
           edits={LOOP: [("for _ in range(epochs):", "for _ in range(1, epochs):")]},
           breaks=("R4.1",),
           fails={"test_train_with_scheduler": "need 9 optimizer steps",
                  "audit_lr_used_per_step": "one optimizer step per batch",
                  "audit_lr_history": "one step per batch"}),
    Mutant("scheduler_stepped_before_optimizer", "scheduler.step() before optimizer.step()",
           edits={LOOP: [(OPTIMIZER_STEP + SCHEDULER_STEP, SCHEDULER_STEP + OPTIMIZER_STEP)]},
           breaks=("R4.2",),
           fails={"test_train_with_scheduler": "ran before optimizer.step()",
                  "audit_lr_used_per_step": "ran before optimizer.step()",
                  "audit_lr_history": "one step behind"}),
    Mutant("scheduler_never_stepped", "scheduler.step() left out of the training loop",
           edits={LOOP: [(SCHEDULER_STEP, "")]},
           breaks=("R4.3",),
           fails={"test_train_with_scheduler": "the scheduler never changed it",
                  "audit_lr_used_per_step": "never reached the optimizer",
                  "audit_decay_beats_constant": "did not reach the training"}),
    Mutant("scheduler_stepped_per_epoch", "scheduler.step() once per epoch, after the batch loop, for a schedule "
                                          "built in optimizer steps",
           edits={LOOP: [(SCHEDULER_STEP, ""), (RECORD_LOSS, RECORD_LOSS + "        scheduler.step()\n")]},
           breaks=("R4.3",), headline=True,
           fails={"test_train_with_scheduler": "stepped once per epoch",
                  "audit_lr_used_per_step": "once per epoch",
                  "audit_decay_beats_constant": "did not reach the training"}),
    Mutant("scheduler_stepped_per_epoch_first", "scheduler.step() once per epoch, before the batch loop",
           edits={LOOP: [(SCHEDULER_STEP, ""), (LOOP_HEAD, "    for _ in range(epochs):\n        scheduler.step()\n"
                                                             "        for xb, yb in loader:\n")]},
           breaks=("R4.3",), headline=True,
           fails={"test_train_with_scheduler": "stepped once per epoch",
                  "audit_lr_used_per_step": "once per epoch",
                  "audit_decay_beats_constant": "did not reach the training"}),
    Mutant("history_as_tuple", "returns the two lists as a tuple instead of a dict",
           edits={LOOP: [("    return history\n", "    return history[\"loss\"], history[\"lr\"]\n")]},
           breaks=("R4.4",),
           fails={"test_train_with_scheduler": "return a dict", "audit_lr_history": "returned a tuple"}),
    Mutant("loss_per_epoch", "history['loss'] holds one mean loss per epoch",
           edits={LOOP: [(RECORD_LOSS, "            epoch_losses.append(loss.item())\n"),
                         (LOOP_HEAD, "    for _ in range(epochs):\n        epoch_losses = []\n"
                                     "        for xb, yb in loader:\n"),
                         ("    return history\n",
                          "        history[\"loss\"].append(sum(epoch_losses) / len(epoch_losses))\n"
                          "    return history\n")]},
           breaks=("R4.5",),
           fails={"test_train_with_scheduler": "9 optimizer steps need 9 entries", "audit_lr_history": "one per epoch"}),
    Mutant("loss_kept_as_tensor", "history['loss'] holds the loss tensors (and their graphs), not floats",
           edits={LOOP: [(RECORD_LOSS, "            history[\"loss\"].append(loss)\n")]},
           breaks=("R4.6",),
           fails={"test_train_with_scheduler": "should be a Python float", "audit_lr_history": "record Python floats"}),
    Mutant("loss_recomputed_after_step", "history['loss'] holds a loss computed again after optimizer.step()",
           edits={LOOP: [(RECORD_LOSS, "            history[\"loss\"].append(loss_fn(model(xb), yb).item())\n")]},
           breaks=("R4.7",),
           fails={"audit_lr_history": "computed again after optimizer.step()"}),
    Mutant("lr_recorded_after_scheduler_step", "the LR read after scheduler.step() moved it on",
           edits={LOOP: [(RECORD_LR, ""), (RECORD_LOSS, RECORD_LOSS + RECORD_LR)]},
           breaks=("R4.8",),
           fails={"test_train_with_scheduler": "record the LR each step used", "audit_lr_history": "one step ahead"}),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_lambda_lr", "make_scheduler from LambdaLR and the schedule functions, one lambda per group",
           edits={"make_scheduler": [(
               "    if kind == \"step\":\n"
               "        return torch.optim.lr_scheduler.StepLR(optimizer, **kwargs)\n"
               "    if kind == \"warmup_cosine\":\n"
               "        return WarmupCosineLR(optimizer, **kwargs)\n",
               "    schedules = {\"step\": step_decay, \"warmup_cosine\": warmup_cosine}\n"
               "    if kind in schedules:\n"
               "        return torch.optim.lr_scheduler.LambdaLR(optimizer, [\n"
               "            lambda step, base=group[\"lr\"]: schedules[kind](step, base_lr=base, **kwargs) / base\n"
               "            for group in optimizer.param_groups])\n")]}),
    Mutant("alt_get_last_lr", "the LR recorded from scheduler.get_last_lr() between the two steps",
           edits={LOOP: [(RECORD_LR, ""),
                         (SCHEDULER_STEP, "            history[\"lr\"].append(scheduler.get_last_lr()[0])\n" + SCHEDULER_STEP)]}),
    Mutant("alt_types_and_loop", "other valid types and loop structure: numpy.float64 and a float subclass for the "
           "schedules, a dict-dispatched make_scheduler, an OrderedDict history of tuples built over one flat "
           "stream of batches",
           edits={"step_decay": [("    return base_lr * gamma ** (step // step_size)\n",
                                  "    import numpy as np\n"
                                  "    periods, _ = divmod(step, step_size)\n"
                                  "    return np.float64(base_lr) * np.float64(gamma) ** periods\n")],
                  "warmup_cosine": [("    if step >= total_steps:\n        return min_lr\n",
                                     "    class LR(float):\n        pass\n\n"
                                     "    if step >= total_steps:\n        return LR(min_lr)\n"),
                                    ("(1 + math.cos(math.pi * progress))", "(1 + np.cos(np.pi * progress))"),
                                    ("    if step < warmup_steps:\n",
                                     "    import numpy as np\n    if step < warmup_steps:\n")],
                  "make_scheduler": [(MAKE_BODY + RAISE_UNKNOWN,
                                      "    makers = {\"step\": torch.optim.lr_scheduler.StepLR, "
                                      "\"warmup_cosine\": WarmupCosineLR}\n"
                                      "    if kind not in makers:\n"
                                      "        raise ValueError(f\"kind must be one of {sorted(makers)}, not {kind!r}\")\n"
                                      "    return makers[kind](optimizer, **kwargs)\n")],
                  LOOP: [("    history = {\"loss\": [], \"lr\": []}\n" + LOOP_HEAD
                          + RECORD_LR,
                          "    import itertools\n"
                          "    import numpy as np\n"
                          "    from collections import OrderedDict\n"
                          "    losses, lrs = [], []\n"
                          "    batches = itertools.chain.from_iterable(itertools.repeat(loader, epochs))\n"
                          "    for xb, yb in batches:\n"
                          "        if True:\n"
                          "            lrs.append(np.float64(optimizer.param_groups[0][\"lr\"]))\n"),
                         (RECORD_LOSS, "            losses.append(np.float64(loss.item()))\n"),
                         ("    return history\n", "    return OrderedDict(loss=tuple(losses), lr=tuple(lrs))\n")]}),
    Mutant("alt_noisy", "correct, and loud: logging to stderr, prints to stdout and stderr, a warning, and a "
           "terminal tqdm bar nested inside a tqdm.auto bar",
           edits={"step_decay": [("    return base_lr * gamma ** (step // step_size)\n",
                                  "    import sys\n"
                                  "    print(f\"step_decay({step})\", file=sys.stderr)\n"
                                  "    return base_lr * gamma ** (step // step_size)\n")],
                  LOOP: [("    history = {\"loss\": [], \"lr\": []}\n",
                          "    import logging\n"
                          "    import sys\n"
                          "    import warnings\n"
                          "    from tqdm import tqdm as terminal_tqdm\n"
                          "    from tqdm.auto import tqdm as auto_tqdm\n"
                          "    logging.basicConfig()\n"
                          "    logger = logging.getLogger(\"schedules\")\n"
                          "    logger.setLevel(logging.INFO)\n"
                          "    warnings.warn(f\"training {epochs} epochs with {type(scheduler).__name__}\")\n"
                          "    history = {\"loss\": [], \"lr\": []}\n"),
                         (LOOP_HEAD, "    for epoch in auto_tqdm(range(epochs), desc=\"epochs\"):\n"
                                     "        for xb, yb in terminal_tqdm(loader, desc=\"batches\", leave=False):\n"),
                         (SCHEDULER_STEP, SCHEDULER_STEP + "            logger.info(\"lr now %g\", "
                                                           "optimizer.param_groups[0][\"lr\"])\n"),
                         ("    return history\n", "        logger.warning(\"epoch %d done\", epoch)\n"
                                                  "        print(f\"epoch {epoch}: last loss {history['loss'][-1]:.4f}\")\n"
                                                  "        print(\"epoch done\", file=sys.stderr)\n"
                                                  "    return history\n")]}),
]
