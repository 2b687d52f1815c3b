# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PS01: The training loop
#
# Every model you will ever train, from a perceptron to a large language model, learns inside the
# same five lines. In this assignment you write them, then prove that they really learn.
#
# | task | you write | points (visible test + hidden audits) |
# |---|---|---|
# | 1 | `train_step`: one update on one batch | 2 + 7 |
# | 2 | `train_epoch`: one pass over a loader | 2 + 4 |
# | 3 | `fit`: several epochs, with a history | 1 + 5 |
# | 4 | `gradient_flow`, `weight_change`, `loss_decrease`: learning verification | 2 + 4 |
# | 5 | the XOR milestone | 2 |
#
# **How you are graded.** Each task has a *visible test* right after it: run it, and read its
# message if it fails. When you submit, *hidden audits* run your functions as black boxes on
# problems you have not seen, in a fresh Python process, with an instrumented optimizer that records
# every `zero_grad`, `backward` and `step`. They pass when your code trains correctly, whatever style
# you write it in. Before submitting, run **Kernel → Restart Kernel and Run All Cells…** and press **Validate**.

# %% nbgrader={"grade_id": "imports", "locked": true}
import torch
from torch import nn
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from course.data import make_blobs, make_linearly_separable, make_loader, make_xor
from course.plots import plot_decision_boundary, plot_losses, plot_per_parameter, verification_table

torch.manual_seed(0);

# %% [markdown]
# ## 1. One training step
#
# A training step takes one batch `(xb, yb)` and nudges every parameter against its gradient:
#
# | line | what it does | if you forget it |
# |---|---|---|
# | `optimizer.zero_grad()` | clears `.grad` of every parameter | gradients **add up** across steps |
# | `pred = model(xb)` | forward pass, records the graph | — |
# | `loss = loss_fn(pred, yb)` | one number to minimise | — |
# | `loss.backward()` | fills every `p.grad` with d loss / d p | `step()` has nothing to apply |
# | `optimizer.step()` | `p -= lr * p.grad` (for SGD) | the model never changes |
#
# Why does `zero_grad` exist at all? Because `backward()` **adds** into `.grad` rather than
# overwriting it (that is what makes gradient accumulation possible, in PS02). Watch:

# %% nbgrader={"grade_id": "demo_accumulation", "locked": true}
w = torch.tensor([1.0, 2.0], requires_grad=True)
for call in range(3):
    (w * w).sum().backward()  # d/dw of sum(w^2) is 2w = [2, 4]
    print(f"after backward #{call + 1}: w.grad = {w.grad.tolist()}")

# %% [markdown]
# The gradient is `[2, 4]` every time, but `.grad` grows: `[2, 4]`, `[4, 8]`, `[6, 12]`. A training
# step that forgets `zero_grad` applies the *sum of all past gradients*.
#
# **Task 1.** Write `train_step(model, loss_fn, optimizer, xb, yb) -> float`, one update on one batch:
#
# - **R1.1** the update applies this batch's gradient only: the gradients earlier steps left in
#   `.grad` are cleared (`optimizer.zero_grad()`) before `loss.backward()` adds this batch's.
# - **R1.2** the loss is computed by the `loss_fn` passed in, on `model(xb)` and `yb`.
# - **R1.3** `loss.backward()` runs exactly once per call.
# - **R1.4** `optimizer.step()` runs exactly once per call.
# - **R1.5** `optimizer.step()` runs after `loss.backward()`.
# - **R1.6** returns the batch's loss as a Python `float` (`loss.item()`), not a tensor.
# - **R1.7** the returned loss is the one computed *before* the update.
# - **R1.8** no loss tensor outlives the call: returning or storing the tensor itself would keep
#   the whole autograd graph of the batch alive in whatever list holds it.

# %% nbgrader={"grade_id": "train_step", "solution": true}
def train_step(model, loss_fn, optimizer, xb, yb):
    """One optimisation step on the batch (xb, yb); returns the batch loss as a float."""
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_step", "points": 2}
# Visible test: a linear model, plain SGD (lr 0.1), two fixed batches. With plain SGD a step moves
# every parameter by exactly -lr * (the gradient in .grad at step time), so the test can tell which
# gradient your step applied.
torch.manual_seed(1)
_model = nn.Linear(3, 2)
_opt = torch.optim.SGD(_model.parameters(), lr=0.1)
_xb, _yb = torch.randn(8, 3), torch.randint(0, 2, (8,))
_x2, _y2 = torch.randn(8, 3), torch.randint(0, 2, (8,))


