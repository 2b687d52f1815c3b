# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PS05: train mode, eval mode, and knowing when to stop
#
# Some layers behave differently while training and while being evaluated: **Dropout** zeroes
# random units only in training, and **BatchNorm** normalises with the batch's statistics in
# training but with its running averages in evaluation. A model evaluated in the wrong mode gives
# noisy, wrong numbers, and can even change itself. You will write an `evaluate` that gets this
# right, then a `fit` that records a history and stops when the validation loss stops improving,
# with the best weights back in the model.
#
# | task | you write | points (visible test + hidden audits) |
# |---|---|---|
# | 1 | `evaluate`: loss and accuracy in eval mode, without autograd, the caller's mode restored | 2 + 9 |
# | 2 | `fit`: train/validation history, early stopping that restores the best weights | 4 + 7 |
#
# Each task lists its requirements, each with an id (R1.1, R1.2, ...); the feedback of a failed
# check says what went wrong and where to look.
#
# **How you are graded.** The visible tests check simple cases. The hidden audits run `evaluate`
# on a model with Dropout and BatchNorm, from train mode and from eval mode, and watch whether
# autograd was on; they run `fit` with a loss that records the weights at every call, recompute
# every epoch's validation figures and training steps, and check where early stopping should have
# stopped, on runs whose validation losses improve, stall, tie and worsen.

# %% nbgrader={"grade_id": "imports", "locked": true}
import copy

import torch
from torch import nn
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from course.data import load_digits, make_blobs, make_loader, train_test_split
from course.plots import plot_losses, verification_table

torch.manual_seed(0);

# %% [markdown]
# ## Two layers with two modes
#
# `model.train()` and `model.eval()` set the flag `training` on the model and every submodule.
# Two common layers read it:
#
# | layer | train mode | eval mode |
# |---|---|---|
# | `nn.Dropout(p)` | zeroes each unit with probability `p`, scales the rest by `1/(1-p)` | does nothing |
# | `nn.BatchNorm1d` | normalises with the **batch's** mean and variance, and moves its running averages toward them | normalises with the **running** averages, changes nothing |
#
# Evaluating in train mode therefore gives a different answer every time (Dropout), depends on
# which samples share a batch (BatchNorm), and quietly moves BatchNorm's running averages toward the
# statistics of the validation data (below, `running_mean` after one train-mode call).

# %% nbgrader={"grade_id": "demo_modes", "locked": true}
drop = nn.Dropout(p=0.5)
ones = torch.ones(8)
drop.train()
print("Dropout, train mode:", drop(ones).tolist())
drop.eval()
print("Dropout, eval mode: ", drop(ones).tolist())

bn = nn.BatchNorm1d(2)
batch = 3 * torch.randn(64, 2) + torch.tensor([5.0, -5.0])
print("\n| BatchNorm mode | mean of the output | running_mean after the call |\n|---|---|---|")
for mode in ("eval", "train", "eval"):
    getattr(bn, mode)()
    out = bn(batch)
    print(f"| {mode} | {out.mean(0).detach().numpy().round(2)} | {bn.running_mean.numpy().round(2)} |")

# %% [markdown]
# The figure below trains a small digit classifier with Dropout and BatchNorm, then measures its
# validation accuracy 30 times in each mode, each time on a fresh copy of the trained model (so that
# no train-mode measurement moves the running averages used by the next): in train mode each
# measurement differs, in eval mode they are all the same, and higher. The cell prints the range
# of each.

# %% nbgrader={"grade_id": "demo_noisy_evaluation", "locked": true}
x_digits, y_digits = load_digits()
x_digits = x_digits.reshape(len(x_digits), -1)
x_train, y_train, x_val, y_val = train_test_split(x_digits, y_digits, test_fraction=0.5, seed=0)


def digit_classifier(dropout=0.3):
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, 10))


demo_model = digit_classifier()
opt = torch.optim.Adam(demo_model.parameters(), lr=1e-3)
for epoch in tqdm(range(3), desc="digit classifier", leave=False):
    for xb, yb in make_loader(x_train, y_train, batch_size=64, shuffle=True, seed=epoch):
        opt.zero_grad()
        nn.functional.cross_entropy(demo_model(xb), yb).backward()
        opt.step()


def accuracy_in(mode):
    model = copy.deepcopy(demo_model)
    getattr(model, mode)()
    with torch.no_grad():  # autograd off: see the next section
        return (model(x_val).argmax(1) == y_val).float().mean().item()


