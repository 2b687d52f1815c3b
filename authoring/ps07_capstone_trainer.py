# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PS07: The capstone, a Trainer
#
# Six assignments gave you the pieces: the step and `zero_grad` (PS01), gradient accumulation
# (PS02), learning-rate schedules (PS03), gradient clipping (PS04), train and eval mode (PS05) and
# checkpoints (PS06). Here they become one `Trainer`, the object that training libraries are built
# around, and it trains three real models: an MLP and a CNN on handwritten digits, and a tiny
# Transformer that learns to sort.
#
# ```python
# trainer = Trainer(model, optimizer, loss_fn, *, scheduler=None, accum_steps=1, max_grad_norm=None,
#                   ckpt_dir=None, device="cpu", callbacks=())
# history = trainer.fit(train_loader, val_loader, epochs)   # {"train_loss": [...], "val_loss": [...], "val_accuracy": [...],
#                                                           #  "lr": [...], "grad_norm": [...]}
# trainer.evaluate(loader)                                    # {"loss": ..., "accuracy": ...}
# trainer.save(path); trainer.load(path)                      # everything needed to resume, bit for bit
# ```
#
# You build it in four classes, each adding one task to the one before, so that each part is graded
# on its own: `StepTrainer` → `EvalTrainer` → `CheckpointTrainer` → `Trainer`.
#
# | task | you write | points (visible test + hidden audits) |
# |---|---|---|
# | 1 | `StepTrainer.train_epoch`: zero_grad, accumulation, clipping, the schedule, each step's LR and gradient norm, a progress bar | 2 + 10 |
# | 2 | `EvalTrainer.evaluate`: eval mode, no autograd, a label per token | 1 + 3 |
# | 3 | `CheckpointTrainer.save` and `load`: every state resuming needs, written and read safely | 2 + 6 |
# | 4 | `Trainer.fit`: the history, checkpoints, resume, callbacks | 2 + 6 |
# | milestones | an MLP and a CNN on digits, a Transformer that sorts | 4 + 2 |
#
# **How you are graded.** Each task has a visible test right after it. When you submit, hidden audits
# run your classes in a fresh Python process on problems you have not seen, with instrumented
# optimizers and losses: they check the gradient at every step, the LR each step used, the norm at
# each step, the mode during evaluation, and that stopping, saving, loading into fresh objects and
# resuming gives the very same weights as training straight through.

# %% nbgrader={"grade_id": "imports", "locked": true}
import copy
import io
import itertools
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from course.data import load_digits, make_blobs, make_loader, train_test_split
from course.plots import LiveHistory, plot_history, plot_steps, verification_table

# These models are tiny: one thread is fastest, and keeps a shared machine responsive.
torch.set_num_threads(1)
torch.manual_seed(0);

# %% [markdown]
# ## 1. One epoch, every feature
#
# An epoch of the Trainer walks the loader in **windows** of `accum_steps` micro-batches (the last
# window may be shorter) and takes one optimizer step per window. Call `n_window` the number of samples
# in the current window, `sum(len(yb) for _, yb in window)`: the scaling below needs it before the
# window's first `backward()`, so read the window's micro-batches first (`itertools.islice(batches,
# accum_steps)` takes the next `accum_steps` of them, fewer at the end), then train on them.
#
# | when | what | why (from) |
# |---|---|---|
# | start of a window | `optimizer.zero_grad()` | `backward()` adds into `.grad` (PS01) |
# | each micro-batch | move `xb, yb` to `self.device`; forward; `loss = loss_fn(...)` | |
# | | `(loss * len(yb) / n_window).backward()` | the window's gradient is the big batch's (PS02) |
# | end of the window | append the window's gradient norm to `self.history["grad_norm"]`, the step's LR to `self.history["lr"]` | a record of every step, to plot when a run goes wrong |
# | | if `max_grad_norm`: `nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)` | clip what the step will apply, the whole window's gradient (PS04) |
# | | `optimizer.step()` | |
# | | if `scheduler`: `scheduler.step()` | a schedule counts optimizer steps, not micro-batches (PS03) |
#
# The epoch returns the mean loss **per sample**, from the losses before scaling.
#
# **A record of every step.** The epoch's loss is one number; a run that goes wrong usually shows it
# step by step first: an LR that never moved (the schedule never reached the optimizer), a gradient
# norm that spikes, or one that sits above `max_grad_norm` on every step (clipping does all the work).
# So each optimizer step appends two numbers to the history, which a checkpoint saves with the rest:
# the global norm of the window's gradient *before* clipping (the norm `clip_grad_norm_` measures and
# returns; `nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])` measures it
# without clipping), and the LR the step uses, `optimizer.param_groups[0]["lr"]`, read before
# `scheduler.step()` moves it on. Section "See it" and the milestones plot both.
#
# **A progress bar.** `tqdm` wraps any iterable and draws a bar; `bar.set_postfix(loss=...)` shows
# the running loss beside it. Use the `tqdm` imported above, from `tqdm.auto`: in Jupyter it draws a
# widget. The plain `from tqdm import tqdm` prints its bar to **stderr**, and nbgrader's Validate
# fails a test cell if anything appears on stderr (the grader forgives a bar there; Validate does
# not). With `leave=False` a finished epoch's bar disappears, and
# `set_postfix(..., refresh=False)` leaves redrawing to tqdm's own timer instead of every batch.

# %% nbgrader={"grade_id": "demo_progress", "locked": true}
total = 0.0
bar = tqdm(range(1, 201), desc="demo")
for step in bar:
    total += 1 / step  # stands in for a batch's loss
    bar.set_postfix(loss=f"{total / step:.4f}", refresh=False)

