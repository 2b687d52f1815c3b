# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PS04: Gradient clipping
#
# One bad batch, a learning rate a little too high, inputs in the wrong units: the gradient is a
# thousand times larger than usual, the step throws the weights far away, where the next gradient is
# larger still, and a few steps later the loss is `nan`. **Gradient clipping** caps the size of each
# step's gradient before `optimizer.step()`, so no single step can wreck the model. Here you write
# the norm, both kinds of clipping, and a clipped training step, then watch clipping rescue a
# training run that explodes without it.
#
# | task | you write | points (visible test + hidden audits) |
# |---|---|---|
# | 1 | `global_grad_norm`: the norm of all gradients together | 1 + 2 |
# | 2 | `clip_grad_norm`: scale all gradients down to a maximum norm | 1 + 5 |
# | 3 | `clip_grad_value`: clamp every gradient element | 1 + 1 |
# | 4 | `train_step_clipped`: a training step that clips | 2 + 7 |
#
# **How you are graded.** Each task has a visible test right after it. When you submit, hidden
# audits compare your functions with PyTorch's own `torch.nn.utils.clip_grad_norm_` and
# `clip_grad_value_` on parameter sets you have not seen, and run your training step with an
# instrumented optimizer that records the gradient at every `optimizer.step()`. Tasks 1 to 3 are
# written with plain tensor operations: writing them is the point, and `torch.nn.utils`'s clipping
# functions are there to compare against.
# Before submitting, run **Kernel → Restart Kernel and Run All Cells…** and press **Validate**.

# %% nbgrader={"grade_id": "imports", "locked": true}
import math

import torch
from torch import nn
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from ipywidgets import FloatLogSlider
from tqdm.auto import tqdm

from course.plots import clipping_explorer, verification_table

torch.manual_seed(0);

# %% [markdown]
# ## 1. How big is a gradient? The global norm
#
# A model's gradient is spread over many tensors (`weight.grad`, `bias.grad`, one per parameter), but
# it is *one* vector: the direction in which every parameter moves together. Its size is the norm of
# all those elements taken together, the **global norm**:
#
# $$\|g\|_p = \Big(\sum_{\text{parameters}} \;\sum_{\text{elements } i} |g_i|^p\Big)^{1/p},
# \qquad \|g\|_\infty = \max_{\text{parameters, } i} |g_i|.$$
#
# `p = 2` (the Euclidean length) is the usual choice; `p = 1` sums the absolute values; `p = inf`
# takes the largest absolute element. With two parameters whose gradients are `w.grad = [3, -4]`
# and `b.grad = [12]`:
#
# | norm | `w.grad` alone | `b.grad` alone | global norm (all together) |
# |---|---|---|---|
# | `p = 1` | 7 | 12 | 3 + 4 + 12 = **19** |
# | `p = 2` | 5 | 12 | sqrt(9 + 16 + 144) = **13** |
# | `p = inf` | 4 | 12 | max(3, 4, 12) = **12** |
#
# The global norm is the norm of the per-parameter norms (13 = sqrt(5² + 12²)), but **not** their
# sum (5 + 12 = 17). Parameters that received no gradient (`p.grad is None`: frozen, or not used
# in this forward pass) are skipped.
#
# Gradients grow with the scale of the inputs. Below, the same small network gets the same data
# twice, once standardised and once in units 10 times larger, and the bars compare each
# parameter's gradient norm (on a log scale):

# %% nbgrader={"grade_id": "demo_per_parameter_norms", "locked": true}
g = torch.Generator().manual_seed(1)
x_demo = torch.randn(64, 3, generator=g)
y_demo = 3 * torch.sin(x_demo.sum(1, keepdim=True))
torch.manual_seed(2)
net = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
names = [n for n, _ in net.named_parameters()]
fig, ax = plt.subplots(figsize=(7, 3.2))
for k, (label, scale) in enumerate([("inputs standardised", 1.0), ("inputs x 10", 10.0)]):
    net.zero_grad()
    nn.functional.mse_loss(net(scale * x_demo), y_demo).backward()
    norms = [p.grad.norm().item() for p in net.parameters()]
    ax.bar([i + 0.4 * k for i in range(len(names))], norms, width=0.4, label=label)
