# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PS03: learning-rate schedules
#
# A large learning rate learns fast but never settles: on noisy data, every mini-batch kicks the
# weights around the minimum. A small one settles but crawls. A **schedule** starts large and
# ends small, and gets both. You will write the two schedules most used in practice, wrap one as
# a PyTorch scheduler, and put it in a training loop, in the right order.
#
# | task | you write | points (visible test + hidden audits) |
# |---|---|---|
# | 1 | `step_decay`: the LR of step decay at a given step | 1 + 2 |
# | 2 | `warmup_cosine`: linear warmup, then cosine decay | 1 + 3 |
# | 3 | `WarmupCosineLR.get_lr` and `make_scheduler`: torch schedulers | 1 + 3 |
# | 4 | `train_with_scheduler`: a training loop that steps the scheduler | 2 + 7 |
#
# **How you are graded.** The visible tests check simple cases. The hidden audits call your
# schedules with other parameters and at the edges (step 0, the end of the warmup, the last step
# and beyond), compare them with PyTorch's own schedulers, and run your training loop with an
# optimizer that records the learning rate it actually used at every step.

# %% nbgrader={"grade_id": "imports", "locked": true}
import math

import torch
from torch import nn
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from ipywidgets import FloatSlider, IntSlider
from tqdm.auto import tqdm

from course.data import make_blobs, make_loader
from course.plots import schedule_explorer, verification_table

torch.manual_seed(0);

# %% [markdown]
# ## Why change the learning rate while training
#
# An optimizer reads its learning rate from `optimizer.param_groups[i]["lr"]` at every
# `step()`, so whatever writes that number is a schedule. (`param_groups` is a list of dicts, one
# per **parameter group**: some of the parameters, with settings of their own such as `"lr"`;
# `torch.optim.SGD(model.parameters(), lr=...)` makes a single group.) Below, a linear classifier
# trains on three overlapping classes (no line separates them, so the mini-batch gradients never
# agree) three ways: a large constant LR, a small constant LR, and the large LR shrunk linearly to
# 0 by writing `param_groups`.

# %% nbgrader={"grade_id": "demo_why_schedule", "locked": true}
x_noisy, y_noisy = make_blobs(n=600, n_classes=3, spread=1.5, seed=0)
loader_noisy = make_loader(x_noisy, y_noisy, batch_size=8, shuffle=True, seed=0)
EPOCHS = 10


def full_loss(model):
    with torch.no_grad():
        return nn.functional.cross_entropy(model(x_noisy), y_noisy).item()


def run_manual(lr, decay):
    torch.manual_seed(1)
    model = nn.Linear(2, 3)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    total, step, curve = EPOCHS * len(loader_noisy), 0, [full_loss(model)]
    for epoch in tqdm(range(EPOCHS), desc=f"lr={lr:g}" + (" decayed" if decay else ""), leave=False):
        for xb, yb in loader_noisy:
            if decay:
                opt.param_groups[0]["lr"] = lr * (1 - step / total)
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
            step += 1
        curve.append(full_loss(model))
    return curve


curves = {"constant 0.5": run_manual(0.5, False), "constant 0.002": run_manual(0.002, False),
          "0.5 decayed linearly to 0": run_manual(0.5, True)}
fig, ax = plt.subplots(figsize=(6, 3.5))
for label, curve in curves.items():
    ax.plot(range(EPOCHS + 1), curve, marker="o", markersize=3, label=label)
ax.set(xlabel="epoch", ylabel="loss on all 600 samples", title="Large, small, and decaying learning rates")
ax.grid(alpha=0.3)
ax.legend()
plt.show()
display(Markdown(verification_table({label: {"loss at start": curve[0], "final loss": curve[-1],
                                              "lowest loss": min(curve), "loss decrease": (curve[0] - curve[-1]) / curve[0]}
                                      for label, curve in curves.items()})))