# %% [markdown]
# **Task 1.** Complete `StepTrainer.train_epoch(loader) -> float`. The constructor is given: it
# keeps every setting as an attribute (`self.model`, `self.optimizer`, `self.loss_fn`,
# `self.scheduler`, `self.accum_steps`, `self.max_grad_norm`, `self.device`, ...). `train_epoch`
# trains one epoch as in the table above:
#
# - **R1.1** it puts the model in train mode first, whatever mode the model was in;
# - **R1.2** it clears the gradients at the start of every window, and only there;
# - **R1.3** each micro-batch's `backward()` runs on its loss scaled by `len(yb) / n_window`, so that a
#   window's gradient is the gradient of its mean loss per sample, windows and micro-batches of
#   unequal size included;
# - **R1.4** it takes one `optimizer.step()` per window of `accum_steps` micro-batches;
# - **R1.5** a last window shorter than `accum_steps` gets its step too;
# - **R1.6** with `max_grad_norm` set, it clips the global norm of all the gradients together (one factor
#   for every parameter) to `max_grad_norm`;
# - **R1.7** it clips once per window, after the window's last `backward()` and before `optimizer.step()`;
# - **R1.8** with `max_grad_norm=None` (the default) it does not clip;
# - **R1.9** with a `scheduler`, it calls `scheduler.step()` once per optimizer step, never once per micro-batch;
# - **R1.10** `scheduler.step()` comes after `optimizer.step()`;
# - **R1.11** with `scheduler=None` (the default) it trains without a schedule;
# - **R1.12** it returns the epoch's mean loss per sample: each micro-batch's loss weighted by `len(yb)`;
# - **R1.13** that mean is of the losses before scaling;
# - **R1.14** the value returned is a `float` (`loss.item()` arithmetic; a float subclass such as
#   `numpy.float64` is fine, a tensor is not);
# - **R1.15** once per optimizer step it appends to `self.history["grad_norm"]` the global L2 norm of
#   the window's gradient (all parameters together) before clipping, as a `float`, with or without
#   `max_grad_norm`;
# - **R1.16** once per optimizer step it appends to `self.history["lr"]` the LR that step uses, read
#   before `scheduler.step()` changes it;
# - **R1.17** both lists keep every step of every epoch: each epoch appends to them, never starts
#   them over.
#
# The `tqdm` bar over the micro-batches, with the running loss, is for you to watch: the audits look
# at what training does, not at what it draws. Moving each batch to `self.device`, as the table does,
# lets the same Trainer run on a GPU; the audits run on the CPU, where it changes nothing.

# %% nbgrader={"grade_id": "step_trainer", "solution": true}
class StepTrainer:
    """Task 1: a Trainer's settings (given) and one epoch of training."""

    def __init__(self, model, optimizer, loss_fn, *, scheduler=None, accum_steps=1, max_grad_norm=None,
                 ckpt_dir=None, device="cpu", callbacks=()):
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optimizer, self.loss_fn, self.scheduler = optimizer, loss_fn, scheduler
        self.accum_steps, self.max_grad_norm = accum_steps, max_grad_norm
        self.ckpt_dir = None if ckpt_dir is None else Path(ckpt_dir)
        self.callbacks = list(callbacks)
        self.epoch = 0  # epochs trained so far
        self.history = {"train_loss": [], "val_loss": [], "val_accuracy": [],  # one entry per epoch
                        "lr": [], "grad_norm": []}  # one entry per optimizer step
        self.train_loader = None  # the loader fit trains on: its generator's state goes into a checkpoint
        self.loader_state = None  # a generator state that load read, for the loader of the next fit

    def train_epoch(self, loader):
        """One epoch in windows of accum_steps micro-batches, one optimizer step (recorded, clipped,
        then scheduled) per window, with a progress bar; returns the mean loss per sample."""
        ### BEGIN SOLUTION
        self.model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}", leave=False)
        batches = iter(bar)
        while window := list(itertools.islice(batches, self.accum_steps)):
            n = sum(len(yb) for _, yb in window)
            self.optimizer.zero_grad()
            for xb, yb in window:
                xb, yb = xb.to(self.device), yb.to(self.device)
                loss = self.loss_fn(self.model(xb), yb)
                (loss * len(yb) / n).backward()
                total += loss.item() * len(yb)
                count += len(yb)
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            self.history["grad_norm"].append(nn.utils.get_total_norm(grads).item())
            self.history["lr"].append(self.optimizer.param_groups[0]["lr"])
            if self.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
        return total / count
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train_epoch", "points": 2}
# Visible test: accumulation equals the big batch, the schedule moves once per window, clipping bounds the step.
x_blobs, y_blobs = make_blobs(n=48, n_classes=3, seed=4)


def blob_model(dropout=0.0):
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def sgd_trainer(cls, lr=0.2, **settings):
    model = blob_model()
    return cls(model, torch.optim.SGD(model.parameters(), lr=lr), nn.CrossEntropyLoss(), **settings)


big, small = sgd_trainer(StepTrainer), sgd_trainer(StepTrainer, accum_steps=3)
big_loss = big.train_epoch(make_loader(x_blobs, y_blobs, batch_size=24))
small_loss = small.train_epoch(make_loader(x_blobs, y_blobs, batch_size=8))
assert isinstance(small_loss, float), f"train_epoch must return a Python float, got {type(small_loss).__name__}"
for (name, p), q in zip(big.model.named_parameters(), small.model.parameters()):
    assert torch.allclose(p, q, atol=1e-6), (
        f"micro-batches of 8 with accum_steps=3 should train exactly like batches of 24, but {name} differs: clear "
        f"the gradients once per window, and scale each micro-batch loss by len(yb) / n_window")
assert abs(small_loss - big_loss) < 1e-5, (
    f"the epoch's mean loss per sample should not depend on accumulation: {small_loss:.6f} vs {big_loss:.6f}")
scheduled = sgd_trainer(StepTrainer, accum_steps=3)
scheduled.scheduler = torch.optim.lr_scheduler.StepLR(scheduled.optimizer, step_size=1, gamma=0.5)
scheduled.train_epoch(make_loader(x_blobs, y_blobs, batch_size=8))
lr_now = scheduled.optimizer.param_groups[0]["lr"]
assert abs(lr_now - 0.05) < 1e-12, (f"6 micro-batches with accum_steps=3 make 2 optimizer steps, so StepLR(gamma=0.5) "
                                    f"should take the LR from 0.2 to 0.05; it is {lr_now:.4g}")
clipped = sgd_trainer(StepTrainer, max_grad_norm=1e-3)
start = [p.detach().clone() for p in clipped.model.parameters()]
clipped.train_epoch(make_loader(x_blobs, y_blobs, batch_size=24))
moved = torch.cat([(p.detach() - s).flatten() for p, s in zip(clipped.model.parameters(), start)]).norm().item()
assert 0 < moved <= 2 * 0.2 * 1e-3 * (1 + 1e-4), (f"with max_grad_norm=0.001 and lr 0.2, two SGD steps move the "
                                                  f"weights by at most 0.0004 in all; they moved {moved:.4g}")