ax.set_xticks([i + 0.2 for i in range(len(names))], names)
ax.set(yscale="log", ylabel="L2 norm of p.grad", title="Per-parameter gradient norms at initialisation")
ax.legend()
plt.show()

# %% [markdown]
# **Task 1.** Write `global_grad_norm(parameters, norm_type=2.0) -> float`:
#
# - **R1.1** `parameters` is an iterable of tensors: a list, or a generator such as
#   `model.parameters()`, which can be iterated only once.
# - **R1.2** Skip every parameter whose `.grad` is `None`.
# - **R1.3** If no parameter has a gradient, return `0.0`.
# - **R1.4** `norm_type` defaults to `2.0`.
# - **R1.5** Return the global norm: every element of every gradient in one norm (not the sum of the
#   per-parameter norms).
# - **R1.6** `norm_type` may be any positive number (`1.0`, `2.0`, `3.0`, ...): the sum runs over the
#   absolute values `|g_i| ** norm_type`.
# - **R1.7** `norm_type=float("inf")` (`math.inf`) gives the largest `|g_i|` of all the gradients.
#   Careful: `sum(|g|**p) ** (1/p)` does not give the largest element there.
# - **R1.8** Return a Python float (`.item()` or `float(...)`), not a tensor.
# - **R1.9** Leave the gradients unchanged.

# %% nbgrader={"grade_id": "global_grad_norm", "solution": true}
def global_grad_norm(parameters, norm_type=2.0):
    """The norm of all the parameters' gradients together, as one vector; returns a float."""
    ### BEGIN SOLUTION
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        return max(g.abs().max().item() for g in grads)
    total = sum((g.abs() ** norm_type).sum() for g in grads)
    return total.item() ** (1.0 / norm_type)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_global_grad_norm", "points": 1}
# Visible test: the example of the table, with a third parameter that has no gradient.
def _example():
    w, b, frozen = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(3))
    w.grad, b.grad = torch.tensor([3.0, -4.0]), torch.tensor([12.0])
    return [w, b, frozen]


for _p, _want in [(2.0, 13.0), (1.0, 19.0), (math.inf, 12.0)]:
    _got = global_grad_norm(_example(), _p)
    assert isinstance(_got, float), f"global_grad_norm must return a Python float (use .item()), got {type(_got).__name__}"
    assert abs(_got - _want) < 1e-4, (
        f"global_grad_norm(parameters, norm_type={_p}) gave {_got}, the table says {_want}: take every element of "
        f"every gradient into one norm" + (" (for inf: the largest |element|)" if _p == math.inf else ""))
_got = global_grad_norm(p for p in _example())
assert abs(_got - 13.0) < 1e-4, f"with a generator of parameters and the default norm_type=2.0 you gave {_got}, not 13.0"
print("global_grad_norm gives 19, 13 and 12, as in the table")

# %% nbgrader={"grade": true, "grade_id": "audit_global_grad_norm", "points": 2}
# Hidden audit (2 points): equal to the norm of all gradients (float64, relative 1e-5) on hidden
# parameter sets: norm types 1, 2, 3 and inf, a generator, a parameter without .grad.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.global_grad_norm")
### END HIDDEN TESTS

# %% [markdown]
# ## Clipping by norm, clipping by value
#
# Two ways to cap a gradient:
#
# | | clip by norm | clip by value |
# |---|---|---|
# | PyTorch | `torch.nn.utils.clip_grad_norm_(params, max_norm)` | `torch.nn.utils.clip_grad_value_(params, clip_value)` |
# | what it does | if the global norm exceeds `max_norm`, multiply **every** gradient by `max_norm / (norm + 1e-6)` | clamp **each element** into `[-clip_value, clip_value]` |
# | direction of the step | kept | bent towards the diagonals |
# | under the bound | gradients untouched, bit for bit | elements inside the range untouched |
#
# The `1e-6` only guards against dividing by zero. Clipping by norm never scales a gradient *up*:
# the factor is applied only when it is below 1. In two dimensions, with `max_norm = clip_value = 1`:

# %% nbgrader={"grade_id": "demo_norm_vs_value", "locked": true}
grad = torch.tensor([4.0, 1.0])
by_norm = grad * min(1.0, 1.0 / (grad.norm().item() + 1e-6))
by_value = grad.clamp(-1.0, 1.0)
fig, ax = plt.subplots(figsize=(5.5, 4))
t = torch.linspace(0, 2 * math.pi, 200)
ax.plot(t.cos(), t.sin(), color="grey", lw=1, label="norm = 1")
ax.plot([-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], color="grey", lw=1, ls="--", label="|element| = 1")
for vec, label, color in [(grad, "gradient", "black"), (by_norm, "clipped by norm", "tab:blue"),
                          (by_value, "clipped by value", "tab:orange")]:
    ax.annotate("", xy=vec.tolist(), xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=color, lw=2))
    ax.plot([], [], color=color, lw=2, label=f"{label} {[round(v, 2) for v in vec.tolist()]}")
ax.set(xlim=(-1.5, 4.5), ylim=(-1.5, 1.8), aspect="equal", title="Clipping [4, 1] to 1")
ax.legend(loc="lower right", fontsize=8)
plt.show()
angle = lambda v: math.degrees(math.atan2(v[1].item(), v[0].item()))
print(f"direction: gradient {angle(grad):.1f} deg, by norm {angle(by_norm):.1f} deg, by value {angle(by_value):.1f} deg")

# %% [markdown]
# ## 2. Clipping by norm
#
# **Task 2.** Write `clip_grad_norm(parameters, max_norm, norm_type=2.0) -> float`, your own
# `torch.nn.utils.clip_grad_norm_`:
#
# - **R2.1** `parameters` may be a generator (`model.parameters()`), which can be iterated **only
#   once**: turn it into a list first.
# - **R2.2** Measure the global norm of the gradients with the given `norm_type`, as in task 1
#   (`inf` included).
# - **R2.3** `norm_type` defaults to `2.0`.
# - **R2.4** Skip parameters without a gradient: their `.grad` stays `None`.
# - **R2.5** If `max_norm / (norm + 1e-6) < 1`, multiply **every** gradient by that **same** factor,
#   one for all parameters.
# - **R2.6** Clip **in place**: afterwards each parameter's `.grad` holds its clipped gradient
#   (`p.grad.mul_(factor)`).
# - **R2.7** Otherwise leave the gradients exactly as they are, bit for bit: clipping never scales a
#   gradient up.
# - **R2.8** A zero norm (every gradient zero, or no parameter with a gradient) leaves the gradients
#   as they are and returns `0.0`: that is what the `1e-6` is for.
# - **R2.9** Return the norm measured **before** clipping (that is what you log to watch for
#   exploding gradients).
# - **R2.10** The returned norm is a Python float.

# %% nbgrader={"grade_id": "clip_grad_norm", "solution": true}
def clip_grad_norm(parameters, max_norm, norm_type=2.0):
    """Scale all gradients in place so that their global norm is at most max_norm; returns the norm before."""
    ### BEGIN SOLUTION
    parameters = [p for p in parameters if p.grad is not None]
    total_norm = global_grad_norm(parameters, norm_type)
    factor = max_norm / (total_norm + 1e-6)
    if factor < 1:
        for p in parameters:
            p.grad.detach().mul_(factor)
    return total_norm
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_clip_grad_norm", "points": 1}
# Visible test: clip the table's example (norm 13) to 1.3 and compare with PyTorch's own function.
_mine, _theirs, _given = _example(), _example(), _example()
_total = clip_grad_norm(_mine, max_norm=1.3)
torch.nn.utils.clip_grad_norm_(_theirs, max_norm=1.3)
assert isinstance(_total, float), f"clip_grad_norm must return a Python float, got {type(_total).__name__}"
assert abs(_total - 13.0) < 1e-4, f"clip_grad_norm returned {_total}: return the norm before clipping, 13.0 (the default norm_type is 2.0)"
for _name, _p, _q, _g in zip(["w", "b", "frozen"], _mine, _theirs, _given):
    if _q.grad is None:
        assert _p.grad is None, f"{_name} had no gradient and must keep none"
        continue
    assert not torch.equal(_p.grad, _g.grad), (
        f"{_name}.grad is unchanged, though the norm 13 is above max_norm=1.3: clip in place, so that each "
        f"parameter's .grad holds the clipped gradient (a new tensor that you do not store changes nothing)")
    assert torch.allclose(_p.grad, _q.grad, atol=1e-6), (
        f"{_name}.grad became {_p.grad.tolist()}; torch.nn.utils.clip_grad_norm_ gives {_q.grad.tolist()}: "
        f"multiply every gradient by the same factor 1.3 / 13 = 0.1")