# %% [markdown]
# The large constant LR drops fast, then bounces at a level it cannot get below. The small one is
# steady but still far from done after 10 epochs. The decaying one drops as fast as the large LR
# and ends lowest: its last steps are small enough to settle.
#
# ## 1. Step decay
#
# The oldest schedule: keep `base_lr` for `step_size` steps, then multiply by `gamma`, and again
# every `step_size` steps. With `base_lr=0.1, step_size=3, gamma=0.5`:
#
# | step | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 |
# |---|---|---|---|---|---|---|---|---|---|---|
# | LR | 0.1 | 0.1 | 0.1 | 0.05 | 0.05 | 0.05 | 0.025 | 0.025 | 0.025 | 0.0125 |
#
# **Task 1.** Write `step_decay(step, *, base_lr, step_size, gamma) -> float`: the learning rate at
# `step` (0, 1, 2, ...), the LR that `torch.optim.lr_scheduler.StepLR` sets after `step` calls of
# `scheduler.step()` (PyTorch's step-decay scheduler; *Schedulers in PyTorch*, below, shows how
# one works).
#
# - **R1.1** It returns `base_lr` itself for steps 0 to `step_size - 1`: the first decay comes at
#   step `step_size`, not before.
# - **R1.2** It returns $\text{base\_lr} \cdot \gamma^{k}$ where $k$ is the number of *whole*
#   `step_size` periods before `step`: the LR stays constant within a period and drops only at its end.
# - **R1.3** It returns a Python `float` (not a tensor).

# %% nbgrader={"grade_id": "step_decay", "solution": true}
def step_decay(step, *, base_lr, step_size, gamma):
    """The learning rate at `step`: base_lr, multiplied by gamma after every step_size steps."""
    ### BEGIN SOLUTION
    return base_lr * gamma ** (step // step_size)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_step_decay", "points": 1}
# Visible test: the table above.
table = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125]
got = [step_decay(step, base_lr=0.1, step_size=3, gamma=0.5) for step in range(10)]
for step, (lr, want) in enumerate(zip(got, table)):
    assert isinstance(lr, float), f"step_decay should return a float, got {type(lr).__name__} at step {step}"
    assert math.isclose(lr, want, rel_tol=1e-9), (
        f"step_decay at step {step} returned {lr:g}, the table says {want:g}: the LR stays at base_lr for "
        f"step_size steps, then is multiplied by gamma")
print("step_decay matches the table")

# %% nbgrader={"grade": true, "grade_id": "audit_step_decay", "points": 2}
# Hidden audit (2 points): step_decay at hidden parameters, step 0 and every period boundary,
# against torch's StepLR.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps03.step_decay")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Warmup, then cosine decay
#
# Large models start from random weights whose gradients can be huge and misleading; a few
# steps with a small, growing LR (the **warmup**) let the weights settle, and with them the
# statistics of an optimizer such as Adam (`torch.optim.Adam`, which sizes each parameter's step
# from running averages of its past gradients), before the full LR is used. After that, a
# **cosine** curve brings the LR smoothly from `base_lr` down to `min_lr` at `total_steps`, slow at
# first and slow at the end. Past `total_steps` (if training runs on), the LR stays at `min_lr`.
#
# With $W$ = `warmup_steps` and $T$ = `total_steps` ($0 \le W < T$):
#
# $$
# \text{lr}(s) = \begin{cases}
# \text{base\_lr} \cdot s / W & s < W \quad\text{(from 0 up to base\_lr)} \\
# \text{min\_lr} + (\text{base\_lr} - \text{min\_lr}) \cdot \frac{1}{2}\left(1 + \cos\left(\pi \frac{s - W}{T - W}\right)\right) & W \le s \le T \\
# \text{min\_lr} & s > T
# \end{cases}
# $$
#
# With `base_lr=0.1, warmup_steps=4, total_steps=12, min_lr=0.01`:
#
# | step | 0 | 1 | 2 | 3 | 4 | 6 | 8 | 10 | 12 | 13 | 20 |
# |---|---|---|---|---|---|---|---|---|---|---|---|
# | LR | 0 | 0.025 | 0.05 | 0.075 | 0.1 | 0.0868 | 0.055 | 0.0232 | 0.01 | 0.01 | 0.01 |
#
# With `warmup_steps=0` it is exactly PyTorch's `CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)`
# up to step $T$; that scheduler then climbs back up (it is periodic), which is why you clamp.
#
# **Task 2.** Write `warmup_cosine(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0) -> float`,
# the formula above. `math.cos` and `math.pi` are all you need.
#
# - **R2.1** During the warmup (`step < warmup_steps`) it returns `base_lr * step / warmup_steps`:
#   0 at step 0, rising linearly towards `base_lr`.
# - **R2.2** From `warmup_steps` to `total_steps` it follows the cosine: exactly `base_lr` at
#   `warmup_steps`, exactly `min_lr` at `total_steps`.
# - **R2.3** Past `total_steps` it returns `min_lr` in every case.
# - **R2.4** `warmup_steps` may be 0: there is then no warmup, and the schedule equals
#   `CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)` from step 0 to `total_steps`.
# - **R2.5** `min_lr` may be left out: it defaults to 0.0.
# - **R2.6** It returns a Python `float` (not a tensor).