lrs, norms = scheduled.history["lr"], clipped.history["grad_norm"]
assert len(lrs) == 2 and len(norms) == 2, (f"history['lr'] and history['grad_norm'] should hold one entry per "
                                           f"optimizer step, 2 in each run here, not {lrs} and {norms}")
assert all(isinstance(v, float) for v in norms), (
    f"history['grad_norm'] should hold Python floats (.item()), not {[type(v).__name__ for v in norms]}")
assert abs(lrs[0] - 0.2) < 1e-12 and abs(lrs[1] - 0.1) < 1e-12, (
    f"history['lr'] should hold the LR each of the 2 optimizer steps used, read before scheduler.step(): "
    f"[0.2, 0.1], not {lrs}")
print(f"train_epoch: loss {small_loss:.4f} either way, LR {lr_now:g} after 2 steps, clipped steps moved {moved:.2g}; "
      f"the LRs of the steps {lrs}, the gradient norms before clipping {[round(v, 3) for v in norms]}")

# %% nbgrader={"grade": true, "grade_id": "audit_zero_grad", "points": 2}
# Hidden audit (2 points): with accumulation, the gradients are cleared at the start of every window,
# and only there.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.zero_grad")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_accumulation", "points": 2}
# Hidden audit (2 points): on micro-batches of unequal size with a leftover window, every step's
# gradient is its window's big-batch gradient, one step per window, and the loss is reported per sample.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.accumulation")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_lr_schedule", "points": 2}
# Hidden audit (2 points): the LR each optimizer step used follows the schedule, stepped once per
# window, after the optimizer.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.lr_schedule")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_clipping", "points": 2}
# Hidden audit (2 points): on a gradient that explodes, the step applies the window's whole gradient
# clipped to max_grad_norm (global norm).
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.clipping")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_step_log", "points": 2}
# Hidden audit (2 points): history['lr'] and history['grad_norm'] hold, for every optimizer step of
# every epoch, the LR the step used and its window's gradient norm before clipping.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.step_log")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Evaluation, for classes and for tokens
#
# `evaluate` is PS05's: eval mode (Dropout off, BatchNorm on its running statistics), autograd off,
# the caller's mode given back, the loss per sample. One thing is new. A sequence model predicts a
# label for **every token**: its logits have shape `(batch, vocab, length)` (the layout
# `nn.CrossEntropyLoss` takes for sequences) and its labels `(batch, length)`. Accuracy is the share
# of labels predicted right, so it divides by the number of labels, `yb.numel()`, not by the number
# of sequences:
#
# | batch | sequences × tokens | tokens right | right / `yb.numel()` | right / `len(yb)` |
# |---|---|---|---|---|
# | digits | 4 × (one label) | 3 | **0.75** | 0.75 |
# | sorted sequences | 2 × 4 | 6 | **0.75** | 3.0 |
#
# **Task 2.** Write `EvalTrainer.evaluate(loader) -> dict`:
#
# - **R2.1** it returns a dict `{"loss": float, "accuracy": float}` (any dict, an `OrderedDict` too; float
#   subclasses such as `numpy.float64` are fine, tensors are not);
# - **R2.2** `loss` is the mean loss per sample: each batch's loss weighted by `len(yb)`, the last batch
#   may be shorter;
# - **R2.3** a label counts as right when the largest logit over dimension 1 is the label;
# - **R2.4** `accuracy` divides the labels predicted right by the number of labels, `yb.numel()` summed;
# - **R2.5** the model runs in eval mode;
# - **R2.6** autograd is off (`torch.no_grad()` or `torch.inference_mode()`);
# - **R2.7** the model is given back in the mode it had: train mode stays train mode, eval mode stays
#   eval mode.
#
# Batches go to `self.device`, as in Task 1 (not graded on the CPU).

# %% nbgrader={"grade_id": "eval_trainer", "solution": true}
class EvalTrainer(StepTrainer):
    """Task 2: evaluation."""

    def evaluate(self, loader):
        """Mean loss per sample and the share of labels predicted right, in eval mode without autograd;
        the caller's mode is restored."""
        ### BEGIN SOLUTION
        was_training = self.model.training
        self.model.eval()
        total, correct, samples, labels = 0.0, 0, 0, 0
        with torch.no_grad():
            for xb, yb in loader:
                xb, yb = xb.to(self.device), yb.to(self.device)
                output = self.model(xb)
                total += self.loss_fn(output, yb).item() * len(yb)
                correct += (output.argmax(dim=1) == yb).sum().item()
                samples += len(yb)
                labels += yb.numel()
        self.model.train(was_training)
        return {"loss": total / samples, "accuracy": correct / labels}
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_evaluate", "points": 1}
# Visible test: a model with Dropout passed in train mode, evaluated twice; then logits for two sequences of 4 tokens.
model = blob_model(dropout=0.5)
dropping = EvalTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())
first = dropping.evaluate(make_loader(x_blobs, y_blobs, batch_size=16))
second = dropping.evaluate(make_loader(x_blobs, y_blobs, batch_size=16))
assert isinstance(first, dict) and set(first) >= {"loss", "accuracy"}, "return {'loss': ..., 'accuracy': ...}"
assert all(isinstance(first[k], float) for k in ("loss", "accuracy")), "loss and accuracy should be Python floats"
assert first == second, f"two calls gave {first} and {second}: Dropout still drops units; call self.model.eval() first"
assert dropping.model.training, "the model was in train mode when evaluate was called; leave it in train mode"
tokens = EvalTrainer(nn.Identity(), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), nn.CrossEntropyLoss())
logits = torch.zeros(2, 3, 4)  # (batch, vocab, length): the logits themselves, the model is nn.Identity()
logits[0, [0, 1, 2, 0], range(4)] = 1.0
logits[1, [2, 2, 1, 1], range(4)] = 1.0
labels = torch.tensor([[0, 1, 2, 1], [2, 2, 1, 0]])  # 3 + 3 of the 8 tokens are right
token_accuracy = tokens.evaluate([(logits, labels)])["accuracy"]
assert abs(token_accuracy - 0.75) < 1e-9, (f"6 of 8 tokens are right, so the accuracy is 0.75, not {token_accuracy}: "
                                           f"a token is right when its largest logit over dimension 1 (the "
                                           f"vocabulary) is its label; divide by the number of labels, yb.numel()")
print(f"evaluate: {first}, twice the same, model back in train mode; token accuracy {token_accuracy}")

