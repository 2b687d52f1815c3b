"""The ps03_lr_schedules matrix: the schedule and scheduler bugs students make, and other correct styles."""
from autograder.mutants import BLANK, Mutant, grade_cells

NAME = "ps03_lr_schedules"

LOOP = "train_with_scheduler"
SCHEDULER_STEP = "            scheduler.step()\n"
RECORD_LR = "            history[\"lr\"].append(optimizer.param_groups[0][\"lr\"])\n"
RECORD_LOSS = "            history[\"loss\"].append(loss.item())\n"
OPTIMIZER_STEP = "            optimizer.step()\n"
CLAMP = "    if step >= total_steps:\n        return min_lr\n"

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    Mutant("scheduler_never_stepped", "scheduler.step() left out of the training loop",
           edits={LOOP: [(SCHEDULER_STEP, "")]},
           fails={"test_train_with_scheduler": "StepLR(step_size=2, gamma=0.5) gives",
                  "audit_lr_used_per_step": "never reached the optimizer",
                  "audit_decay_beats_constant": "did not reach the training"}),
    Mutant("scheduler_stepped_before_optimizer", "scheduler.step() before optimizer.step()",
           edits={LOOP: [(OPTIMIZER_STEP + SCHEDULER_STEP, SCHEDULER_STEP + OPTIMIZER_STEP)]},
           fails={"audit_lr_used_per_step": "ran before optimizer.step()",
                  "audit_lr_history": "one step behind"}),
    Mutant("scheduler_stepped_per_epoch", "scheduler.step() once per epoch for a schedule built in optimizer steps",
           edits={LOOP: [(SCHEDULER_STEP, ""), (RECORD_LOSS, RECORD_LOSS + "        scheduler.step()\n")]},
           fails={"test_train_with_scheduler": "StepLR(step_size=2, gamma=0.5) gives",
                  "audit_lr_used_per_step": "once per epoch",
                  "audit_decay_beats_constant": "did not reach the training"}),
    Mutant("lr_recorded_after_scheduler_step", "the LR read after scheduler.step() moved it on",
           edits={LOOP: [(RECORD_LR, ""), (RECORD_LOSS, RECORD_LOSS + RECORD_LR)]},
           fails={"test_train_with_scheduler": "StepLR(step_size=2, gamma=0.5) gives",
                  "audit_lr_history": "one step ahead"}),
    Mutant("warmup_off_by_one", "the warmup starts at base_lr / warmup_steps instead of 0",
           edits={"warmup_cosine": [("base_lr * step / warmup_steps", "base_lr * (step + 1) / warmup_steps")]},
           fails={"test_warmup_cosine": "warmup phase", "audit_warmup_cosine_edges": "one step ahead",
                  "audit_scheduler_lrs": "one step later"}),
    Mutant("cosine_not_clamped", "no clamp past total_steps: the cosine climbs back up",
           edits={"warmup_cosine": [(CLAMP, "")]},
           fails={"audit_warmup_cosine_edges": "climbs back up"}),
    Mutant("cosine_from_base_plus_min", "the cosine phase starts at base_lr + min_lr",
           edits={"warmup_cosine": [("(base_lr - min_lr) * (1 + math.cos", "base_lr * (1 + math.cos")]},
           fails={"test_warmup_cosine": "cosine phase", "audit_warmup_cosine_edges": "end of the warmup",
                  "audit_cosine_matches_torch": "CosineAnnealingLR", "audit_scheduler_lrs": "its schedule gives"}),
    Mutant("step_decay_smooth", "gamma ** (step / step_size): the LR decays at every step",
           edits={"step_decay": [("step // step_size", "step / step_size")]},
           fails={"test_step_decay": "the table says", "audit_step_decay": "integer division",
                  "test_make_scheduler": "but step_decay gives"}),
    Mutant("scheduler_first_group_only", "every parameter group follows the first group's base LR",
           edits={"make_scheduler": [("min_lr=self.min_lr) for base in self.base_lrs]",
                                      "min_lr=self.min_lr) for base in [self.base_lrs[0]] * len(self.base_lrs)]")]},
           fails={"audit_scheduler_lrs": "its own base LR"}),
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
]
