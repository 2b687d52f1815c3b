# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PS06: Checkpoints that resume bit for bit
#
# Long runs stop: a crash, a preempted GPU, a time limit, a closed laptop. A **checkpoint** lets the
# run carry on where it stopped, and a good one makes the resumed run exactly, bit for bit, the run
# that never stopped. That takes more than the weights, a file that cannot be half-written, and a
# loader that cannot run code hidden in a file. You will write all of it, then checkpoints of a
# fine-tuning adapter (LoRA-style) that hold only the few weights that changed.
#
# | task | you write | points (visible test + hidden audits) |
# |---|---|---|
# | 1 | `save_checkpoint`: every state a run needs, written atomically | 1 + 2 |
# | 2 | `load_checkpoint`: safely (`weights_only=True`), with clear errors | 1 + 7 |
# | 3 | `train`: a checkpoint every few epochs, resuming from the latest | 2 + 10 |
# | 4 | `save_adapter`, `load_adapter`: partial checkpoints that report mismatched names | 1 + 3 |
#
# **How you are graded.** Each task has a visible test right after it. When you submit, hidden
# audits call your functions in a fresh Python process: they fill the disk halfway through a save,
# hand `load_checkpoint` a file that carries code, a missing and a truncated file, and stop your
# `train` twice in the middle of an epoch (Adam, a schedule, Dropout, a shuffling loader, data
# augmentation), restart it with fresh objects each time, and compare every weight and loss with a
# run that never stopped.

# %% nbgrader={"grade_id": "imports", "locked": true}
import copy
import io
import os
import pickle
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
import matplotlib.pyplot as plt
from tqdm.auto import tqdm

from course.data import load_digits, make_blobs, make_loader, train_test_split


def run_epoch(model, loader, loss_fn, opt):
    """One epoch of training, one optimizer step per batch; returns the mean loss per sample."""
    model.train()
    summed, seen = 0.0, 0
    for inputs, targets in loader:
        opt.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        opt.step()
        summed += loss.item() * len(targets)
        seen += len(targets)
    return summed / seen


# These models are tiny: one thread is fastest, and keeps a shared machine responsive.
torch.set_num_threads(1)
torch.manual_seed(0);

# %% [markdown]
# ## What a training run is made of
#
# Training is a deterministic function of its state, and the weights are only part of it:
#
# | state | read it with | a resumed run without it |
# |---|---|---|
# | weights | `model.state_dict()` | starts from scratch |
# | optimizer | `optimizer.state_dict()`: Adam's moment estimates and step counts, each group's LR | takes steps of the wrong size |
# | schedule | `scheduler.state_dict()`: how far the schedule has gone | restarts the schedule |
# | progress | the epoch counter, the loss history | trains too many epochs, forgets its curve |
# | torch's RNG | `torch.get_rng_state()`, and `torch.cuda.get_rng_state_all()` on a GPU | Dropout draws other masks |
# | numpy's and Python's RNGs | `np.random.get_state()`, `random.getstate()` | data augmentation draws other numbers |
# | the loader's shuffling | `loader.generator.get_state()` | visits the samples in another order |
#
# Every section below trains with `run_epoch`, given in the first cell: one epoch, one optimizer
# step per batch, and the mean loss per sample returned.
#
# The experiment below trains a digit classifier (Dropout, Adam, a cosine schedule, a shuffling
# loader) for 6 epochs straight through. Then it trains the same for 3 epochs, keeps a copy of
# every state, makes fresh objects as a new process would (other initial weights, another RNG
# state), puts the copy back into them, each time **leaving one piece out**, and trains the last 3
# epochs. How far do the final weights land from those of the run that never stopped?

# %% nbgrader={"grade_id": "demo_drift", "locked": true}
x_digits, y_digits = load_digits()
x_digits = x_digits.reshape(len(x_digits), -1)
x_train, y_train, x_val, y_val = train_test_split(x_digits, y_digits, test_fraction=0.2, seed=0)
EPOCHS, STOP = 6, 3


class Run:
    """Fresh objects of one training run, as a new process makes them, torch's RNG seeded with `seed`."""

    def __init__(self, seed):
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=2e-3)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=EPOCHS)
        self.loader = make_loader(x_train, y_train, batch_size=64, shuffle=True, seed=0)

    def epochs(self, n):
        for _ in range(n):
            run_epoch(self.model, self.loader, nn.functional.cross_entropy, self.opt)
            self.sched.step()

    def snapshot(self):
        """A copy of every state: what a checkpoint holds."""
        return {"weights": copy.deepcopy(self.model.state_dict()), "optimizer": copy.deepcopy(self.opt.state_dict()),
                "scheduler": self.sched.state_dict(), "loader's generator": self.loader.generator.get_state(),
                "torch's RNG": torch.get_rng_state()}

    def restore(self, snap, skip=()):
        """Put every state of `snap` back, except those named in `skip`."""
        put = {"weights": self.model.load_state_dict, "optimizer": self.opt.load_state_dict,
               "scheduler": self.sched.load_state_dict, "loader's generator": self.loader.generator.set_state,
               "torch's RNG": torch.set_rng_state}
        for piece, value in snap.items():
            if piece not in skip:
                put[piece](value)


straight = Run(seed=0)
straight.epochs(EPOCHS)
left_out = {"nothing": (), "all but the weights": ("optimizer", "scheduler", "loader's generator", "torch's RNG"),
            "the optimizer": ("optimizer",), "the scheduler": ("scheduler",),
            "the loader's generator": ("loader's generator",), "torch's RNG": ("torch's RNG",)}
