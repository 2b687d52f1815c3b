"""Hidden audit checks for ps06_checkpointing.

Saving and loading run on a small MLP with Adam and a schedule, on checkpoints as the student's code
writes them (one file, or a folder of files): a second save into the same path stopped by a full
disk (a file-size limit at half the largest file of the first save); a checkpoint rewritten with a
pickled call to os.mkdir inside; a path that does not exist; every file of a checkpoint cut to half.

Resuming: `train` runs a model with Dropout, Adam, a CosineAnnealingLR and a shuffling DataLoader
over data augmented from numpy's and Python's RNGs: straight through; then stopped in the middle of
an epoch (the loss raises Preempted, as a killed job stops), restarted with fresh objects and other
global RNG states, as a new process would be, stopped again, restarted, and restarted once more after
it has finished. The loss records at every training step what the step depends on. Each resume judge
compares one piece at the first restart (which resumes from a checkpoint the straight run also
wrote) with the straight run at the step that started from the same weights; resume_equality
compares the final weights and histories, and names the first piece that differed.

Adapters: LoRA-style low-rank updates on two of the three Linear layers of a frozen MLP.
"""
import copy
import os
import random
import resource
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.utils.data import DataLoader, Dataset

from autograder.audit import AuditFailure, Check
from autograder.instrument import describe, params
from autograder.judging import close, exact, require_float
from autograder.problems import blobs, mlp


def files(path: Path) -> list[Path]:
    """The files of a checkpoint: `path`, or every file under it if it is a folder."""
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def outcome(call, keep=describe) -> dict:
    """What `call()` returned (through `keep`), or what it raised."""
    try:
        return {"returned": keep(call())}
    except Exception as e:
        return {"raised": type(e).__name__, "message": str(e), "not_found": isinstance(e, FileNotFoundError),
                "value_error": isinstance(e, ValueError), "chained": e.__cause__ is not None}


# -----------------------------------------------------------------------------
# saving and loading

def save_case(seed: int, trained: bool = True) -> tuple[nn.Module, torch.optim.Optimizer, CosineAnnealingLR]:
    """A small MLP with Adam and a cosine schedule; `trained`: one step taken, so that Adam has state."""
    model = mlp(seed, [8, 64, 64, 4])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = CosineAnnealingLR(optimizer, T_max=10)
    if trained:
        step(model, optimizer, scheduler, seed)
    return model, optimizer, scheduler


def step(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, seed: int) -> None:
    x, y = blobs(seed + 11, 16, 8, 4)
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    scheduler.step()


def reload(fns: dict, seed: int, path: Path) -> dict:
    """What load_checkpoint restores from `path` into fresh objects: the epoch and the weights, or its error."""
    model, optimizer, scheduler = save_case(seed + 1, trained=False)
    try:
        got = fns["load_checkpoint"](path, model=model, optimizer=optimizer, scheduler=scheduler)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    return {"epoch": describe(got.get("epoch") if isinstance(got, dict) else got),
            "weights": params(model.named_parameters())}


@contextmanager
def disk_full_at(limit: int):
    """Writing past `limit` bytes of any file fails with an OSError (EFBIG), as on a full disk.

    Meanwhile stdout and stderr go to /dev/null: the limit is the process's, and the runner's log
    is a file longer than it, so a print (a student's "not saved" message) would fail too and pass
    for the save's own error."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    kept = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the process is killed, not told
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # what a student's code left in a stream must not fail the check
                pass
        for fd, saved in zip((1, 2), kept):
            os.dup2(saved, fd)
            os.close(saved)


def beside(path: Path) -> list[str]:
    """What else than the checkpoint its folder holds."""
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def collect_atomic(fns: dict, seed: int) -> dict:
    model, optimizer, scheduler = save_case(seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs" / f"run{seed}" / "last.pt"
        fns["save_checkpoint"](path, model=model, optimizer=optimizer, scheduler=scheduler, epoch=1)
        rec = {"created": path.exists()}
        if not rec["created"]:
            return rec
        rec["beside_saved"] = beside(path)
        rec["first"] = reload(fns, seed, path)
        largest = max(f.stat().st_size for f in files(path))
        step(model, optimizer, scheduler, seed)
        with disk_full_at(largest // 2):
            try:
                fns["save_checkpoint"](path, model=model, optimizer=optimizer, scheduler=scheduler, epoch=2)
                rec["raised"] = False
            except Exception:
                rec["raised"] = True
        rec["beside_failed"] = beside(path)
        rec["after"] = reload(fns, seed, path)
    return rec


def judge_atomic(rec: dict, seed: int) -> None:
    if not rec["created"]:
        raise AuditFailure("save_checkpoint(path, ...) did not create path, whose folders did not exist yet: create "
                           "them first (path.parent.mkdir(parents=True, exist_ok=True)).")
    first, after = rec["first"], rec["after"]
    if "error" in first:
        raise AuditFailure(f"load_checkpoint could not read the checkpoint that save_checkpoint had just written: "
                           f"{first['error']}")
    if "error" in after:
        raise AuditFailure(f"A save interrupted halfway (the disk filled up) destroyed the previous checkpoint: "
                           f"load_checkpoint(path) then raised {after['error']}. torch.save(state, path) empties path "
                           f"before it writes; write to a temporary file in the same folder, flush and os.fsync it, then "
                           f"os.replace(temp, path): the old checkpoint stays until the new one is complete.")
    if not (exact(after["epoch"], first["epoch"]) and exact(after["weights"], first["weights"])):
        raise AuditFailure("After a save interrupted halfway (the disk filled up), path no longer held the previous "
                           "checkpoint: os.replace the temporary file into place only once it is completely written.")
    if not rec["raised"]:
        raise AuditFailure("The disk filled up halfway through save_checkpoint, and it returned as if it had saved: let "
                           "the error propagate, so that the caller knows the checkpoint was not written.")
    if rec["beside_saved"]:
        raise AuditFailure(f"After a save, save_checkpoint left {rec['beside_saved']} beside the checkpoint: leave "
                           f"nothing but the checkpoint in its folder.")
    if rec["beside_failed"]:
        raise AuditFailure(f"After a save that failed halfway (the disk filled up), save_checkpoint left "
                           f"{rec['beside_failed']} beside the checkpoint: when writing fails, delete the temporary "
                           f"file before the error propagates (try/finally).")


class Payload:
    """Unpickles as os.mkdir(marker): code that loading a checkpoint with weights_only=False runs."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def plant(file: Path, marker: Path) -> None:
    """Rewrite a checkpoint file with a Payload inside, as a tampered download would be."""
    try:
        content = torch.load(file, weights_only=True)
    except Exception:  # not a torch file: the payload replaces it
        content = None
    payload = {"payload": Payload(marker)}
    torch.save({**payload, **content} if isinstance(content, dict) else {**payload, "content": content}, file)


