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
# **How you are graded.** The visible test checks a simple case. The hidden audits run your
# function on new loaders (with a short last micro-batch and a window left over at the end), record
# the gradient at every `optimizer.step()`, and compare it with the gradient of one big batch.

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
# ## 1. What a forgotten zero_grad does to a gradient
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
# ## 2. Accumulation: several backward passes, one step
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
# and returns fewer items (or none) at the end:

# %% nbgrader={"grade_id": "demo_windows", "locked": true}
batches = iter(range(1, 11))  # stand-ins for 10 micro-batches
while window := list(itertools.islice(batches, 4)):
    print("window:", window)

# %% [markdown]
# **Task 1.** Write `train_epoch_accumulated(model, loader, loss_fn, optimizer, accum_steps) -> float`.
#
# - Each window of `accum_steps` consecutive micro-batches from `loader` (the last window may be
#   shorter) gets exactly one `optimizer.step()`, and the gradient at that step is the gradient of
#   the mean loss over all the window's samples.
# - `loss_fn` returns the mean loss of a micro-batch (like `nn.CrossEntropyLoss()`).
# - Return the epoch's mean loss per sample, as a float: the unscaled micro-batch losses, each
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
# Visible test: 4 micro-batches of 8 with accum_steps=4 must equal one step on the batch of 32.
x, y = make_blobs(n=32, n_classes=3, seed=1)
torch.manual_seed(2)
big, small = nn.Linear(2, 3), nn.Linear(2, 3)
small.load_state_dict(big.state_dict())
opt_big = torch.optim.SGD(big.parameters(), lr=0.5)
opt_big.zero_grad()
nn.functional.cross_entropy(big(x), y).backward()
opt_big.step()
loss = train_epoch_accumulated(small, make_loader(x, y, batch_size=8), nn.CrossEntropyLoss(),
                               torch.optim.SGD(small.parameters(), lr=0.5), accum_steps=4)
assert type(loss) is float, f"return the epoch loss as a float, got {type(loss).__name__}"
for (name, p_big), p_small in zip(big.named_parameters(), small.parameters()):
    assert torch.allclose(p_big, p_small, rtol=1e-5, atol=1e-6), (
        f"after one window of 4 micro-batches, {name} differs from one step on the whole batch of 32 "
        f"(largest gap {(p_big - p_small).abs().max().item():.2e}): scale each micro-batch loss, "
        f"step once per window, and zero the gradients only at the window's start")
print("one window of 4 micro-batches equals one step on the batch of 32")

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
# ## 3. See it: accumulation is large-batch training
#
# Train the same model from the same start twice: with batches of 32, and with micro-batches of 8
# accumulated over 4. The two loss curves are the same curve, up to float rounding.

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