drift = {}
for label, skip in tqdm(left_out.items(), desc="resumed runs", leave=False):
    first = Run(seed=0)
    first.epochs(STOP)
    snap = first.snapshot()
    resumed = Run(seed=1)  # a new process: other initial weights, another RNG state
    resumed.restore(snap, skip)
    resumed.epochs(EPOCHS - STOP)
    drift[label] = max((p - q).abs().max().item()
                       for p, q in zip(resumed.model.parameters(), straight.model.parameters()))

print("| left out on resume | largest weight difference after epoch 6 |\n|---|---|")
for label, gap in drift.items():
    print(f"| {label} | {gap:.4f} |")
fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(list(drift), list(drift.values()), color=["C2"] + ["C3"] * (len(drift) - 1))
ax.text(0.001, 0, "0: bit-identical", va="center")
ax.invert_yaxis()
ax.set(xlabel="largest |weight - weight of the run that never stopped|", title="Resumed at epoch 3, leaving one state out")
ax.grid(axis="x", alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# With every state restored, the resumed run gives the very same weights, `torch.equal`, not merely
# close: computation on a CPU is deterministic, and so is every random draw once its generator's
# state is back. Leave any one piece out and the runs part ways, and they keep drifting with every
# epoch after.
#
# > **Bit for bit: what you can expect, and where.** On a CPU, PyTorch's kernels give the same bits
# > for the same inputs in the same order, so restoring every state is enough, as above. On a GPU it
# > takes more:
# >
# > | what | why it breaks exactness | what to do |
# > |---|---|---|
# > | CUDA's RNG | Dropout on a GPU draws from it | save `torch.cuda.get_rng_state_all()` too (Task 1) |
# > | nondeterministic kernels | some CUDA operations (scatter and index adds, the backward of embeddings and some pooling) add in whatever order their threads finish | `torch.use_deterministic_algorithms(True)`: a deterministic version of each such operation, or an error naming the one that has none |
# > | cuBLAS | its matrix products keep per-stream workspaces | set the environment variable `CUBLAS_WORKSPACE_CONFIG=:4096:8` before CUDA starts; `use_deterministic_algorithms` raises without it |
# > | cuDNN | `torch.backends.cudnn.benchmark = True` times several convolution algorithms and keeps the fastest, which can change from run to run | leave `benchmark` off; `use_deterministic_algorithms` also restricts cuDNN to deterministic algorithms |
# > | DataLoader workers | with `num_workers > 0`, each worker seeds its torch, numpy and `random` from a base seed the loader draws from its generator at the start of every epoch | save the loader's generator (Task 1) and resume at an epoch boundary; `persistent_workers=True` keeps each worker's RNGs across epochs, where no checkpoint reaches them |
# >
# > With all of it, on the same machine with the same GPU, driver and library versions, a resumed run
# > matches the one that never stopped bit for bit. Across GPU models, CUDA or PyTorch versions, or
# > between a CPU and a GPU, expect close, not equal: the same sums, added in another order, round
# > differently. Deterministic kernels can be slower, so most runs switch them on only to debug or to
# > compare. The grader runs on a CPU.
#
# ## Saving random states, and what `weights_only=True` accepts
#
# `torch.save` writes a Python pickle (inside a zip file). `torch.load(path, weights_only=True)`,
# the default since torch 2.6, unpickles only tensors, numbers, strings, `None`, and lists, tuples
# and dicts of them (Task 2's section says why you want that). Each RNG state fits, with one exception:
#
# | RNG | read | restore | `weights_only=True` accepts it? |
# |---|---|---|---|
# | torch (CPU) | `torch.get_rng_state()` | `torch.set_rng_state(s)` | yes: a `uint8` tensor |
# | CUDA | `torch.cuda.get_rng_state_all()` | `torch.cuda.set_rng_state_all(s)` | yes: a list of tensors |
# | a `torch.Generator` (a loader's) | `g.get_state()` | `g.set_state(s)` | yes (the generator object itself: no) |
# | Python's `random` | `random.getstate()` | `random.setstate(s)` | yes: a tuple of ints |
# | numpy | `np.random.get_state()` | `np.random.set_state(s)` | **no**: it holds a numpy array |

# %% nbgrader={"grade_id": "demo_weights_only", "locked": true}
def refusal(error):
    """The line of torch.load's long UnpicklingError that says what it refused."""
    return next(line.split(":", 1)[1].strip().split(". ")[0] for line in str(error).splitlines()
                if "Unsupported global" in line)


buffer = io.BytesIO()
torch.save({"numpy": np.random.get_state()}, buffer)
buffer.seek(0)
try:
    torch.load(buffer, weights_only=True)
except pickle.UnpicklingError as error:
    print(f"UnpicklingError: {refusal(error)}")
kind, key_array, *rest = np.random.get_state()
print(f"\nnp.random.get_state(): ({kind!r}, {type(key_array).__name__} of {len(key_array)} {key_array.dtype}, "
      + ", ".join(f"{type(v).__name__} {v!r}" for v in rest) + ")")

# %% [markdown]
# Store numpy's state as plain lists and numbers (`array.tolist()`) and rebuild the array with
# `np.array(..., dtype=np.uint32)` when you restore it. (The other way, `torch.serialization.safe_globals`,
# has you name numpy's internals, which move between numpy versions.)
#
# **Device trap.** `map_location` says where the tensors of a file go as it loads:
# `torch.load(path, map_location="cuda")` moves *every* tensor to the GPU, the RNG states too, and
# `torch.set_rng_state` then raises a `TypeError`. An RNG state must be a CPU tensor whatever device
# the model is on: call `.cpu()` on each before restoring it. Weights and optimizer states need
# nothing: `load_state_dict` copies them to wherever the model's and the optimizer's tensors live.
# This machine may have no GPU, so the `meta` device stands in for one: a device whose tensors have a
# shape and a dtype but no data, and which, like a GPU, is not the CPU:

# %% nbgrader={"grade_id": "demo_map_location", "locked": true}
elsewhere = torch.get_rng_state().to("meta")
try:
    torch.set_rng_state(elsewhere)
except TypeError as error:
    print(f"state on {elsewhere.device}: TypeError: {error}")
torch.set_rng_state(torch.get_rng_state().cpu())
print("state on cpu: restored")

# %% [markdown]
# ## 1. A save that cannot break the last checkpoint
#
# `torch.save(state, path)` opens `path` for writing, which empties it at once, and then writes.
# A crash, a full disk or a kill in between leaves a broken file where the last good checkpoint was,
# and the run cannot resume at all. Below, a "power cut" interrupts a save (pickling `PowerCut`
# raises, as a killed process would stop):

# %% nbgrader={"grade_id": "demo_power_cut", "locked": true}
class PowerCut:
    """Stands for anything that stops a save halfway: pickling it raises."""

    def __reduce__(self):
        raise KeyboardInterrupt("power cut")


scratch_folder = tempfile.TemporaryDirectory(prefix="ps06-")  # deleted, with what it holds, when the kernel stops
scratch = Path(scratch_folder.name)
last_good = scratch / "demo" / "last.pt"
last_good.parent.mkdir(parents=True)
torch.save({"weights": straight.model.state_dict()}, last_good)
print(f"the last good checkpoint: {last_good.stat().st_size} bytes")
try:
    torch.save({"weights": straight.model.state_dict(), "stop": PowerCut()}, last_good)
except KeyboardInterrupt:
    print(f"after a save cut short: {last_good.stat().st_size} bytes")
try:
    torch.load(last_good, weights_only=True)
except RuntimeError as error:
    print(f"loading it: RuntimeError: {str(error).split(':')[0]}")

# %% [markdown]
# The fix is an **atomic write**: the checkpoint at `path` is always either the old one or the new
# one, complete.
#
# 1. Write to a temporary file in the **same folder** (a rename is atomic only within one file system).
# 2. `f.flush()` then `os.fsync(f.fileno())`: the bytes are on the disk, not in a cache, before the next step.
# 3. `os.replace(temp, path)`: one atomic rename, on Linux, macOS and Windows. Readers see the old
#    file or the new one, never a mix. If anything failed before, delete the temporary file and let
#    the error propagate: the caller must know the checkpoint was not written.
#
# (To survive a power loss, the rename itself must reach the disk too: on Linux, `os.fsync` a
# descriptor of the folder.)
#
# **Task 1.** Write `save_checkpoint(path, *, model, optimizer=None, scheduler=None, epoch=0, extra=None)`.
# It writes to `path` everything `load_checkpoint` (Task 2) will need:
#
# - **R1.1** the model's state, `model.state_dict()` (its buffers too, such as BatchNorm's running statistics);
# - **R1.2** the optimizer's state, `optimizer.state_dict()`, when an optimizer is given;
# - **R1.3** the scheduler's state, `scheduler.state_dict()`, when a scheduler is given;
# - **R1.4** `optimizer` and `scheduler` may be omitted (`None`): the checkpoint then holds the rest;
# - **R1.5** `epoch`, the number of epochs done;
# - **R1.6** torch's RNG state;
# - **R1.7** numpy's RNG state;
# - **R1.8** Python's RNG state;
# - **R1.9** CUDA's RNG states only when `torch.cuda.is_available()` (without CUDA, asking for them raises);
# - **R1.10** `extra`: a dict of anything else the run needs back, such as the loss history, its plain values
#   saved as they are;
# - **R1.11** a `torch.Generator` in `extra` (a loader's, to shuffle alike after resuming) saved as its state,
#   `generator.get_state()`;
# - **R1.12** `extra` may be omitted (`None`);
# - **R1.13** the file opens with plain `torch.load(path, weights_only=True)`, without allowing any other
#   class (`safe_globals`): anyone can then load it safely (store numpy's state as plain lists and numbers);
# - **R1.14** the folders above `path` are created when they are missing;
# - **R1.15** the write is atomic: if writing fails, what was at `path` stays as it was;
# - **R1.16** if writing fails, the error propagates to the caller;
# - **R1.17** nothing but the checkpoint is left beside `path`: no temporary file, after a save or a failed one.
#
# Write the atomic part as a small helper that writes any object: the adapter files of Task 4 can use
# it too.

# %% nbgrader={"grade_id": "save_checkpoint", "solution": true}
def save_checkpoint(path, *, model, optimizer=None, scheduler=None, epoch=0, extra=None):
    """Write everything a run needs to resume to `path`, atomically, creating its folder."""
    ### BEGIN SOLUTION
    extra = dict(extra or {})
    generators = {name: extra.pop(name).get_state() for name in list(extra)
                  if isinstance(extra[name], torch.Generator)}
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "epoch": epoch,
        "extra": extra,
        "generators": generators,
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
                "python": random.getstate()},
    }
    write_atomically(state, path)


