"""The audit pipeline: record a student's functions, run them in a fresh process, judge the results.

Three places, three levels of trust:
- the student's kernel (untrusted): the hidden cell calls `audit(name)`, which only pickles the
  graded functions by value (`record`);
- the runner (`python -m autograder.runner`, untrusted, fresh; at grading a fork, per student, of
  a sandboxed zygote that imported torch once): unpickles them and runs each check's `collect` on
  hidden scenarios, saving plain data (floats, strings, tensors). It is lent no check: each check's
  process is sent that check's `job` alone (its collect and the helpers it calls, by value, and its
  seed), so student code there can reach no judge, no other check or seed, no file of the grader;
- the judge (trusted: the grader's own process, or the kernel outside autograde): loads that data
  with `weights_only=True` and runs each check's `judge`, which never calls student code.
At autograde, `autograder.nbgrader_plugin.AuditedExecute` sets `AUDIT_DIR_ENV`, so the kernel
only records and the grader judges; whatever the kernel did to itself cannot fake a pass.
"""
import importlib
import multiprocessing.util
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cloudpickle

from autograder import recorder, sandbox
from autograder.zygote import remove, roomy

AUDIT_DIR_ENV = "COURSE_AUDIT_DIR"


class AuditFailure(Exception):
    """A check found a bug; the message is what the student reads."""


@dataclass(frozen=True)
class Check:
    name: str  # "ps01.zero_grad": the name the hidden cell passes to audit()
    needs: tuple[str, ...]  # the student's names the check runs
    collect: Callable[[dict, int], dict]  # runs student code on the scenario of a seed
    judge: Callable[[dict, int], None]  # raises AuditFailure; never calls student code
    seed: int  # the hidden seed used at grading
    timeout: float = 60.0


def checks() -> dict[str, Check]:
    """Every check by name: each autograder/psNN.py holds the CHECKS of assignment psNN."""
    found = sorted(Path(__file__).parent.glob("ps[0-9][0-9].py"))
    modules = [importlib.import_module(f"autograder.{path.stem}") for path in found]
    return {c.name: c for module in modules for c in module.CHECKS}


def job(check: Check, seed: int) -> bytes:
    """What the runner is sent for `check`: a header line (name, timeout, length), then the payload
    that only the process running this check reads: its collect, pickled by value with the helpers
    it calls from modules the runner is not lent (never the judge beside it), its needs and `seed`."""
    for name, module in list(sys.modules.items()):
        if name.startswith("autograder.") and name.split(".")[1] not in LENT["autograder.runner"]:
            cloudpickle.register_pickle_by_value(module)
    payload = cloudpickle.dumps((check.needs, check.collect, seed))
    return f"{check.name}\t{check.timeout}\t{len(payload)}\n".encode() + payload


def record(check: Check, namespace: dict, folder: Path) -> None:
    """Pickle, by value, the names `check` needs from the student's namespace into `folder`."""
    recorder.record(check.name, check.needs, namespace, folder)


# What of this package each zygote's sandbox is lent, and so what student code there can read. The
# kernels': a stand-in whose `audit(name)` only records (no check, seed or scenario). The audit
# runners': what runs a check and records what student code did, never a check (each comes in its
# `job`), a judge, a seed, the mutants (fragments of the solutions), the hostile corpus or a grading tool.
LENT = {"autograder.kernels": ("recorder", "zygote", "kernels"),
        "autograder.runner": ("__init__", "audit", "instrument", "problems", "recorder", "runner", "sandbox", "zygote")}


def lent_package(folder: Path, module: str) -> Path:
    """Write in `folder` the `autograder` package that `module`'s zygote sees. Returns the package folder."""
    package = folder / "autograder"
    (package / "__pycache__").mkdir(parents=True)
    for name in LENT[module]:  # with their compiled forms, still valid (same times): no compiling at start
        shutil.copy2(Path(__file__).with_name(f"{name}.py"), package)
        for compiled in Path(__file__).parent.glob(f"__pycache__/{name}.*.pyc"):
            shutil.copy2(compiled, package / "__pycache__")
    if module == "autograder.kernels":
        needs = {name: check.needs for name, check in checks().items()}
        (package / "__init__.py").write_text(
            '"""Stand-in for the autograder in a student\'s kernel at grading: it only records."""\n'
            "import os\nimport sys\nfrom pathlib import Path\n\n"
            "from autograder.recorder import RECORDED, record\n\n"
            f"NEEDS = {needs!r}\n\n\n"
            "def audit(name):\n"
            f"    record(name, NEEDS[name], sys._getframe(1).f_globals, Path(os.environ[{AUDIT_DIR_ENV!r}]))\n"
            "    print(RECORDED.format(name))\n")
    return package