measured = {mode: [accuracy_in(mode) for _ in range(30)] for mode in ("train", "eval")}
fig, ax = plt.subplots(figsize=(6, 3))
for mode, values in measured.items():
    ax.plot(range(1, 31), values, marker="o", markersize=3, label=f"{mode} mode")
ax.set(xlabel="measurement", ylabel="validation accuracy", title="The same model, measured 30 times")
ax.grid(alpha=0.3)
ax.legend()
plt.show()
for mode, values in measured.items():
    print(f"{mode} mode: accuracy from {min(values):.4f} to {max(values):.4f}, "
          f"{len(set(values))} distinct values in {len(values)} measurements")

# %% [markdown]
# ## No graph when nothing will call backward
#
# In training, every operation on a tensor that requires grad records itself in the autograd
# graph, which keeps the tensors that `backward()` will need alive until it runs. Evaluation never
# calls `backward()`, so all it keeps is memory held for nothing. Inside `with torch.no_grad():`
# nothing is recorded. Below, one forward pass of the digit classifier on the validation set, and
# what autograd keeps for `backward()` (counted with `torch.autograd.graph.saved_tensors_hooks`,
# which sees every tensor saved for it):

# %% nbgrader={"grade_id": "demo_no_grad", "locked": true}
def keep(t):  # autograd calls it on every tensor it saves for backward()
    kept.append(t.numel() * t.element_size())
    return t


demo_model.eval()
print("| | loss.requires_grad | loss.grad_fn | tensors kept for backward() | their size (KiB) |\n|---|---|---|---|---|")
for label, grad_on in [("autograd on", True), ("inside torch.no_grad()", False)]:
    kept = []
    with torch.set_grad_enabled(grad_on), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        loss = nn.functional.cross_entropy(demo_model(x_val), y_val)
    print(f"| {label} | {loss.requires_grad} | {type(loss.grad_fn).__name__ if loss.grad_fn else None} "
          f"| {len(kept)} | {sum(kept) / 1024:.0f} |")

# %% [markdown]
# ## 1. Evaluating, and giving the caller back the mode it had
#
# `evaluate` is called from inside training (after each epoch, with the model in train mode) and
# on its own (with the model already in eval mode). Either way it must leave the model in the mode
# it found it in: left in eval mode, the next training epoch would run without Dropout and with
# BatchNorm frozen, and no error would tell you.
#
# | model's mode when `evaluate` is called | during `evaluate` | after `evaluate` |
# |---|---|---|
# | train | eval | **train** |
# | eval | eval | **eval** |
#
# Read `model.training` at the start, and end with `model.train(was_training)`: `model.train(True)`
# is `model.train()`, and `model.train(False)` is `model.eval()`.
#
# **Task 1.** Write `evaluate(model, loader, loss_fn) -> dict`. The `loss_fn` you are given returns a
# batch's mean loss (like `nn.CrossEntropyLoss()`), the model's outputs have shape `(batch, classes)`
# and the labels `(batch,)`. `evaluate`:
#
# - **R1.1** runs the model on every batch of `loader`;
# - **R1.2** runs it in eval mode, whatever mode the model was in when called;
# - **R1.3** runs it with autograd off;
# - **R1.4** returns a dict with the keys `"loss"` and `"accuracy"`;
# - **R1.5** whose two values are Python floats (a subclass such as `numpy.float64` is a float; a
#   tensor is not);
# - **R1.6** `"loss"` is the mean loss **per sample**: weight each batch's mean loss by its size;
# - **R1.7** `"accuracy"` is the fraction of all samples whose largest output is the label;
# - **R1.8** called on a model in train mode, leaves it in train mode;
# - **R1.9** called on a model in eval mode, leaves it in eval mode.

# %% nbgrader={"grade_id": "evaluate", "solution": true}
def evaluate(model, loader, loss_fn):
    """Mean loss and accuracy per sample over `loader`, in eval mode without autograd; restores the caller's mode."""
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            output = model(xb)
            total += loss_fn(output, yb).item() * len(yb)
            correct += (output.argmax(dim=1) == yb).sum().item()
            count += len(yb)
    model.train(was_training)
    return {"loss": total / count, "accuracy": correct / count}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_evaluate", "points": 2}
# Visible test: the trained digit classifier, passed in train mode, evaluated twice.
demo_model.train()
val_loader = make_loader(x_val, y_val, batch_size=100)
first = evaluate(demo_model, val_loader, nn.CrossEntropyLoss())
second = evaluate(demo_model, val_loader, nn.CrossEntropyLoss())
assert isinstance(first, dict) and set(first) >= {"loss", "accuracy"}, "return {'loss': ..., 'accuracy': ...}"
assert all(isinstance(first[k], float) for k in ("loss", "accuracy")), "loss and accuracy should be Python floats"
assert 0.0 <= first["accuracy"] <= 1.0, f"accuracy is a fraction of samples, got {first['accuracy']}"
assert first == second, (f"two calls gave {first} and {second}: Dropout still drops units at random during "
                         f"evaluate; call model.eval() first")