# %% nbgrader={"grade": true, "grade_id": "audit_eval_mode", "points": 2}
# Hidden audit (2 points): on a model with Dropout and BatchNorm: deterministic, BatchNorm's running
# statistics untouched, no autograd graph, and the caller's mode restored (train or eval).
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.eval_mode")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_evaluate_values", "points": 1}
# Hidden audit (1 point): loss and accuracy per sample with a short last batch, and per token on a
# sequence task.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.evaluate_values")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. A checkpoint that resumes bit for bit
#
# A run that stops (a crash, a preempted GPU, a time limit) should continue as if it never had.
# That takes every piece of state the next steps depend on, not just the weights:
#
# | state | read it with | a resumed run without it |
# |---|---|---|
# | weights | `model.state_dict()` | starts over |
# | optimizer | `optimizer.state_dict()` (Adam's moments and step counts, the LRs) | takes steps of the wrong size |
# | schedule | `scheduler.state_dict()` | restarts the schedule |
# | progress | `self.epoch`, `self.history` | trains too many epochs and forgets its curve |
# | torch's RNG | `torch.get_rng_state()`, and `torch.cuda.get_rng_state_all()` on a GPU | draws other Dropout masks |
# | numpy's and Python's RNGs | `np.random.get_state()`, `random.getstate()` | draws other data augmentation |
# | the loader's shuffling | `self.train_loader.generator.get_state()` | visits the samples in another order |
#
# With all of it, a resumed run lands on the very weights of a run that never stopped; with the
# weights alone it does not ("See it", below, measures both). On a GPU that also takes the
# deterministic kernels of PS06's box on determinism.
#
# Three traps:
#
# - `torch.load(path, weights_only=True)` (the default since torch 2.6, and the safe way to open a
#   file) refuses numpy arrays. `np.random.get_state()` holds one: store it as plain lists and
#   numbers (`.tolist()`), and rebuild the array (`np.array(..., dtype=np.uint32)`) when restoring.
# - Load with `map_location="cpu"`: RNG states must be CPU tensors (`torch.set_rng_state` raises a
#   `TypeError` for a state that `map_location="cuda"` moved to the GPU), and `load_state_dict`
#   moves weights and optimizer state to the model's device by itself.
# - A crash in the middle of `torch.save` leaves half a file. Save to a temporary name beside the
#   target, then `os.replace` it: the checkpoint is either the old one or the new one, never broken.

# %% nbgrader={"grade_id": "demo_weights_only", "locked": true}
buffer = io.BytesIO()
torch.save({"numpy_rng": np.random.get_state()}, buffer)
buffer.seek(0)
try:
    torch.load(buffer, weights_only=True)
except Exception as refusal:
    reason = next(line for line in str(refusal).splitlines() if "Unsupported global" in line)
    print(f"{type(refusal).__name__}:{reason.split(':', 1)[1][:120]} ...")

# %% [markdown]
# The loader's generator is the odd one out: the loader arrives with `fit`, after `load`. So `load`
# keeps the generator state in `self.loader_state`, and `fit` (Task 4) sets it on the loader it is
# given. `save` reads it from `self.train_loader` (set by `fit`), when that loader has a generator.
#
# **Task 3.** Write `CheckpointTrainer.save(path)` and `load(path)`. `save` writes one file, and `load`
# restores from it, into this Trainer's own objects (the model, optimizer and scheduler it was built
# with, the global RNGs), every state of the table above:
#
# - **R3.1** the model's weights;
# - **R3.2** the optimizer's state;
# - **R3.3** the scheduler's state (when the Trainer has a scheduler);
# - **R3.4** `self.epoch`;
# - **R3.5** `self.history`;
# - **R3.6** torch's RNG state;
# - **R3.7** numpy's global RNG state;
# - **R3.8** Python's `random` state;
# - **R3.9** the state of the training loader's generator: `load` keeps it in `self.loader_state`.
#
# And safely:
#
# - **R3.10** `save` creates the folders of `path` that do not exist yet;
# - **R3.11** `save` is atomic: a save that fails halfway (a full disk, a crash) leaves the previous
#   checkpoint at `path` whole;
# - **R3.12** the error of a save that failed reaches the caller;
# - **R3.13** the file opens with `torch.load(path, weights_only=True)`;
# - **R3.14** `load` opens it with `weights_only=True`: a file that holds anything else (a pickled
#   function call) raises an error, and nothing in it runs;
# - **R3.15** `load` maps every tensor to the CPU (`map_location="cpu"`): a checkpoint written on a GPU
#   opens on a machine without one, and the RNG states come back as CPU tensors.
#
# On a GPU, Dropout draws from the CUDA generators as well (`torch.cuda.get_rng_state_all()`): save
# them too when there are any. The grader has no GPU, so that part is not graded.