def _batch_grads(x, y):
    """The gradient of the batch's loss at the current weights (nothing written into .grad)."""
    return torch.autograd.grad(nn.functional.cross_entropy(_model(x), y), list(_model.parameters()))


_before = nn.functional.cross_entropy(_model(_xb), _yb).item()
_g1 = _batch_grads(_xb, _yb)
_w0 = _model.weight.detach().clone()
_loss = train_step(_model, nn.CrossEntropyLoss(), _opt, _xb, _yb)
assert isinstance(_loss, float), f"train_step must return a Python float (use loss.item()), got {type(_loss).__name__}"
assert abs(_loss - _before) < 1e-5, f"train_step returned {_loss:.5f}, but the loss before the update was {_before:.5f}"
assert not torch.equal(_w0, _model.weight), "the weights did not change: did you call optimizer.step()?"
# The second step, on another batch, must apply that batch's gradient and nothing else.
_p1 = [p.detach().clone() for p in _model.parameters()]
_g2 = _batch_grads(_x2, _y2)
train_step(_model, nn.CrossEntropyLoss(), _opt, _x2, _y2)
_applied = [(a - p.detach()) / 0.1 for a, p in zip(_p1, _model.parameters())]


def _same(grads, other):
    return all((a - b).abs().max() < 1e-4 for a, b in zip(grads, other))


assert not _same(_applied, [a + b for a, b in zip(_g1, _g2)]), (
    "the 2nd call of train_step applied the 1st batch's gradient plus the 2nd's: backward() ADDS into .grad, "
    "so gradients added up across steps (see the demo above). Clear .grad with optimizer.zero_grad() "
    "before loss.backward(); print p.grad after each step to watch it grow.")
assert not _same(_applied, [2 * g for g in _g2]), (
    "the 2nd call of train_step moved the weights by twice lr * (that batch's gradient): the gradient was applied "
    "twice in one call. Call loss.backward() once and optimizer.step() once per train_step.")
assert _same(_applied, _g2), (
    "the 2nd call of train_step moved the weights by something other than lr * (that batch's gradient). "
    "Compute the loss of (xb, yb) with loss_fn, call backward() once, then optimizer.step().")
_losses = [train_step(_model, nn.CrossEntropyLoss(), _opt, _xb, _yb) for _ in range(20)]
assert _losses[-1] < _losses[0], f"20 steps on the same batch should lower its loss: {_losses[0]:.3f} -> {_losses[-1]:.3f}"
print("train_step looks right. Loss on the fixed batch:", " ".join(f"{l:.3f}" for l in _losses[::4]))

# %% nbgrader={"grade": true, "grade_id": "audit_zero_grad", "points": 3}
# Hidden audit (3 points): at each optimizer.step(), every parameter's .grad must be exactly the
# gradient of that call's batch: nothing left over from earlier steps, nothing erased, nothing
# counted twice.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.zero_grad")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_step_loss", "points": 2}
# Hidden audit (2 points): the returned value is a float equal to the batch's loss before the
# update, and no autograd graph outlives the call.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.step_loss")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_every_parameter_learns", "points": 2}
# Hidden audit (2 points): one optimizer step per call, after backward, with a gradient for every
# parameter, and every parameter moves.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.every_parameter_learns")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. One epoch
#
# An epoch is one pass over a `DataLoader`: one `train_step` per batch. The epoch's loss is the mean
# loss **per sample**. Batches are not always the same size: 50 samples in batches of 16 give
# batches of 16, 16, 16 and 2. Averaging the four batch losses would give the last 2 samples as
# much weight as 16 others:
#
# | batch | size | batch loss | loss × size |
# |---|---|---|---|
# | 1 | 16 | 0.50 | 8.0 |
# | 2 | 16 | 0.40 | 6.4 |
# | 3 | 16 | 0.30 | 4.8 |
# | 4 | 2 | 1.50 | 3.0 |
# | | **50** | mean of batches: 0.675 | **per sample: 22.2 / 50 = 0.444** |
#
# **Task 2.** Write `train_epoch(model, loader, loss_fn, optimizer) -> float`, one pass over the
# loader (you may call your `train_step` for each batch):
#
# - **R2.1** every batch the loader yields is trained on exactly once, with one optimizer step
#   each, the short last batch included.
# - **R2.2** returns the sample-weighted mean of the batch losses: each batch's loss times its
#   size, summed, divided by the number of samples.
# - **R2.3** returns a Python `float`.