print("clip_grad_norm matches torch.nn.utils.clip_grad_norm_ on the example")

# %% nbgrader={"grade": true, "grade_id": "audit_clip_grad_norm", "points": 2}
# Hidden audit (2 points): the gradients equal those of torch.nn.utils.clip_grad_norm_ (relative
# 1e-5) on hidden parameter sets whose norm is above max_norm: norm types 1, 2 and 3, a generator,
# a parameter without .grad.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.clip_grad_norm")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_clip_under_bound", "points": 1}
# Hidden audit (1 point): a norm already under max_norm leaves every gradient unchanged, bit for bit.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.clip_under_bound")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_clip_returns_pre_clip_norm", "points": 1}
# Hidden audit (1 point): the returned value is a float, the total norm before clipping.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.clip_returns_pre_clip_norm")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_clip_inf_norm", "points": 1}
# Hidden audit (1 point): with norm_type=inf, the returned norm and the clipped gradients equal
# torch's, above and under the bound.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.clip_inf_norm")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Clipping by value
#
# **Task 3.** Write `clip_grad_value(parameters, clip_value)`, your own
# `torch.nn.utils.clip_grad_value_` (what it returns is not used):
#
# - **R3.1** Clamp every element of every gradient into `[-clip_value, clip_value]`, on both sides.
# - **R3.2** Clamp **in place**: afterwards each parameter's `.grad` holds its clamped gradient
#   (`p.grad.clamp_(...)`).
# - **R3.3** Skip parameters without a gradient: their `.grad` stays `None`.
# - **R3.4** `parameters` may be a generator, iterated only once, as in tasks 1 and 2.

