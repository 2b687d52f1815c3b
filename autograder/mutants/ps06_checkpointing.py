"""The ps06_checkpointing matrix: the checkpoint, loading and resume bugs students make, and other correct styles."""
import nbformat

from autograder.mutants import BLANK, Mutant, grade_cells
from autograder.notebooks import solutions, source_path

NAME = "ps06_checkpointing"
REFERENCE = solutions(nbformat.read(source_path(NAME), as_version=4))

SAVE, LOAD, TRAIN, ADAPTER = "save_checkpoint", "load_checkpoint", "train", "adapter"
SAVE_OPTIMIZER = '        "optimizer": None if optimizer is None else optimizer.state_dict(),\n'
LOAD_OPTIMIZER = '    if optimizer is not None:\n        optimizer.load_state_dict(state["optimizer"])\n'
SAVE_SCHEDULER = '        "scheduler": None if scheduler is None else scheduler.state_dict(),\n'
LOAD_SCHEDULER = '    if scheduler is not None:\n        scheduler.load_state_dict(state["scheduler"])\n'
NUMPY_STATE = "    kind, keys, pos, has_gauss, cached = np.random.get_state()\n"
SAVE_RNG = ('        "rng": {"torch": torch.get_rng_state(),\n'
            '                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],\n'
            '                "numpy": [kind, keys.tolist(), pos, has_gauss, cached],\n'
            '                "python": random.getstate()},\n')
RESTORE_RNG = ('    rng = state["rng"]\n'
               '    torch.set_rng_state(rng["torch"].cpu())\n'
               '    if rng["cuda"] and torch.cuda.is_available():\n'
               '        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])\n'
               '    kind, keys, pos, has_gauss, cached = rng["numpy"]\n'
               '    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n'
               '    random.setstate(rng["python"])\n')
ATOMIC = ('    temp = path.with_name(f".{path.name}.tmp")\n'
          '    try:\n'
          '        with open(temp, "wb") as f:\n'
          '            torch.save(obj, f)\n'
          '            f.flush()\n'
          '            os.fsync(f.fileno())\n'
          '        os.replace(temp, path)\n'
          '    finally:\n'
          '        temp.unlink(missing_ok=True)\n')
READ = "        state = torch.load(path, map_location=map_location, weights_only=True)\n"
MISSING = '    if not path.exists():\n        raise FileNotFoundError(f"no checkpoint at {path}")\n'
GUARDED_READ = ("    try:\n" + READ + "    except Exception as error:\n"
                '        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}): it is cut short or "\n'
                '                         f"corrupt, or holds objects that weights_only=True refuses") from error\n')
SET_LOADER = '        loader.generator.set_state(resumed["extra"]["loader"])\n'
RESUMED_AT = '        done, history = resumed["epoch"], resumed["extra"]["history"]\n'
SAVED_EPOCH = "                            epoch=done, extra="
ADAPTER_CHECK = ('    if strict and (mismatch["missing"] or mismatch["unexpected"]):\n'
                 '        raise ValueError(f"the adapter in {path} does not fit the model: missing {mismatch[\'missing\']}, "\n'
                 '                         f"unexpected {mismatch[\'unexpected\']}")\n')
ADAPTER_LOAD = ('    model.load_state_dict({name: t for name, t in tensors.items() if name in trainable}, strict=False)\n'
                '    return mismatch\n')

FOLDER_SAVE = '''    import shutil

    path = Path(path)
    extra = dict(extra or {})
    generators = {k: extra.pop(k).get_state() for k in list(extra) if isinstance(extra[k], torch.Generator)}
    np_state = np.random.get_state()
    parts = {
        "model.pt": model.state_dict(),
        "optimizer.pt": optimizer.state_dict() if optimizer is not None else None,
        "scheduler.pt": scheduler.state_dict() if scheduler is not None else None,
        "meta.pt": {"epoch": epoch, "extra": extra, "generators": generators},
        "rng.pt": {"torch": torch.random.get_rng_state(), "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
                   "python": random.getstate(),
                   "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh, old = path.with_name(path.name + ".new"), path.with_name(path.name + ".old")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    try:
        for name, part in parts.items():
            with open(fresh / name, "wb") as f:
                torch.save(part, f)
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        shutil.rmtree(fresh)
        raise
    if path.exists():
        os.replace(path, old)
    os.replace(fresh, path)
    shutil.rmtree(old, ignore_errors=True)


def write_atomically(obj, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path.with_name(path.name + ".new"))
    os.replace(path.with_name(path.name + ".new"), path)
'''
FOLDER_LOAD = '''    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint folder at {path}")
    parts = {}
    for name in ("model.pt", "optimizer.pt", "scheduler.pt", "meta.pt", "rng.pt"):
        try:
            parts[name] = torch.load(path / name, map_location=map_location, weights_only=True)
        except Exception as error:
            raise ValueError(f"{path / name} cannot be read ({error!r})") from error
    model.load_state_dict(parts["model.pt"])
    if optimizer is not None:
        optimizer.load_state_dict(parts["optimizer.pt"])
    if scheduler is not None:
        scheduler.load_state_dict(parts["scheduler.pt"])
    rng, meta = parts["rng.pt"], parts["meta.pt"]
    torch.random.set_rng_state(rng["torch"].cpu())
    if torch.cuda.is_available() and rng["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    np.random.set_state((rng["numpy"][0], np.array(rng["numpy"][1], dtype=np.uint32), *rng["numpy"][2:]))
    random.setstate(rng["python"])
    return {"epoch": meta["epoch"], "extra": {**meta["extra"], **{k: v.cpu() for k, v in meta["generators"].items()}}}
'''