# %% nbgrader={"grade_id": "train_epoch", "solution": true}
def train_epoch(model, loader, loss_fn, optimizer):
    """One pass over loader, one train_step per batch; returns the per-sample mean loss."""
    ### BEGIN SOLUTION
    total, count = 0.0, 0
    for xb, yb in loader:
        total += train_step(model, loss_fn, optimizer, xb, yb) * len(yb)
        count += len(yb)
    return total / count
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_epoch", "points": 2}
# Visible test: 50 easy blobs in batches of 16, 16, 16 and a short last batch of 2. The loss
# function records each batch's loss and size, so the test can recompute the epoch's loss.
_x, _y = make_blobs(n=50, n_classes=2, seed=1)
torch.manual_seed(2)
_model = nn.Linear(2, 2)
_opt = torch.optim.SGD(_model.parameters(), lr=0.1)
_seen = []  # (batch loss, batch size) of every call of the loss function


class _RecordedLoss(nn.CrossEntropyLoss):
    def forward(self, pred, target):
        value = super().forward(pred, target)
        _seen.append((value.item(), len(target)))
        return value


_epochs = []
for _ in range(5):
    _seen.clear()
    _epochs.append(train_epoch(_model, make_loader(_x, _y, batch_size=16), _RecordedLoss(), _opt))
    _sizes = [size for _, size in _seen]
    assert _sizes == [16, 16, 16, 2], (
        f"train_epoch computed the loss on batches of sizes {_sizes}, but the loader yields 16, 16, 16 and 2: "
        f"train on every batch of the loader once, the short last one included")
    assert isinstance(_epochs[-1], float), f"train_epoch must return a float, got {type(_epochs[-1]).__name__}"
    _weighted = sum(l * size for l, size in _seen) / 50
    _plain = sum(l for l, _ in _seen) / 4
    assert abs(_epochs[-1] - _plain) > 1e-6, (
        f"train_epoch returned {_epochs[-1]:.5f}, the plain average of the 4 batch losses, which gives the "
        f"last batch's 2 samples as much weight as 16 others. The epoch's loss per sample is {_weighted:.5f}: "
        f"weight each batch's loss by its size (see the table above)")
    assert abs(_epochs[-1] - _weighted) < 1e-5, (
        f"train_epoch returned {_epochs[-1]:.5f}; the sample-weighted mean of its batch losses is {_weighted:.5f}")
assert _epochs[-1] < _epochs[0], f"five epochs on easy data should lower the loss: {_epochs}"
print("train_epoch looks right. Epoch losses:", " ".join(f"{l:.3f}" for l in _epochs))

# %% nbgrader={"grade": true, "grade_id": "audit_one_step_per_batch", "points": 2}
# Hidden audit (2 points): every batch of the loader is used once, with one optimizer step each.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.one_step_per_batch")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_epoch_mean", "points": 2}
# Hidden audit (2 points): the returned value is the sample-weighted mean, on batches of unequal size.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.epoch_mean")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Fitting: many epochs and a history
#
# `fit` repeats epochs and keeps the history of epoch losses: the curve you look at first when
# something goes wrong. A healthy curve falls quickly, then flattens; a flat line means nothing
# learns; a curve that climbs or turns into `nan` means the updates overshoot. Check first that every
# step clears the gradients (a forgotten `zero_grad` climbs too: see *See it: the tools find the
# bugs*, after Task 4), then lower the learning rate.
#
# **Task 3.** Write `fit(model, loader, loss_fn, optimizer, epochs) -> list[float]`:
#
# - **R3.1** trains for exactly `epochs` passes over the loader.
# - **R3.2** returns a `list`.
# - **R3.3** entry `e` of that list is the loss `train_epoch` returned for epoch `e`: one entry per
#   epoch, in order.