# %% nbgrader={"grade_id": "warmup_cosine", "solution": true}
def warmup_cosine(step, *, base_lr, warmup_steps, total_steps, min_lr=0.0):
    """Linear warmup from 0 to base_lr over warmup_steps, cosine decay to min_lr at total_steps, then min_lr."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_warmup_cosine", "points": 1}
# Visible test: the table above (rounded there to 4 digits).
table = {0: 0.0, 2: 0.05, 4: 0.1, 6: 0.08682, 8: 0.055, 10: 0.02318, 12: 0.01}
for step, want in table.items():
    lr = warmup_cosine(step, base_lr=0.1, warmup_steps=4, total_steps=12, min_lr=0.01)
    assert math.isclose(lr, want, rel_tol=1e-3, abs_tol=1e-9), (
        f"warmup_cosine at step {step} returned {lr:.5g}, the table says {want:g}"
        + (" (warmup phase: base_lr * step / warmup_steps)" if step < 4 else " (cosine phase)"))
print("warmup_cosine matches the table")

# %% nbgrader={"grade": true, "grade_id": "audit_warmup_cosine_edges", "points": 2}
# Hidden audit (2 points): warmup_cosine at hidden parameters, at step 0, through the warmup, at
# its end, through the cosine, at total_steps and past it, with min_lr given and left out.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps03.warmup_cosine_edges")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_cosine_matches_torch", "points": 1}
# Hidden audit (1 point): with warmup_steps=0, warmup_cosine equals torch's CosineAnnealingLR at
# every step up to total_steps.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps03.cosine_matches_torch")
### END HIDDEN TESTS

# %% [markdown]
# ### Explore
#
# Move the sliders: the curve is your `warmup_cosine`. Try `warmup_steps=0`, a `min_lr` above
# zero, and a `total_steps` shorter than the plot, to see the clamp at the end.

# %% nbgrader={"grade_id": "explorer", "locked": true}
schedule_explorer(
    warmup_cosine, steps=120,
    base_lr=FloatSlider(value=0.1, min=0.01, max=1.0, step=0.01, description="base_lr"),
    warmup_steps=IntSlider(value=10, min=0, max=50, description="warmup_steps"),
    total_steps=IntSlider(value=100, min=51, max=120, description="total_steps"),
    min_lr=FloatSlider(value=0.0, min=0.0, max=0.05, step=0.005, description="min_lr", readout_format=".3f"),
)

# %% [markdown]
# ## 3. Schedulers in PyTorch
#
# `torch.optim.lr_scheduler` turns a schedule into an object that writes the LR of every
# parameter group of an optimizer (below, an SGD built with two groups, of LR 0.1 and 0.02):
#
# | moment | what the scheduler does |
# |---|---|
# | `scheduler = StepLR(optimizer, step_size=3, gamma=0.5)` | remembers each group's LR as `base_lrs`, sets `last_epoch = 0` and writes the LR of step 0 |
# | `scheduler.step()` | `last_epoch += 1`, then writes `get_lr()`, one LR per parameter group |
# | `scheduler.get_last_lr()` | the LRs it wrote last |
#
# A scheduler of your own subclasses `LRScheduler` and only writes `get_lr()`: return, for each
# base LR in `self.base_lrs` (one per parameter group, which may differ), the LR at step
# `self.last_epoch`. The name says *epoch*, but it counts calls of `scheduler.step()`: whether a
# step means an optimizer step or an epoch is up to the loop that calls it.

# %% nbgrader={"grade_id": "demo_step_lr", "locked": true}
demo_opt = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1},
                            {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.02}])
demo_sched = torch.optim.lr_scheduler.StepLR(demo_opt, step_size=3, gamma=0.5)
for step in range(7):
    print(f"step {step}: last_epoch={demo_sched.last_epoch}, LR per group {[g['lr'] for g in demo_opt.param_groups]}")
    demo_opt.step()
    demo_sched.step()

# %% [markdown]
# **Task 3.** Complete `WarmupCosineLR.get_lr` (use your `warmup_cosine`), and write
# `make_scheduler(optimizer, kind, **kwargs)`, which returns a torch scheduler
# (an `LRScheduler`) for the optimizer:
#
# | `kind` | `kwargs` | schedule |
# |---|---|---|
# | `"step"` | `step_size`, `gamma` | step decay |
# | `"warmup_cosine"` | `warmup_steps`, `total_steps`, `min_lr` (default 0.0) | warmup, then cosine |
#
# (`StepLR` exists already; using it is fine.)
#
# - **R3.1** `make_scheduler` returns a torch scheduler: an instance of
#   `torch.optim.lr_scheduler.LRScheduler` that sets the LRs of `optimizer`.
# - **R3.2** `kind="step"` follows step decay: after n calls of `scheduler.step()` the LR is
#   `step_decay(n, ...)` with the given `step_size` and `gamma`.
# - **R3.3** `kind="warmup_cosine"` follows your schedule: after n calls of `scheduler.step()` the LR
#   is `warmup_cosine(n, ...)` (in `get_lr`, n is `self.last_epoch`), from the moment it is created.
# - **R3.4** `min_lr` may be left out of the `kwargs` of `"warmup_cosine"`: it defaults to 0.0.
# - **R3.5** Every parameter group follows the schedule from its own base LR.
# - **R3.6** Any other `kind` raises a `ValueError`.
# - **R3.7** That error's message names the kinds you accept.

# %% nbgrader={"grade_id": "make_scheduler", "solution": true}
class WarmupCosineLR(torch.optim.lr_scheduler.LRScheduler):
    """warmup_cosine as a torch scheduler: after n calls of step(), each group's LR is warmup_cosine(n)."""

    def __init__(self, optimizer, warmup_steps, total_steps, min_lr=0.0):
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer)

    def get_lr(self):
        ### BEGIN SOLUTION
        return [warmup_cosine(self.last_epoch, base_lr=base, warmup_steps=self.warmup_steps,
                              total_steps=self.total_steps, min_lr=self.min_lr) for base in self.base_lrs]
        ### END SOLUTION