assert demo_model.training, "the model was in train mode when evaluate was called; leave it in train mode"
print(f"evaluate: loss {first['loss']:.4f}, accuracy {first['accuracy']:.3f}, twice the same, model back in train mode")

# %% nbgrader={"grade": true, "grade_id": "audit_eval_deterministic", "points": 2}
# Hidden audit (2 points): two calls on a model passed in train mode, with Dropout and BatchNorm,
# give the same result, the result of the model in eval mode.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.eval_deterministic")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_batchnorm_untouched", "points": 2}
# Hidden audit (2 points): evaluate leaves BatchNorm's running statistics exactly as they were.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.batchnorm_untouched")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_no_graph", "points": 1}
# Hidden audit (1 point): no loss computed inside evaluate carries an autograd graph.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.no_graph")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_mode_restored", "points": 2}
# Hidden audit (2 points): a model passed in train mode comes back in train mode, and one passed
# in eval mode comes back in eval mode.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.mode_restored")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_evaluate_values", "points": 2}
# Hidden audit (2 points): loss and accuracy per sample, with a short last batch.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.evaluate_values")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. A history, and when to stop
#
# Train too long on too little data and the model starts memorising its training set: the
# training loss keeps falling while the validation loss turns back up. **Early stopping** watches
# the validation loss after every epoch, keeps a copy of the best weights so far, and stops once
# `patience` epochs in a row have brought no improvement; then it puts the best weights back.
# With `patience=2`:
#
# | epoch | val_loss | best so far | epochs without improvement | |
# |---|---|---|---|---|
# | 1 | 0.90 | 0.90 (epoch 1) | 0 | copy the weights |
# | 2 | 0.70 | 0.70 (epoch 2) | 0 | copy the weights |
# | 3 | 0.72 | 0.70 | 1 | |
# | 4 | 0.65 | 0.65 (epoch 4) | 0 | copy the weights |
# | 5 | 0.66 | 0.65 | 1 | |
# | 6 | 0.71 | 0.65 | 2 | stop; load epoch 4's weights |
#
# Improving means strictly lower. The copy must be a real copy: `model.state_dict()` returns the
# live parameter tensors, which the next epochs keep changing, so keep `copy.deepcopy(model.state_dict())`.
#
# **Task 2.** Write `fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, *, patience=None) -> dict`.
# Each epoch:
#
# - **R2.1** trains on every batch of `train_loader`;
# - **R2.2** with one optimizer step per batch, on that batch's own gradient;
# - **R2.3** in train mode, set by `model.train()` at the start of **every** epoch: whatever mode the
#   model was passed in, and whatever mode the validation before left it in;
# - **R2.4** then, after the epoch's training, calls `evaluate(model, val_loader, loss_fn)`.
#
# It returns the history:
#
# - **R2.5** a dict with the keys `"train_loss"`, `"val_loss"` and `"val_accuracy"`;
# - **R2.6** each holding one Python float per epoch run, in order;
# - **R2.7** `train_loss` is the epoch's mean training loss **per sample**.
#
# And it stops:
#
# - **R2.8** with `patience=None` (the default), after all `epochs`;
# - **R2.9** with `patience=None`, leaving the model with the weights of its last epoch;
# - **R2.10** with a number, after the first epoch that makes `patience` epochs in a row without a
#   lower `val_loss` (or after all `epochs`, if that never happens);
# - **R2.11** an epoch whose `val_loss` only equals the best so far is no improvement;
# - **R2.12** with a number, when it stops early, with the weights of the epoch with the lowest
#   `val_loss` loaded back into the model;
# - **R2.13** with a number, with those best weights loaded back also when it runs all `epochs`
#   without stopping early.

