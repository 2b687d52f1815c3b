"""Grading a whole class on nbgrader: every submitted student autograded in parallel into the gradebook.

nbgrader autogrades one notebook at a time. Here each worker process (local: a fork of a server
that imported the grader once, `autograder.forkserver`; or on a Dask cluster) runs nbgrader's own
`autograde` for one student at a time through `NbGraderAPI`, so a student costs one kernel and no
extra interpreter start. The gradebook is written by nbgrader itself: students are created
beforehand by one worker alone, and SQLite waits for a busy database instead of failing with
"database is locked". Without `force`, students already autograded are skipped, so re-running
grades only what is new (and what an interrupted or killed run left half done); with it, everyone is
regraded to the same result.

The grading process itself never imports nbgrader (~3 s of CPU: its package loads its server
extensions); only the functions that run on workers do, whose fork server imported it once.
"""
import functools
import logging
import os
import signal
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

from autograder import forkserver

# Seconds a writer waits for SQLite's lock: longer than any single gradebook transaction can take.
SQLITE_BUSY_TIMEOUT = 600


class NotReleased(LookupError):
    """The assignment is not in the gradebook: mistyped, or never released."""


class NotSubmitted(LookupError):
    """A student named to grade has no submission of the assignment."""


class Interrupted(Exception):
    """Grading was stopped (Ctrl-C): `graded` students of `total` were graded and are in the gradebook."""

    def __init__(self, graded: int, total: int):
        super().__init__(f"interrupted: {graded} of {total} students graded, kept in the gradebook; the same "
                         f"command grades the rest (a student interrupted halfway is graded again)")


@dataclass(frozen=True)
class Outcome:
    student: str
    ok: bool
    seconds: float
    log: str  # nbgrader's log for this student; the traceback when autograde itself failed
    skipped: bool = False  # not tried: it failed before and has not changed since


def course_config(root: Path, db_url: str | None = None):
    """nbgrader's configuration of the course at `root`, on gradebook `db_url` if given."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    url = db_url or config.CourseDirectory.db_url
    if url.startswith("sqlite:") and "timeout=" not in url:
        url += ("&" if "?" in url else "?") + f"timeout={SQLITE_BUSY_TIMEOUT}"
    config.CourseDirectory.db_url = url
    return config


def submitted(root: Path, assignment: str) -> list[str]:
    """Students with a submission of `assignment` in `root/submitted`, sorted."""
    return sorted(p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir())


def after_penalty(raw: float, penalty: float | None) -> float:
    """A score after nbgrader's late penalty, as `nbgrader export` counts it: never below 0."""
    return max(0.0, raw - (penalty or 0.0))


def failure_log(root: Path, assignment: str, student: str) -> Path:
    """Where `grade` keeps nbgrader's log of a submission it could not autograde (removed once it can)."""
    return Path(root) / "reports" / assignment / "failed" / f"{student}.log"


def failed_before(root: Path, assignment: str, student: str) -> bool:
    """Whether the student's submission could not be autograded and has not changed since."""
    log = failure_log(root, assignment, student)
    if not log.exists():
        return False
    folder = Path(root) / "submitted" / student / assignment
    changed = max((p.stat().st_mtime for p in [folder, *folder.rglob("*")]), default=0.0)
    return changed <= log.stat().st_mtime


def scripts_first(path: str) -> str:
    """`path` (a PATH) with this Python's scripts first: nbgrader runs `alembic` by name when it makes
    a gradebook, also when the command was started by its full path with no environment activated."""
    scripts = str(Path(sys.executable).parent)
    return os.pathsep.join([scripts, *(p for p in path.split(os.pathsep) if p and p != scripts)])


def gradebook(config):
    """nbgrader's gradebook of the course `config` describes, made if it does not exist yet."""
    from nbgrader.api import Gradebook

    os.environ["PATH"] = scripts_first(os.environ.get("PATH", ""))
    return Gradebook(config.CourseDirectory.db_url, course_id=config.CourseDirectory.course_id)


def find_assignment(gb, assignment: str):
    """`assignment` in the open gradebook `gb`; NotReleased, naming the fix, if it is not there."""
    from nbgrader.api import MissingEntry

    try:
        return gb.find_assignment(assignment)
    except MissingEntry:
        raise NotReleased(f"{assignment} is not an assignment of this gradebook: check its name, or release it "
                          f"first (nbgrader generate_assignment {assignment})") from None


def enrol(root: Path, assignment: str, students: list[str], db_url: str | None = None) -> None:
    """Create the missing students in the gradebook from one process, before any worker grades."""
    with gradebook(course_config(root, db_url)) as gb:
        find_assignment(gb, assignment)
        known = {s.id for s in gb.students}
        for student in students:
            if student not in known:
                gb.add_student(student)


@functools.cache
def _api(root: str, db_url: str | None):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from sqlalchemy.exc import SAWarning

    # nbgrader's gradebook code trips SQLAlchemy's autoflush warnings (grades are unaffected): they
    # would only scroll the progress bar away.
    warnings.filterwarnings("ignore", category=SAWarning)
    config = course_config(Path(root), db_url)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    api.log.setLevel(logging.INFO)
    # nbgrader's log goes to the outcome, not to the terminal the progress bar draws on.
    api.log.handlers = [logging.NullHandler()]
    api.log.propagate = False
    return api


_interrupted = False  # a local worker's: Ctrl-C reached it
_grading = False  # a local worker's: grading a student (on KeyboardInterrupt, autograde removes what it began)