# %% nbgrader={"grade_id": "checkpoint_trainer", "solution": true}
class CheckpointTrainer(EvalTrainer):
    """Task 3: checkpoints that resume bit for bit."""

    def save(self, path):
        """Write every state training depends on to `path`, atomically, creating its folder."""
        ### BEGIN SOLUTION
        path = Path(path)
        generator = None if self.train_loader is None else self.train_loader.generator
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy_rng": [kind, keys.tolist(), pos, has_gauss, cached],
            "python_rng": random.getstate(),
            "loader_rng": None if generator is None else generator.get_state(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        torch.save(state, partial)
        os.replace(partial, path)
        ### END SOLUTION

    def load(self, path):
        """Restore what save wrote; the loader's generator state waits in self.loader_state for fit."""
        ### BEGIN SOLUTION
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.history = state["epoch"], state["history"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        kind, keys, pos, has_gauss, cached = state["numpy_rng"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
        random.setstate(state["python_rng"])
        self.loader_state = state["loader_rng"]
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_checkpoint", "points": 2}
# Visible test: save after one epoch into a folder that does not exist yet, load into fresh objects.
def adam_trainer(cls, **settings):
    model = blob_model(dropout=0.2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return cls(model, optimizer, nn.CrossEntropyLoss(), scheduler=torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.5),
               **settings)


saver = adam_trainer(CheckpointTrainer)
saver.train_loader = make_loader(x_blobs, y_blobs, batch_size=16, shuffle=True, seed=1)
saver.history["train_loss"].append(float(saver.train_epoch(saver.train_loader)))
saver.epoch = 1
scratch = tempfile.TemporaryDirectory(prefix="ps07-")  # deleted, with what it holds, when the kernel stops
checkpoint = Path(scratch.name) / "runs" / "blobs.pt"
saver.save(checkpoint)
assert checkpoint.is_file(), f"save should create {checkpoint}, folders included"
try:
    torch.load(checkpoint, weights_only=True)
except Exception as refusal:
    raise AssertionError(f"torch.load(path, weights_only=True) refuses the checkpoint: store numpy's RNG state as "
                         f"plain lists and numbers ({type(refusal).__name__})") from None
restored = adam_trainer(CheckpointTrainer)
restored.load(checkpoint)
for (name, p), q in zip(saver.model.named_parameters(), restored.model.parameters()):
    assert torch.equal(p, q), f"after load, {name} differs from the saved model's"
assert restored.epoch == 1, f"after load, epoch should be 1, got {restored.epoch}"
assert restored.history == saver.history, f"after load, the history should be {saver.history}, got {restored.history}"

# Trap 3: torch.save stands in for a disk that fills up after half a file. The checkpoint saved above must survive.
real_save = torch.save


def disk_full(obj, f, *args, **kwargs):
    if isinstance(f, (str, os.PathLike)):
        Path(f).write_bytes(b"half a checkpoint")
    else:
        f.write(b"half a checkpoint")
    raise OSError("No space left on device (simulated by this test)")


torch.save = disk_full
try:
    saver.save(checkpoint)
except OSError:
    pass
finally:
    torch.save = real_save
try:
    adam_trainer(CheckpointTrainer).load(checkpoint)
except Exception as broken:
    raise AssertionError(f"a save that failed halfway destroyed the checkpoint that was there before "
                         f"({type(broken).__name__}): write to a temporary file beside it, then os.replace it onto "
                         f"the path") from None

# Trap 1: a checkpoint with a pickled function call inside must be refused, and the call must not run.
ran = Path(scratch.name) / "the-call-ran"


class PickledCall:
    def __reduce__(self):
        return os.mkdir, (str(ran),)


tampered = Path(scratch.name) / "tampered.pt"
torch.save({**torch.load(checkpoint, weights_only=True), "surprise": PickledCall()}, tampered)
try:
    adam_trainer(CheckpointTrainer).load(tampered)
except Exception:
    pass
assert not ran.exists(), ("loading a checkpoint ran a function stored in it: torch.load with weights_only=False runs "
                          "whatever a file names. Load with weights_only=True")

# Trap 2: a checkpoint written on a GPU machine. This test marks every tensor saved meanwhile as living on cuda:0.
on_gpu = []
torch.serialization.register_package(0, lambda storage: "cuda:0" if on_gpu else None, lambda storage, location: None)
from_gpu = Path(scratch.name) / "from_gpu.pt"
on_gpu.append(True)
try:
    saver.save(from_gpu)
finally:
    on_gpu.clear()
try:
    adam_trainer(CheckpointTrainer).load(from_gpu)
except RuntimeError as error:
    raise AssertionError(f"a checkpoint written on a GPU would not load on a machine without one: map every tensor "
                         f"to the CPU when loading (RNG states must be CPU tensors anyway). {error}") from None
print(f"saved and loaded {checkpoint.name}: weights, epoch and history restored; it survived a failed save, "
      f"a tampered file ran nothing, a checkpoint from a GPU loaded")


# %% nbgrader={"grade": true, "grade_id": "audit_checkpoint_safety", "points": 2}
# Hidden audit (2 points): save creates missing folders and is atomic (a save stopped by a full disk
# keeps the previous checkpoint and raises); load refuses a file with a pickled call and runs
# nothing of it; a checkpoint written on a GPU machine loads on the CPU.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.checkpoint_safety")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. `fit`: epochs, checkpoints, resuming, callbacks
#
# `fit(train_loader, val_loader, epochs)` trains **until `self.epoch` reaches `epochs`**: `epochs`
# is the total, so a Trainer that resumed at epoch 3 of `fit(..., epochs=10)` trains 7 more. Each
# epoch, in this order:
#
# 1. `train_epoch(train_loader)`, then `evaluate(val_loader)`;
# 2. append the three numbers to `self.history`; `self.epoch += 1`;
# 3. with a `ckpt_dir`, `save(checkpoint_path(self.ckpt_dir, self.epoch))`;
# 4. call every callback with the Trainer, `callback(self)`; if any returns `True`, stop.
#
# Before the first epoch, `fit` resumes: with a `ckpt_dir` that holds checkpoints, it loads the latest
# (`latest_checkpoint`, given below), then remembers `train_loader` in `self.train_loader` and, if
# `load` left a generator state in `self.loader_state`, sets it on `train_loader.generator`.
# Restarting a notebook after a crash and running `fit` again then simply carries on.
#
# **Task 4.** Write `Trainer.fit(train_loader, val_loader, epochs) -> dict`:
#
# - **R4.1** before the first epoch, with a `ckpt_dir` that holds checkpoints, it loads the latest;
# - **R4.2** it keeps `train_loader` in `self.train_loader` (what `save` reads the generator from);
# - **R4.3** it sets a generator state that `load` left in `self.loader_state` on `train_loader.generator`;
# - **R4.4** `epochs` is the total: it trains while `self.epoch < epochs`, so a resumed Trainer trains
#   only the epochs left;
# - **R4.5** each epoch trains first, `train_epoch(train_loader)`, then evaluates, `evaluate(val_loader)`;
# - **R4.6** it appends the epoch's training loss (what `train_epoch` returned) and validation loss and
#   accuracy to the three lists of `self.history`;
# - **R4.7** it counts the epoch, `self.epoch += 1`, before saving and before the callbacks;
# - **R4.8** with a `ckpt_dir`, it saves `checkpoint_path(self.ckpt_dir, self.epoch)` after every epoch,
#   once the epoch is recorded and counted;
# - **R4.9** with `ckpt_dir=None` (the default) it saves and loads nothing;
# - **R4.10** after every epoch, once it is recorded, counted and saved, it calls every callback,
#   `callback(self)`, each one even when an earlier one returned `True`;
# - **R4.11** it stops after the epoch in which any callback returned `True`;
# - **R4.12** it returns `self.history`, the dict of its lists.

# %% nbgrader={"grade_id": "trainer", "solution": true}
def checkpoint_path(ckpt_dir, epoch):
    """Where fit saves the checkpoint of an epoch."""
    return Path(ckpt_dir) / f"epoch_{epoch:04d}.pt"


def latest_checkpoint(ckpt_dir):
    """The checkpoint of the highest epoch in ckpt_dir, or None."""
    found = sorted(Path(ckpt_dir).glob("epoch_*.pt")) if ckpt_dir is not None else []
    return found[-1] if found else None


class Trainer(CheckpointTrainer):
    """Task 4: the training loop, resumable."""

    def fit(self, train_loader, val_loader, epochs):
        """Resume from the latest checkpoint in ckpt_dir, then train until self.epoch == epochs; returns the history."""
        ### BEGIN SOLUTION
        latest = latest_checkpoint(self.ckpt_dir)
        if latest is not None:
            self.load(latest)
        self.train_loader = train_loader
        if self.loader_state is not None and train_loader.generator is not None:
            train_loader.generator.set_state(self.loader_state)
        self.loader_state = None
        while self.epoch < epochs:
            train_loss = self.train_epoch(train_loader)
            scores = self.evaluate(val_loader)
            self.history["train_loss"].append(train_loss)
            self.history["val_loss"].append(scores["loss"])
            self.history["val_accuracy"].append(scores["accuracy"])
            self.epoch += 1
            if self.ckpt_dir is not None:
                self.save(checkpoint_path(self.ckpt_dir, self.epoch))
            if any([callback(self) for callback in self.callbacks]):
                break
        return self.history
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_fit", "points": 2}
# Visible test: 4 epochs on blobs: a history of floats, the callbacks once per epoch, the last val_loss the final model's.
seen = []
fitter = sgd_trainer(Trainer, lr=0.3, callbacks=[lambda trainer: seen.append(trainer.epoch)])
val_blobs = make_loader(x_blobs[32:], y_blobs[32:], batch_size=16)
history = fitter.fit(make_loader(x_blobs[:32], y_blobs[:32], batch_size=8, shuffle=True), val_blobs, epochs=4)
assert isinstance(history, dict) and set(history) >= {"train_loss", "val_loss", "val_accuracy"}, (
    "return the history: a dict with the lists 'train_loss', 'val_loss' and 'val_accuracy'")
for key in ("train_loss", "val_loss", "val_accuracy"):
    assert len(history[key]) == 4 and all(isinstance(v, float) for v in history[key]), (
        f"history[{key!r}] should hold 4 floats, one per epoch: {history[key]}")
assert history["train_loss"][-1] < history["train_loss"][0], f"the loss should fall on easy blobs: {history['train_loss']}"
assert fitter.epoch == 4, f"after fit(..., epochs=4) the Trainer has trained 4 epochs, but self.epoch is {fitter.epoch}"
assert seen == [1, 2, 3, 4], f"each callback runs once after every epoch, with self.epoch counted; it saw {seen}"
final = fitter.evaluate(val_blobs)["loss"]
assert abs(final - history["val_loss"][-1]) < 1e-6, (
    f"history['val_loss'][-1] is {history['val_loss'][-1]:.6f}, but the trained model's validation loss is {final:.6f}")
stopper_saw, watcher_saw = [], []
stopping = sgd_trainer(Trainer, callbacks=[lambda trainer: stopper_saw.append(trainer.epoch) or trainer.epoch >= 2,
                                           lambda trainer: watcher_saw.append(trainer.epoch)])
stopped = stopping.fit(make_loader(x_blobs[:32], y_blobs[:32], batch_size=8), val_blobs, epochs=5)
assert len(stopped["val_loss"]) == 2, (f"the first callback returned True after epoch 2, so fit should stop there; "
                                       f"it ran {len(stopped['val_loss'])} epochs")
assert watcher_saw == [1, 2], (f"with two callbacks, each runs after every epoch, even when the one before it asked "
                               f"to stop: the second saw epochs {watcher_saw}, not [1, 2]")
print("fit: 4 epochs recorded, callbacks after each, the last val_loss is the final model's; "
      "a callback stopped fit after epoch 2, and the other still ran")

# %% nbgrader={"grade": true, "grade_id": "audit_history", "points": 2}
# Hidden audit (2 points): every history entry against the loss calls and a recomputation of each
# epoch's validation figures; callbacks once per epoch after it is recorded; a callback stops fit.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.history")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_resume_equality", "points": 4}
# Hidden audit (4 points): k epochs, save, load into fresh objects, the remaining epochs: the same
# weights, bit for bit, as training straight through (Adam, a scheduler, Dropout, a shuffling loader,
# augmentation drawn from numpy and Python's random).
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.resume_equality")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_resume_latest", "points": 2}
# Hidden audit (2 points): fit saves a checkpoint every epoch, and a fresh Trainer with the same
# ckpt_dir resumes from the latest and trains only the epochs left.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.resume_latest")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_convergence", "points": 2}
# Hidden audit (2 points): on hidden data, with every feature on, the loss falls by half, every
# parameter gets a gradient and moves, one step per window.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.convergence")
### END HIDDEN TESTS

# %% [markdown]
# ## See it: stop, resume, and land on the same weights
#
# An MLP with Dropout on the 8x8 digits, AdamW (Adam with its weight decay applied to the weights
# directly, not through the gradient) with a cosine schedule, a shuffling loader of batches
# of 128: four epochs straight, against two epochs, a "crash", and a fresh session (new objects, as a
# new Python process would build them) resuming from the checkpoint folder. And a naive resume that
# carries over only the weights. The straight run draws its curves while it trains: `LiveHistory` from `course.plots`
# is a callback that redraws the history in place after every epoch, a use of your callbacks.

# %% nbgrader={"grade_id": "digits", "locked": true}
x_digits, y_digits = load_digits()
x_train, y_train, x_rest, y_rest = train_test_split(x_digits, y_digits, test_fraction=0.3, seed=0)
x_val, y_val, x_test, y_test = train_test_split(x_rest, y_rest, test_fraction=0.5, seed=1)
val_loader = make_loader(x_val, y_val, batch_size=256)
test_loader = make_loader(x_test, y_test, batch_size=256)
print(f"digits: {len(x_train)} for training, {len(x_val)} for validation, {len(x_test)} for the test")


def digits_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))


