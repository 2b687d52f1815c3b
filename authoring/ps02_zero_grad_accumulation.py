# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PS02: zero_grad and gradient accumulation
#
# In PS01 you called `optimizer.zero_grad()` because `backward()` *adds* into `.grad`. Here you turn
# that behaviour into a tool: **gradient accumulation** trains with a batch too large for memory by
# summing the gradients of several small *micro-batches* before one optimizer step. Done right,
# it is exactly large-batch training; done wrong, it silently is not.
#
# | task | you write | points (visible test + hidden audits) |
# |---|---|---|
# | 1 | `train_epoch_accumulated`: one step per window of `accum_steps` micro-batches | 3 + 10 |
#
# **How you are graded.** The visible test runs one epoch of 5 micro-batches (the last one short)
# with `accum_steps=3`, and compares the gradient at each `optimizer.step()` with the gradient of
# that window's samples as one big batch. The hidden audits do the same on new models and loaders,
# and also check where the gradients were cleared and the loss you return. Each requirement below
# has an id (R1.1, ...) that the audits' messages refer to.

# %% nbgrader={"grade_id": "imports", "locked": true}
import itertools

import torch
from torch import nn
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from course.data import make_blobs, make_loader
from course.plots import plot_losses, verification_table

torch.manual_seed(0);

# %% [markdown]
# ## What a forgotten zero_grad does to a gradient
#
# Below, the same batch is used for 10 steps. With `zero_grad`, the gradient norm at each step is
# that step's own gradient, and it shrinks as the model learns. Without it, each step applies the
# sum of every gradient so far: the norm grows step after step, and so does the effective
# learning rate.

# %% nbgrader={"grade_id": "demo_forgotten_zero_grad", "locked": true}
x, y = make_blobs(n=64, n_classes=3, seed=0)
norms = {}
for label, clear in [("zero_grad every step", True), ("zero_grad forgotten", False)]:
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    norms[label] = []
    for step in range(10):
        if clear:
            opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        norms[label].append(model.weight.grad.norm().item())
        opt.step()
fig, ax = plt.subplots(figsize=(6, 3.5))
for label, values in norms.items():
    ax.plot(range(1, 11), values, marker="o", label=label)
ax.set(xlabel="step", ylabel="norm of weight.grad at step()", title="Gradients add up without zero_grad")
ax.legend()
plt.show()

# %% [markdown]
# ## 1. Accumulation: several backward passes, one step
#
# Cut a batch of 32 samples into 4 micro-batches of 8. The mean loss over the 32 samples is the
# mean of the four micro-batch means, so its gradient is
#
# $$\nabla \frac{1}{4}\sum_{i=1}^{4} L_i = \sum_{i=1}^{4} \nabla \frac{L_i}{4}.$$
#
# Calling `(loss_i / 4).backward()` for each micro-batch leaves exactly the big batch's gradient
# in `.grad`, and one `optimizer.step()` applies it. The window of micro-batches starts with
# `zero_grad()`, never in between.
#
# | micro-batch | `zero_grad()` | forward, loss | `backward()` of | `step()` |
# |---|---|---|---|---|
# | 1 | yes | $L_1$ | $L_1 / 4$ | |
# | 2 | | $L_2$ | $L_2 / 4$ | |
# | 3 | | $L_3$ | $L_3 / 4$ | |
# | 4 | | $L_4$ | $L_4 / 4$ | yes |
#
# Two details make it *exactly* the big batch:
#
# - **Micro-batches of different sizes.** 30 samples in micro-batches of 8 give 8, 8, 8, 6. The
#   big batch's mean weighs every *sample* equally, so scale each micro-batch loss by its share of
#   the window's samples: `loss_i * len(yb_i) / n_window` (here 8/30, 8/30, 8/30, 6/30), not by 1/4.
# - **The leftover window.** 10 micro-batches with `accum_steps=4` give windows of 4, 4 and 2. The
#   last window still gets its step (dropping it skips data), and its own big batch is its 2
#   micro-batches.
#
# `itertools.islice(batches, accum_steps)` takes the next window from an iterator over the loader,
# and returns fewer items (or none) at the end. Make that iterator once, with `batches = iter(loader)`:
# sliced directly, the loader would start again from its first batch at every window. Below,
# `while window := list(...)` assigns the next window and ends the loop when it comes back empty:

# %% nbgrader={"grade_id": "demo_windows", "locked": true}
batches = iter(range(1, 11))  # stand-ins for 10 micro-batches
while window := list(itertools.islice(batches, 4)):
    print("window:", window)