def write_atomically(obj, path):
    """torch.save(obj, path), leaving at `path` either what was there or all of obj, never part of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with open(temp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_save_checkpoint", "points": 1}
# Visible test: one epoch on small blobs, saved into folders that do not exist yet.
x_blobs, y_blobs = make_blobs(n=96, n_classes=3, seed=4)


def blob_run(seed):
    """Fresh objects of a small run: an MLP with Dropout, Adam, a cosine schedule, a shuffling loader."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = make_loader(x_blobs, y_blobs, batch_size=16, shuffle=True, seed=seed)
    return model, loader, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)


model, loader, opt, sched = blob_run(seed=0)
run_epoch(model, loader, nn.functional.cross_entropy, opt)
sched.step()
target = scratch / "runs" / "blobs" / "epoch_0001.pt"
save_checkpoint(target, model=model, optimizer=opt, scheduler=sched, epoch=1,
                extra={"loader": loader.generator, "note": "blobs"})
assert target.exists(), f"save_checkpoint should create {target}, and the folders above it"
others = sorted(p.name for p in target.parent.iterdir() if p != target)
assert not others, f"save_checkpoint left other files beside the checkpoint: {others}"
for file in [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file()):
    try:
        torch.load(file, weights_only=True)
    except Exception as refusal:
        raise AssertionError(f"torch.load(..., weights_only=True) refuses {file.name} ({type(refusal).__name__}): store "
                             f"numpy's RNG state as plain lists and numbers, and a torch.Generator as its "
                             f"get_state()") from None