# %% nbgrader={"grade_id": "fit", "solution": true}
def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, *, patience=None):
    """Train with validation after every epoch; early stopping (with the best weights restored) when patience is set."""
    ### BEGIN SOLUTION
    history = {"train_loss": [], "val_loss": [], "val_accuracy": []}
    best_loss, best_state, waited = float("inf"), None, 0
    for _ in range(epochs):
        model.train()
        total, count = 0.0, 0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            count += len(yb)
        scores = evaluate(model, val_loader, loss_fn)
        history["train_loss"].append(total / count)
        history["val_loss"].append(scores["loss"])
        history["val_accuracy"].append(scores["accuracy"])
        if scores["loss"] < best_loss:
            best_loss, waited = scores["loss"], 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if patience is not None and waited >= patience:
                break
    if patience is not None:
        model.load_state_dict(best_state)
    return history
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_fit", "points": 2}
# Visible test: 4 epochs on small blobs, without early stopping.
x_blobs, y_blobs = make_blobs(n=96, n_classes=3, spread=1.2, seed=2)
torch.manual_seed(3)
blob_model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
history = fit(blob_model, make_loader(x_blobs[:64], y_blobs[:64], batch_size=16),
              make_loader(x_blobs[64:], y_blobs[64:], batch_size=16), nn.CrossEntropyLoss(),
              torch.optim.SGD(blob_model.parameters(), lr=0.3), epochs=4)
assert isinstance(history, dict) and set(history) >= {"train_loss", "val_loss", "val_accuracy"}, (
    "return a dict with the lists 'train_loss', 'val_loss' and 'val_accuracy'")
for key in ("train_loss", "val_loss", "val_accuracy"):
    assert len(history[key]) == 4, f"history[{key!r}] has {len(history[key])} entries for 4 epochs"
    assert all(isinstance(v, float) for v in history[key]), f"history[{key!r}] should hold floats"
assert history["train_loss"][-1] < history["train_loss"][0], "the training loss should fall on this easy problem"
final = evaluate(blob_model, make_loader(x_blobs[64:], y_blobs[64:], batch_size=16), nn.CrossEntropyLoss())
assert abs(final["loss"] - history["val_loss"][-1]) < 1e-6, (
    f"history['val_loss'][-1] is {history['val_loss'][-1]:.6f}, but the trained model's validation loss is "
    f"{final['loss']:.6f}: record evaluate(model, val_loader, loss_fn) after each epoch's training")
print("4 epochs, 3 lists of 4 floats, the last val_loss is the final model's")


