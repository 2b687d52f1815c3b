"""An instructor's term through nbgrader's own exchange, as JupyterHub users would run it.

`round_trip` plays it in a folder of its own: the instructor releases an assignment to a filesystem
exchange; each student (their own folder and user name) fetches it, works, and submits (some twice,
some after the due date); the instructor collects, autogrades with `autograder grade`, generates
and releases feedback; each student fetches their own. Used by the tests and by `make demo`.
"""
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from autograder import classroom, grading
from autograder.mutants import mutants, submission
from autograder.notebooks import ROOT

COURSE = "training-loops"  # nbgrader_config.py's course_id
PENALTY = "zero"  # the late penalty of the round trip: a late submission scores 0 (nbgrader's "zero" plugin)


@dataclass(frozen=True)
class Turned:
    """What one student got back."""
    raw: float  # the gradebook's score before the late penalty
    penalty: float
    feedback: Path  # the page `nbgrader fetch_feedback` put in the student's folder


def as_student(home: Path, *args: str) -> None:
    """`nbgrader ARGS` as the student whose folder is `home`, with their own configuration."""
    grading.command(home, "nbgrader", *args, "--course", COURSE, env={"HOME": str(home)})


def round_trip(folder: Path, assignment: str, submits: list[tuple[str, str]], late_from: int) -> dict[str, Turned]:
    """Play a term in `folder`: `submits` are (student, mutant) in the order students submit, those
    from index `late_from` on after the due date. Returns what each student got back."""
    exchange = folder / "exchange"
    exchange.mkdir(parents=True)
    root = grading.scratch_course(folder / "course", [assignment])
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Exchange.root = {str(exchange)!r}\nc.LateSubmissionPlugin.penalty_method = {PENALTY!r}\n")
    grading.nbgrader(root, "release_assignment", assignment)
    homes = {student: folder / "students" / student for student, _ in submits}
    for home in homes.values():
        home.mkdir(parents=True, exist_ok=True)
        # Their id, which nbgrader takes from the user name of each JupyterHub user (here all share one)
        (home / "nbgrader_config.py").write_text(f"c = get_config()  # noqa: F821\nc.Exchange.root = {str(exchange)!r}\n"
                                                 f"c.CourseDirectory.student_id = {home.name!r}\n")
        as_student(home, "fetch_assignment", assignment)
    matrix = {m.name: m for m in mutants(assignment)}
    for i, (student, mutant) in enumerate(submits):
        if i == late_from:
            time.sleep(1)  # nbgrader keeps the due date to the second: every submission so far is before it
            due = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            grading.nbgrader(root, "db", "assignment", "add", assignment, f"--duedate={due}")
            time.sleep(1)
        nb = homes[student] / assignment / f"{assignment}.ipynb"
        nbformat.write(submission(assignment, matrix[mutant], root), nb)
        as_student(homes[student], "submit", assignment)
    grading.nbgrader(root, "collect", assignment)
    outcomes = classroom.grade(root, assignment, progress=False)
    if not all(o.ok for o in outcomes):
        raise RuntimeError("\n".join(f"{o.student}: {o.log[-2000:]}" for o in outcomes if not o.ok))
    grading.nbgrader(root, "generate_feedback", assignment)
    grading.nbgrader(root, "release_feedback", assignment)
    turned = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student, home in homes.items():
            as_student(home, "fetch_feedback", assignment)
            pages = sorted((home / assignment / "feedback").glob(f"*/{assignment}.html"))
            found = gb.find_submission(assignment, student)
            turned[student] = Turned(float(found.score), float(found.late_submission_penalty or 0.0), pages[-1])
    return turned


def main() -> None:
    """The demo's round trip: one assignment, four students, one late, one submitting twice."""
    name = "ps01_training_loop"
    folder = ROOT / "build" / "term"
    if folder.exists():
        shutil.rmtree(folder)
    start = time.perf_counter()
    turned = round_trip(folder, name, [("ada", "reference"), ("grace", "blank"), ("grace", "reference"),
                                       ("alan", "no_zero_grad"), ("edsger", "reference")], late_from=4)
    print(f"\n{name} through nbgrader's exchange ({time.perf_counter() - start:.0f} s): release_assignment, "
          f"fetch_assignment, submit (grace twice, edsger late), collect, autograder grade, generate_feedback, "
          f"release_feedback, fetch_feedback")
    print(f"{'student':10} {'raw':>5} {'penalty':>7} {'score':>5}  feedback fetched")
    for student, got in turned.items():
        print(f"{student:10} {got.raw:5g} {got.penalty:7g} {classroom.after_penalty(got.raw, got.penalty):5g}  "
              f"{os.path.relpath(got.feedback, folder)}")