print(f"saved {target.relative_to(scratch)}; it opens with weights_only=True")

# %% [markdown]
# ## 2. Loading: safely, and with errors that say what is wrong
#
# A pickle is a small program: unpickling can call any function the file names. With
# `weights_only=False`, loading a checkpoint someone else made (a download, a shared folder) runs
# whatever they put in it, with all your rights. Here the hidden call only prints:

# %% nbgrader={"grade_id": "demo_unsafe_pickle", "locked": true}
class Surprise:
    """Unpickles as a call to print: it could as well be os.system."""

    def __reduce__(self):
        return print, ("  >>> this line was printed by the file, while it loaded <<<",)


booby_trapped = scratch / "demo" / "download.pt"
torch.save({"weights": straight.model.state_dict(), "bonus": Surprise()}, booby_trapped)
print("weights_only=False:")
torch.load(booby_trapped, weights_only=False)
print("weights_only=True:")
try:
    torch.load(booby_trapped, weights_only=True)
except pickle.UnpicklingError as error:
    print(f"  UnpicklingError: {refusal(error)}")

# %% [markdown]
# A checkpoint can also be missing (a typo in a path) or broken (a copy cut short, a save that was
# not atomic). `torch.load` tells the first well and the second badly:

# %% nbgrader={"grade_id": "demo_broken_files", "locked": true}
cut_short = scratch / "demo" / "cut_short.pt"
torch.save({"weights": straight.model.state_dict()}, cut_short)
cut_short.write_bytes(cut_short.read_bytes()[:cut_short.stat().st_size // 2])
for name, file in [("missing", scratch / "demo" / "typo.pt"), ("cut short", cut_short)]:
    try:
        torch.load(file, weights_only=True)
    except Exception as failure:
        print(f"{name:>9}: {type(failure).__name__}: {failure}")

# %% [markdown]
# "Invalid argument" names no file and says nothing of what is wrong with it. `load_checkpoint`
# should raise errors a person can act on:
#
# | the file at `path` | `load_checkpoint` raises |
# |---|---|
# | does not exist | `FileNotFoundError`, naming the path |
# | is cut short, corrupt, or holds objects `weights_only=True` refuses | `ValueError`, naming the path, from the original error (`raise ... from error`) |
#
# Careful: the type of the error depends on the cause, and none of them says "checkpoint". A missing
# file raises `FileNotFoundError`, an `OSError`. A file cut short raises whatever the reader trips on
# where the cut is: compare the demo just above with the power-cut demo of Task 1's section. A
# refused object raises `pickle.UnpicklingError` (the booby-trapped file above). So an
# `except OSError` meant for broken files catches missing ones and misses others: check
# `path.exists()` first, then turn whatever `torch.load` raises into your `ValueError`.
#
# **Task 2.** Write `load_checkpoint(path, *, model, optimizer=None, scheduler=None, map_location="cpu") -> dict`:
#
# - **R2.1** it reads `path` with `torch.load(..., weights_only=True)`: a file that carries code is refused,
#   and that code never runs;
# - **R2.2** the tensors go where `map_location` says (`"cpu"` by default): pass it on to `torch.load`;
# - **R2.3** a `path` that does not exist raises `FileNotFoundError`;
# - **R2.4** whose message names the path;
# - **R2.5** a file that is cut short, corrupt, or holds objects `weights_only=True` refuses raises `ValueError`;
# - **R2.6** whose message names the path;
# - **R2.7** raised from the original error (`raise ... from error`), so that its traceback shows both;
# - **R2.8** it loads the saved state into `model`;
# - **R2.9** and into `optimizer`, when one is given;
# - **R2.10** and into `scheduler`, when one is given;
# - **R2.11** `optimizer` and `scheduler` may be omitted (`None`);
# - **R2.12** it restores torch's RNG state;
# - **R2.13** numpy's RNG state;
# - **R2.14** and Python's RNG state;
# - **R2.15** it returns a dict, `{"epoch": epoch, "extra": extra}`: the epoch saved;
# - **R2.16** and the `extra` dict saved, its plain values as they were saved;
# - **R2.17** with each `torch.Generator` of `extra` given back as its state (a CPU tensor). The caller puts
#   it back into its own generator: `loader.generator.set_state(...)`.
#
# On a machine with CUDA, also restore CUDA's RNG states when `torch.cuda.is_available()`, and move every
# RNG state to the CPU before restoring it (the device trap above, under "Saving random states"). The grader runs on a CPU,
# where neither shows.

# %% nbgrader={"grade_id": "load_checkpoint", "solution": true}
def load_checkpoint(path, *, model, optimizer=None, scheduler=None, map_location="cpu"):
    """Restore what save_checkpoint wrote into these objects and the global RNGs; returns its epoch and extra."""
    ### BEGIN SOLUTION
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}): it is cut short or "
                         f"corrupt, or holds objects that weights_only=True refuses") from error
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(rng["python"])
    extra = {**state["extra"], **{name: s.cpu() for name, s in state["generators"].items()}}
    return {"epoch": state["epoch"], "extra": extra}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_load_checkpoint", "points": 1}