def make_scheduler(optimizer, kind, **kwargs):
    """A torch LR scheduler of the given kind ("step" or "warmup_cosine") for `optimizer`."""
    ### BEGIN SOLUTION
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, **kwargs)
    if kind == "warmup_cosine":
        return WarmupCosineLR(optimizer, **kwargs)
    raise ValueError(f"unknown scheduler kind {kind!r}: use 'step' or 'warmup_cosine'")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_make_scheduler", "points": 1}
# Visible test: each kind sets, step after step, the LR your own function gives.
def lrs_set_by(kind, steps, **kwargs):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_scheduler(opt, kind, **kwargs)
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler), (
        f"make_scheduler(kind={kind!r}) returned a {type(sched).__name__}, not a torch LRScheduler")
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


for kind, kwargs, schedule in [("step", dict(step_size=3, gamma=0.5), step_decay),
                               ("warmup_cosine", dict(warmup_steps=4, total_steps=12, min_lr=0.01), warmup_cosine)]:
    for step, lr in enumerate(lrs_set_by(kind, 14, **kwargs)):
        want = schedule(step, base_lr=0.1, **kwargs)
        assert math.isclose(lr, want, rel_tol=1e-6, abs_tol=1e-12), (
            f"after {step} scheduler.step() calls, make_scheduler(kind={kind!r}) left the LR at {lr:.5g}, "
            f"but {schedule.__name__} gives {want:.5g} for step {step}")
try:
    make_scheduler(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), "exponential")
except ValueError as e:
    print("unknown kind refused:", e)
except Exception as e:
    raise AssertionError(f"make_scheduler(kind='exponential') raised {type(e).__name__}: {e}; it should raise a "
                         f"ValueError naming the kinds it accepts") from e
else:
    raise AssertionError("make_scheduler(kind='exponential') should raise a ValueError naming the kinds it accepts")
print("both kinds follow their schedule")