# %% nbgrader={"grade_id": "fit", "solution": true}
def fit(model, loader, loss_fn, optimizer, epochs):
    """Train for `epochs` epochs; returns the list of per-epoch losses."""
    ### BEGIN SOLUTION
    return [train_epoch(model, loader, loss_fn, optimizer) for _ in range(epochs)]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_fit", "points": 1}
# Visible test: a history of the right length and type, falling on easy data.
torch.manual_seed(3)
_model = nn.Linear(2, 2)
_history = fit(_model, make_loader(_x, _y, batch_size=16), nn.CrossEntropyLoss(),
               torch.optim.SGD(_model.parameters(), lr=0.1), epochs=6)
assert isinstance(_history, list), f"fit must return a list of per-epoch losses, got {type(_history).__name__}"
assert len(_history) == 6, f"fit ran 6 epochs, so the history needs 6 entries, not {len(_history)}"
assert all(isinstance(l, float) for l in _history), "every entry of the history must be a float"
assert _history[-1] < _history[0], f"the loss should fall over 6 epochs: {_history}"
plot_losses({"linear model on blobs": _history}, title="Your first loss curve");

# %% nbgrader={"grade": true, "grade_id": "audit_fit_history", "points": 2}
# Hidden audit (2 points): one entry per epoch, each that epoch's sample-weighted mean loss.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.fit_history")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_convergence", "points": 3}
# Hidden audit (3 points): on a hidden classification problem, fit must cut the loss by at least half.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.convergence")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Is it really learning?
#
# A falling loss is the first sign, not proof. A layer can be disconnected (no gradient reaches
# it), frozen by mistake (`requires_grad=False`), or its updates can be too small to matter. Three
# small tools answer three questions:
#
# | question | tool | healthy answer |
# |---|---|---|
# | does a gradient reach every parameter? | `gradient_flow(model)`: the L2 norm of each `p.grad` (`None` where `p.grad is None`) | a positive number everywhere, `None` only where you froze something |
# | did every parameter move? | `weight_change(before, after)`: the L2 norm of `after[name] - before[name]` | positive for every trained parameter |
# | how much did the loss fall? | `loss_decrease(history)`: `(first - last) / first` | close to 1 for an easy problem; negative means it got worse |
#
# The L2 norm of a tensor `g` is `sqrt(sum(g**2))`, `g.norm()` in PyTorch.
#
# **Task 4.** Write the three functions. `before` and `after` are dicts from names to tensors (for
# example `{n: p.detach().clone() for n, p in model.named_parameters()}`).
#
# - **R4.1** `gradient_flow(model)` returns a dict with a key for every name in
#   `model.named_parameters()`, frozen and unused parameters included.
# - **R4.2** its value for a parameter is the L2 norm of that parameter's `.grad`.
# - **R4.3** its value is `None` exactly where `p.grad is None` (a gradient of zeros has norm `0.0`).
# - **R4.4** `weight_change(before, after)` returns a dict with the same keys as `before`.
# - **R4.5** its value for a name is the L2 norm of `after[name] - before[name]`.
# - **R4.6** `loss_decrease(history)` returns `(first - last) / first` of the history.
# - **R4.7** that fraction is negative when the loss went up.
# - **R4.8** every number the three functions return is a Python `float`.

# %% nbgrader={"grade_id": "learning_helpers", "solution": true}
def gradient_flow(model):
    """{parameter name: L2 norm of its .grad as a float, or None where .grad is None}."""
    ### BEGIN SOLUTION
    return {n: None if p.grad is None else p.grad.norm().item() for n, p in model.named_parameters()}
    ### END SOLUTION


def weight_change(before, after):
    """{name: L2 norm of after[name] - before[name] as a float}."""
    ### BEGIN SOLUTION
    return {n: (after[n] - before[n]).norm().item() for n in before}
    ### END SOLUTION


def loss_decrease(history):
    """(first - last) / first of a loss history."""
    ### BEGIN SOLUTION
    return (history[0] - history[-1]) / history[0]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_learning_helpers", "points": 2}