# Visible test: the run of the previous test, saved, then loaded into fresh objects; then a file cut short.
def draws():
    """The next numbers of each global RNG."""
    return {"torch's (torch.get_rng_state)": torch.rand(2).tolist(),
            "numpy's (np.random.get_state)": np.random.rand(2).tolist(),
            "Python's (random.getstate)": random.random()}


save_checkpoint(target, model=model, optimizer=opt, scheduler=sched, epoch=1,
                extra={"loader": loader.generator, "note": "blobs"})
expected = draws()  # what the run that never stopped draws next
model2, loader2, opt2, sched2 = blob_run(seed=1)  # a new process: other weights, other RNG states
np.random.seed(1)
random.seed(1)
resumed = load_checkpoint(target, model=model2, optimizer=opt2, scheduler=sched2)
for rng, numbers in draws().items():
    assert numbers == expected[rng], (
        f"after load_checkpoint, {rng} RNG drew {numbers}, not {expected[rng]} as right after the save: it was not "
        f"restored. Check that save_checkpoint saves it and load_checkpoint puts it back.")
assert isinstance(resumed, dict) and resumed.get("epoch") == 1, f"load_checkpoint should return {{'epoch': 1, ...}}, got {resumed}"
assert isinstance(resumed["extra"], dict) and resumed["extra"].get("note") == "blobs", (
    f"the extra dict should come back as it was saved: extra['note'] is missing ({resumed['extra']})")
assert torch.is_tensor(resumed["extra"].get("loader")) and torch.equal(resumed["extra"]["loader"], loader.generator.get_state()), (
    "extra['loader'] should come back as the generator's state, loader.generator.get_state()")
for (name, p), q in zip(model.named_parameters(), model2.parameters()):
    assert torch.equal(p, q), f"after load_checkpoint, {name} differs from the saved model's"
for p, q in zip(model.parameters(), model2.parameters()):
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert key in opt2.state[q] and torch.equal(opt.state[p][key], opt2.state[q][key]), f"Adam's {key} was not restored"
assert sched2.last_epoch == sched.last_epoch, f"the scheduler's last_epoch is {sched2.last_epoch}, not {sched.last_epoch}"