# %% nbgrader={"grade": true, "grade_id": "audit_scheduler_lrs", "points": 2}
# Hidden audit (2 points): both kinds, at hidden parameters (min_lr given and left out), on an
# optimizer with two parameter groups of different base LRs: the LR of every group after
# construction and after each step.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps03.scheduler_lrs")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_unknown_kind", "points": 1}
# Hidden audit (1 point): other kinds, at hidden names, are refused with a ValueError naming the
# kinds make_scheduler accepts.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps03.unknown_kind")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Where `scheduler.step()` goes
#
# The optimizer uses the LR that is in `param_groups` *when `optimizer.step()` runs*. So the
# scheduler moves the LR on *after* the optimizer's step, ready for the next one:
#
# | per batch | |
# |---|---|
# | `optimizer.zero_grad()`, forward, `loss.backward()` | |
# | `optimizer.step()` | uses the LR of step $n$ |
# | `scheduler.step()` | writes the LR of step $n+1$ |
#
# Call it before `optimizer.step()` and step 0's LR is never used (PyTorch even warns about this
# order). And call it once per *optimizer step* when the schedule was built in optimizer steps
# (`total_steps = epochs * batches per epoch`), not once per epoch: below, a cosine schedule built
# for 4 epochs of 25 batches is stepped both ways. Stepped per epoch, it believes only a few of its
# steps have passed when training ends (the cell prints its count, `last_epoch`).

# %% nbgrader={"grade_id": "demo_per_step_vs_per_epoch", "locked": true}
fig, ax = plt.subplots(figsize=(6, 3))
for label, per_epoch in [("scheduler.step() every batch", False), ("scheduler.step() every epoch", True)]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4 * 25)
    used = []
    for epoch in range(4):
        for batch in range(25):
            used.append(opt.param_groups[0]["lr"])
            opt.step()
            if not per_epoch:
                cosine.step()
        if per_epoch:
            cosine.step()
    ax.plot(used, label=label)
    print(f"{label}: {cosine.last_epoch} of the schedule's {cosine.T_max} steps counted, last LR used {used[-1]:.2g}")
ax.set(xlabel="optimizer step", ylabel="LR used", title="One schedule, stepped per batch or per epoch")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# **Task 4.** Write `train_with_scheduler(model, loader, loss_fn, optimizer, scheduler, epochs) -> dict`:
#
# - **R4.1** It makes `epochs` full passes over `loader`, one optimizer step per batch (the last,
#   shorter batch included).
# - **R4.2** It calls `scheduler.step()` after `optimizer.step()`, never before it.
# - **R4.3** It calls `scheduler.step()` once for every optimizer step, inside the batch loop: not
#   once per epoch.
# - **R4.4** It returns a dict `{"loss": [...], "lr": [...]}`.
# - **R4.5** Each list has one entry per optimizer step, in order.
# - **R4.6** `loss[i]` is a Python `float` (`.item()`), not a tensor.
# - **R4.7** `loss[i]` is the loss of the batch of step `i`, the one `backward()` ran on (computed
#   before the step).
# - **R4.8** `lr[i]` is the learning rate step `i` used: `optimizer.param_groups[0]["lr"]`, read
#   before the scheduler moves it on.

# %% nbgrader={"grade_id": "train_with_scheduler", "solution": true}
def train_with_scheduler(model, loader, loss_fn, optimizer, scheduler, epochs):
    """Train for `epochs`, stepping the scheduler after every optimizer step; returns {"loss", "lr"} per step."""
    ### BEGIN SOLUTION
    history = {"loss": [], "lr": []}
    for _ in range(epochs):
        for xb, yb in loader:
            history["lr"].append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            scheduler.step()
            history["loss"].append(loss.item())
    return history
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_with_scheduler", "points": 2}
# Visible test: 3 epochs of 3 batches with StepLR(step_size=2, gamma=0.5) from LR 0.1, on an SGD
# that notes the LR each of its steps actually used.
class NotingSGD(torch.optim.SGD):
    def step(self, closure=None):
        self.used.append(self.param_groups[0]["lr"])
        return super().step(closure)


x_small, y_small = make_blobs(n=24, n_classes=3, seed=5)
torch.manual_seed(6)
model = nn.Linear(2, 3)
opt = NotingSGD(model.parameters(), lr=0.1)
opt.used = []
history = train_with_scheduler(model, make_loader(x_small, y_small, batch_size=9), nn.CrossEntropyLoss(), opt,
                               torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5), epochs=3)
assert isinstance(history, dict) and set(history) >= {"loss", "lr"}, "return a dict with the lists 'loss' and 'lr'"
assert len(opt.used) == 9, f"3 epochs of 3 batches need 9 optimizer steps, your loop took {len(opt.used)}"
assert len(history["loss"]) == len(history["lr"]) == 9, (
    f"9 optimizer steps need 9 entries in each list, got {len(history['loss'])} losses and {len(history['lr'])} LRs")