def after_docstring(grade_id: str, function: str) -> str:
    """The reference's code in cell `grade_id` after the docstring of `function`: its body, and any function after it."""
    start = REFERENCE[grade_id].index(f"def {function}(")
    return REFERENCE[grade_id][REFERENCE[grade_id].index('"""\n', REFERENCE[grade_id].index('"""', start) + 3) + 4:]


FINALLY = "    finally:\n        temp.unlink(missing_ok=True)\n"
EXTRA_SAVED = 'extra={"history": history, "loader": loader.generator}'
EPOCH_LOOP = "        history.append(run_epoch(model, loader, loss_fn, optimizer))\n        scheduler.step()\n"
RETURNED = '    return {"epoch": state["epoch"], "extra": extra}\n'
MERGED = '    extra = {**state["extra"], **{name: s.cpu() for name, s in state["generators"].items()}}\n'
TORCH_RESTORE = '    torch.set_rng_state(rng["torch"].cpu())\n'
NUMPY_RESTORE = ('    kind, keys, pos, has_gauss, cached = rng["numpy"]\n'
                 '    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n')
PYTHON_RESTORE = '    random.setstate(rng["python"])\n'
MISMATCH = ('    mismatch = {"missing": sorted(trainable - tensors.keys()), "unexpected": sorted(tensors.keys() - trainable)}\n')
RESUMES = ("audit_resume_equality", "audit_resume_optimizer", "audit_resume_scheduler", "audit_resume_rng",
           "audit_resume_shuffle", "audit_resume_latest")
SAVES = ("test_save_checkpoint", "test_load_checkpoint", "test_train", "audit_roundtrip", "audit_atomic_save",
         "audit_unsafe_pickle", "audit_corrupt_file", *RESUMES)

MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    # Task 1: save_checkpoint
    Mutant("model_parameters_only", "the model saved as its named_parameters() and loaded with strict=False: "
           "BatchNorm's running statistics are lost", breaks=("R1.1",),
           edits={SAVE: [('"model": model.state_dict(),', '"model": dict(model.named_parameters()),')],
                  LOAD: [('model.load_state_dict(state["model"])', 'model.load_state_dict(state["model"], strict=False)')]},
           fails={"audit_roundtrip": "not its buffers"}),
    Mutant("optimizer_not_saved", "the optimizer's state is neither saved nor loaded: Adam restarts after a resume",
           breaks=("R1.2",), edits={SAVE: [(SAVE_OPTIMIZER, "")], LOAD: [(LOAD_OPTIMIZER, "")]},
           fails={"test_load_checkpoint": "Adam's exp_avg was not restored", "test_train": "differs from the straight run",
                  "audit_roundtrip": "Adam's state", "audit_resume_equality": "optimizer's state was not restored",
                  "audit_resume_optimizer": "optimizer's state was not restored"}),
    Mutant("scheduler_not_saved", "the scheduler's state is neither saved nor loaded: the schedule restarts",
           breaks=("R1.3",), edits={SAVE: [(SAVE_SCHEDULER, "")], LOAD: [(LOAD_SCHEDULER, "")]},
           fails={"test_load_checkpoint": "last_epoch", "test_train": "differs from the straight run",
                  "audit_roundtrip": "scheduler stands at step", "audit_resume_equality": "scheduler's state was not restored",
                  "audit_resume_scheduler": "scheduler's state was not restored"}),
    Mutant("optimizer_required", "save_checkpoint calls optimizer.state_dict() and scheduler.state_dict() even when "
           "they are None", breaks=("R1.4",),
           edits={SAVE: [(SAVE_OPTIMIZER, '        "optimizer": optimizer.state_dict(),\n'),
                         (SAVE_SCHEDULER, '        "scheduler": scheduler.state_dict(),\n')]},
           fails={"test_load_checkpoint": "AttributeError", "audit_roundtrip": "may be omitted"}),
    Mutant("epoch_not_saved", "the epoch is not saved; load_checkpoint gives 0 when it is missing", breaks=("R1.5",),
           edits={SAVE: [('        "epoch": epoch,\n', "")], LOAD: [(RETURNED, RETURNED.replace('state["epoch"]', 'state.get("epoch", 0)'))]},
           fails={"test_load_checkpoint": "should return {'epoch': 1", "test_train": "differs from the straight run",
                  "audit_roundtrip": "returned the epoch 0",
                  "audit_resume_equality": "number of epochs done", "audit_resume_latest": "number of epochs done"}),
    Mutant("torch_rng_not_saved", "torch's RNG state is neither saved nor restored: Dropout draws other masks",
           breaks=("R1.6",), headline=True,
           edits={SAVE: [('"rng": {"torch": torch.get_rng_state(),\n', '"rng": {\n')], LOAD: [(TORCH_RESTORE, "")]},
           fails={"test_load_checkpoint": "torch's (torch.get_rng_state) RNG", "test_train": "differs from the straight run",
                  "audit_roundtrip": "torch's global RNG", "audit_resume_equality": "torch's RNG was not restored",
                  "audit_resume_rng": "Dropout drew other masks"}),
    Mutant("numpy_rng_not_saved", "numpy's RNG state is neither saved nor restored: augmentation draws other numbers",
           breaks=("R1.7",), headline=True,
           edits={SAVE: [(NUMPY_STATE, ""), ('                "numpy": [kind, keys.tolist(), pos, has_gauss, cached],\n', "")],
                  LOAD: [(NUMPY_RESTORE, "")]},
           fails={"test_load_checkpoint": "numpy's (np.random.get_state) RNG", "audit_roundtrip": "numpy's global RNG",
                  "audit_resume_equality": "numpy's global RNG", "audit_resume_rng": "numpy's global RNG"}),
    Mutant("python_rng_not_saved", "Python's RNG state is neither saved nor restored: augmentation draws other numbers",
           breaks=("R1.8",), headline=True,
           edits={SAVE: [('                "python": random.getstate()},\n', "                },\n")],
                  LOAD: [(PYTHON_RESTORE, "")]},
           fails={"test_load_checkpoint": "Python's (random.getstate) RNG", "audit_roundtrip": "python's global RNG",
                  "audit_resume_equality": "Python's random", "audit_resume_rng": "Python's random"}),
    Mutant("cuda_rng_unguarded", "CUDA's RNG state asked for without checking torch.cuda.is_available(): raises on a CPU",
           breaks=("R1.9",),
           edits={SAVE: [("torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []", "[torch.cuda.get_rng_state()]")]},
           fails={cell: "Torch not compiled with CUDA" for cell in SAVES}),
    Mutant("extra_not_saved", "save_checkpoint keeps only the generators of extra, not its plain values",
           breaks=("R1.10",), edits={SAVE: [('        "extra": extra,\n', '        "extra": {},\n')]},
           fails={"test_load_checkpoint": "extra['note'] is missing", "test_train": "KeyError",
                  "audit_roundtrip": "without the history", **{cell: "KeyError" for cell in RESUMES}}),
    Mutant("generator_saved_as_object", "a torch.Generator in extra saved as the object: weights_only=True refuses it",
           breaks=("R1.11",), edits={SAVE: [("extra.pop(name).get_state() for", "extra.pop(name) for")]},
           fails={"test_save_checkpoint": "a torch.Generator as its get_state()",
                  "test_load_checkpoint": "weights_only=True refuses", "test_train": "weights_only=True refuses",
                  "audit_roundtrip": "weights_only=True refuses",
                  **{cell: "weights_only=True refuses" for cell in RESUMES}}),
    Mutant("extra_required", "save_checkpoint calls dict(extra) even when extra is None", breaks=("R1.12",),
           edits={SAVE: [("extra = dict(extra or {})", "extra = dict(extra)")]},
           fails={"test_load_checkpoint": "TypeError", "audit_roundtrip": "may be omitted",
                  **{cell: "TypeError" for cell in ("audit_atomic_save", "audit_unsafe_pickle", "audit_corrupt_file")}}),
    Mutant("numpy_state_as_array", "np.random.get_state() saved as is: torch.load(weights_only=True) refuses it",
           breaks=("R1.13",),
           edits={SAVE: [('"numpy": [kind, keys.tolist(), pos, has_gauss, cached]', '"numpy": np.random.get_state()')]},
           fails={"test_save_checkpoint": "store numpy's RNG state as plain lists",
                  "test_load_checkpoint": "weights_only=True refuses", "test_train": "weights_only=True refuses",
                  "audit_atomic_save": "could not read the checkpoint", "audit_roundtrip": "weights_only=True refuses",
                  **{cell: "weights_only=True refuses" for cell in RESUMES}}),
    Mutant("numpy_state_via_safe_globals", "numpy's state saved as is, loaded under torch.serialization.safe_globals: "
           "the file does not open with plain weights_only=True", breaks=("R1.13",),
           fails={"test_save_checkpoint": "store numpy's RNG state as plain lists"},
           edits={SAVE: [('"numpy": [kind, keys.tolist(), pos, has_gauss, cached]', '"numpy": np.random.get_state()')],
                  LOAD: [(READ, "        with torch.serialization.safe_globals([np._core.multiarray._reconstruct, "
                                "np.ndarray, np.dtype, np.dtypes.UInt32DType]):\n    " + READ),
                         ('    kind, keys, pos, has_gauss, cached = rng["numpy"]\n'
                          '    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n',
                          '    np.random.set_state(rng["numpy"])\n')]}),
    Mutant("no_mkdir", "the checkpoint's folder is never created", breaks=("R1.14",),
           edits={SAVE: [("    path.parent.mkdir(parents=True, exist_ok=True)\n", "")]},
           fails={cell: "FileNotFoundError" for cell in ("test_save_checkpoint", "test_load_checkpoint", "test_train",
                                                         "test_adapter", "audit_atomic_save", "audit_unsafe_pickle",
                                                         "audit_corrupt_file", "audit_adapter_roundtrip", *RESUMES)}),
    Mutant("non_atomic_write", "torch.save(state, path) straight into the checkpoint's path", breaks=("R1.15",),
           edits={SAVE: [(ATOMIC, "    torch.save(obj, path)\n")]},
           fails={"audit_atomic_save": "destroyed the previous checkpoint"}),
    Mutant("save_error_swallowed", "a failed write is caught and printed: the caller believes it saved",
           breaks=("R1.16",),
           edits={SAVE: [(FINALLY, '    except Exception as error:\n        print(f"checkpoint not saved: {error}")\n' + FINALLY)]},
           fails={"audit_atomic_save": "returned as if it had saved"}),
    Mutant("temp_left_behind", "a failed write leaves its temporary file beside the checkpoint", breaks=("R1.17",),
           edits={SAVE: [(FINALLY, "    except BaseException:\n        raise\n")]},
           fails={"audit_atomic_save": "delete the temporary file"}),
    # Task 2: load_checkpoint
    Mutant("weights_only_false", "torch.load(..., weights_only=False): the file's pickle may run any code",
           breaks=("R2.1",), edits={LOAD: [(READ, READ.replace("weights_only=True", "weights_only=False"))]},
           fails={"audit_unsafe_pickle": "ran code hidden in it"}),
    Mutant("map_location_ignored", "torch.load(..., map_location='cpu') whatever map_location says", breaks=("R2.2",),
           edits={LOAD: [(READ, READ.replace("map_location=map_location", 'map_location="cpu"'))]},
           fails={"audit_roundtrip": "did not pass its map_location on"}),
    Mutant("missing_file_starts_fresh", "a missing checkpoint quietly gives epoch 0", breaks=("R2.3",),
           edits={LOAD: [(MISSING, '    if not path.exists():\n        return {"epoch": 0, "extra": {}}\n')]},
           fails={"audit_missing_file": "must not quietly start"}),
    Mutant("missing_file_reported_as_corrupt", "no path.exists() check: the missing file falls into the corrupt-file handler",
           breaks=("R2.3",), edits={LOAD: [(MISSING, "")]},
           fails={"audit_missing_file": "also catches FileNotFoundError"}),
    Mutant("missing_file_unnamed", "FileNotFoundError without the path", breaks=("R2.4",),
           edits={LOAD: [('FileNotFoundError(f"no checkpoint at {path}")', 'FileNotFoundError("no checkpoint there")')]},
           fails={"audit_missing_file": "does not name the path"}),
    Mutant("corrupt_file_unclear", "torch.load's own error for a truncated file: RuntimeError, naming no file",
           breaks=("R2.5",), headline=True, edits={LOAD: [(GUARDED_READ, READ.replace("        ", "    ", 1))]},
           fails={"test_load_checkpoint": "not ValueError", "audit_corrupt_file": "not ValueError",
                  "audit_unsafe_pickle": "not ValueError"}),
    Mutant("narrow_except", "only RuntimeError and OSError become ValueError: a refused object escapes as UnpicklingError",
           breaks=("R2.5",), edits={LOAD: [("    except Exception as error:\n", "    except (RuntimeError, OSError) as error:\n")]},
           fails={"audit_unsafe_pickle": "not ValueError"}),
    Mutant("corrupt_error_unnamed", "the ValueError for a broken file does not name it", breaks=("R2.6",),
           edits={LOAD: [('raise ValueError(f"{path} is not a readable checkpoint (', 'raise ValueError(f"not a readable checkpoint (')]},
           fails={"test_load_checkpoint": "should name the file", "audit_corrupt_file": "name the path in the message"}),
    Mutant("corrupt_error_not_chained", "the ValueError for a broken file is raised without `from error`",
           breaks=("R2.7",), headline=True,
           edits={LOAD: [('weights_only=True refuses") from error\n', 'weights_only=True refuses")\n')]},
           fails={"test_load_checkpoint": "__cause__ is None", "audit_corrupt_file": "its __cause__ is None"}),
    Mutant("model_not_loaded", "load_checkpoint never loads the model's state", breaks=("R2.8",),
           edits={LOAD: [('    model.load_state_dict(state["model"])\n', "")]},
           fails={"test_load_checkpoint": "differs from the saved model's", "test_train": "differs from the straight run",
                  "audit_roundtrip": "weights are not those saved", **{cell: "initial weights" for cell in RESUMES}}),
    Mutant("optimizer_not_loaded", "the optimizer's state is saved but never loaded", breaks=("R2.9",),
           edits={LOAD: [(LOAD_OPTIMIZER, "")]},
           fails={"test_load_checkpoint": "Adam's exp_avg was not restored", "test_train": "differs from the straight run",
                  "audit_roundtrip": "Adam's state", "audit_resume_equality": "optimizer's state was not restored",
                  "audit_resume_optimizer": "optimizer's state was not restored"}),
    Mutant("scheduler_not_loaded", "the scheduler's state is saved but never loaded", breaks=("R2.10",),
           edits={LOAD: [(LOAD_SCHEDULER, "")]},
           fails={"test_load_checkpoint": "last_epoch", "test_train": "differs from the straight run",
                  "audit_roundtrip": "scheduler stands at step", "audit_resume_equality": "scheduler's state was not restored",
                  "audit_resume_scheduler": "scheduler's state was not restored"}),
    Mutant("load_optimizer_required", "load_checkpoint loads the optimizer's state even when no optimizer is given",
           breaks=("R2.11",), edits={LOAD: [(LOAD_OPTIMIZER, '    optimizer.load_state_dict(state["optimizer"])\n')]},
           fails={"audit_roundtrip": "may be omitted"}),
    Mutant("torch_rng_not_restored", "torch's RNG state is saved but never restored", breaks=("R2.12",), headline=True,
           edits={LOAD: [(TORCH_RESTORE, "")]},
           fails={"test_load_checkpoint": "torch's (torch.get_rng_state) RNG", "test_train": "differs from the straight run",
                  "audit_roundtrip": "torch's global RNG", "audit_resume_equality": "torch's RNG was not restored",
                  "audit_resume_rng": "Dropout drew other masks"}),
    Mutant("numpy_rng_not_restored", "numpy's RNG state is saved but never restored", breaks=("R2.13",), headline=True,
           edits={LOAD: [(NUMPY_RESTORE, "")]},
           fails={"test_load_checkpoint": "numpy's (np.random.get_state) RNG", "audit_roundtrip": "numpy's global RNG",
                  "audit_resume_equality": "numpy's global RNG", "audit_resume_rng": "numpy's global RNG"}),
    Mutant("python_rng_not_restored", "Python's RNG state is saved but never restored", breaks=("R2.14",), headline=True,
           edits={LOAD: [(PYTHON_RESTORE, "")]},
           fails={"test_load_checkpoint": "Python's (random.getstate) RNG", "audit_roundtrip": "python's global RNG",
                  "audit_resume_equality": "Python's random", "audit_resume_rng": "Python's random"}),
    Mutant("epoch_returned_plus_one", "load_checkpoint returns the epoch to run next, not the epoch saved",
           breaks=("R2.15",), edits={LOAD: [(RETURNED, RETURNED.replace('state["epoch"]', 'state["epoch"] + 1'))]},
           fails={"test_load_checkpoint": "should return {'epoch': 1", "test_train": "differs from the straight run",
                  "audit_roundtrip": "return the epoch saved", "audit_resume_equality": "number of epochs done",
                  "audit_resume_latest": "number of epochs done"}),
    Mutant("extra_values_dropped", "load_checkpoint gives back only the generators' states as extra", breaks=("R2.16",),
           edits={LOAD: [(MERGED, '    extra = {name: s.cpu() for name, s in state["generators"].items()}\n')]},
           fails={"test_load_checkpoint": "extra['note'] is missing", "test_train": "KeyError",
                  "audit_roundtrip": "without the history", **{cell: "KeyError" for cell in RESUMES}}),
    Mutant("generators_returned_apart", "load_checkpoint returns the generators' states beside extra, not in it",
           breaks=("R2.17",),
           edits={LOAD: [(MERGED, '    extra = state["extra"]\n'),
                         (RETURNED, '    return {"epoch": state["epoch"], "extra": extra, "generators": state["generators"]}\n')],
                  TRAIN: [('resumed["extra"]["loader"]', 'resumed["generators"]["loader"]')]},
           fails={"test_load_checkpoint": "should come back as the generator's state",
                  "audit_roundtrip": "not as the generator's state"}),
    # Task 3: train
    Mutant("resume_from_oldest", "train resumes from the first checkpoint instead of the latest", breaks=("R3.1",),
           edits={TRAIN: [("saved[-1]", "saved[0]")]},
           fails={"audit_resume_latest": "load the latest checkpoint"}),
    Mutant("ckpt_dir_must_exist", "train lists ckpt_dir without checking that it exists", breaks=("R3.2",),
           edits={TRAIN: [('saved = sorted(Path(ckpt_dir).glob("epoch_*.pt"))',
                           'saved = sorted(p for p in Path(ckpt_dir).iterdir() if p.name.startswith("epoch_"))')]},
           fails={"test_train": "FileNotFoundError", **{cell: "FileNotFoundError" for cell in RESUMES}}),
    Mutant("epoch_skipped", "a resumed run starts one epoch after the checkpoint's: it skips an epoch", breaks=("R3.3",),
           edits={TRAIN: [(RESUMED_AT, RESUMED_AT.replace('resumed["epoch"]', 'resumed["epoch"] + 1'))]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "number of epochs done",
                  "audit_resume_latest": "number of epochs done"}),
    Mutant("scheduler_stepped_first", "train steps the scheduler before each epoch, not after", breaks=("R3.4",),
           edits={TRAIN: [(EPOCH_LOOP, "        scheduler.step()\n        history.append(run_epoch(model, loader, loss_fn, optimizer))\n")]},
           fails={"audit_resume_equality": "run_epoch(...) first"}),
    Mutant("every_off_by_one", "train saves after epochs done + 1 a multiple of every (a 0-based count)",
           breaks=("R3.5",), edits={TRAIN: [("if done % every == 0 or", "if (done + 1) % every == 0 or")]},
           fails={"test_train": "should leave epoch_0002.pt", "audit_resume_latest": "ckpt_dir ended with"}),
    Mutant("no_save_after_last", "train saves only when the epoch is a multiple of every, not after the last one",
           breaks=("R3.6",), headline=True,
           edits={TRAIN: [("if done % every == 0 or done == epochs:", "if done % every == 0:")]},
           fails={"test_train": "one after the last", "audit_resume_latest": "and after the last"}),
    Mutant("epoch_repeated", "the checkpoint stores the epoch's index from 0: a resumed run repeats an epoch",
           breaks=("R3.7",), edits={TRAIN: [(SAVED_EPOCH, SAVED_EPOCH.replace("epoch=done", "epoch=done - 1"))]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "number of epochs done",
                  "audit_resume_latest": "number of epochs done"}),
    Mutant("history_not_saved", "the history is not in the checkpoint: a resumed run starts a new one",
           breaks=("R3.8",),
           edits={TRAIN: [(EXTRA_SAVED, 'extra={"loader": loader.generator}'),
                          (RESUMED_AT, RESUMED_AT.replace('resumed["extra"]["history"]', 'resumed["extra"].get("history", [])'))]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "keep the history"}),
    Mutant("loader_generator_not_saved", "train neither saves the loader's generator nor restores it",
           breaks=("R3.9",), headline=True,
           edits={TRAIN: [(EXTRA_SAVED, 'extra={"history": history}'),
                          (SET_LOADER, '        if "loader" in resumed["extra"]:\n    ' + SET_LOADER)]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "generator was not restored",
                  "audit_resume_shuffle": "another order"}),
    Mutant("loader_generator_not_restored", "train saves the loader's generator but never sets its state back",
           breaks=("R3.10",), headline=True, edits={TRAIN: [(SET_LOADER, "")]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "generator was not restored",
                  "audit_resume_shuffle": "another order"}),
    Mutant("returns_nothing", "train forgets to return the history", breaks=("R3.11",),
           edits={TRAIN: [("    return history\n", "")]},
           fails={"test_train": "should return a list of 5 floats", "audit_resume_equality": "returned a NoneType"}),
    Mutant("history_not_kept", "train starts a new history after resuming", breaks=("R3.12",),
           edits={TRAIN: [(RESUMED_AT, RESUMED_AT.replace('resumed["extra"]["history"]', "[]"))]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "keep the history"}),
    # Task 4: adapters
    Mutant("adapter_saves_everything", "save_adapter saves the whole state_dict, frozen weights included",
           breaks=("R4.1",),
           edits={ADAPTER: [("write_atomically({name: p.detach() for name, p in model.named_parameters() if p.requires_grad}, path)",
                             "write_atomically(model.state_dict(), path)")]},
           fails={"test_adapter": "should hold the 4 LoRA tensors", "audit_adapter_roundtrip": "frozen weights"}),
    Mutant("adapter_no_mkdir", "save_adapter calls torch.save straight away: the folder is never created",
           breaks=("R4.2",),
           edits={ADAPTER: [("write_atomically({name: p.detach() for name, p in model.named_parameters() if p.requires_grad}, path)",
                             "torch.save({name: p.detach() for name, p in model.named_parameters() if p.requires_grad}, path)")]},
           fails={"test_adapter": "Parent directory", "audit_adapter_roundtrip": "Parent directory"}),
    Mutant("adapter_reports_frozen_as_missing", "load_adapter reports load_state_dict(strict=False)'s lists: every "
           "frozen weight shows as missing", breaks=("R4.3",), edits={ADAPTER: [(MISMATCH,
               '    names = set(model.state_dict())\n'
               '    mismatch = {"missing": sorted(names - tensors.keys()), "unexpected": sorted(tensors.keys() - names)}\n')]},
           fails={"test_adapter": "ValueError", "audit_adapter_roundtrip": "raised ValueError",
                  "audit_adapter_keys": "frozen weights"}),
    Mutant("adapter_unexpected_vs_all_names", "load_adapter counts a file's tensor as expected when it names any "
           "weight of the model, frozen ones included", breaks=("R4.4",),
           edits={ADAPTER: [(MISMATCH, MISMATCH.replace("sorted(tensors.keys() - trainable)",
                                                        "sorted(tensors.keys() - set(model.state_dict()))"))]},
           fails={"audit_adapter_keys": "frozen weights included"}),
    Mutant("adapter_mismatch_ignored", "load_adapter loads with strict=False and reports nothing", breaks=("R4.5",),
           edits={ADAPTER: [(ADAPTER_CHECK, ""), (ADAPTER_LOAD, ADAPTER_LOAD.replace(
               "return mismatch", 'return {"missing": [], "unexpected": []}'))]},
           fails={"test_adapter": "should raise ValueError", "audit_adapter_keys": "returned normally"}),
    Mutant("adapter_error_names_missing_only", "the ValueError of a mismatch names only the missing names",
           breaks=("R4.6",), edits={ADAPTER: [("f\"unexpected {mismatch['unexpected']}\")", 'f"and perhaps more")')]},
           fails={"test_adapter": "the error should name 3.lora_a", "audit_adapter_keys": "does not name"}),
    Mutant("adapter_loads_before_checking", "load_adapter loads the matching tensors, then raises on a mismatch",
           breaks=("R4.7",),
           edits={ADAPTER: [(ADAPTER_CHECK, ""),
                            (ADAPTER_LOAD, ADAPTER_LOAD.replace("    return mismatch\n", ADAPTER_CHECK + "    return mismatch\n"))]},
           fails={"audit_adapter_keys": "changed the model first"}),
    Mutant("adapter_loose_loads_nothing", "with strict=False, a mismatch is reported but nothing is loaded",
           breaks=("R4.8",),
           edits={ADAPTER: [(ADAPTER_LOAD, '    if not (mismatch["missing"] or mismatch["unexpected"]):\n    ' + ADAPTER_LOAD)]},
           fails={"test_adapter": "the matching 0.lora_* should load", "audit_adapter_keys": "did not hold the file's tensors"}),
    Mutant("adapter_loads_frozen", "load_adapter loads every tensor of the file with strict=False, frozen ones too",
           breaks=("R4.9",),
           edits={ADAPTER: [("model.load_state_dict({name: t for name, t in tensors.items() if name in trainable}, strict=False)",
                             "model.load_state_dict(tensors, strict=False)")]},
           fails={"audit_adapter_keys": "frozen weights"}),
    Mutant("adapter_loose_raises", "load_adapter raises on any mismatch, whatever strict says", breaks=("R4.10",),
           edits={ADAPTER: [("    if strict and (mismatch", "    if (mismatch")]},
           fails={"test_adapter": "ValueError", "audit_adapter_keys": "strict=False) raised ValueError"}),
    # Correct alternatives: other valid styles keep full marks.
    Mutant("alt_folder_of_files", "a checkpoint is a folder of five files, written beside it and renamed into place",
           edits={SAVE: [(after_docstring(SAVE, "save_checkpoint"), FOLDER_SAVE)],
                  LOAD: [(after_docstring(LOAD, "load_checkpoint"), FOLDER_LOAD)]}),
    Mutant("alt_rng_generator_api", "RNG states through the generator objects and numpy's dict form",
           edits={SAVE: [(NUMPY_STATE, "    numpy_state = np.random.get_state(legacy=False)\n"
                                       '    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()\n'),
                         (SAVE_RNG, '        "rng": {"torch": torch.default_generator.get_state(),\n'
                                    '                "cuda": [torch.cuda.default_generators[i].get_state()\n'
                                    '                         for i in range(torch.cuda.device_count())],\n'
                                    '                "numpy": numpy_state,\n'
                                    '                "python": list(random.getstate())},\n')],
                  LOAD: [(RESTORE_RNG, '    rng = state["rng"]\n'
                                       '    torch.default_generator.set_state(rng["torch"].cpu())\n'
                                       '    for i, s in enumerate(rng["cuda"]):\n'
                                       '        torch.cuda.default_generators[i].set_state(s.cpu())\n'
                                       '    numpy_state = rng["numpy"]\n'
                                       '    numpy_state["state"]["key"] = np.array(numpy_state["state"]["key"], dtype=np.uint32)\n'
                                       '    np.random.set_state(numpy_state)\n'
                                       '    random.setstate(tuple(rng["python"]))\n')]}),
    Mutant("alt_latest_by_number", "train finds the latest by the number in its name, and counts epochs from 1",
           edits={TRAIN: [(after_docstring(TRAIN, "train"), '''    ckpt_dir = Path(ckpt_dir)
    history, start = [], 0
    found = list(ckpt_dir.glob("epoch_*.pt")) if ckpt_dir.is_dir() else []
    if found:
        latest = max(found, key=lambda p: int(p.stem.split("_")[1]))
        state = load_checkpoint(latest, model=model, optimizer=optimizer, scheduler=scheduler)
        start, history = state["epoch"], list(state["extra"]["history"])
        loader.generator.set_state(state["extra"]["loader"])
    for epoch in range(start + 1, epochs + 1):
        history.append(run_epoch(model, loader, loss_fn, optimizer))
        scheduler.step()
        if epoch % every == 0 or epoch == epochs:
            save_checkpoint(checkpoint_path(ckpt_dir, epoch), model=model, optimizer=optimizer, scheduler=scheduler,
                            epoch=epoch, extra={"loader": loader.generator, "history": history})
    return history
''')]}),
    Mutant("alt_other_types", "other valid types and another loop: load_checkpoint and load_adapter return "
           "OrderedDicts (tuples of names), train a for loop over range with numpy.float64 losses",
           edits={LOAD: [(RETURNED, "    import collections\n"
                                    "    return collections.OrderedDict(epoch=state[\"epoch\"], extra=collections.OrderedDict(extra))\n")],
                  TRAIN: [(after_docstring(TRAIN, "train"), """    ckpt = Path(ckpt_dir)
    history, start = [], 0
    latest = max(ckpt.glob("epoch_*.pt"), default=None, key=lambda p: p.name)
    if latest is not None:
        got = load_checkpoint(latest, model=model, optimizer=optimizer, scheduler=scheduler)
        start = got["epoch"]
        history = [np.float64(h) for h in got["extra"]["history"]]
        loader.generator.set_state(got["extra"]["loader"])
    for epoch in range(start, epochs):
        loss = np.float64(run_epoch(model, loader, loss_fn, optimizer))
        scheduler.step()
        history.append(loss)
        if (epoch + 1) % every == 0 or epoch + 1 == epochs:
            save_checkpoint(checkpoint_path(ckpt, epoch + 1), model=model, optimizer=optimizer, scheduler=scheduler,
                            epoch=epoch + 1, extra={"history": [float(h) for h in history], "loader": loader.generator})
    return history
""")],
                  ADAPTER: [(ADAPTER_LOAD, ADAPTER_LOAD.replace(
                      "    return mismatch\n",
                      "    import collections\n"
                      "    return collections.OrderedDict(missing=tuple(mismatch[\"missing\"]), "
                      "unexpected=tuple(mismatch[\"unexpected\"]))\n"))]}),
    Mutant("alt_noisy", "correct, and noisy: logging to stderr, prints to stdout and stderr, warnings, and a terminal "
           "tqdm bar nested in a tqdm.auto bar",
           edits={SAVE: [("    extra = dict(extra or {})\n",
                          "    import sys\n    print(f'saving {path}', file=sys.stderr)\n    extra = dict(extra or {})\n")],
                  TRAIN: [("    while done < epochs:\n",
                           "    import logging, sys, warnings\n"
                           "    from tqdm import tqdm as terminal_tqdm\n"
                           "    from tqdm.auto import tqdm as auto_tqdm\n"
                           "    logging.basicConfig()\n"
                           "    log = logging.getLogger('ps06.train')\n"
                           "    log.setLevel(logging.INFO)\n"
                           "    bar = auto_tqdm(total=epochs, initial=done, desc='epochs')\n"
                           "    while done < epochs:\n"),
                          (EPOCH_LOOP, "        for _ in terminal_tqdm(range(1), desc=f'epoch {done + 1}', leave=False):\n"
                                       "            history.append(run_epoch(model, loader, loss_fn, optimizer))\n"
                                       "        scheduler.step()\n"
                                       "        bar.update(1)\n"
                                       "        log.warning('epoch %d: loss %.4f', done + 1, history[-1])\n"
                                       "        log.info('lr now %s', scheduler.get_last_lr())\n"
                                       "        print(f'epoch {done + 1} done', file=sys.stderr)\n"
                                       "        print(f'loss {history[-1]:.4f}')\n"
                                       "        warnings.warn(f'epoch {done + 1} finished')\n"),
                          ("    return history\n", "    bar.close()\n    return history\n")]}),
    Mutant("alt_adapter_warns", "load_adapter also warns (UserWarning, on stderr) when strict=False meets a mismatch",
           edits={ADAPTER: [(ADAPTER_LOAD, '    if mismatch["missing"] or mismatch["unexpected"]:\n'
                                           '        import warnings\n'
                                           '        warnings.warn(f"adapter {path}: {mismatch}")\n' + ADAPTER_LOAD)]}),
]