broken = scratch / "runs" / "broken" / "epoch_0001.pt"
save_checkpoint(broken, model=model, epoch=1)
for file in [broken] if broken.is_file() else sorted(p for p in broken.rglob("*") if p.is_file()):
    file.write_bytes(file.read_bytes()[:file.stat().st_size // 2])  # a copy cut short
try:
    load_checkpoint(broken, model=model2)
except Exception as raised:
    failure = raised
else:
    raise AssertionError(f"load_checkpoint returned normally for {broken}, a file cut short: it should raise ValueError")
assert isinstance(failure, ValueError), (
    f"for a file cut short, load_checkpoint raised {type(failure).__name__} ({failure}), not ValueError: catch what "
    f"torch.load raises and raise a ValueError that says what is wrong with the file")
assert str(broken) in str(failure), f"the ValueError for a file cut short should name the file {broken}: {failure}"
assert failure.__cause__ is not None, (
    "the ValueError for a file cut short should be raised from torch.load's error (raise ValueError(...) from error), "
    "so that its traceback shows what torch.load found; here __cause__ is None")
print("weights, Adam's state, the schedule, epoch, extra and all three RNGs restored; a broken file reported")

# %% nbgrader={"grade": true, "grade_id": "audit_roundtrip", "points": 3}
# Hidden audit (3 points): on a hidden model with BatchNorm, saved with and without the optional
# arguments and loaded into fresh objects: every state, the epoch, extra and each RNG come back.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.roundtrip")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_atomic_save", "points": 2}
# Hidden audit (2 points): the disk fills up halfway through a save; the previous checkpoint must
# still load, unchanged, the error must reach the caller, and no temporary file may be left behind.
# Folders are created as needed.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.atomic_save")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_unsafe_pickle", "points": 2}
# Hidden audit (2 points): a checkpoint carrying a pickled function call is refused with ValueError,
# and the call never runs.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.unsafe_pickle")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_missing_file", "points": 1}
# Hidden audit (1 point): loading a path that does not exist raises FileNotFoundError naming it.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.missing_file")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_corrupt_file", "points": 1}
# Hidden audit (1 point): loading a checkpoint cut off halfway raises ValueError naming the file,
# raised from torch.load's error.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.corrupt_file")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. A checkpoint every few epochs, and resuming from the latest
#
# A training script saves a checkpoint every `every` epochs, and when it starts, it looks for the
# latest one and carries on from there. Run it again after a crash and it simply continues; run it
# again after it finished and it has nothing left to do. Checkpoints are named by the number of
# epochs done, zero-padded so that sorting the names sorts the epochs: `checkpoint_path(ckpt_dir, 10)`,
# given with Task 3, is `ckpt_dir/epoch_0010.pt`, which sorts after `epoch_0009.pt`, where
# `epoch_10.pt` would sort before `epoch_9.pt`.
#
# A crash in the middle of epoch 6 with `every=2` loses epoch 5 and part of 6: the resumed run
# loads `epoch_0004.pt` and trains epochs 5 and 6 again, drawing exactly what the first attempt
# drew, so the result is the same as if nothing had happened.
#
# **Task 3.** Write `train(model, loader, loss_fn, optimizer, scheduler, *, epochs, ckpt_dir, every=1) -> list[float]`:
#
# - **R3.1** if `ckpt_dir` holds checkpoints, it loads the latest (the most epochs done) into the objects
#   given, and carries on from there;
# - **R3.2** `ckpt_dir` may not exist yet: then it starts from scratch;
# - **R3.3** it trains until `epochs` epochs are done **in all**: a run resumed after 4 of 10 trains 6 more,
#   and a finished run none;
# - **R3.4** each epoch is `run_epoch(model, loader, loss_fn, optimizer)`, then `scheduler.step()`, in that order;
# - **R3.5** it saves a checkpoint after each epoch whose number is a multiple of `every`;
# - **R3.6** and after the last one, whatever `every` is;
# - **R3.7** each to `checkpoint_path(ckpt_dir, epochs_done)`, saving the number of epochs done as its epoch;
# - **R3.8** with the history in it;
# - **R3.9** and `loader.generator` (the loader shuffles with its own generator);
# - **R3.10** after loading a checkpoint, it puts the saved state back into `loader.generator`;
# - **R3.11** it returns the history, a list of every epoch's loss as `run_epoch` returned it;
# - **R3.12** from the first epoch of the run, including those before a resume.

# %% nbgrader={"grade_id": "train", "solution": true}
def checkpoint_path(ckpt_dir, epoch):
    """Where train saves the checkpoint taken after `epoch` epochs."""
    return Path(ckpt_dir) / f"epoch_{epoch:04d}.pt"


def train(model, loader, loss_fn, optimizer, scheduler, *, epochs, ckpt_dir, every=1):
    """Train until `epochs` epochs are done in all, resuming from the latest checkpoint in ckpt_dir; returns the history."""
    ### BEGIN SOLUTION
    done, history = 0, []
    saved = sorted(Path(ckpt_dir).glob("epoch_*.pt"))
    if saved:
        resumed = load_checkpoint(saved[-1], model=model, optimizer=optimizer, scheduler=scheduler)
        done, history = resumed["epoch"], resumed["extra"]["history"]
        loader.generator.set_state(resumed["extra"]["loader"])
    while done < epochs:
        history.append(run_epoch(model, loader, loss_fn, optimizer))
        scheduler.step()
        done += 1
        if done % every == 0 or done == epochs:
            save_checkpoint(checkpoint_path(ckpt_dir, done), model=model, optimizer=optimizer, scheduler=scheduler,
                            epoch=done, extra={"history": history, "loader": loader.generator})
    return history
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_train", "points": 2}
# Visible test: 5 epochs straight, against 2 epochs, then fresh objects and train(..., epochs=5) again.
def blob_train(seed, epochs, ckpt_dir):
    """train(...) with fresh objects of blob_run(seed), a checkpoint every 2 epochs; returns (model, history)."""
    model, loader, opt, sched = blob_run(seed)
    history = train(model, loader, nn.functional.cross_entropy, opt, sched, epochs=epochs, ckpt_dir=ckpt_dir, every=2)
    return model, history


straight_model, straight_history = blob_train(0, 5, scratch / "straight")
saved = sorted(p.name for p in (scratch / "straight").glob("epoch_*.pt"))
assert saved == ["epoch_0002.pt", "epoch_0004.pt", "epoch_0005.pt"], (
    f"with every=2, 5 epochs should leave epoch_0002.pt, epoch_0004.pt and epoch_0005.pt, not {saved}: a checkpoint "
    f"after every 2nd epoch and one after the last, or a finished run restarted would train its last epoch again")
assert isinstance(straight_history, list) and len(straight_history) == 5 and all(
    isinstance(v, float) for v in straight_history), f"train should return a list of 5 floats, one loss per epoch, got {straight_history}"
blob_train(0, 2, scratch / "stopped")
# A new process: other weights and RNG states until train resumes from epoch_0002.pt.
resumed_model, resumed_history = blob_train(7, 5, scratch / "stopped")
assert resumed_history == straight_history, (
    f"the resumed run's history {resumed_history} differs from the straight run's {straight_history}")
for (name, p), q in zip(straight_model.named_parameters(), resumed_model.parameters()):
    assert torch.equal(p, q), (
        f"after resuming, {name} differs from the straight run's by {(p - q).abs().max().item():.3g}: some state was "
        f"not saved or not restored (the optimizer's, the schedule's, an RNG's, the loader's generator's?)")
print("2 epochs + resume + 3 epochs = 5 epochs straight, bit for bit")

# %% nbgrader={"grade": true, "grade_id": "audit_resume_equality", "points": 3}
# Hidden audit (3 points): for hidden epochs and every, train stopped twice mid-epoch and restarted
# with fresh objects ends with every weight torch.equal to, and the same history as, a run that
# never stopped; with Adam, a cosine schedule, Dropout, a shuffling loader and augmentation drawn
# from numpy and Python's random.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.resume_equality")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_resume_optimizer", "points": 1}
# Hidden audit (1 point): after the restart, Adam's state is the one of the run that never stopped.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.resume_optimizer")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_resume_scheduler", "points": 1}
# Hidden audit (1 point): after the restart, the schedule is where the run that never stopped had it.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.resume_scheduler")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_resume_rng", "points": 2}
# Hidden audit (2 points): after the restart, Dropout and the augmentation draw what they drew in the
# run that never stopped (torch's, numpy's and Python's RNGs).
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.resume_rng")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_resume_shuffle", "points": 1}
# Hidden audit (1 point): after the restart, the loader visits the samples in the same order.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.resume_shuffle")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_resume_latest", "points": 2}
# Hidden audit (2 points): checkpoints after the right epochs; each restart resumes from the latest
# and trains exactly the epochs left; a finished run restarted trains nothing.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.resume_latest")
### END HIDDEN TESTS

# %% [markdown]
# ## See it: a run stopped three times
#
# The digit classifier, 8 epochs with a checkpoint every 2, straight through; and again, stopped
# in the middle of epochs 3, 6 and 7 (the loss raises `Preempted`, as a job killed by its cluster
# would stop) and restarted each time, as the same script run again (fresh objects, RNGs seeded as
# at the start).

# %% nbgrader={"grade_id": "demo_stopped_run", "locked": true}
class Preempted(Exception):
    """The job was stopped."""


class StopAt:
    """Cross-entropy that raises Preempted at its `at`-th call (counted from 0)."""

    def __init__(self, at=None):
        self.at, self.calls = at, 0

    def __call__(self, output, target):
        if self.calls == self.at:
            raise Preempted(f"stopped at batch {self.calls}")
        self.calls += 1
        return nn.functional.cross_entropy(output, target)


def digits_run():
    """Fresh objects for 8 epochs on the digits, as the same script makes them each time it starts."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = make_loader(x_train, y_train, batch_size=64, shuffle=True, seed=0)
    return model, loader, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)


def digits_train(stop_at, ckpt_dir):
    """The training script: train(...) for 8 epochs with fresh objects, stopped at batch `stop_at`."""
    model, loader, opt, sched = digits_run()
    return model, train(model, loader, StopAt(stop_at), opt, sched, epochs=8, ckpt_dir=ckpt_dir, every=2)


model_a, history_a = digits_train(None, scratch / "digits_straight")
batches = len(make_loader(x_train, y_train, batch_size=64))
stops = [2 * batches + 5, 3 * batches + 9, 2 * batches + 3]  # batches into each attempt: in epochs 3, 6 and 7
for attempt, at in enumerate(stops + [None], start=1):
    try:
        model_b, history_b = digits_train(at, scratch / "digits_stopped")
    except Preempted as stop:
        done = sorted(p.name for p in (scratch / "digits_stopped").glob("epoch_*.pt"))
        print(f"attempt {attempt}: {stop}; checkpoints so far: {', '.join(done)}")
gap = max((p - q).abs().max().item() for p, q in zip(model_a.parameters(), model_b.parameters()))
print(f"attempt {attempt}: finished. Largest weight difference to the straight run: {gap}; "
      f"same history: {history_a == history_b}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(range(1, 9), history_a, marker="o", label="straight through", linewidth=4, alpha=0.4)
ax.plot(range(1, 9), history_b, marker=".", color="k", label="stopped 3 times, resumed")
for epoch in (3, 6, 7):
    ax.axvline(epoch, color="C3", linestyle=":", alpha=0.6)
ax.set(xlabel="epoch", ylabel="training loss", title="Stopped in epochs 3, 6 and 7 (dotted): the same run")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Adapter checkpoints: saving only what changed
#
# Fine-tuning a large pretrained model often trains a small **adapter** and leaves the original
# weights frozen. LoRA adds to a frozen `nn.Linear` a low-rank update, `x @ A.T @ B.T`, with `A` of
# shape `(rank, in)` and `B` of shape `(out, rank)`: few parameters, and `B` starts at zero, so the
# adapted model starts as the original. The checkpoint of a fine-tuning run then needs only the
# adapter: the frozen weights come from the pretrained model, which everyone has already.
#
# Below, the digit classifier trained in the first section is adapted to digits seen in a mirror, with an
# adapter of rank 2 on both of its `Linear` layers.

# %% nbgrader={"grade_id": "demo_adapter", "locked": true}
class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: base(x) + x @ lora_a.T @ lora_b.T."""

    def __init__(self, base, rank):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features ** 0.5)
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))  # starts as no change at all

    def forward(self, x):
        return self.base(x) + x @ self.lora_a.T @ self.lora_b.T