assert all(isinstance(v, float) for v in history["loss"]), "each loss should be a Python float (loss.item())"
want = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.00625]
if not all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(opt.used, want)):
    epochs_seen = [opt.used[i:i + 3] for i in (0, 3, 6)]
    if len(set(opt.used)) == 1:
        raise AssertionError(
            f"every optimizer step used the LR {opt.used[0]}: the scheduler never changed it. Call "
            f"scheduler.step() inside the batch loop, after every optimizer.step()")
    if all(len(set(lrs)) == 1 for lrs in epochs_seen):
        raise AssertionError(
            f"the optimizer's steps used the LRs {opt.used}: the LR changed only between epochs, so the "
            f"scheduler was stepped once per epoch. StepLR(step_size=2) counts optimizer steps and should give "
            f"{want}: call scheduler.step() inside the batch loop, after every optimizer.step()")
    if all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(opt.used, want[1:])):
        raise AssertionError(
            f"the optimizer's steps used the LRs {opt.used}, one step ahead of StepLR's {want}: "
            f"scheduler.step() ran before optimizer.step(). Call it right after")
    raise AssertionError(f"the optimizer's steps used the LRs {opt.used}, StepLR(step_size=2, gamma=0.5) gives "
                         f"{want}: step the scheduler once after every optimizer.step()")
assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(history["lr"], opt.used)), (
    f"history['lr'] is {history['lr']}, but the optimizer's steps used {opt.used}: record the LR each "
    f"step used, read before scheduler.step() moves it on")
print("nine steps, nine losses, and the LRs of StepLR")

# %% nbgrader={"grade": true, "grade_id": "audit_lr_used_per_step", "points": 3}
# Hidden audit (3 points): with a hidden loader, epochs and scheduler, the LR the optimizer
# actually used at every step (recorded inside optimizer.step()) equals the schedule.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps03.lr_used_per_step")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_lr_history", "points": 2}
# Hidden audit (2 points): the returned lists hold, step by step, the LR the optimizer used and
# the batch loss.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps03.lr_history")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_decay_beats_constant", "points": 2}
# Hidden audit (2 points): on a hidden noisy problem, training with a decaying schedule ends
# clearly closer to the best reachable loss than training with the constant LR.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps03.decay_beats_constant")
### END HIDDEN TESTS

# %% [markdown]
# ## See it: three schedules on the noisy problem
#
# The noisy problem of *Why change the learning rate while training* again, now with your
# scheduler and your loop: the same large LR kept constant, decayed in steps, and warmed up then
# decayed along a cosine. The constant run gets a scheduler too, so that the same loop runs all
# three: `LambdaLR(opt, lambda step: 1.0)` multiplies the base LR by 1 at every step. Left, the LR
# each step used (your `history["lr"]`); right, the batch losses averaged over each epoch; below,
# the loss of each final model on all 600 samples.

# %% nbgrader={"grade_id": "demo_three_schedules", "locked": true}
total = EPOCHS * len(loader_noisy)
setups = {"constant": None, "step decay": dict(kind="step", step_size=total // 4, gamma=0.3),
          "warmup + cosine": dict(kind="warmup_cosine", warmup_steps=total // 20, total_steps=total)}
results = {}
for label, spec in setups.items():
    torch.manual_seed(1)
    model = nn.Linear(2, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = (torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0) if spec is None
                 else make_scheduler(opt, **spec))
    history = train_with_scheduler(model, loader_noisy, nn.CrossEntropyLoss(), opt, scheduler, EPOCHS)
    results[label] = (history, full_loss(model))

fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.5))
per_epoch = len(loader_noisy)
for label, (history, _) in results.items():
    ax_lr.plot(history["lr"], label=label)
    epoch_means = [sum(history["loss"][i:i + per_epoch]) / per_epoch for i in range(0, total, per_epoch)]
    ax_loss.plot(range(1, EPOCHS + 1), epoch_means, marker="o", markersize=3, label=label)
ax_lr.set(xlabel="optimizer step", ylabel="LR used", title="The schedules")
ax_loss.set(xlabel="epoch", ylabel="mean batch loss", title="Training loss")
for ax in (ax_lr, ax_loss):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
plt.show()
display(Markdown(verification_table({label: {"final loss on all 600 samples": final}
                                      for label, (_, final) in results.items()})))

# %% [markdown]
# Both decaying schedules end below the constant LR, which keeps bouncing around the minimum to
# the last epoch.