class Zygote:
    """A sandboxed `python -m MODULE --serve` of this grading process (`autograder.runner`, the
    audit's; `autograder.kernels`, the notebook kernels'): it imports torch once and forks a fresh
    process per student, so a student costs no interpreter start and no torch import. Its folder
    (`tree`, a tmpfs of `sandbox.FOLDER_SIZE` in its sandbox) holds one student's session at a time; nothing
    else is lent to it, and of this package only what `LENT` names for it."""

    def __init__(self, module: str, index: int, prefix: str, env: dict[str, str]):
        self.uid = sandbox.user_id(index)  # each zygote its own: a fork bomb in one leaves the other be
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.tree = self.folder / "tree"
        self.errors = tempfile.TemporaryFile()  # its own stderr, shown when it fails a student
        self.answers = b""
        self.sandbox = sandbox.Sandbox([sys.executable, "-P", "-m", module, "--serve"], cwd=sandbox.AUTOGRADER,
                                       uid=self.uid, own=self.tree,
                                       stand_ins={sandbox.AUTOGRADER: lent_package(self.folder, module)},
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
                                       bufsize=0, env={**sandbox.environment({**os.environ, **env}),
                                                       sandbox.OWN_ENV: str(self.tree)})
        self.process = self.sandbox.process
        roomy(self.process.stdin.fileno())

    def lend(self, paths: list[Path]) -> None:
        """Make `paths` its own (as root; otherwise they are already)."""
        sandbox.lend(paths, self.uid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def session(self) -> Path:
        """A fresh folder for the next student, in a tree emptied of whatever the last one left."""
        for entry in self.tree.iterdir():
            remove(entry)
        return Path(tempfile.mkdtemp(prefix="student-", dir=self.tree))

    def write(self, data: str | bytes) -> bool:
        try:
            self.process.stdin.write(data.encode() if isinstance(data, str) else data)
            return True
        except BrokenPipeError:  # it is gone: the student's checks end without a result, and say so
            return False

    def read(self, timeout: float) -> str | None:
        """Its next answer line; None if none came within `timeout` seconds or it is gone."""
        deadline, fd = time.monotonic() + timeout, self.process.stdout.fileno()
        while b"\n" not in self.answers:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return None
            chunk = os.read(fd, 64)
            if not chunk:
                return None
            self.answers += chunk
        line, self.answers = self.answers.split(b"\n", 1)
        return line.decode()

    def finish(self, timeout: float) -> bool:
        """End the student's session; True once the zygote says all it ran for them ended and was swept away."""
        if not self.write("\n"):
            return False
        deadline = time.monotonic() + timeout
        while (answer := self.read(deadline - time.monotonic())) is not None:
            if answer == "done":
                return True
        return False

    def kill(self) -> None:
        """End it and its sandbox, with whatever a student's code still runs there."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        self.sandbox.close()
        remove(self.folder)


# module: its sandbox's index (`sandbox.user_id`), its folder's prefix, its environment beside the grader's
ZYGOTES = {"autograder.runner": (0, "runners-", {"TQDM_DISABLE": "1"}),  # a student's bars would bury its log
           "autograder.kernels": (1, "kernels-", {})}
_zygotes: dict[str, Zygote] = {}


def zygote(module: str = "autograder.runner") -> Zygote:
    """This process's zygote of `module`, started anew if there is none or the last one died."""
    found = _zygotes.get(module)
    if found is None or not found.alive():
        if found is not None:
            found.close()
        found = _zygotes[module] = Zygote(module, *ZYGOTES[module])
        # Not atexit: a worker forked by multiprocessing ends without it, but with these finalizers
        # (which a plain interpreter also runs at exit).
        multiprocessing.util.Finalize(found, found.close, exitpriority=0)
    return found


class Runner:
    """The runner for one notebook: what `record` leaves in `folder` is run by a fresh runner
    process, or, if `confine`, by a fresh fork of the sandboxed zygote. It starts at once, so its
    start overlaps whatever runs meanwhile, such as the notebook; each check sent runs while the
    caller goes on; `verdicts` then ends it and judges its records."""

    def __init__(self, seeds: dict[str, int] | None = None, confine: bool = False):
        self.registry, self.seeds, self.confine = checks(), seeds or {}, confine
        self.sent: list[str] = []
        self.swept = False
        if confine:
            self.zygote = zygote()
            self.session = self.zygote.session()
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix="audit-")
            self.session = Path(self._scratch.name)
        # Results go to a folder the student's kernel never sees (it writes records alone, here or,
        # forked, in its own session, whence the grader copies them), so it cannot plant one there.
        self.folder, self.out, self.log = self.session / "records", self.session / "verdicts", self.session / "runner.log"
        self.folder.mkdir()
        self.out.mkdir()

    def __enter__(self) -> "Runner":
        if self.confine:
            self.zygote.lend([self.session])
            self.zygote.write(f"{self.folder}\t{self.out}\t{self.log}\n")
            return self
        # A student's progress bars would bury the runner's last output, which a failure message shows.
        env = {**os.environ, "TQDM_DISABLE": "1"}
        cmd = [sys.executable, "-m", "autograder.runner", str(self.folder), str(self.out)]
        with open(self.log, "wb") as sink:
            self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.STDOUT,
                                            cwd=self.folder, env=env)
        roomy(self.process.stdin.fileno())
        return self

    def __exit__(self, *exc) -> None:
        if not self.confine:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._scratch.cleanup()
            return
        if not self.swept:  # its runner may still be running this student's code
            self.zygote.kill()
        remove(self.session)

    def seed(self, name: str) -> int:
        return self.seeds.get(name, self.registry[name].seed)

    def send(self, names: list[str]) -> None:
        """Have the runner start the checks of `names` that have a record and were not sent yet."""
        jobs = [n for n in dict.fromkeys(names) if n not in self.sent and (self.folder / f"{n}.pkl").exists()]
        self.sent += jobs
        data = b"".join(job(self.registry[n], self.seed(n)) for n in jobs)
        if self.confine:
            self.zygote.write(data)
            return
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except BrokenPipeError:  # the runner is gone: its checks end without a result, and say so
            pass

    def verdicts(self, names: list[str]) -> dict[str, str | None]:
        """Send what is left of `names`, let the runner finish, judge: name -> failure message or None."""
        self.send(names)
        timeout = sum(self.registry[n].timeout for n in self.sent) + 60
        if self.confine:
            self.swept = self.zygote.finish(timeout)
            if not self.swept:  # the next student gets a fresh zygote
                self.zygote.kill()
                self.zygote.errors.seek(0)
                with open(self.log, "ab") as log:
                    log.write(self.zygote.errors.read()[-800:])
        else:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return {n: verdict(self.registry[n], self.folder, self.out, self.seed(n), self.log) for n in names}