# %% nbgrader={"grade": true, "grade_id": "test_early_stopping", "points": 2}
# Visible test: early stopping on runs whose validation losses are known in advance. The "optimizer"
# below ignores the gradients: each of its steps sets the weights to `level * good`, with the level of
# the current epoch, and `good` classifies every sample right, so a higher level gives a strictly lower
# val_loss and an equal level exactly the same one. It also notes the model's mode at every step.
class PresetLevels(torch.optim.SGD):
    def __init__(self, model, levels, steps_per_epoch):
        super().__init__(model.parameters(), lr=0.0)
        self.model, self.levels, self.per_epoch, self.modes = model, levels, steps_per_epoch, []

    @torch.no_grad()
    def step(self, closure=None):
        self.modes.append(self.model.training)
        level = self.levels[min((len(self.modes) - 1) // self.per_epoch, len(self.levels) - 1)]
        self.model.weight.copy_(0.4 * level * good)
        self.model.bias.zero_()


good = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
x_es = torch.randn(48, 2, generator=torch.Generator().manual_seed(5))
y_es = (x_es @ good.T).argmax(1)
train_es, val_es = make_loader(x_es[:32], y_es[:32], batch_size=16), make_loader(x_es[32:], y_es[32:], batch_size=16)


def run_levels(levels, patience):
    """fit on the preset levels; (the level the model ends with, the history, the modes at each step)."""
    preset = PresetLevels(nn.Linear(2, 3), levels, len(train_es))
    run = fit(preset.model, train_es, val_es, nn.CrossEntropyLoss(), preset, epochs=len(levels), patience=patience)
    ends_with = [level for level in levels if torch.allclose(preset.model.weight, 0.4 * level * good)]
    return (ends_with or [None])[0], run, preset.modes


real_evaluate = evaluate


def evaluate(model, loader, loss_fn):  # for this test: a validation that leaves the model in eval mode
    scores = real_evaluate(model, loader, loss_fn)
    model.eval()
    return scores


try:
    # Levels 1, 3, 2, 5, 5, 4, ...: best at epoch 4, epoch 5 only equals it, epoch 6 is worse.
    stopped_level, stopped, stopped_modes = run_levels([1, 3, 2, 5, 5, 4, 6, 7], patience=2)
    full_level, full, full_modes = run_levels([1, 4, 2, 3], patience=3)
finally:
    evaluate = real_evaluate
trace = ", ".join(f"{v:.3f}" for v in stopped["val_loss"])
ran = len(stopped["val_loss"])
assert ran >= 6, (f"fit(..., patience=2) stopped after epoch {ran}, val_loss {trace}: epoch 3 was worse, but epoch "
                  f"4 improved again, so 2 epochs in a row without improvement only came with epoch 6. Count the "
                  f"epochs since the last improvement: reset the count at every improvement.")
assert ran <= 6, (f"fit(..., patience=2) ran {ran} epochs, val_loss {trace}: epoch 4 was the best, epoch 5 only "
                  f"equalled it (no improvement: improving means strictly lower) and epoch 6 was worse, so it should "
                  f"stop after epoch 6.")
assert stopped_level == 5, (f"after stopping early, the model holds the weights of level {stopped_level}, not those "
                            f"of the best epoch (4, level 5): keep a copy of the best weights (copy.deepcopy of the "
                            f"state_dict: it returns the live tensors) and load it back before returning.")
assert len(full["val_loss"]) == 4, f"fit(..., epochs=4, patience=3) on val_loss that never stalls 3 epochs ran {len(full['val_loss'])} epochs"
assert full_level == 4, (f"fit(..., patience=3) ran all 4 epochs and kept the weights of level {full_level}, not those "
                         f"of the best epoch (2, level 4): with patience set, load the best weights back in every "
                         f"case, also when it never stops early.")
assert all(stopped_modes + full_modes), (
    "some training steps ran in eval mode: this test's evaluate, like many, leaves the model in eval mode, and "
    "fit did not switch it back. Call model.train() at the start of every epoch, not once before the loop.")
print(f"patience=2: stopped after epoch 6 with epoch 4's weights; patience=3: all 4 epochs, epoch 2's weights; "
      f"every step in train mode")

# %% nbgrader={"grade": true, "grade_id": "audit_history", "points": 2}
# Hidden audit (2 points): on hidden loaders, with patience left out, every entry of the history
# against the loss calls, every training step against the batch's own gradient, and a recomputation
# of each epoch's validation loss and accuracy.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.history")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_train_mode", "points": 1}
# Hidden audit (1 point): a model passed in eval mode, and a validation that leaves it in eval mode:
# every training batch still runs in train mode.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.train_mode")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_early_stopping", "points": 3}
# Hidden audit (3 points): on runs whose validation loss improves, stalls, ties and turns back up,
# fit stops after the right epoch for a hidden patience and ends with the weights of the best epoch,
# whether or not it stopped early.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.early_stopping")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_no_patience", "points": 1}
# Hidden audit (1 point): without patience, fit runs every epoch and keeps the last weights.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps05.no_patience")
### END HIDDEN TESTS

# %% [markdown]
# ## See it: overfitting, caught
#
# The digit classifier again, without Dropout, on 300 training digits of which a third carry a
# random label: the model can memorise those, and once it does, the training loss keeps falling
# while the validation loss stops improving. Up to 60 epochs with `patience=5`; the dashed line
# marks the best epoch. The table compares the best epoch and the last epoch run, as the history
# recorded them, with the model that `fit` returned, evaluated again: it holds the best epoch's
# weights.

# %% nbgrader={"grade_id": "demo_early_stopping", "locked": true}
noisy_x, noisy_y = x_train[:300], y_train[:300].clone()
g = torch.Generator().manual_seed(0)
scrambled = torch.randperm(300, generator=g)[:100]
noisy_y[scrambled] = torch.randint(0, 10, (100,), generator=g)
model = digit_classifier(dropout=0.0)
history = fit(model, make_loader(noisy_x, noisy_y, batch_size=32, shuffle=True, seed=0),
              make_loader(x_val, y_val, batch_size=256), nn.CrossEntropyLoss(),
              torch.optim.Adam(model.parameters(), lr=3e-3), epochs=60, patience=5)
best = min(range(len(history["val_loss"])), key=history["val_loss"].__getitem__)
ax = plot_losses({"train": history["train_loss"], "validation": history["val_loss"]},
                 title=f"Stopped after epoch {len(history['val_loss'])}; best epoch {best + 1}")
ax.axvline(best + 1, linestyle="--", color="gray")
plt.show()
restored = evaluate(model, make_loader(x_val, y_val, batch_size=256), nn.CrossEntropyLoss())
display(Markdown(verification_table({
    f"best epoch ({best + 1}), in the history": {"val_loss": history["val_loss"][best],
                                               "val_accuracy": history["val_accuracy"][best]},
    f"last epoch run ({len(history['val_loss'])}), in the history": {"val_loss": history["val_loss"][-1],
                                                                   "val_accuracy": history["val_accuracy"][-1]},
    "the model after fit, evaluated now": {"val_loss": restored["loss"], "val_accuracy": restored["accuracy"]}})))