def with_adapters(model, layers, rank=2):
    """A copy of the nn.Sequential `model`, all frozen, with the Linear layers at indices `layers` adapted."""
    adapted = copy.deepcopy(model).requires_grad_(False)
    for i in layers:
        adapted[i] = LoRALinear(adapted[i], rank)
    return adapted


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def mirrored(x):
    return x.reshape(-1, 8, 8).flip(-1).reshape(-1, 64)


pretrained = straight.model  # the first section's classifier, 6 epochs on the digits
torch.manual_seed(0)
adapted = with_adapters(pretrained, [0, 3])
adapter_opt = torch.optim.Adam([p for p in adapted.parameters() if p.requires_grad], lr=1e-2)
mirror_loader = make_loader(mirrored(x_train), y_train, batch_size=64, shuffle=True, seed=0)
for _ in tqdm(range(8), desc="adapter epochs", leave=False):
    run_epoch(adapted, mirror_loader, nn.functional.cross_entropy, adapter_opt)

full_file, adapter_file = scratch / "adapter" / "full.pt", scratch / "adapter" / "lora.pt"
full_file.parent.mkdir()
torch.save(adapted.state_dict(), full_file)
torch.save({n: p for n, p in adapted.named_parameters() if p.requires_grad}, adapter_file)
print("| | parameters | file | accuracy on mirrored digits |\n|---|---|---|---|")
print(f"| the classifier | {sum(p.numel() for p in pretrained.parameters())} | | {accuracy(pretrained, mirrored(x_val), y_val):.3f} |")
print(f"| with the adapter: all of it | {sum(p.numel() for p in adapted.parameters())} | "
      f"{full_file.stat().st_size / 1024:.0f} KiB | {accuracy(adapted, mirrored(x_val), y_val):.3f} |")
print(f"| the adapter alone | {sum(p.numel() for p in adapted.parameters() if p.requires_grad)} | "
      f"{adapter_file.stat().st_size / 1024:.0f} KiB | |")

# %% [markdown]
# Loading an adapter into the classifier adapted afresh takes `load_state_dict(adapter, strict=False)`:
# the file lacks the frozen weights, and `strict=True` would refuse it. But `strict=False` also
# accepts a file whose names match **nothing**, and only reports it in the object it returns, next
# to the long list of frozen weights that are "missing" as expected. Below, the same adapted model
# wrapped in one more `nn.Sequential` (every name gains a prefix `0.`, as `nn.DataParallel` adds
# `module.`) "loads" the adapter without an error, and is still the unadapted classifier:

# %% nbgrader={"grade_id": "demo_strict_false", "locked": true}
wrapped = nn.Sequential(with_adapters(pretrained, [0, 3]))
report = wrapped.load_state_dict(torch.load(adapter_file, weights_only=True), strict=False)
print(f"missing: {len(report.missing_keys)} names, e.g. {report.missing_keys[:3]}")
print(f"unexpected: {report.unexpected_keys}")
print(f"accuracy on mirrored digits: {accuracy(wrapped, mirrored(x_val), y_val):.3f}: the adapter did not load")

# %% [markdown]
# **Task 4.** Write the two functions of adapter checkpoints. The adapter of a model is its
# **trainable** parameters (`requires_grad=True`), by name.
#
# - **R4.1** `save_adapter(path, model)` saves to the file `path` the adapter's tensors, `{name: tensor}`, and
#   nothing else (no frozen weight), in a file that opens with `torch.load(path, weights_only=True)`;
# - **R4.2** creating the folders above `path` when they are missing.
#
# `load_adapter(path, model, *, strict=True) -> dict` returns `{"missing": [...], "unexpected": [...]}`,
# each a list (or tuple) of names, in any order:
#
# - **R4.3** `"missing"`: the names of the model's trainable parameters that the file lacks (frozen weights
#   are never missing);
# - **R4.4** `"unexpected"`: the names of the file's tensors that are not trainable parameters of the model
#   (a frozen weight among them too);
# - **R4.5** if either list is not empty and `strict` is true, it raises a `ValueError`;
# - **R4.6** naming every one of the mismatched names;
# - **R4.7** and leaves the model unchanged;
# - **R4.8** otherwise it loads into the model the tensors whose names match;
# - **R4.9** and changes nothing else: no frozen weight, even one the file holds;
# - **R4.10** and returns the two lists: with `strict=False`, a mismatch never raises.

# %% nbgrader={"grade_id": "adapter", "solution": true}
def save_adapter(path, model):
    """Save `model`'s trainable parameters, by name, to the file `path`."""
    ### BEGIN SOLUTION
    write_atomically({name: p.detach() for name, p in model.named_parameters() if p.requires_grad}, path)
    ### END SOLUTION


def load_adapter(path, model, *, strict=True):
    """Load an adapter saved by save_adapter into `model`; returns the missing and unexpected names, raising if strict."""
    ### BEGIN SOLUTION
    tensors = torch.load(path, map_location="cpu", weights_only=True)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    mismatch = {"missing": sorted(trainable - tensors.keys()), "unexpected": sorted(tensors.keys() - trainable)}
    if strict and (mismatch["missing"] or mismatch["unexpected"]):
        raise ValueError(f"the adapter in {path} does not fit the model: missing {mismatch['missing']}, "
                         f"unexpected {mismatch['unexpected']}")
    model.load_state_dict({name: t for name, t in tensors.items() if name in trainable}, strict=False)
    return mismatch
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_adapter", "points": 1}
# Visible test: the mirrored-digits adapter saved, then loaded into the classifier adapted afresh,
# and into a model adapted on its first layer only.
save_adapter(scratch / "adapters" / "mirror.pt", adapted)
names = sorted(torch.load(scratch / "adapters" / "mirror.pt", weights_only=True))
assert names == ["0.lora_a", "0.lora_b", "3.lora_a", "3.lora_b"], f"the adapter file should hold the 4 LoRA tensors, not {names}"
fresh = with_adapters(pretrained, [0, 3])

def names_of(result):
    """The two lists load_adapter returned, sorted (any order and any sequence will do)."""
    assert isinstance(result, dict) and {"missing", "unexpected"} <= set(result), (
        f"load_adapter should return {{'missing': [...], 'unexpected': [...]}}, not {result!r}")
    return {key: sorted(result[key]) for key in ("missing", "unexpected")}


assert names_of(load_adapter(scratch / "adapters" / "mirror.pt", fresh)) == {"missing": [], "unexpected": []}
assert accuracy(fresh, mirrored(x_val), y_val) == accuracy(adapted, mirrored(x_val), y_val), "the loaded adapter should give the same model"
first_only = with_adapters(pretrained, [0])
try:
    load_adapter(scratch / "adapters" / "mirror.pt", first_only)
except ValueError as error:
    assert "3.lora_a" in str(error) and "3.lora_b" in str(error), f"the error should name 3.lora_a and 3.lora_b: {error}"
else:
    raise AssertionError("load_adapter(strict=True) should raise ValueError: the file holds 3.lora_a and 3.lora_b, "
                         "which the model lacks")
mismatch = names_of(load_adapter(scratch / "adapters" / "mirror.pt", first_only, strict=False))
assert mismatch == {"missing": [], "unexpected": ["3.lora_a", "3.lora_b"]}, f"strict=False returned {mismatch}"
assert torch.equal(first_only[0].lora_b, adapted[0].lora_b), "with strict=False, the matching 0.lora_* should load"
print("adapter saved (4 tensors), loaded, and a mismatch reported")

# %% nbgrader={"grade": true, "grade_id": "audit_adapter_roundtrip", "points": 1}
# Hidden audit (1 point): on a hidden adapted MLP, the file holds exactly the adapter, and loading it
# restores the adapter and touches nothing else.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.adapter_roundtrip")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "audit_adapter_keys", "points": 2}
# Hidden audit (2 points): an adapter saved for other layers is refused with every mismatched name
# when strict, and reported exactly (no frozen weight among the missing) when not; a whole state_dict
# given as an adapter reports its frozen weights as unexpected, and loads none of them.
### BEGIN HIDDEN TESTS
from autograder import audit
audit("ps06.adapter_keys")
### END HIDDEN TESTS