# %% nbgrader={"grade_id": "clip_grad_value", "solution": true}
def clip_grad_value(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    ### BEGIN SOLUTION
    for p in parameters:
        if p.grad is not None:
            p.grad.detach().clamp_(-clip_value, clip_value)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_clip_grad_value", "points": 1}
# Visible test: clamp the table's example to 1.
_params = _example()
clip_grad_value(_params, 1.0)
assert _params[0].grad.tolist() != [3.0, -4.0], (
    "w.grad [3, -4] is unchanged: clamp in place, so that each parameter's .grad holds the clamped gradient")
assert _params[0].grad.tolist() == [1.0, -1.0], (
    f"w.grad [3, -4] clamped to 1 should be [1.0, -1.0], got {_params[0].grad.tolist()}: clamp both sides")
assert _params[1].grad.tolist() == [1.0], f"b.grad [12] clamped to 1 should be [1.0], got {_params[1].grad.tolist()}"
assert _params[2].grad is None, "the parameter without a gradient must keep none"
print("clip_grad_value clamps [3, -4] to [1, -1] and [12] to [1]")

# %% nbgrader={"grade": true, "grade_id": "audit_clip_grad_value", "points": 1}
# Hidden audit (1 point): the gradients equal those of torch.nn.utils.clip_grad_value_, exactly,
# on hidden parameter sets (a generator, a parameter without .grad).
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.clip_grad_value")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Where clipping sits in a training step
#
# Clipping acts on the gradient that `optimizer.step()` is about to apply, so it goes between the
# two:
#
# | line | what it does | clipping here instead would |
# |---|---|---|
# | `optimizer.zero_grad()` | clears `.grad` | |
# | `loss = loss_fn(model(xb), yb)` | forward pass and loss | |
# | `loss.backward()` | fills `.grad` with this batch's gradient | before it: clip nothing (there is no gradient yet) |
# | `norm = clip_grad_norm(model.parameters(), max_norm)` | **caps the gradient** | |
# | `optimizer.step()` | applies the (clipped) gradient | after it: clip a gradient already applied, too late |
#
# Keep the returned `norm`: the norm *before* clipping is the best early warning of exploding
# gradients. (With mixed precision, training in 16-bit floats, `torch.amp.GradScaler` multiplies
# the loss by a large factor so that small gradients do not round to zero, and so every `.grad`
# holds the gradient times that factor: call `scaler.unscale_(optimizer)` before clipping. Not
# needed here.)
#
# **Task 4.** Write `train_step_clipped(model, loss_fn, optimizer, xb, yb, max_norm) -> tuple[float, float]`:
# one training step on the batch `(xb, yb)`, in the order of the table.
#
# - **R4.1** Clear the gradients left from before (`optimizer.zero_grad()`) before `loss.backward()`:
#   the step uses this batch's gradient only.
# - **R4.2** Clip after `loss.backward()`, once the gradient is there.
# - **R4.3** Clip before `optimizer.step()`, so that the step applies the clipped gradient.
# - **R4.4** Clip the global 2-norm of all the model's gradients together to `max_norm` (your
#   `clip_grad_norm` does it): one factor for all parameters.
# - **R4.5** Call `optimizer.step()`, once.
# - **R4.6** Return a pair `(loss, norm)`, in that order.
# - **R4.7** `loss` is the batch's loss before the update (`loss.item()`).
# - **R4.8** `norm` is the gradient norm before clipping (what `clip_grad_norm` returns).
# - **R4.9** Both are Python floats.

# %% nbgrader={"grade_id": "train_step_clipped", "solution": true}
def train_step_clipped(model, loss_fn, optimizer, xb, yb, max_norm):
    """One step on (xb, yb) with the gradient clipped to max_norm; returns (loss, pre-clip gradient norm)."""
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    norm = clip_grad_norm(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), norm
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_step_clipped", "points": 2}
# Visible test: one step of a linear model on inputs of scale 10, whose gradient norm is far above 1.
torch.manual_seed(3)
_model = nn.Linear(3, 1)
_opt = torch.optim.SGD(_model.parameters(), lr=0.1)
_xb, _yb = 10 * torch.randn(8, 3), torch.randn(8, 1)
_start = [p.detach().clone() for p in _model.parameters()]
_loss = nn.functional.mse_loss(_model(_xb), _yb)
_own = torch.autograd.grad(_loss, list(_model.parameters()))
_norm = torch.sqrt(sum((g ** 2).sum() for g in _own)).item()
_out = train_step_clipped(_model, nn.MSELoss(), _opt, _xb, _yb, max_norm=1.0)
assert isinstance(_out, (tuple, list)) and len(_out) == 2, f"train_step_clipped must return a tuple (loss, norm), got {_out!r}"
assert isinstance(_out[0], float) and isinstance(_out[1], float), (
    f"both items must be Python floats, got {type(_out[0]).__name__} and {type(_out[1]).__name__}")
assert abs(_out[0] - _loss.item()) < 1e-4 * _loss.item(), (
    f"the returned loss {_out[0]:.5g} is not the batch's loss before the update, {_loss.item():.5g}")
assert abs(_out[1] - _norm) < 1e-4 * _norm, (
    f"the returned norm {_out[1]:.5g} is not the gradient norm before clipping, {_norm:.5g}")
_applied = [(a - p.detach()) / 0.1 for a, p in zip(_start, _model.parameters())]  # the gradient step() used
_applied_norm = torch.sqrt(sum((g ** 2).sum() for g in _applied)).item()
assert _applied_norm > 1e-6, "the parameters did not move: call optimizer.step() once, after clipping"
assert _applied_norm < 1.0 + 1e-3, (
    f"optimizer.step() applied a gradient of norm {_applied_norm:.4g}, above max_norm=1.0: clip between "
    f"loss.backward() and optimizer.step()")
for _a, _g in zip(_applied, _own):
    assert torch.allclose(_a, _g / (_norm + 1e-6), rtol=1e-3, atol=1e-5), (
        "optimizer.step() applied a gradient that is not this batch's gradient scaled down as a whole "
        "(one factor max_norm / norm for all parameters)")
print(f"train_step_clipped: loss {_out[0]:.4g}, gradient norm {_out[1]:.4g} clipped to 1.0")

# %% nbgrader={"grade": true, "grade_id": "audit_norm_at_step", "points": 2}
# Hidden audit (2 points): on a hidden problem whose gradients explode, the global norm of the
# gradient at every optimizer.step() is at most max_norm.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.norm_at_step")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_clipped_step_gradient", "points": 2}
# Hidden audit (2 points): the gradient at every optimizer.step() is that batch's own gradient,
# scaled down as a whole to norm max_norm.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.clipped_step_gradient")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_step_returns", "points": 1}
# Hidden audit (1 point): each call returns (the batch's loss before the step, the gradient norm
# before clipping), both floats.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.step_returns")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_clipped_training_converges", "points": 2}
# Hidden audit (2 points): 40 clipped steps on a hidden problem that plain SGD blows up stay finite
# and end below half the starting loss.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps04.clipped_training_converges")
### END HIDDEN TESTS

# %% [markdown]
# ## See it: clipping rescues a training run that explodes
#
# A small MLP learns a regression whose inputs come in units 10 times too large, with SGD at
# `lr=0.2`. `max_norm=math.inf` never clips (the factor `inf / norm` is never below 1), so the same
# `train_step_clipped` gives the unclipped run. Its first gradient's norm (the table's *first norm*)
# is far above 1: unclipped, a step of `lr` times that norm throws the weights where the next
# gradient (*second norm*) is far larger still, and within a few steps the loss overflows to `inf`
# and then `nan` (the curve stops on the log-scale plot; the table's last column gives the step).
# Clipped to norm 1, each step moves the weights by at most `lr * 1`, and the loss falls. The third
# run takes the inputs back to a sensible scale, with a learning rate chosen for it, and no clipping.

# %% nbgrader={"grade_id": "demo_rescue", "locked": true}
g = torch.Generator().manual_seed(5)
x_big = 10 * torch.randn(64, 3, generator=g)
y_big = 3 * torch.sin(x_big.sum(1, keepdim=True) / 10) + x_big.sum(1, keepdim=True) / 10


def train(max_norm, x, lr=0.2, epochs=10):
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses, norms = [], []
    for epoch in tqdm(range(epochs), desc=f"max_norm={max_norm:g}, lr={lr:g}", leave=False):
        for xb, yb in zip(x.split(16), y_big.split(16)):
            loss, norm = train_step_clipped(model, nn.MSELoss(), opt, xb, yb, max_norm)
            losses.append(loss)
            norms.append(norm)
    return losses, norms


runs = {"no clipping": train(math.inf, x_big), "clipped to norm 1": train(1.0, x_big),
        "inputs / 10, lr=0.05, no clipping": train(math.inf, x_big / 10, lr=0.05)}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for label, (losses, norms) in runs.items():
    axes[0].plot(range(1, len(losses) + 1), losses, marker="o", markersize=3, label=label)
    axes[1].plot(range(1, len(norms) + 1), norms, marker="o", markersize=3, label=label)
axes[0].set(xlabel="step", ylabel="loss (log scale)", yscale="log", title="Training loss")
axes[1].set(xlabel="step", ylabel="gradient norm before clipping", yscale="log", title="Gradient norm")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
display(Markdown(verification_table({
    label: {"first loss": losses[0], "last loss": losses[-1], "first norm": norms[0], "second norm": norms[1],
            "largest norm before clipping": max(norms),
            "loss not finite from step": next((i + 1 for i, l in enumerate(losses) if not math.isfinite(l)), "never")}
    for label, (losses, norms) in runs.items()})))

# %% [markdown]
# **Explore.** The same run, with sliders for `max_norm` and the learning rate. On the right, per step,
# the gradient norm before clipping (what `train_step_clipped` returns) and after it (what
# `optimizer.step()` applies: `min(norm, max_norm)`). While the gradient is larger than `max_norm`,
# the clipped norm lies flat on the dashed line. Find the largest `max_norm` that still trains at
# `lr=0.2`, and the largest learning rate that trains with `max_norm=1`.

# %% nbgrader={"grade_id": "demo_clipping_explorer", "locked": true}
clipping_explorer(lambda max_norm, lr: train(max_norm, x_big, lr=lr),
                  max_norm=FloatLogSlider(value=1.0, base=10, min=-2, max=3, step=0.25, description="max_norm"),
                  lr=FloatLogSlider(value=0.2, base=10, min=-3, max=0, step=0.25, description="lr"))

# %% [markdown]
# Clipping is a seatbelt, not a cure: here the real fault is the inputs' scale, and with inputs
# on a sensible scale and a learning rate chosen for it (green), plain SGD trains without any
# clipping. Clipping earns its place where rare batches give rare gradient spikes that no
# preprocessing removes: recurrent networks, Transformers, reinforcement learning. Large language
# models are commonly trained with `max_norm=1.0`, and the logged pre-clip norm is watched for
# spikes. You will add it to the trainer of PS07.