# Visible test: hand-checkable numbers.
_m = nn.Linear(2, 1)
with torch.no_grad():
    _m.weight.copy_(torch.tensor([[1.0, 2.0]]))
    _m.bias.zero_()
_m(torch.tensor([[3.0, 4.0]])).sum().backward()  # d out / d weight = [3, 4], d out / d bias = 1
_flow = gradient_flow(_m)
assert set(_flow) == {"weight", "bias"}, f"gradient_flow needs one key per parameter name, got {sorted(_flow)}"
assert abs(_flow["weight"] - 5.0) < 1e-6, f"the L2 norm of the weight gradient [3, 4] is 5, got {_flow['weight']}"
assert isinstance(_flow["bias"], float) and abs(_flow["bias"] - 1.0) < 1e-6, f"bias: expected the float 1.0, got {_flow['bias']!r}"
_change = weight_change({"w": torch.zeros(2)}, {"w": torch.tensor([3.0, 4.0])})
assert isinstance(_change, dict), f"weight_change must return a dict from names to floats, got {type(_change).__name__}"
assert set(_change) == {"w"} and abs(_change["w"] - 5.0) < 1e-6, f"weight_change should give {{'w': 5.0}}, got {_change}"
assert abs(loss_decrease([4.0, 2.0, 1.0]) - 0.75) < 1e-9, f"loss_decrease([4, 2, 1]) is 0.75, got {loss_decrease([4.0, 2.0, 1.0])}"
print("the learning-verification helpers look right")

# %% nbgrader={"grade": true, "grade_id": "audit_gradient_flow", "points": 2}
# Hidden audit (2 points): gradient_flow on a hidden model with a frozen layer and an unused parameter.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.gradient_flow")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_weight_change", "points": 1}
# Hidden audit (1 point): weight_change on hidden snapshots.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.weight_change")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_loss_decrease", "points": 1}
# Hidden audit (1 point): loss_decrease on hidden histories, rising ones included.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps01.loss_decrease")
### END HIDDEN TESTS

# %% [markdown]
# ## See it: the tools find the bugs
#
# The cell below trains four copies of one small network with your `train_step`, from the same
# initial weights, on the same blobs: a hidden layer, plus `skip`, a linear shortcut from the inputs
# straight to the outputs. One is healthy. The other three carry one bug each, and all four losses
# fall at first:
#
# - **a frozen layer**: a `requires_grad_(False)` left over from an experiment. Autograd gives the
#   layer no gradient: `gradient_flow` says `None` for it, and `weight_change` says 0.
# - **a disconnected branch**: `forward` never uses `skip`, although `__init__` builds it. No path
#   leads from the loss to it, so it shows `None` and 0 too. (`p.requires_grad` tells the two bugs
#   apart: `False` when frozen, `True` when disconnected.)
# - **a forgotten `zero_grad`** (here an optimizer whose `zero_grad` does nothing, so your
#   `train_step` runs as if it had forgotten the call): every parameter gets a gradient and moves,
#   but `.grad` holds the sum of every gradient so far. `gradient_flow` gives numbers many times
#   larger than the healthy model's, and they do not shrink as the model learns; the loss falls
#   fast, then climbs back.
#
# The charts draw `None` as a hatched column, so that it cannot pass for a 0.

# %% nbgrader={"grade_id": "demo_broken_models", "locked": true}
class Net(nn.Module):
    """hidden layer -> tanh -> 3 logits, plus `skip`: a linear shortcut from the inputs to the logits."""

    def __init__(self):
        super().__init__()
        self.hidden, self.out, self.skip = nn.Linear(2, 8), nn.Linear(8, 3), nn.Linear(2, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x))) + self.skip(x)


class DisconnectedNet(Net):
    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))  # the bug: self.skip is built, never used


def frozen_net():
    net = Net()
    net.hidden.requires_grad_(False)  # the bug: left over from an experiment with a fixed hidden layer
    return net


class SGDThatNeverClears(torch.optim.SGD):
    """The fourth model's bug: clearing the gradients does nothing, as in a train_step without zero_grad."""

    def zero_grad(self, set_to_none=True):
        pass


x_gallery, y_gallery = make_blobs(n=60, n_classes=3, seed=0)