# %% [markdown]
# **Task 1.** Write `train_epoch_accumulated(model, loader, loss_fn, optimizer, accum_steps) -> float`.
# A window is `accum_steps` consecutive micro-batches from `loader`; `loss_fn(output, target)` gives
# the mean loss of a micro-batch (like `nn.CrossEntropyLoss()`).
#
# - **R1.1** Each micro-batch's loss comes from `loss_fn`, called once per micro-batch (the hidden
#   audits pass a loss function of their own).
# - **R1.2** Each window gets exactly one `optimizer.step()`, after the backward passes of all its
#   micro-batches.
# - **R1.3** The last window may be shorter than `accum_steps`; it still gets its own `optimizer.step()`.
# - **R1.4** Every window starts from cleared gradients: nothing of an earlier window's gradient is
#   left in `.grad` at its step.
# - **R1.5** The gradients are never cleared between the micro-batches of a window: every
#   micro-batch's gradient reaches the window's step.
# - **R1.6** The gradient at each step is the gradient of the *mean* loss over the window's samples,
#   not of the sum of the micro-batch losses.
# - **R1.7** Every sample of a window weighs the same: each micro-batch counts by its number of
#   samples, so a short micro-batch counts less, and a short last window is averaged over its own
#   samples (not by `accum_steps`).
# - **R1.8** Returns a Python `float` (a subclass such as `numpy.float64` is one too), not a tensor.
# - **R1.9** The returned value is built from the micro-batch losses as `loss_fn` returned them,
#   before any scaling for `backward()`.
# - **R1.10** The returned value is the epoch's mean loss per sample: each micro-batch's loss
#   weighted by its size, as in PS01's `train_epoch`.
#
# Scaling the losses before `backward()` or scaling the accumulated gradients before `step()` are
# both fine.

# %% nbgrader={"grade_id": "train_epoch_accumulated", "solution": true}
def train_epoch_accumulated(model, loader, loss_fn, optimizer, accum_steps):
    """One epoch with one optimizer step per window of accum_steps micro-batches; returns the mean loss."""
    ### BEGIN SOLUTION
    total, count = 0.0, 0
    batches = iter(loader)
    while window := list(itertools.islice(batches, accum_steps)):
        n = sum(len(yb) for _, yb in window)
        optimizer.zero_grad()
        for xb, yb in window:
            loss = loss_fn(model(xb), yb)
            (loss * len(yb) / n).backward()
            total += loss.item() * len(yb)
        optimizer.step()
        count += n
    return total / count
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_epoch_accumulated", "points": 3}
# Visible test: micro-batches of 8, 8, 8, 8 and 6 with accum_steps=3 make two windows, of 3 and 2
# micro-batches. Each window's optimizer.step() must apply the gradient of that window's samples taken
# as one big batch, and the returned loss must be the epoch's mean loss per sample.
x, y = make_blobs(n=38, n_classes=3, seed=1)
torch.manual_seed(2)
big, small = nn.Linear(2, 3), nn.Linear(2, 3)
small.load_state_dict(big.state_dict())