# %% nbgrader={"grade_id": "demo_resume", "locked": true}
def session(ckpt_dir=None, epochs=4, callbacks=()):
    """A fresh Trainer and training loader, built as a new Python process would build them."""
    torch.manual_seed(0)
    model = digits_mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2)
    loader = make_loader(x_train, y_train, batch_size=128, shuffle=True, seed=0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    return Trainer(model, optimizer, nn.CrossEntropyLoss(), scheduler=scheduler, ckpt_dir=ckpt_dir,
                   callbacks=callbacks), loader


straight, loader = session(callbacks=[LiveHistory("straight run, drawn live")])
straight.fit(loader, val_loader, epochs=4)
runs = tempfile.TemporaryDirectory(prefix="ps07-")  # deleted, with what it holds, when the kernel stops
ckpt_dir = Path(runs.name) / "digits-mlp"
interrupted, loader = session(ckpt_dir)
interrupted.fit(loader, val_loader, epochs=2)  # ... and here the machine goes down
resumed, loader = session(ckpt_dir)
resumed.fit(loader, val_loader, epochs=4)  # finds epoch_0002.pt and carries on
naive, loader = session()
naive.model.load_state_dict(interrupted.model.state_dict())
naive.epoch, naive.history = 2, copy.deepcopy(interrupted.history)
naive.fit(loader, val_loader, epochs=4)

print("| run | weights equal to the straight run's | largest difference in a weight |\n|---|---|---|")
for name, run in [("full-state resume", resumed), ("weights-only resume", naive)]:
    pairs = list(zip(straight.model.parameters(), run.model.parameters()))
    gap = max((p - q).abs().max().item() for p, q in pairs)
    print(f"| {name} | {all(torch.equal(p, q) for p, q in pairs)} | {gap:.3g} |")
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, run, style in [("straight", straight, "-"), ("full-state resume", resumed, "--"), ("weights-only resume", naive, ":")]:
    ax.plot(range(1, 5), run.history["val_loss"], style, marker="o", markersize=3, label=name)
ax.axvline(2, color="gray", linewidth=0.8)
ax.set(xlabel="epoch", ylabel="validation loss", title="Stopped after epoch 2, resumed", xticks=range(1, 5))
ax.grid(alpha=0.3)
ax.legend()
plt.show()
plot_steps(straight.history, "straight run")
plt.show()

# %% [markdown]
# The weights-only run is another run, not the same one continued: its schedule started again from
# the top and its optimizer forgot its moments. After such a resume you cannot tell whether a change
# in the results comes from your change or from the interruption.
#
# The last figure is the straight run's record of every optimizer step, from `history["lr"]` and
# `history["grad_norm"]`: the cosine schedule taking the LR down step by step, and the gradient norm
# of every window. It is the first place to look when a run misbehaves: a flat LR means the schedule
# never reached the optimizer, a norm that spikes is a batch that pulls too hard, and with clipping
# (the milestones below) the dashed line shows how many steps it cut.
#
# ## Milestones
#
# Three models, trained by your `Trainer`. For each: its curves, and a learning-verification table
# (PS01's questions): did the loss fall, does a gradient reach every parameter, did every parameter
# move, and how well does the model do on data it never trained on. The function below answers them
# for a trained Trainer, probing gradients on a copy of the model so that the model stays untouched.
# A hidden audit after it holds your Trainer to Milestone 3's bar on a sorting task you have not seen.

# %% nbgrader={"grade_id": "verification", "locked": true}
def learning_report(trainer, before, batch, test_loader):
    """The learning-verification row of a trained Trainer; `before` holds the parameters before training."""
    probe = copy.deepcopy(trainer.model).train()
    trainer.loss_fn(probe(batch[0]), batch[1]).backward()
    named = list(probe.named_parameters())
    reached = sum(p.grad is not None and bool(p.grad.abs().sum() > 0) for _, p in named)
    moved = sum(not torch.equal(before[n], p.detach()) for n, p in trainer.model.named_parameters())
    losses = trainer.history["train_loss"]
    return {"loss decrease": (losses[0] - losses[-1]) / losses[0], "parameters with gradient": f"{reached}/{len(named)}",
            "parameters updated": f"{moved}/{len(named)}", "test accuracy": trainer.evaluate(test_loader)["accuracy"]}


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# %% nbgrader={"grade": true, "grade_id": "audit_milestone", "points": 2}
# Hidden audit (2 points): Milestone 3's bar on a problem you have not seen: your Trainer trains a
# hidden Transformer on a hidden sorting task to 95% token accuracy.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps07.milestone")
### END HIDDEN TESTS

# %% [markdown]
# ### Milestone 1: an MLP on the digits, at least 95% test accuracy
#
# 70% of the digits for training, 15% for validation, 15% for the test. Dropout, AdamW, a one-cycle
# schedule (warm up, then anneal), batches of 128, clipping at norm 0.1. The record of the steps,
# plotted after the milestone, shows where 0.1 sits against this model's gradient norms and how many
# steps it clips. AdamW divides each step by the gradient's running size anyway, so what clipping
# changes here is mostly how much each batch counts.

# %% nbgrader={"grade": true, "grade_id": "test_mlp_milestone", "points": 1}
torch.manual_seed(0)
mlp = digits_mlp()
mlp_before = snapshot(mlp)
optimizer = torch.optim.AdamW(mlp.parameters(), lr=3e-2, weight_decay=1e-4)
train_loader = make_loader(x_train, y_train, batch_size=128, shuffle=True, seed=0)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-2, total_steps=10 * len(train_loader))
mlp_trainer = Trainer(mlp, optimizer, nn.CrossEntropyLoss(), scheduler=scheduler, max_grad_norm=0.1)
mlp_trainer.fit(train_loader, val_loader, epochs=10)
plot_history(mlp_trainer.history, "MLP on digits")
plt.show()
mlp_report = learning_report(mlp_trainer, mlp_before, (x_train[:64], y_train[:64]), test_loader)
display(Markdown(verification_table({"MLP": mlp_report})))
assert mlp_report["test accuracy"] >= 0.95, (
    f"the MLP reached {mlp_report['test accuracy']:.1%} test accuracy; it needs 95%. If the audits of Tasks 1 and 4 "
    f"pass, check evaluate (eval mode, accuracy = right / number of labels)")
