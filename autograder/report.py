"""A class report of one assignment, from nbgrader's gradebook, the submissions and the autograded notebooks.

Writes `reports/<assignment>/scores.csv` (one row per student who submitted anything: status, raw
score, late penalty and score as `nbgrader export` counts them, one column per grade cell) and
`reports/<assignment>/report.html` (counts that add up, the score distribution of the class and of
every grade cell, each cell's most common failure messages among graded students, the submissions
that could not be graded apart, every student's score with a link to the feedback page
`nbgrader generate_feedback` writes).
"""
import base64
import csv
import html
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from autograder import grading
from autograder.classroom import after_penalty, course_config, failure_log, find_assignment, gradebook, submitted

MESSAGE_CHARS = 200  # a failure message is cut here in the table; the feedback page has it whole
MESSAGES_SHOWN = 5  # per grade cell: every message two students or more share comes first
GRADED, FAILED, EMPTY = "graded", "could not grade", "empty"


@dataclass(frozen=True)
class Student:
    id: str
    status: str  # GRADED, FAILED (nbgrader could not autograde it) or EMPTY (no file handed in)
    raw: float = 0.0  # the gradebook's score, before the late penalty
    penalty: float = 0.0  # nbgrader's late penalty (`LateSubmissionPlugin`)
    timestamp: str = ""  # when it was submitted, as nbgrader recorded it
    scores: dict[str, float] = field(default_factory=dict)  # grade cell -> score
    messages: dict[str, str] = field(default_factory=dict)  # grade cell -> what it shows, for cells that lost points
    reason: str = ""  # why it could not be graded

    @property
    def score(self) -> float:
        """The score after the late penalty, as `nbgrader export` gives it."""
        return after_penalty(self.raw, self.penalty)


@dataclass(frozen=True)
class ClassResults:
    cells: dict[str, float]  # grade cell -> points, in notebook order
    students: dict[str, Student]  # every student who submitted anything, by id

    def having(self, status: str) -> list[Student]:
        return [s for s in self.students.values() if s.status == status]


def handed_in(folder: Path) -> list[Path]:
    """The files a student handed in (`nbgrader submit` adds timestamp.txt)."""
    return [p for p in folder.rglob("*") if p.is_file() and p.name != "timestamp.txt"] if folder.is_dir() else []


def reason(root: Path, assignment: str, student: str) -> str:
    """Why nbgrader could not autograde a student's submission, from the log `autograder grade` kept."""
    log = failure_log(root, assignment, student)
    if not log.exists():
        return "nbgrader could not autograde this submission: run `autograder grade` to see its error"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    generic = ("There was an error processing", "Please see the", "Traceback", "Did you mean")
    errors = [line.removeprefix("[ERROR]").strip() for line in lines if line.startswith("[ERROR]")
              and not any(g in line for g in generic)]
    raised = [line for line in lines if ": " in line and line.split(": ")[0].rsplit(".", 1)[-1].endswith(("Error", "Exception"))
              and "NbGraderException" not in line]
    return first_line((raised or errors or lines or ["no log"])[-1 if raised else 0])


def collect(root: Path, assignment: str, db_url: str | None = None) -> ClassResults:
    with gradebook(course_config(root, db_url)) as gb:
        found = find_assignment(gb, assignment)
        points = {c.name: float(c.max_score) for nb in found.notebooks for c in nb.grade_cells}
        graded = {s.student.id: dict(raw=float(s.score), penalty=float(s.late_submission_penalty or 0.0),
                                     timestamp=str(s.timestamp or ""),
                                     scores={g.name: float(g.score) for nb in s.notebooks for g in nb.grades})
                  for s in found.submissions}
    source = root / "source" / assignment / f"{assignment}.ipynb"
    order = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nbformat.read(source, 4).cells] \
        if source.exists() else []
    cells = {c: points[c] for c in sorted(points, key=lambda c: order.index(c) if c in order else len(order))}
    students = {}
    for student in sorted(set(submitted(root, assignment)) | set(graded)):
        autograded = root / "autograded" / student / assignment / f"{assignment}.ipynb"
        got = graded.get(student)
        if got and got["scores"] and autograded.exists():
            shown = grading.messages(root, assignment, student)
            lost = {c: shown.get(c, "no error shown: see the feedback page") for c in cells
                    if got["scores"].get(c, 0.0) < cells[c]}
            students[student] = Student(student, GRADED, messages=lost, **got)
        elif not handed_in(root / "submitted" / student / assignment):
            students[student] = Student(student, EMPTY, reason="the submission holds no file")
        else:
            students[student] = Student(student, FAILED, reason=reason(root, assignment, student))
    return ClassResults(cells, students)


def first_line(message: str) -> str:
    line = next((x.strip() for x in message.splitlines() if x.strip()), "")
    return line if len(line) <= MESSAGE_CHARS else line[:MESSAGE_CHARS - 1] + "…"


def common_messages(results: ClassResults, cell: str) -> tuple[list[tuple[str, int]], int]:
    """The failure messages of `cell` among graded students, most common first: those shown (every one
    two students or more share, then single ones up to MESSAGES_SHOWN), and how many others."""
    lost = Counter(first_line(s.messages[cell]) for s in results.having(GRADED) if cell in s.messages)
    ranked = sorted(lost.items(), key=lambda item: (-item[1], item[0]))
    shown = [m for i, m in enumerate(ranked) if m[1] > 1 or i < MESSAGES_SHOWN]
    return shown, len(ranked) - len(shown)