def _on_interrupt(signum, frame) -> None:
    global _interrupted
    _interrupted = True
    # nbclient's tasks of the abandoned kernel would each print a traceback when collected.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if _grading:
        raise KeyboardInterrupt


def _local_worker() -> None:
    """A local worker, on Ctrl-C, stops its student and grades no other; idle, it waits to be shut down
    (a KeyboardInterrupt there would break the pool)."""
    signal.signal(signal.SIGINT, _on_interrupt)


def cut_short(autograded: Path, submission: Path) -> bool:
    """Whether `autograded`, a student's autograded folder, is what an autograde killed halfway left
    (SIGKILL, out of memory, a lost machine): nbgrader would skip it from then on, and the student
    would keep the grades of cells never run."""
    import nbformat

    for notebook in submission.glob("*.ipynb"):
        try:
            nb = nbformat.read(autograded / notebook.name, as_version=4)
        except (OSError, ValueError):  # never written, or cut off while being written
            return True
        code = [c for c in nb.cells if c.cell_type == "code"]
        # autograde first writes the sanitised notebook, outputs cleared, then runs it
        if code and not any(c.get("execution_count") is not None or c.get("outputs") for c in code):
            return True
    return False


def grade_one(root: str, assignment: str, student: str, db_url: str | None = None,
              force: bool = False, tmp: str | None = None) -> Outcome | None:
    """nbgrader autograde of one student's submission, in this process (a worker), with `tmp` as its
    temporary folder if given; None when the grading was interrupted before or during it. An
    autograde cut short is done again."""
    global _grading
    start = time.perf_counter()
    if tmp is not None:
        tempfile.tempdir = tmp
    _grading = True  # first: Ctrl-C from here on stops this student, before it a check would miss it
    try:
        if _interrupted:
            return None
        api = _api(root, db_url)
        autograded = Path(api.coursedir.format_path(api.coursedir.autograded_directory, student, assignment))
        submission = Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment))
        if not force and autograded.is_dir() and cut_short(autograded, submission):
            from autograder import zygote

            zygote.remove(autograded)
        result = api.autograde(assignment, student, force=force, create=False)
    finally:
        _grading = False
    if _interrupted:
        return None
    log = result.get("log", "") + result.get("error", "")
    return Outcome(student, result["success"], time.perf_counter() - start, log)


def grade(root: Path, assignment: str, *, workers: int | None = None, scheduler: str | None = None,
          db_url: str | None = None, force: bool = False, progress: bool = True,
          students: list[str] | None = None, retry_failed: bool = False) -> list[Outcome]:
    """Autograde every submitted student of `assignment` (or only `students`, regraded), `workers` at a
    time (default: one per core) or on the Dask cluster at `scheduler`; the outcomes in student order.
    A submission nbgrader could not autograde is tried again only once it changed, or if `retry_failed`
    (or `force`); its log is kept (`failure_log`) for the report."""
    from tqdm.auto import tqdm

    root = Path(root).resolve()
    db_url = course_config(root, db_url).CourseDirectory.db_url  # workers may hold an older environment
    everyone = submitted(root, assignment)
    if students is not None:
        unknown = sorted(set(students) - set(everyone))
        if unknown:
            raise NotSubmitted(f"no submission of {assignment} from {', '.join(unknown)} in {root / 'submitted'}")
        everyone, force = sorted(set(students)), True
    skipped = [s for s in everyone if not (force or retry_failed) and failed_before(root, assignment, s)]
    todo = [s for s in everyone if s not in skipped]
    outcomes = [Outcome(s, False, 0.0, failure_log(root, assignment, s).read_text(errors="replace"), skipped=True)
                for s in skipped]
    futures = []
    with _executor(workers, scheduler) as pool:
        try:
            pool.submit(enrol, root, assignment, todo, db_url).result()  # before the bar: its error stands alone
            # Local workers keep the environment of the fork server's start: they are told the
            # temporary folder of the moment, in which the zygotes of this run go.
            tmp = None if scheduler else tempfile.gettempdir()
            futures = [pool.submit(grade_one, str(root), assignment, s, db_url, force, tmp) for s in todo]
            with tqdm(total=len(todo), desc=f"autograde {assignment}", unit="student", disable=not progress) as bar:
                for future in as_completed(futures):
                    outcome = future.result()
                    if outcome is None:  # its worker saw Ctrl-C before this process did
                        raise KeyboardInterrupt
                    keep_log(root, assignment, outcome)
                    outcomes.append(outcome)
                    bar.set_postfix_str(f"{outcome.student}: {'graded' if outcome.ok else 'FAILED'}")
                    bar.update()
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            # Running students end in moments, interrupted (on a cluster: graded, as Ctrl-C stays here).
            done = wait([f for f in futures if not f.cancelled()]).done
            graded = sum(f.exception() is None and f.result() is not None for f in done)
            raise Interrupted(graded, len(todo)) from None
    return sorted(outcomes, key=lambda o: o.student)


def keep_log(root: Path, assignment: str, outcome: Outcome) -> None:
    """Keep the log of a submission that could not be autograded; forget it once one could."""
    log = failure_log(root, assignment, outcome.student)
    if outcome.ok:
        log.unlink(missing_ok=True)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(outcome.log)


@contextmanager
def _executor(workers: int | None, scheduler: str | None):
    if scheduler is None:
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count(), mp_context=forkserver.context(),
                                 initializer=_local_worker) as pool:
            yield pool
        return
    from distributed import Client

    with Client(scheduler) as client, client.get_executor() as pool:
        yield pool