print(f"Milestone 1 reached: {mlp_report['test accuracy']:.1%} of the test digits")

# %% [markdown]
# The MLP's steps, from the history your `train_epoch` kept: the one-cycle LR rising, then annealing,
# and each window's gradient norm against the clipping threshold.

# %% nbgrader={"grade_id": "mlp_steps", "locked": true}
plot_steps(mlp_trainer.history, "MLP on digits", max_grad_norm=0.1)
plt.show()
norms = mlp_trainer.history["grad_norm"]
if norms:
    print(f"gradient norms from {min(norms):.3g} to {max(norms):.3g}: clipping at 0.1 cut "
          f"{sum(norm > 0.1 for norm in norms)} of {len(norms)} steps")
else:
    print("history['grad_norm'] is empty: train_epoch records every step (Task 1, R1.15 and R1.16)")

# %% [markdown]
# ### Milestone 2: a small CNN on the digits, at least 97% test accuracy
#
# Convolutions see that neighbouring pixels belong together. Two 3x3 convolutions (the second with
# stride 2, halving the image to 4x4), BatchNorm after each (so eval mode matters), Dropout before the
# classifier. Accumulation over 2 micro-batches of 64: each step sees 128 digits. Clipping at norm
# 0.1 again.

# %% nbgrader={"grade": true, "grade_id": "test_cnn_milestone", "points": 1}
torch.manual_seed(0)
cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                    nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                    nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 4 * 4, 10))
cnn_before = snapshot(cnn)
optimizer = torch.optim.AdamW(cnn.parameters(), lr=5e-3, weight_decay=1e-4)
cnn_loader = make_loader(x_train, y_train, batch_size=64, shuffle=True, seed=0)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=8 * ((len(cnn_loader) + 1) // 2))
cnn_trainer = Trainer(cnn, optimizer, nn.CrossEntropyLoss(), scheduler=scheduler, accum_steps=2, max_grad_norm=0.1)
cnn_trainer.fit(cnn_loader, val_loader, epochs=8)
plot_history(cnn_trainer.history, "CNN on digits")
plt.show()
cnn_report = learning_report(cnn_trainer, cnn_before, (x_train[:64], y_train[:64]), test_loader)
display(Markdown(verification_table({"CNN": cnn_report})))
assert cnn_report["test accuracy"] >= 0.97, (
    f"the CNN reached {cnn_report['test accuracy']:.1%} test accuracy; it needs 97%. With BatchNorm, evaluation in "
    f"eval mode matters: see the eval-mode audit")
print(f"Milestone 2 reached: {cnn_report['test accuracy']:.1%} of the test digits")

# %% [markdown]
# ### Milestone 3: a tiny Transformer that sorts, at least 95% token accuracy
#
# The task: given 8 tokens from a vocabulary of 10 (the digits 0 to 9), output them in sorted order.
# Every output position must look at **all** input tokens and count how many are smaller: exactly
# what attention does, one position attending to every other. The model: token embeddings plus
# learned position embeddings, one attention block (multi-head self-attention and a small MLP, each
# with a residual connection and LayerNorm), and a head giving every position a logit per token,
# laid out `(batch, vocab, length)` for `nn.CrossEntropyLoss`. The last column of the table matters
# most here: a part of a Transformer that no gradient reaches (a position embedding never added, a
# block skipped) fails silently, with a loss that still falls.

# %% nbgrader={"grade_id": "sorting", "locked": true}
LENGTH, VOCAB = 8, 10


def make_sorting(n, seed):
    """n random sequences of LENGTH tokens and their sorted versions."""
    x = torch.randint(0, VOCAB, (n, LENGTH), generator=torch.Generator().manual_seed(seed))
    return x, x.sort(dim=1).values


class TinyTransformer(nn.Module):
    """Embedding + positions, one attention block, a head: (batch, length) tokens -> (batch, vocab, length) logits."""

    def __init__(self, vocab, length, dim=32, heads=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(0.1 * torch.randn(length, dim))
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens):
        h = self.embed(tokens) + self.position
        attended, _ = self.attention(h, h, h, need_weights=False)
        h = self.norm1(h + attended)
        h = self.norm2(h + self.mlp(h))
        return self.head(h).transpose(1, 2)


# %% nbgrader={"grade": true, "grade_id": "test_transformer_milestone", "points": 2}
x_seq, y_seq = make_sorting(3000, seed=0)
x_seq_val, y_seq_val = make_sorting(500, seed=1)
x_seq_test, y_seq_test = make_sorting(1000, seed=2)
torch.manual_seed(0)
transformer = TinyTransformer(VOCAB, LENGTH)
transformer_before = snapshot(transformer)
seq_loader = make_loader(x_seq, y_seq, batch_size=64, shuffle=True, seed=0)
optimizer = torch.optim.AdamW(transformer.parameters(), lr=3e-2)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-2, total_steps=4 * ((len(seq_loader) + 1) // 2))
transformer_trainer = Trainer(transformer, optimizer, nn.CrossEntropyLoss(), scheduler=scheduler, accum_steps=2,
                              max_grad_norm=0.1)
transformer_trainer.fit(seq_loader, make_loader(x_seq_val, y_seq_val, batch_size=500), epochs=4)
plot_history(transformer_trainer.history, "Transformer sorting")
plt.show()
transformer_report = learning_report(transformer_trainer, transformer_before, (x_seq[:64], y_seq[:64]),
                                     make_loader(x_seq_test, y_seq_test, batch_size=500))
display(Markdown(verification_table({"Transformer": transformer_report})))
with torch.no_grad():
    print("a test sequence: ", x_seq_test[0].tolist())
    print("the model's sort:", transformer_trainer.model.eval()(x_seq_test[:1]).argmax(1)[0].tolist())
reached, total = map(int, transformer_report["parameters with gradient"].split("/"))
assert reached == total, f"only {reached} of the Transformer's {total} parameters received a gradient"
assert 0.95 <= transformer_report["test accuracy"] <= 1.0, (
    f"the Transformer sorted {transformer_report['test accuracy']:.1%} of the test tokens right; it needs 95% (an "
    f"accuracy above 100% divides by the number of sequences instead of labels)")
print(f"Milestone 3 reached: {transformer_report['test accuracy']:.1%} of the tokens sorted, "
      f"a gradient for all {total} parameters")

# %% [markdown]
# ## Before you submit
#
# 1. **Kernel → Restart Kernel and Run All Cells…**: every visible test must pass from a fresh kernel.
# 2. Press **Validate**.
# 3. The hidden audits re-run your classes on new problems in a fresh process. A Trainer that trains
#    correctly passes them, in any style.