class GradientLog(torch.optim.SGD):
    """SGD that keeps a copy of the gradients each step() applies."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.applied = []

    def step(self, closure=None):
        self.applied.append([torch.zeros_like(p) if p.grad is None else p.grad.clone()
                             for p in self.param_groups[0]["params"]])
        return super().step(closure)


def relative_gap(got, want):
    return max(((g - w).norm() / w.norm()).item() for g, w in zip(got, want))


# What large-batch training does: one step per window, on the window's 24 and 14 samples as one batch.
opt_big, expected, expected_loss = torch.optim.SGD(big.parameters(), lr=0.5), [], 0.0
for first, last in [(0, 24), (24, 38)]:
    opt_big.zero_grad()
    big_batch_loss = nn.functional.cross_entropy(big(x[first:last]), y[first:last])
    big_batch_loss.backward()
    expected.append([p.grad.clone() for p in big.parameters()])
    expected_loss += big_batch_loss.item() * (last - first) / 38
    opt_big.step()

opt_small = GradientLog(small.parameters(), lr=0.5)
returned = train_epoch_accumulated(small, make_loader(x, y, batch_size=8), nn.CrossEntropyLoss(), opt_small,
                                   accum_steps=3)
assert isinstance(returned, float), (
    f"train_epoch_accumulated returned a {type(returned).__name__}: return the epoch's loss as a Python float "
    f"(.item() of each micro-batch loss), not a tensor")
steps = len(opt_small.applied)
assert steps != 1, (
    "optimizer.step() ran once, but 5 micro-batches with accum_steps=3 make 2 windows, the last of only 2 "
    "micro-batches: that leftover window was dropped. When the loader runs out in the middle of a window, "
    "that window still needs its step.")
assert steps != 5, "optimizer.step() ran after every micro-batch; it must run once per window of accum_steps"
assert steps == 2, f"optimizer.step() ran {steps} times; 5 micro-batches with accum_steps=3 need 2 steps"
for k, (got, want) in enumerate(zip(opt_small.applied, expected), 1):
    where = f"At the step of window {k} ({[3, 2][k - 1]} micro-batches, {[24, 14][k - 1]} samples)"
    if k > 1:
        assert relative_gap(got, [w + g for w, g in zip(want, opt_small.applied[0])]) > 1e-4, (
            f"{where}, .grad still held window 1's gradient on top of this window's: gradients add up across "
            f"windows. Clear them at the start of every window, before its first backward().")
    ratio = (sum((g * w).sum() for g, w in zip(got, want)) / sum((w * w).sum() for w in want)).item()
    assert abs(ratio - 1) < 1e-4 or relative_gap(got, [ratio * w for w in want]) > 1e-4, (
        f"{where}, the gradient was {ratio:.3g} times the gradient of the window's mean loss. "
        f"backward() of each unscaled micro-batch mean sums the means; each micro-batch must count by "
        f"its share of the window's samples (dividing by accum_steps is wrong for a shorter window).")
    assert relative_gap(got, want) < 1e-4, (
        f"{where}, the gradient differs from the gradient of the window's samples as one big batch "
        f"(relative gap {relative_gap(got, want):.2e}). Check that every micro-batch's backward() adds into "
        f".grad (no clearing inside the window) and that each loss counts by its number of samples.")
assert abs(returned - expected_loss) < 1e-5, (
    f"train_epoch_accumulated returned {returned:.6f}, but the epoch's mean loss per sample is "
    f"{expected_loss:.6f}: average the micro-batch losses as loss_fn returned them (before scaling for "
    f"backward()), each weighted by its number of samples.")
print("both windows' steps equal large-batch steps, and the epoch's loss is right")

# %% nbgrader={"grade": true, "grade_id": "audit_large_batch_gradient", "points": 4}
# Hidden audit (4 points): at every optimizer.step(), the gradient equals the gradient of one big
# batch made of that window's micro-batches (relative 1e-5), short last micro-batch and leftover
# window included.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps02.large_batch_gradient")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_steps_per_window", "points": 2}
# Hidden audit (2 points): ceil(micro-batches / accum_steps) optimizer steps, one per window.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps02.steps_per_window")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_zero_grad_at_window_start", "points": 2}
# Hidden audit (2 points): the gradients are empty when each window's first backward starts, and
# never cleared between the micro-batches of a window.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps02.zero_grad_at_window_start")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_accumulated_epoch_loss", "points": 2}
# Hidden audit (2 points): the returned loss is the per-sample mean of the unscaled micro-batch losses.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps02.accumulated_epoch_loss")
### END HIDDEN TESTS

# %% [markdown]
# ## See it: accumulation is large-batch training
#
# Train the same model from the same start twice: with batches of 32, and with micro-batches of 8
# accumulated over 4. The two loss curves are the same curve, up to float rounding (the cell prints
# their largest difference).

# %% nbgrader={"grade_id": "demo_equivalence", "locked": true}
x, y = make_blobs(n=256, n_classes=3, spread=1.5, seed=3)


def run(batch_size, accum_steps, epochs=15):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    loader = make_loader(x, y, batch_size=batch_size)
    return [train_epoch_accumulated(model, loader, nn.CrossEntropyLoss(), opt, accum_steps)
            for _ in tqdm(range(epochs), desc=f"batch {batch_size}, accum_steps={accum_steps}", leave=False)]


curves = {"batches of 32": run(32, 1), "micro-batches of 8, accum_steps=4": run(8, 4)}
plot_losses(curves, title="Accumulation reproduces large-batch training")
plt.show()
display(Markdown(verification_table({label: {"first epoch's loss": curve[0], "last epoch's loss": curve[-1],
                                              "loss decrease": (curve[0] - curve[-1]) / curve[0]}
                                      for label, curve in curves.items()})))
gap = max(abs(a - b) for a, b in zip(*curves.values()))
print(f"largest difference between the two curves: {gap:.2e}")
