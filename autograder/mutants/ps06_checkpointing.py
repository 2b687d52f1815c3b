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


MUTANTS = [
    Mutant("reference", "the instructor's solution"),
    Mutant(BLANK, "the release notebook, nothing filled in",
           fails={cell: "NotImplementedError" for cell in grade_cells(NAME)}),
    Mutant("optimizer_not_saved", "the optimizer's state is neither saved nor loaded: Adam restarts after a resume",
           edits={SAVE: [(SAVE_OPTIMIZER, "")], LOAD: [(LOAD_OPTIMIZER, "")]},
           fails={"test_load_checkpoint": "Adam's exp_avg was not restored", "test_train": "differs from the straight run",
                  "audit_resume_equality": "optimizer's state was not restored",
                  "audit_resume_optimizer": "optimizer's state was not restored"}),
    Mutant("scheduler_not_saved", "the scheduler's state is neither saved nor loaded: the schedule restarts",
           edits={SAVE: [(SAVE_SCHEDULER, "")], LOAD: [(LOAD_SCHEDULER, "")]},
           fails={"test_load_checkpoint": "last_epoch", "test_train": "differs from the straight run",
                  "audit_resume_equality": "scheduler's state was not restored",
                  "audit_resume_scheduler": "scheduler's state was not restored"}),
    Mutant("rng_not_saved", "no RNG state in the checkpoint: Dropout and augmentation draw other numbers",
           edits={SAVE: [(NUMPY_STATE, ""), (SAVE_RNG, "")], LOAD: [(RESTORE_RNG, "")]},
           fails={"test_load_checkpoint": "global RNGs", "test_train": "differs from the straight run",
                  "audit_resume_equality": "torch's RNG was not restored", "audit_resume_rng": "Dropout drew other masks"}),
    Mutant("loader_generator_not_restored", "train saves the loader's generator but never sets its state back",
           edits={TRAIN: [(SET_LOADER, "")]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "generator was not restored",
                  "audit_resume_shuffle": "another order"}),
    Mutant("epoch_repeated", "the checkpoint stores the epoch's index from 0: a resumed run repeats an epoch",
           edits={TRAIN: [(SAVED_EPOCH, SAVED_EPOCH.replace("epoch=done", "epoch=done - 1"))]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "number of epochs done",
                  "audit_resume_latest": "number of epochs done"}),
    Mutant("epoch_skipped", "a resumed run starts one epoch after the checkpoint's: it skips an epoch",
           edits={TRAIN: [(RESUMED_AT, RESUMED_AT.replace('resumed["epoch"]', 'resumed["epoch"] + 1'))]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "number of epochs done",
                  "audit_resume_latest": "number of epochs done"}),
    Mutant("resume_from_oldest", "train resumes from the first checkpoint instead of the latest",
           edits={TRAIN: [("saved[-1]", "saved[0]")]},
           fails={"audit_resume_latest": "load the latest checkpoint"}),
    Mutant("history_not_kept", "train starts a new history after resuming",
           edits={TRAIN: [(RESUMED_AT, RESUMED_AT.replace('resumed["extra"]["history"]', "[]"))]},
           fails={"test_train": "differs from the straight run", "audit_resume_equality": "keep the history"}),
    Mutant("non_atomic_write", "torch.save(state, path) straight into the checkpoint's path",
           edits={SAVE: [(ATOMIC, "    torch.save(obj, path)\n")]},
           fails={"audit_atomic_save": "destroyed the previous checkpoint"}),
    Mutant("weights_only_false", "torch.load(..., weights_only=False): the file's pickle may run any code",
           edits={LOAD: [(READ, READ.replace("weights_only=True", "weights_only=False"))]},
           fails={"audit_unsafe_pickle": "ran code hidden in it"}),
    Mutant("missing_file_starts_fresh", "a missing checkpoint quietly gives epoch 0",
           edits={LOAD: [(MISSING, '    if not path.exists():\n        return {"epoch": 0, "extra": {}}\n')]},
           fails={"audit_missing_file": "must not quietly start"}),
    Mutant("missing_file_reported_as_corrupt", "no path.exists() check: the missing file falls into the corrupt-file handler",
           edits={LOAD: [(MISSING, "")]},
           fails={"audit_missing_file": "also catches FileNotFoundError"}),
    Mutant("corrupt_file_unclear", "torch.load's own error for a truncated file: OSError 'Invalid argument'",
           edits={LOAD: [(GUARDED_READ, READ.replace("        ", "    ", 1))]},
           fails={"audit_corrupt_file": "does not say which file is broken"}),
    Mutant("numpy_state_as_array", "np.random.get_state() saved as is: torch.load(weights_only=True) refuses it",
           edits={SAVE: [('"numpy": [kind, keys.tolist(), pos, has_gauss, cached]', '"numpy": np.random.get_state()')]},
           fails={"test_save_checkpoint": "store numpy's RNG state as plain lists",
                  "test_load_checkpoint": "weights_only=True refuses", "test_train": "weights_only=True refuses",
                  "audit_atomic_save": "could not read the checkpoint",
                  **{cell: "weights_only=True refuses" for cell in ("audit_resume_equality", "audit_resume_optimizer",
                                                                   "audit_resume_scheduler", "audit_resume_rng",
                                                                   "audit_resume_shuffle", "audit_resume_latest")}}),
    Mutant("adapter_mismatch_ignored", "load_adapter loads with strict=False and reports nothing",
           edits={ADAPTER: [(ADAPTER_CHECK, ""), (ADAPTER_LOAD, ADAPTER_LOAD.replace(
               "return mismatch", 'return {"missing": [], "unexpected": []}'))]},
           fails={"test_adapter": "should raise ValueError", "audit_adapter_keys": "returned normally"}),
    Mutant("adapter_reports_frozen_as_missing", "load_adapter reports load_state_dict(strict=False)'s lists: every "
           "frozen weight shows as missing", edits={ADAPTER: [(
               '    mismatch = {"missing": sorted(trainable - tensors.keys()), "unexpected": sorted(tensors.keys() - trainable)}\n',
               '    names = set(model.state_dict())\n'
               '    mismatch = {"missing": sorted(names - tensors.keys()), "unexpected": sorted(tensors.keys() - names)}\n')]},
           fails={"test_adapter": "ValueError", "audit_adapter_roundtrip": "raised ValueError",
                  "audit_adapter_keys": "frozen weights"}),
    Mutant("adapter_saves_everything", "save_adapter saves the whole state_dict, frozen weights included",
           edits={ADAPTER: [("write_atomically({name: p.detach() for name, p in model.named_parameters() if p.requires_grad}, path)",
                             "write_atomically(model.state_dict(), path)")]},
           fails={"test_adapter": "should hold the 4 LoRA tensors", "audit_adapter_roundtrip": "frozen weights"}),
    Mutant("numpy_state_via_safe_globals", "numpy's state saved as is, loaded under torch.serialization.safe_globals: "
           "the file does not open with plain weights_only=True",
           fails={"test_save_checkpoint": "store numpy's RNG state as plain lists"},
           edits={SAVE: [('"numpy": [kind, keys.tolist(), pos, has_gauss, cached]', '"numpy": np.random.get_state()')],
                  LOAD: [(READ, "        with torch.serialization.safe_globals([np._core.multiarray._reconstruct, "
                                "np.ndarray, np.dtype, np.dtypes.UInt32DType]):\n    " + READ),
                         ('    kind, keys, pos, has_gauss, cached = rng["numpy"]\n'
                          '    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))\n',
                          '    np.random.set_state(rng["numpy"])\n')]}),
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
    Mutant("alt_adapter_warns", "load_adapter also warns (UserWarning, on stderr) when strict=False meets a mismatch",
           edits={ADAPTER: [(ADAPTER_LOAD, '    if mismatch["missing"] or mismatch["unexpected"]:\n'
                                           '        import warnings\n'
                                           '        warnings.warn(f"adapter {path}: {mismatch}")\n' + ADAPTER_LOAD)]}),
]