def collect_unsafe(fns: dict, seed: int) -> dict:
    model, optimizer, scheduler = save_case(seed)
    fresh, fresh_optimizer, fresh_scheduler = save_case(seed + 1, trained=False)
    with tempfile.TemporaryDirectory() as folder:
        path, marker = Path(folder) / "shared" / "ckpt.pt", Path(folder) / "payload-ran"
        fns["save_checkpoint"](path, model=model, optimizer=optimizer, scheduler=scheduler, epoch=3)
        for file in files(path):
            plant(file, marker)
        rec = outcome(lambda: fns["load_checkpoint"](path, model=fresh, optimizer=fresh_optimizer,
                                                     scheduler=fresh_scheduler))
        rec["ran"] = marker.exists()
    return rec


def judge_unsafe(rec: dict, seed: int) -> None:
    if rec["ran"]:
        raise AuditFailure("Loading a checkpoint ran code hidden in it: the audit added to your checkpoint a pickled "
                           "call to os.mkdir, and load_checkpoint made that folder. torch.load(..., weights_only=False) "
                           "runs any function a file names, so a checkpoint from anyone else could do anything you can. "
                           "Load with weights_only=True.")
    if "returned" in rec:
        raise AuditFailure("load_checkpoint returned normally for a checkpoint holding a pickled function call, which "
                           "torch.load(weights_only=True) refuses: raise an error (do not fall back to "
                           "weights_only=False, and do not ignore it).")
    if not rec["value_error"]:
        raise AuditFailure(f"For a checkpoint holding a pickled function call, which torch.load(weights_only=True) "
                           f"refuses, load_checkpoint raised {rec['raised']} ({rec['message'][:160]!r}), not ValueError: "
                           f"a file holding objects that weights_only=True refuses is a broken checkpoint too. Look at "
                           f"which errors your load_checkpoint turns into ValueError.")