def train_a_few_steps(make_model, optimizer_class=torch.optim.SGD, steps=30):
    """Your train_step, on the whole data set as one batch (smooth curves). Returns what your gradient_flow
    and weight_change say after the last step, and the loss and the gradient norm after each step."""
    torch.manual_seed(0)  # the same initial weights for all four models
    model = make_model()
    optimizer = optimizer_class(model.parameters(), lr=0.2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses, norms = [], []
    for _ in range(steps):
        losses.append(train_step(model, nn.CrossEntropyLoss(), optimizer, x_gallery, y_gallery))
        # the norm of all the gradients together (PS04 calls it the global norm)
        norms.append(sum(g ** 2 for g in gradient_flow(model).values() if g is not None) ** 0.5)
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    return {"flow": gradient_flow(model), "change": weight_change(before, after), "losses": losses, "norms": norms}


runs = {"healthy": train_a_few_steps(Net), "frozen layer": train_a_few_steps(frozen_net),
        "disconnected skip": train_a_few_steps(DisconnectedNet),
        "no zero_grad": train_a_few_steps(Net, SGDThatNeverClears)}
fig, axes = plt.subplot_mosaic([[f"{name} flow", f"{name} change", "loss" if i < 2 else "norm"]
                                for i, name in enumerate(runs)], figsize=(13, 11), width_ratios=[1, 1, 1.2])
for i, (name, run) in enumerate(runs.items()):
    plot_per_parameter(run["flow"], f"{name}: gradient_flow", "L2 norm of .grad", f"C{i}", axes[f"{name} flow"])
    plot_per_parameter(run["change"], f"{name}: weight_change", "L2 norm of the change", f"C{i}",
                       axes[f"{name} change"])
    axes["loss"].plot(range(1, len(run["losses"]) + 1), run["losses"], color=f"C{i}", label=name)
    axes["norm"].plot(range(1, len(run["norms"]) + 1), run["norms"], color=f"C{i}", label=name)
axes["loss"].set(xlabel="step", ylabel="loss", title="Loss at each step")
axes["norm"].set(xlabel="step", ylabel="L2 norm of all the .grad together", title="Gradient norm after each step")
for ax in (axes["loss"], axes["norm"]):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
plt.show()
display(Markdown(verification_table({name: {
    "first loss": run["losses"][0],
    "lowest loss": f"{min(run['losses']):.3f} at step {run['losses'].index(min(run['losses'])) + 1}",
    "last loss": run["losses"][-1],
    "gradient norm at the end": run["norms"][-1],
    "no gradient (None)": ", ".join(n for n, g in run["flow"].items() if g is None) or "-",
    "did not move (0)": ", ".join(n for n, c in run["change"].items() if c == 0) or "-",
} for name, run in runs.items()})))
ratio = runs["no zero_grad"]["norms"][-1] / runs["healthy"]["norms"][-1]
print(f"Without zero_grad, the gradient norm ends {ratio:.0f} times the healthy model's.")

# %% [markdown]
# Reading the charts, one row per model:
#
# - **healthy**: every parameter has a gradient and moved; the gradient shrinks as the loss falls.
# - **frozen layer**: `hidden.weight` and `hidden.bias` show `None` and did not move. Its loss falls
#   all the same: `out` and `skip` learn on top of the hidden layer's random features.
# - **disconnected skip**: `skip.weight` and `skip.bias` show `None` and did not move; the loss falls
#   all the same, through the other layers.
# - **no zero_grad**: no `None` and no 0, only numbers larger than the healthy model's (each chart
#   has its own scale: read its axis). On the right, its gradient norm stays high while the others
#   shrink, and its loss falls fast, then climbs back while the healthy one keeps falling.
#
# A climbing loss is also what too large a learning rate gives. So before you lower the learning
# rate, check that every step clears the gradients. And whatever the loss says, run
# `gradient_flow` and `weight_change` after a few steps of any new model: they catch what the loss
# curve hides.

# %% [markdown]
# ## Milestone 1: a perceptron on linearly separable data
#
# A single `nn.Linear(2, 1)` draws one straight line. When the classes can be split by a line, your
# `fit` should find it. We use `BCEWithLogitsLoss`: the model outputs a logit, the label is 0 or 1.

# %% nbgrader={"grade_id": "milestone_perceptron", "locked": true}
xs, ys = make_linearly_separable(n=200, seed=0)
torch.manual_seed(0)
perceptron = nn.Linear(2, 1)
before = {n: p.detach().clone() for n, p in perceptron.named_parameters()}
perceptron_history = fit(perceptron, make_loader(xs, ys, batch_size=20, shuffle=True), nn.BCEWithLogitsLoss(),
                         torch.optim.SGD(perceptron.parameters(), lr=0.5), epochs=30)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].plot(perceptron_history)