def write_csv(results: ClassResults, path: Path) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["student", "status", "raw_score", "late_submission_penalty", "score", "max_score",
                      *results.cells])
        for s in results.students.values():
            out.writerow([s.id, s.status, f"{s.raw:g}", f"{s.penalty:g}", f"{s.score:g}",
                          f"{sum(results.cells.values()):g}",
                          *(f"{s.scores.get(c, 0.0):g}" if s.status == GRADED else "" for c in results.cells)])


def png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return '<img alt="" src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '">'


def figures(results: ClassResults) -> tuple[str, str]:
    """(score distribution of the class, score distribution of each grade cell) as inline images."""
    graded = results.having(GRADED)
    totals = [s.score for s in graded]
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.hist(totals, bins=min(20, max(5, len(set(totals)))), range=(0, sum(results.cells.values())), color="#1f5fa8")
    ax.set(xlabel="score, after late penalties", ylabel="students", title=f"Scores of the {len(graded)} graded")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    distribution = png(fig)
    shares = {"full points": ("#2a7d3f", lambda got, points: got >= points),
              "part": ("#e0a526", lambda got, points: 0 < got < points),
              "zero": ("#c4561d", lambda got, points: got <= 0)}
    fig = Figure(figsize=(6, 0.3 * len(results.cells) + 1.2))
    ax = fig.subplots()
    left = [0.0] * len(results.cells)
    for label, (color, counts) in shares.items():
        widths = [100 * sum(counts(s.scores.get(c, 0.0), points) for s in graded) / max(1, len(graded))
                  for c, points in results.cells.items()]
        ax.barh(list(results.cells), widths, left=left, color=color, label=label)
        left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set(xlabel="% of graded students", xlim=(0, 100), title="Score of each grade cell")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=3, frameon=False)
    return distribution, png(fig)


def counts(results: ClassResults) -> str:
    """One sentence whose numbers add up: who submitted, who was graded, who could not be."""
    graded, failed, empty = (len(results.having(s)) for s in (GRADED, FAILED, EMPTY))
    late = sum(s.penalty > 0 for s in results.having(GRADED))
    return (f"{len(results.students)} students submitted: {graded} graded"
            f"{f' ({late} with a late penalty)' if late else ''}, {failed} could not be graded, {empty} empty.")


def write_html(results: ClassResults, assignment: str, path: Path, feedback: Path) -> None:
    distribution, per_cell = figures(results)
    n = len(results.having(GRADED))
    rows = []
    for cell, points in results.cells.items():
        shown, others = common_messages(results, cell)
        lost = sum(cell in s.messages for s in results.having(GRADED))
        items = "".join(f"<li>{count} &times; <code>{html.escape(msg)}</code></li>" for msg, count in shown)
        if others:
            items += f"<li>{others} other message{'s' if others > 1 else ''}, one student each</li>"
        rows.append(f"<tr><td><code>{cell}</code></td><td>{points:g}</td><td>{lost} of {n}</td>"
                    f"<td><ul>{items}</ul></td></tr>")
    failures = "".join(f"<tr><td>{html.escape(s.id)}</td><td>{s.status}</td><td>{html.escape(s.reason)}</td></tr>"
                       for s in results.students.values() if s.status != GRADED)
    failures = (f"<table><tr><th>student</th><th>status</th><th>why</th></tr>{failures}</table>"
                "<p>Each scores 0. Fix the cause (or ask the student to submit again), then "
                f"<code>autograder grade {assignment} --retry-failed</code>.</p>") if failures else "<p>None.</p>"
    students = []
    for s in results.students.values():
        page = feedback / s.id / assignment / f"{assignment}.html"
        link = f'<a href="{html.escape(os.path.relpath(page, path.parent))}">feedback</a>' \
            if s.status == GRADED and page.exists() else "no feedback page"
        lost = ", ".join(s.messages) or "none" if s.status == GRADED else s.status
        students.append(f"<tr><td>{html.escape(s.id)}</td><td>{s.raw:g}</td><td>{s.penalty:g}</td>"
                        f"<td>{s.score:g}</td><td>{html.escape(s.timestamp)}</td><td>{link}</td>"
                        f"<td>{html.escape(lost)}</td></tr>")
    total = sum(results.cells.values())
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{assignment}: class report</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}td,th{{border-bottom:1px solid #ddd;
padding:.3em .6em;text-align:left;vertical-align:top}}table{{border-collapse:collapse}}ul{{margin:0}}</style>
</head><body>
<h1>{assignment}: class report</h1>
<p>{counts(results)} Out of {total:g} points; scores are after nbgrader's late penalty.</p>
{distribution} {per_cell}
<h2>The most common bugs, by grade cell</h2>
<p>Among the {n} graded students.</p>
<table><tr><th>grade cell</th><th>points</th><th>students who lost them</th><th>most common messages</th></tr>
{"".join(rows)}</table>
<h2>Submissions that could not be graded</h2>
{failures}
<h2>Students</h2>
<table><tr><th>student</th><th>raw score</th><th>late penalty</th><th>score</th><th>submitted</th><th>feedback</th>
<th>cells lost</th></tr>
{"".join(students)}</table>
</body></html>
""")


def report(root: Path, assignment: str, db_url: str | None = None) -> Path:
    """Generate every student's feedback and the class report; the report's folder."""
    root = Path(root).resolve()
    results = collect(root, assignment, db_url)  # first: it names an assignment the gradebook lacks
    db = [f"--CourseDirectory.db_url={course_config(root, db_url).CourseDirectory.db_url}"]
    grading.nbgrader(root, "generate_feedback", assignment, "--force", *db)
    folder = root / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(results, folder / "scores.csv")
    write_html(results, assignment, folder / "report.html", root / "feedback")
    return folder