def run_audits(fns: dict, names: list[str], seeds: dict[str, int] | None = None,
               confine: bool = False) -> dict[str, str | None]:
    """Record the functions `fns` for the checks of `names`, run them and judge them."""
    with Runner(seeds, confine) as runner:
        for name in names:
            record(runner.registry[name], fns, runner.folder)
        return runner.verdicts(names)


def verdict(check: Check, folder: Path, out: Path, seed: int, log: Path) -> str | None:
    """Judge one check from the runner's record; the failure message, or None on a pass."""
    if not (folder / f"{check.name}.pkl").exists():
        return ("Nothing was recorded for this audit: the hidden cell did not run to its end. "
                "Run your notebook top to bottom (Kernel > Restart Kernel and Run All Cells…) and fix the first error.")
    path = out / f"{check.name}.pt"
    if not path.exists():
        tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        return (f"The audit process running your code for '{check.name}' ended without a result: something "
                f"ended it from outside its check (a signal sent to every process, such as os.kill(-1, ...)), "
                f"or the grader's own time limit for your audits passed. Its last output:\n{tail}")
    import torch  # here, not at the top: `autograder grade` imports this package and needs no torch (~2 s)

    try:
        rec = torch.load(path, weights_only=True)
    except Exception as e:  # anything the runner wrote that is not plain data
        return f"The audit could not read the results of your code ({type(e).__name__})."
    return judged(check, rec, seed)


def judged(check: Check, rec: dict, seed: int) -> str | None:
    """The failure message for a runner's record, or None on a pass."""
    try:
        if rec.get("error"):
            return str(rec["error"])
        check.judge(rec, seed)
    except AuditFailure as e:
        return str(e)
    except Exception as e:  # malformed data from the untrusted runner fails, never passes
        return f"Your functions returned results the audit could not interpret ({type(e).__name__}: {e})."
    return None


def collect_safely(needs: tuple[str, ...], collect: Callable[[dict, int], dict], fns: dict, seed: int) -> dict:
    """Run a check's `collect`, turning a missing name or a student's exception into a message."""
    missing = [n for n in needs if n not in fns]
    if missing:
        return {"error": f"{', '.join(missing)} is not defined: run the cell that defines it "
                         f"(and keep its name and signature as given)."}
    try:
        return collect(fns, seed)
    except NotImplementedError:
        return {"error": f"{' / '.join(needs)} still raises NotImplementedError: "
                         f"replace `raise NotImplementedError()` with your code."}
    except AuditFailure as e:
        return {"error": str(e)}
    except BaseException as e:  # a student's bug, reported with their own frames
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "autograder" not in f.filename]
        where = "".join(traceback.format_list(frames[-3:]))
        error = f"{type(e).__name__}: {e}"
        limit = sandbox.limit_hit(error)
        return {"error": f"Your code raised {error}{' ' + limit if limit else ''}\n{where}".rstrip()}


def audit(name: str) -> None:
    """Hidden-cell entry point: audit the graded functions of the calling notebook for check `name`."""
    check = checks()[name]
    namespace = sys._getframe(1).f_globals
    deferred = os.environ.get(AUDIT_DIR_ENV)
    if deferred:
        record(check, namespace, Path(deferred))
        print(recorder.RECORDED.format(name))
        return
    message = run_audits(namespace, [name])[name]
    if message:
        raise AuditFailure(message)
    print(f"{name}: passed")