def collect_missing(fns: dict, seed: int) -> dict:
    model, optimizer, scheduler = save_case(seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs" / f"epoch_{seed:04d}.pt"
        rec = outcome(lambda: fns["load_checkpoint"](path, model=model, optimizer=optimizer, scheduler=scheduler))
    return {**rec, "path": str(path)}


def judge_missing(rec: dict, seed: int) -> None:
    path = rec["path"]
    if "returned" in rec:
        raise AuditFailure(f"load_checkpoint({path!r}) returned a {rec['returned']['type']} for a file that does not "
                           f"exist: raise FileNotFoundError naming the path. A mistyped path must not quietly start "
                           f"training from scratch.")
    if not rec["not_found"]:
        raise AuditFailure(f"load_checkpoint raised {rec['raised']} for a file that does not exist "
                           f"({rec['message'][:200]}): raise FileNotFoundError. An `except OSError` meant for broken "
                           f"files also catches FileNotFoundError: check path.exists() first.")
    if path not in rec["message"]:
        raise AuditFailure(f"load_checkpoint raised FileNotFoundError for a missing file, but its message "
                           f"({rec['message'][:200]!r}) does not name the path {path}.")


def collect_corrupt(fns: dict, seed: int) -> dict:
    model, optimizer, scheduler = save_case(seed)
    fresh, fresh_optimizer, fresh_scheduler = save_case(seed + 1, trained=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs" / "epoch_0003.pt"
        fns["save_checkpoint"](path, model=model, optimizer=optimizer, scheduler=scheduler, epoch=3)
        for file in files(path):
            file.write_bytes(file.read_bytes()[:file.stat().st_size // 2])
        rec = outcome(lambda: fns["load_checkpoint"](path, model=fresh, optimizer=fresh_optimizer,
                                                     scheduler=fresh_scheduler))
    return {**rec, "path": str(path)}


def judge_corrupt(rec: dict, seed: int) -> None:
    path = rec["path"]
    if "returned" in rec:
        raise AuditFailure("load_checkpoint returned normally for a checkpoint cut off halfway (as a save that was not "
                           "atomic leaves it): raise an error that names the file.")
    if rec["not_found"]:
        raise AuditFailure(f"load_checkpoint raised {rec['raised']} for a checkpoint that exists but is cut off halfway: "
                           f"that says the file is missing. Raise ValueError naming the path.")
    if not rec["value_error"]:
        raise AuditFailure(f"For a checkpoint cut off halfway, load_checkpoint raised {rec['raised']} "
                           f"({rec['message'][:200]!r}), not ValueError, which does not say which file is broken. Catch "
                           f"the error torch.load raises and raise a ValueError that names the file.")
    if path not in rec["message"]:
        raise AuditFailure(f"For a checkpoint cut off halfway, load_checkpoint raised {rec['raised']}: "
                           f"{rec['message'][:200]!r}, which does not say which file is broken: name the path in the "
                           f"message.")
    if not rec["chained"]:
        raise AuditFailure(f"For a checkpoint cut off halfway, load_checkpoint raised {rec['raised']} naming the file, "
                           f"but not from torch.load's error (its __cause__ is None): raise it with `raise ... from "
                           f"error`, so that the traceback also shows what torch.load found.")


# -----------------------------------------------------------------------------
# a checkpoint saved and loaded back

def roundtrip_case(seed: int, init_seed: int, steps: int) -> tuple[nn.Module, torch.optim.Optimizer, CosineAnnealingLR]:
    """A model with BatchNorm (buffers beside the parameters) and Dropout, Adam and a cosine schedule,
    `steps` training steps taken in train mode."""
    d, c = 3 + seed % 4, 2 + seed % 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = nn.Sequential(nn.Linear(d, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Dropout(0.2), nn.Linear(12, c))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        scheduler = CosineAnnealingLR(optimizer, T_max=10)
        x, y = blobs(seed + 17, 16, d, c)
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            scheduler.step()
    return model, optimizer, scheduler


def state_of(model: nn.Module, optimizer=None, scheduler=None) -> dict:
    """Copies of the states of these objects."""
    return {"model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer": None if optimizer is None else copy.deepcopy(optimizer.state_dict()),
            "scheduler": None if scheduler is None else copy.deepcopy(scheduler.state_dict())}


def draws() -> dict:
    """The next numbers of each global RNG."""
    return {"torch": torch.rand(3).tolist(), "numpy": np.random.rand(3).tolist(), "python": random.random()}


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def loaded_result(result) -> dict:
    """What a load_checkpoint returned: its type, its epoch, and its extra (each value described, a tensor kept)."""
    d = {"type": describe(result)["type"]}
    if isinstance(result, dict):
        d["epoch"] = describe(result.get("epoch"))
        extra = result.get("extra")
        d["extra_type"] = describe(extra)["type"]
        if isinstance(extra, dict):
            d["extra"] = {str(k): describe(v) for k, v in extra.items()}
            d["tensors"] = {str(k): v.detach().clone() for k, v in extra.items() if isinstance(v, torch.Tensor)}
            d["strings"] = {str(k): str.__str__(v) for k, v in extra.items() if isinstance(v, str)}
    return d


def roundtrip_epoch(seed: int) -> int:
    return 3 + seed % 5


def roundtrip_history(seed: int) -> list[float]:
    return [round(1.5 / (i + 1) + seed / 100, 6) for i in range(roundtrip_epoch(seed))]


def collect_roundtrip(fns: dict, seed: int) -> dict:
    save, load = fns["save_checkpoint"], fns["load_checkpoint"]
    model, optimizer, scheduler = roundtrip_case(seed, seed, 1 + seed % 3)
    generator = torch.Generator().manual_seed(seed)
    torch.randperm(10, generator=generator)  # a loader's generator, one epoch in
    rec = {"want": state_of(model, optimizer, scheduler), "generator": generator.get_state()}
    extra = {"history": roundtrip_history(seed), "note": f"run {seed}", "loader": generator}
    with tempfile.TemporaryDirectory() as folder:
        full, bare = Path(folder) / "full" / "ckpt.pt", Path(folder) / "bare" / "ckpt.pt"
        full.parent.mkdir()
        bare.parent.mkdir()
        seed_all(seed)
        rec["save"] = outcome(lambda: save(full, model=model, optimizer=optimizer, scheduler=scheduler,
                                           epoch=roundtrip_epoch(seed), extra=extra))
        if "raised" in rec["save"]:
            return rec
        rec["draws_saved"] = draws()  # what the run that never stopped draws next
        seed_all(seed + 500)  # a new process
        fresh, fresh_optimizer, fresh_scheduler = roundtrip_case(seed, seed + 1, 0)
        mapped = []

        def where(storage, location):
            mapped.append(location)
            return storage
        rec["load"] = outcome(lambda: load(full, model=fresh, optimizer=fresh_optimizer, scheduler=fresh_scheduler,
                                           map_location=where), keep=loaded_result)
        if "raised" in rec["load"]:
            return rec
        rec["draws_loaded"] = draws()
        rec["got"] = state_of(fresh, fresh_optimizer, fresh_scheduler)
        rec["mapped"] = len(mapped)
        # The optional arguments left out.
        rec["bare_save"] = outcome(lambda: save(bare, model=model))
        if "raised" in rec["bare_save"]:
            return rec
        other = roundtrip_case(seed, seed + 2, 0)[0]
        rec["bare_load"] = outcome(lambda: load(bare, model=other), keep=loaded_result)
        rec["bare_got"] = state_of(other)
    return rec


def call(seed: int, bare: bool = False) -> str:
    if bare:
        return "save_checkpoint(path, model=model) then load_checkpoint(path, model=fresh_model)"
    return (f"save_checkpoint(path, model=..., optimizer=..., scheduler=..., epoch={roundtrip_epoch(seed)}, "
            f"extra={{'history': [...], 'note': 'run {seed}', 'loader': a torch.Generator}}) then load_checkpoint(path, "
            f"model=..., optimizer=..., scheduler=..., map_location=...) into fresh objects")


def judge_roundtrip(rec: dict, seed: int) -> None:
    where = (f"The audit saved a model with BatchNorm and Dropout, trained {1 + seed % 3} steps with Adam and a "
             f"cosine schedule: {call(seed)}.")
    for key, what in [("save", "save_checkpoint"), ("load", "load_checkpoint")]:
        if "raised" in rec[key]:
            raise AuditFailure(f"{where} {what} raised {rec[key]['raised']}: {rec[key]['message'][:300]}")
    want, got = rec["want"], rec["got"]
    if not exact(got["model"], want["model"]):
        buffers = sorted(n for n in want["model"] if "running" in n or "num_batches" in n)
        if all(n in got["model"] and exact(got["model"][n], want["model"][n]) for n in want["model"] if n not in buffers):
            raise AuditFailure(f"{where} The model's parameters came back, but not its buffers ({', '.join(buffers[:3])}): "
                               f"save model.state_dict(), which holds BatchNorm's running statistics too, and load it "
                               f"with model.load_state_dict(...).")
        raise AuditFailure(f"{where} The fresh model's weights are not those saved: save model.state_dict() and load "
                           f"it with model.load_state_dict(...).")
    if not exact(got["optimizer"], want["optimizer"]):
        raise AuditFailure(f"{where} The fresh Adam's state (its step counts and moment estimates) is not the one saved: "
                           f"save optimizer.state_dict() and load it back with optimizer.load_state_dict(...).")
    if not exact(got["scheduler"], want["scheduler"]):
        raise AuditFailure(f"{where} The fresh scheduler stands at step {got['scheduler'].get('last_epoch')}, not "
                           f"{want['scheduler']['last_epoch']} as saved: save scheduler.state_dict() and load it back "
                           f"with scheduler.load_state_dict(...).")
    fixes = {"torch": "torch.get_rng_state() / torch.set_rng_state(...)",
             "numpy": "np.random.get_state() (as plain lists and numbers) / np.random.set_state(...)",
             "python": "random.getstate() / random.setstate(...)"}
    for rng, fix in fixes.items():
        if rec["draws_loaded"][rng] != rec["draws_saved"][rng]:
            raise AuditFailure(f"{where} After loading, {rng}'s global RNG drew other numbers than right after the save: "
                               f"its state was not saved or not restored ({fix}).")
    result = rec["load"]["returned"]
    if result["type"] != "dict":
        raise AuditFailure(f"{where} load_checkpoint returned a {result['type']}: return a dict, "
                           f"{{'epoch': ..., 'extra': ...}}.")
    epoch = roundtrip_epoch(seed)
    if result["epoch"].get("value") != epoch:
        got = result["epoch"].get("value")
        raise AuditFailure(f"{where} load_checkpoint returned the epoch {result['epoch']['type'] if got is None else f'{got:g}'}, "
                           f"not {epoch}: return the epoch saved, the number of epochs done.")
    if result["extra_type"] != "dict":
        raise AuditFailure(f"{where} load_checkpoint returned extra as a {result['extra_type']}: return the extra dict "
                           f"saved.")
    extra = result["extra"]
    history = extra.get("history", {})
    values = [item.get("value") for item in history.get("items", [])]
    if result["strings"].get("note") != f"run {seed}" or values != roundtrip_history(seed):
        raise AuditFailure(f"{where} The extra dict came back as {sorted(extra)}, without the history and the note as "
                           f"they were saved: save extra's plain values as they are, and return them.")
    state = result["tensors"].get("loader")
    if state is None or not torch.equal(state, rec["generator"]):
        shown = extra.get("loader", {}).get("type", "nothing")
        raise AuditFailure(f"{where} extra['loader'] came back as {shown}, not as the generator's state: save a "
                           f"torch.Generator as generator.get_state(), and give that state back (a CPU tensor).")
    if not rec["mapped"]:
        raise AuditFailure(f"{where} load_checkpoint did not pass its map_location on to torch.load: the audit gave "
                           f"it a function (torch.load accepts one, as it accepts a device), and torch.load never "
                           f"called it.")
    where = f"The audit then left every optional argument out: {call(seed, bare=True)}."
    for key, what in [("bare_save", "save_checkpoint"), ("bare_load", "load_checkpoint")]:
        if "raised" in rec[key]:
            raise AuditFailure(f"{where} {what} raised {rec[key]['raised']} ({rec[key]['message'][:200]}): optimizer, "
                               f"scheduler, extra (and epoch) may be omitted.")
    if not exact(rec["bare_got"]["model"], want["model"]):
        raise AuditFailure(f"{where} The fresh model's weights are not those saved.")
    result = rec["bare_load"]["returned"]
    if result["type"] != "dict" or result["epoch"].get("value") != 0:
        raise AuditFailure(f"{where} load_checkpoint returned {result.get('epoch', result)} as the epoch: a checkpoint "
                           f"saved without one holds epoch 0, save_checkpoint's default.")


# -----------------------------------------------------------------------------
# resuming

RESUME_N, RESUME_BATCH = 32, 8
PER = RESUME_N // RESUME_BATCH  # batches per epoch
NAME = "epoch_{:04d}.pt"  # the notebook's checkpoint_path


class Preempted(Exception):
    """The job was stopped: the probe raises it in the middle of an epoch."""


class Drawing(Dataset):
    """(x[i], y[i]) augmented with a shift from numpy's global RNG and a scale from Python's `random`;
    every draw is logged."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y, self.draws = x, y, []

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        shift, scale = float(np.random.normal(0.0, 0.05)), random.uniform(0.95, 1.05)
        self.draws.append([int(i), shift, scale])
        return self.x[i] * scale + shift, self.y[i]


class Probe:
    """Cross-entropy that records at each call what the coming optimizer step depends on: the weights,
    torch's RNG state (after Dropout drew its mask), Adam's state and the schedule's position; it
    raises Preempted at call number `stop_at`."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, stop_at: int | None):
        self.model, self.optimizer, self.scheduler, self.stop_at = model, optimizer, scheduler, stop_at
        self.calls: list[dict] = []

    def __call__(self, output, target):
        if len(self.calls) == self.stop_at:
            raise Preempted(f"stopped at batch {self.stop_at}")
        loss = nn.functional.cross_entropy(output, target)
        named = list(self.model.named_parameters())
        self.calls.append({"params": params(named), "rng": torch.get_rng_state(), "loss": loss.item(),
                           "size": len(target), "schedule": self.scheduler.last_epoch,
                           "adam": {n: {k: v.clone() for k, v in self.optimizer.state[p].items()}
                                    for n, p in named if p in self.optimizer.state}})
        return loss


def resume_case(seed: int) -> dict:
    """epochs, every (2 or 3), and where each of the two stops comes (calls into its attempt): the first
    after 2 checkpoints' worth of epochs or one more, the second after 2 epochs of the restart, both
    mid-epoch. `epochs` is never a multiple of `every`, so the last epoch's checkpoint is one of its own."""
    every = 2 + seed % 2
    first = 2 * every + (seed // 2) % 2  # epochs done at the first stop
    done = first // every * every + 2  # at the second: the restart resumed from the latest checkpoint, then did 2
    epochs = [e for e in range(done + 1, done + 2 * every + 1) if e % every][(seed // 4) % 2]
    return {"every": every, "epochs": epochs, "stops": [first * PER + seed % PER, 2 * PER + (seed + 1) % PER]}


def attempt(fns: dict, seed: int, rng_seed: int, ckpt_dir: Path, stop_at: int | None = None) -> dict:
    """One run of the training script with fresh objects, the global RNGs seeded with `rng_seed`:
    train(...) until it returns or is stopped; what it did."""
    case = resume_case(seed)
    d, c = 3 + seed % 4, 2 + seed % 3
    x, y = blobs(seed + 5, RESUME_N, d, c)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, c))
    torch.manual_seed(rng_seed)
    np.random.seed(rng_seed)
    random.seed(rng_seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    scheduler = CosineAnnealingLR(optimizer, T_max=case["epochs"], eta_min=0.002)
    data = Drawing(x, y)
    loader = DataLoader(data, batch_size=RESUME_BATCH, shuffle=True, generator=torch.Generator().manual_seed(seed))
    probe = Probe(model, optimizer, scheduler, stop_at)
    try:
        history = fns["train"](model, loader, probe, optimizer, scheduler, epochs=case["epochs"], ckpt_dir=ckpt_dir,
                               every=case["every"])
    except Preempted:
        history = None
    return {"calls": probe.calls, "draws": data.draws, "history": describe(history),
            "final": params(model.named_parameters()), "saved": sorted(p.name for p in ckpt_dir.glob("epoch_*.pt"))}


_runs: dict = {}  # seed -> the runs of those functions: the six resume checks of one process share them


def collect_resume(fns: dict, seed: int) -> dict:
    """The runs of the resume checks; a process that runs several of them on the same functions (as the tests
    of the checks do, one seed after the other) runs each seed once. At grading, each check runs alone."""
    used = {name: fns[name] for name in RESUME}
    if any(_runs.get("fns", {}).get(name) is not f for name, f in used.items()):
        _runs.clear()
        _runs["fns"] = used  # held, so that no other function can take an id of these
    if seed not in _runs:
        _runs[seed] = run_resume(fns, seed)
    return _runs[seed]


def run_resume(fns: dict, seed: int) -> dict:
    stops = resume_case(seed)["stops"]
    with tempfile.TemporaryDirectory() as folder:
        straight = attempt(fns, seed, seed, Path(folder) / "straight")
        # The first attempt starts as the straight run did; each restart is a new process.
        runs = [attempt(fns, seed, seed + 1000 * i, Path(folder) / "stopped", stop)
                for i, stop in enumerate([*stops, None, None])]
    return {"straight": straight, "runs": runs}


def setting(seed: int) -> str:
    case = resume_case(seed)
    return (f"The audit ran train(..., epochs={case['epochs']}, every={case['every']}) on a model with Dropout, Adam, a "
            f"CosineAnnealingLR and a shuffling DataLoader over data augmented from numpy's and Python's RNGs: straight "
            f"through, and stopped twice in the middle of an epoch, each time restarted with fresh objects and other "
            f"global RNG states, as a new process would be.")


def first_restart(rec: dict, seed: int) -> tuple[dict, int]:
    """The first restart, and the straight run's step that started from the weights it started from."""
    run = rec["runs"][1]
    if not run["calls"]:
        raise AuditFailure(f"{setting(seed)} After the first restart, train took no training step at all.")
    for j, call in enumerate(rec["straight"]["calls"]):
        if exact(call["params"], run["calls"][0]["params"]):
            if j == 0 and rec["runs"][0]["saved"]:
                raise AuditFailure(f"{setting(seed)} At the first restart, ckpt_dir held {rec['runs'][0]['saved']}, "
                                   f"yet train started from the model's initial weights: load the model's state from "
                                   f"the latest checkpoint (model.load_state_dict(...)) before training.")
            return run, j
    raise AuditFailure(f"{setting(seed)} After the first restart, train started from weights that the run that never "
                       f"stopped never had: load the model's state from the latest checkpoint before training.")


def shuffle_problem(rec: dict, seed: int) -> str | None:
    run, j = first_restart(rec, seed)
    got, want = [d[0] for d in run["draws"]], [d[0] for d in rec["straight"]["draws"][j * RESUME_BATCH:]]
    n = min(len(got), len(want))
    if got[:n] != want[:n]:
        return (f"After the first restart, the loader visited the samples in another order than the run that never "
                f"stopped ({got[:RESUME_BATCH]} instead of {want[:RESUME_BATCH]} ...): the DataLoader's generator was "
                f"not restored. Save loader.generator in the checkpoint's extra, and after loading put its state back "
                f"with loader.generator.set_state(...).")
    return None


def rng_problem(rec: dict, seed: int) -> str | None:
    run, j = first_restart(rec, seed)
    if not all(torch.equal(a["rng"], b["rng"]) for a, b in zip(run["calls"], rec["straight"]["calls"][j:])):
        return ("After the first restart, Dropout drew other masks than in the run that never stopped: torch's RNG "
                "was not restored. Save torch.get_rng_state() and restore it with torch.set_rng_state(...).")
    got, want = run["draws"], rec["straight"]["draws"][j * RESUME_BATCH:]
    n = min(len(got), len(want))
    for i, rng, fix in [(1, "numpy's global RNG", "np.random.get_state() (as plain lists and numbers) and restore it "
                                                  "with np.random.set_state(...)"),
                        (2, "Python's random", "random.getstate() and restore it with random.setstate(...)")]:
        if [d[i] for d in got[:n]] != [d[i] for d in want[:n]]:
            return (f"After the first restart, the data augmentation drew other numbers from {rng} than in the run "
                    f"that never stopped: save {fix}.")
    return None


def optimizer_problem(rec: dict, seed: int) -> str | None:
    run, j = first_restart(rec, seed)
    got, want = run["calls"][0]["adam"], rec["straight"]["calls"][j]["adam"]
    if exact(got, want):
        return None

    def steps(state: dict) -> str:
        return f"{next(iter(state.values()))['step'].item():g} steps" if state else "no state at all"
    return (f"At the first step after the restart, Adam had {steps(got)}, where the run that never stopped had "
            f"{steps(want)} and its moment estimates: the optimizer's state was not restored. Save "
            f"optimizer.state_dict() and load it back with optimizer.load_state_dict(...).")


def scheduler_problem(rec: dict, seed: int) -> str | None:
    run, j = first_restart(rec, seed)
    got = [c["schedule"] for c in run["calls"]]
    want = [c["schedule"] for c in rec["straight"]["calls"][j:j + len(got)]]
    if got[:len(want)] == want:
        return None
    return (f"After the first restart, the schedule stood at step {got[0]} (scheduler.last_epoch) where the run that "
            f"never stopped had it at {want[0]}: the scheduler's state was not restored. Save scheduler.state_dict() "
            f"and load it back with scheduler.load_state_dict(...).")


def latest_problem(rec: dict, seed: int) -> str | None:
    case = resume_case(seed)
    every, epochs = case["every"], case["epochs"]
    straight = rec["straight"]
    if len(straight["calls"]) != epochs * PER:
        return (f"Straight through, train(..., epochs={epochs}) trained {count(len(straight['calls']) / PER, 'epoch')} "
                f"of {PER} batches: train until `epochs` epochs are done.")
    want = [NAME.format(e) for e in range(1, epochs + 1) if e % every == 0 or e == epochs]
    if straight["saved"] != want:
        return (f"Straight through, ckpt_dir ended with {straight['saved'] or 'no checkpoint'} instead of {want}: save "
                f"checkpoint_path(ckpt_dir, epochs_done) after every epoch whose number is a multiple of every, and "
                f"after the last.")
    done = case["stops"][0] // PER
    latest = done // every * every
    run, j = first_restart(rec, seed)
    if j != latest * PER:
        started = f"epoch {j // PER}" if j % PER == 0 else f"the middle of epoch {j // PER + 1}"
        return (f"The run was stopped in epoch {done + 1}, with {rec['runs'][0]['saved']} in ckpt_dir; the restart "
                f"started from the weights after {started}, not from {NAME.format(latest)}: load the latest checkpoint "
                f"(the most epochs done), saved once its epoch had ended.")
    done = latest + case["stops"][1] // PER
    latest = done // every * every
    trained = len(rec["runs"][2]["calls"]) / PER
    if trained != epochs - latest:
        return (f"The restart was stopped in epoch {done + 1}, after {NAME.format(latest)} was saved; restarted again, "
                f"train trained {count(trained, 'epoch')} to reach epochs={epochs} instead of the {epochs - latest} left: the "
                f"epoch saved in a checkpoint must be the number of epochs done, and a resumed run carries on with that "
                f"many done.")
    again = len(rec["runs"][3]["calls"]) / PER
    if again:
        return (f"Restarted once more after the run had finished, train(..., epochs={epochs}) trained "
                f"{count(again, 'epoch')} again: it should resume from the checkpoint of the last epoch and have nothing left to do.")
    return None


def count(n: float, unit: str) -> str:
    return f"{n:g} {unit}" + ("" if n == 1 else "s")


def losses(d: dict, what: str) -> list[float]:
    if d["type"] != "list":
        raise AuditFailure(f"{what} returned a {d['type']}; return the list of every epoch's loss.")
    return [require_float(item, f"an entry of {what}'s history", "Return the floats run_epoch returns.")
            for item in d["items"]]


def rounded(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def judge_resume_equality(rec: dict, seed: int) -> None:
    epochs = resume_case(seed)["epochs"]
    straight, last = rec["straight"], rec["runs"][2]
    if len(straight["calls"]) != epochs * PER:
        raise AuditFailure(f"{setting(seed)} {latest_problem(rec, seed)}")
    history = losses(straight["history"], "train straight through")
    calls = straight["calls"]
    want = [sum(c["loss"] * c["size"] for c in calls[e * PER:(e + 1) * PER]) / RESUME_N for e in range(epochs)]
    if len(history) != epochs or not all(close(h, w, rtol=1e-6) for h, w in zip(history, want)):
        raise AuditFailure(f"{setting(seed)} Straight through, train returned the history {rounded(history)}; its "
                           f"epochs' losses average {rounded(want)} per sample: return every epoch's loss, as run_epoch "
                           f"returns it.")
    schedule = [calls[e * PER]["schedule"] for e in range(epochs)]
    if schedule != list(range(epochs)):
        e = next(e for e in range(epochs) if schedule[e] != e)
        raise AuditFailure(f"{setting(seed)} Straight through, the schedule stood at step {schedule[e]} "
                           f"(scheduler.last_epoch) during epoch {e + 1}, where {e} epochs were done: each epoch is "
                           f"run_epoch(...) first, then scheduler.step(), once.")
    resumed = losses(last["history"], "train after the second restart")
    if exact(last["final"], straight["final"]) and resumed == history:
        return
    gap = max((last["final"][n] - straight["final"][n]).abs().max().item() for n in straight["final"])
    ending = f"The final weights differ from those of the run that never stopped by up to {gap:.3g}." if gap else ""
    for diagnose in (latest_problem, shuffle_problem, rng_problem, optimizer_problem, scheduler_problem):
        problem = diagnose(rec, seed)
        if problem:
            raise AuditFailure(f"{setting(seed)} {ending} {problem}".replace("  ", " "))
    if not gap:
        raise AuditFailure(f"{setting(seed)} The weights came out the same, but the resumed train returned the history "
                           f"{rounded(resumed)} instead of {rounded(history)}: keep the history in the checkpoint (in extra) and carry on "
                           f"from it after loading.")
    raise AuditFailure(f"{setting(seed)} {ending} Every piece this audit watches was restored at the first restart: "
                       f"look for state that changes between restarts.")


def judging(problem):
    """A judge that fails with the message of `problem`, if any."""
    def judge(rec: dict, seed: int) -> None:
        message = problem(rec, seed)
        if message:
            raise AuditFailure(f"{setting(seed)} {message}")
    return judge


# -----------------------------------------------------------------------------
# adapters

class LowRank(nn.Module):
    """A frozen Linear plus a trainable low-rank update, as the notebook's LoRALinear."""

    def __init__(self, base: nn.Linear, rank: int):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.randn(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + x @ self.lora_a.T @ self.lora_b.T


LAYER_SETS = ([0, 2], [0, 4], [2, 4])  # the Linear layers of an MLP of three; any two sets share one layer


def adapted(seed: int, layers: list[int], init_seed: int) -> nn.Sequential:
    """The hidden frozen MLP with adapters drawn from `init_seed` on the Linear layers `layers`."""
    model = mlp(seed, [4 + seed % 3, 8 + seed % 5, 8 + seed % 5, 3]).requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        for i in layers:
            model[i] = LowRank(model[i], 1 + seed % 3)
    return model


def trainable(model: nn.Module) -> list[str]:
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


def mismatch(result) -> dict:
    """The names a load_adapter returned, or the type of what it returned instead."""
    if isinstance(result, dict) and all(isinstance(result.get(k), (list, tuple)) for k in ("missing", "unexpected")):
        return {k: [str(n) for n in result[k]] for k in ("missing", "unexpected")}
    return {"other": describe(result)["type"]}


def collect_adapter_roundtrip(fns: dict, seed: int) -> dict:
    layers = LAYER_SETS[seed % 3]
    model, fresh = adapted(seed, layers, seed + 1), adapted(seed, layers, seed + 2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "adapters" / "task.pt"
        fns["save_adapter"](path, model)
        rec = {"file": path.is_file()}
        if rec["file"]:
            content = outcome(lambda: torch.load(path, weights_only=True),
                              keep=lambda c: sorted(c) if isinstance(c, dict) else None)
            rec["names"] = content.get("returned")
            rec["load"] = outcome(lambda: fns["load_adapter"](path, fresh), keep=mismatch)
            rec["after"] = params(fresh.named_parameters())
    return rec


def judge_adapter_roundtrip(rec: dict, seed: int) -> None:
    layers = LAYER_SETS[seed % 3]
    model = adapted(seed, layers, seed + 1)
    names = trainable(model)
    if not rec["file"]:
        raise AuditFailure("save_adapter(path, model) did not create the file path, in a folder that did not exist yet.")
    if rec["names"] is None:
        raise AuditFailure("torch.load(path, weights_only=True) could not read the file save_adapter wrote as a dict of "
                           "tensors: save {name: tensor} of the trainable parameters.")
    if rec["names"] != names:
        frozen = sorted(set(rec["names"]) - set(names))
        detail = (f"{len(frozen)} of them frozen weights ({', '.join(frozen[:3])}, ...): save only the parameters with "
                  f"requires_grad=True" if frozen else f"the model's trainable parameters are {names}")
        raise AuditFailure(f"save_adapter on an MLP with adapters on layers {layers} saved {rec['names']}; {detail}.")
    if "raised" in rec["load"]:
        raise AuditFailure(f"load_adapter(path, model) raised {rec['load']['raised']} ({rec['load']['message'][:200]}) "
                           f"for an adapter saved from a model with the same adapters, where every name matches. "
                           f"Frozen weights (requires_grad=False) are never missing from an adapter.")
    got = rec["load"]["returned"]
    if got != {"missing": [], "unexpected": []}:
        raise AuditFailure(f"load_adapter returned {got} for an adapter whose names all match the model's trainable "
                           f"parameters; return {{'missing': [], 'unexpected': []}}.")
    if not exact(rec["after"], params(model.named_parameters())):
        raise AuditFailure("After load_adapter, the model's adapter did not equal the one saved, or its frozen weights "
                           "changed: load every tensor of the file into the parameter of the same name.")


def collect_adapter_keys(fns: dict, seed: int) -> dict:
    source = adapted(seed, LAYER_SETS[seed % 3], seed + 1)
    target = adapted(seed, LAYER_SETS[(seed + 1) % 3], seed + 2)
    fresh_target = adapted(seed, LAYER_SETS[(seed + 1) % 3], seed + 2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "adapter.pt"
        torch.save({n: p.detach() for n, p in source.named_parameters() if p.requires_grad}, path)
        rec = {"strict": outcome(lambda: fns["load_adapter"](path, target))}
        rec["after_strict"] = params(target.named_parameters())
        rec["loose"] = outcome(lambda: fns["load_adapter"](path, target, strict=False), keep=mismatch)
        rec["after_loose"] = params(target.named_parameters())
        # A whole state_dict (frozen weights changed, as another fine-tuning run would leave them) given as an
        # adapter, into the model adapted alike.
        whole = Path(folder) / "whole.pt"
        torch.save(whole_state(seed), whole)
        rec["whole"] = outcome(lambda: fns["load_adapter"](whole, fresh_target, strict=False), keep=mismatch)
        rec["after_whole"] = params(fresh_target.named_parameters())
    return rec


def whole_state(seed: int) -> dict:
    """The state_dict of the hidden MLP adapted on the layers of the target, every frozen weight moved by 1."""
    model = adapted(seed, LAYER_SETS[(seed + 1) % 3], seed + 3)
    return {n: t.detach() + (0 if n in trainable(model) else 1) for n, t in model.state_dict().items()}


def judge_adapter_keys(rec: dict, seed: int) -> None:
    saved, other = LAYER_SETS[seed % 3], LAYER_SETS[(seed + 1) % 3]
    source, target = adapted(seed, saved, seed + 1), adapted(seed, other, seed + 2)
    have, want = set(trainable(source)), set(trainable(target))
    missing, unexpected = sorted(want - have), sorted(have - want)
    where = (f"An adapter saved from the hidden MLP adapted on its layers {saved} was loaded into the same MLP "
             f"adapted on its layers {other}: the model's {missing} are missing from the file, whose {unexpected} the "
             f"model does not have.")
    strict = rec["strict"]
    if "returned" in strict:
        raise AuditFailure(f"{where} load_adapter(path, model) returned normally: with strict=True, raise ValueError "
                           f"naming every mismatched name. A mismatch loaded quietly leaves the adapter partly loaded.")
    unnamed = [n for n in missing + unexpected if n not in strict["message"]]
    if unnamed:
        raise AuditFailure(f"{where} load_adapter(path, model) raised {strict['raised']}, but its message "
                           f"({strict['message'][:200]!r}) does not name {unnamed}.")
    if not exact(rec["after_strict"], params(target.named_parameters())):
        raise AuditFailure(f"{where} load_adapter(path, model) raised, but changed the model first: compare the names "
                           f"before loading anything.")
    loose = rec["loose"]
    if "raised" in loose:
        raise AuditFailure(f"{where} load_adapter(path, model, strict=False) raised {loose['raised']}: with "
                           f"strict=False, load the tensors whose names match and return the mismatched names.")
    got = loose["returned"]
    if "other" in got:
        raise AuditFailure(f"{where} load_adapter(..., strict=False) returned a {got['other']}; return "
                           f"{{'missing': [...], 'unexpected': [...]}}.")
    frozen = sorted(set(got["missing"]) - want)
    if frozen:
        raise AuditFailure(f"{where} load_adapter(..., strict=False) reported as missing {len(frozen)} frozen weights "
                           f"({', '.join(frozen[:3])}, ...), which an adapter never holds: report only the trainable "
                           f"parameters the file lacks, here {missing}.")
    if sorted(got["missing"]) != missing or sorted(got["unexpected"]) != unexpected:
        raise AuditFailure(f"{where} load_adapter(..., strict=False) returned missing {got['missing']} and unexpected "
                           f"{got['unexpected']}.")
    expected = params(target.named_parameters())
    expected.update({n: p.detach() for n, p in source.named_parameters() if n in have & want})
    if not exact(rec["after_loose"], expected):
        raise AuditFailure(f"{where} After load_adapter(..., strict=False), the model did not hold the file's tensors "
                           f"for the names both have ({sorted(have & want)}) and its other parameters unchanged.")
    state = whole_state(seed)
    frozen = sorted(set(state) - want)
    where = (f"A whole state_dict of the hidden MLP adapted on its layers {other} (its frozen weights changed, as "
             f"another run might leave them) was given to load_adapter(path, model, strict=False), the model adapted "
             f"alike: its {len(frozen)} frozen weights ({', '.join(frozen[:3])}, ...) are not trainable parameters of "
             f"the model.")
    whole = rec["whole"]
    if "raised" in whole:
        raise AuditFailure(f"{where} load_adapter raised {whole['raised']} ({whole['message'][:200]}): with "
                           f"strict=False, load the tensors whose names match and return the mismatched names.")
    got = whole["returned"]
    if "other" in got or sorted(got["missing"]) != [] or sorted(got["unexpected"]) != frozen:
        raise AuditFailure(f"{where} load_adapter returned {got}, not missing [] and those {len(frozen)} names as "
                           f"unexpected: a tensor of the file is unexpected unless it is a trainable parameter of the "
                           f"model, frozen weights included.")
    expected = params(target.named_parameters())
    expected.update({n: state[n] for n in want})
    if not exact(rec["after_whole"], expected):
        changed = sorted(n for n in frozen if n in expected and not exact(rec["after_whole"][n], expected[n]))
        raise AuditFailure(f"{where} After load_adapter, the model's frozen weights {changed[:4]} had changed: "
                           f"load only the tensors of the model's trainable parameters." if changed else
                           f"{where} After load_adapter, the model's adapter did not hold the file's tensors.")


SAVE_LOAD = ("save_checkpoint", "load_checkpoint")
RESUME = ("save_checkpoint", "load_checkpoint", "train")
CHECKS = [
    Check("ps06.roundtrip", SAVE_LOAD, collect_roundtrip, judge_roundtrip, seed=4613),
    Check("ps06.atomic_save", SAVE_LOAD, collect_atomic, judge_atomic, seed=4601),
    Check("ps06.unsafe_pickle", SAVE_LOAD, collect_unsafe, judge_unsafe, seed=4602),
    Check("ps06.missing_file", ("load_checkpoint",), collect_missing, judge_missing, seed=4603),
    Check("ps06.corrupt_file", SAVE_LOAD, collect_corrupt, judge_corrupt, seed=4604),
    Check("ps06.resume_equality", RESUME, collect_resume, judge_resume_equality, seed=4605),
    Check("ps06.resume_optimizer", RESUME, collect_resume, judging(optimizer_problem), seed=4606),
    Check("ps06.resume_scheduler", RESUME, collect_resume, judging(scheduler_problem), seed=4607),
    Check("ps06.resume_rng", RESUME, collect_resume, judging(rng_problem), seed=4608),
    Check("ps06.resume_shuffle", RESUME, collect_resume, judging(shuffle_problem), seed=4609),
    Check("ps06.resume_latest", RESUME, collect_resume, judging(latest_problem), seed=4610),
    Check("ps06.adapter_roundtrip", ("save_adapter", "load_adapter"), collect_adapter_roundtrip,
          judge_adapter_roundtrip, seed=4611),
    Check("ps06.adapter_keys", ("load_adapter",), collect_adapter_keys, judge_adapter_keys, seed=4612),
]