axes[0].set(xlabel="epoch", ylabel="loss", title="perceptron: loss")
plot_decision_boundary(perceptron, xs, ys, title="perceptron: decision boundary", ax=axes[1])
plt.show()

# %% [markdown]
# ## 5. Milestone 2: XOR needs a hidden layer
#
# XOR labels a point 1 when its two coordinates have different signs. No straight line separates
# the classes: the best a perceptron can do is put three of the four clusters on the right side
# (75% accuracy), and its loss stays near ln 2 ≈ 0.69, the loss of guessing 50/50 everywhere. A
# two-layer MLP (a hidden layer with a non-linearity) bends the boundary.
#
# **Task 5.** Write `make_xor_model()` returning a two-layer MLP for the XOR points (2 features
# each):
#
# - **R5.1** a hidden layer followed by a non-linearity (`nn.Tanh()` or `nn.ReLU()`).
# - **R5.2** one output logit per point: an output of shape `(n, 1)`.
#
# The cell after it trains it with your `fit` and checks that it classifies at least 95% of the
# points correctly. It trains both models with `torch.optim.Adam` rather than SGD: an optimizer that
# adapts each parameter's step size from running averages of its gradients and of their squares, so
# one learning rate suits both models without tuning (it is the usual first choice in practice).
# Those averages are state that Adam keeps between steps, which PS06 saves in checkpoints.

# %% nbgrader={"grade_id": "make_xor_model", "solution": true}
def make_xor_model():
    """A fresh MLP: 2 inputs -> hidden layer -> non-linearity -> 1 logit."""
    ### BEGIN SOLUTION
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_xor_milestone", "points": 2}
xx, yx = make_xor(n=200, seed=0)
results = {}
for name, make in tqdm([("perceptron", lambda: nn.Linear(2, 1)), ("two-layer MLP", make_xor_model)], desc="XOR models"):
    torch.manual_seed(0)
    model = make()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    history = fit(model, make_loader(xx, yx, batch_size=20, shuffle=True), nn.BCEWithLogitsLoss(),
                  torch.optim.Adam(model.parameters(), lr=0.05), epochs=60)
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        accuracy = ((model(xx) > 0).float() == yx).float().mean().item()
    results[name] = {"model": model, "history": history, "accuracy": accuracy,
                     "moved": min(weight_change(before, after).values())}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
for name, r in results.items():
    axes[0].plot(r["history"], label=name)
axes[0].set(xlabel="epoch", ylabel="loss", title="XOR: loss")
axes[0].legend()
for ax, (name, r) in zip(axes[1:], results.items()):
    plot_decision_boundary(r["model"], xx, yx, title=f"{name}: {r['accuracy']:.0%}", ax=ax)
plt.show()
display(Markdown(verification_table({name: {"loss decrease": loss_decrease(r["history"]),
                                             "smallest weight change": r["moved"],
                                             "accuracy": r["accuracy"]} for name, r in results.items()})))
mlp_accuracy = results["two-layer MLP"]["accuracy"]
assert mlp_accuracy >= 0.95, f"your XOR model classified {mlp_accuracy:.0%} of the points; it needs 95%. Does it have a hidden layer and a non-linearity?"
print(f"Milestone reached: XOR solved with {mlp_accuracy:.0%} accuracy.")

# %% [markdown]
# ## Before you submit
#
# 1. **Kernel → Restart Kernel and Run All Cells…**: every visible test must pass from a fresh kernel.
# 2. Press **Validate**.
# 3. The hidden audits re-run your functions on new problems. Code that trains correctly passes
#    them, in any style.
