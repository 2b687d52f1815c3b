"""A class report of one assignment, from nbgrader's gradebook and autograded notebooks.

Writes `reports/<assignment>/scores.csv` (one row per student, one column per grade cell) and
`reports/<assignment>/report.html` (score distribution, failure rate of every grade cell across the
class, the most common failure messages of each cell, every student's score with a link to the
feedback page `nbgrader generate_feedback` writes).
"""
import base64
import csv
import html
import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nbformat
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from autograder import grading
from autograder.classroom import course_config, find_assignment, gradebook

MESSAGE_CHARS = 200  # a failure message is cut here in the table; the feedback page has it whole


@dataclass(frozen=True)
class ClassResults:
    cells: dict[str, float]  # grade cell -> points, in notebook order
    scores: dict[str, dict[str, float]]  # student -> grade cell -> score
    messages: dict[str, dict[str, str]]  # student -> grade cell -> what the cell shows (lost cells)


def collect(root: Path, assignment: str, db_url: str | None = None) -> ClassResults:
    with gradebook(course_config(root, db_url)) as gb:
        found = find_assignment(gb, assignment)
        points = {c.name: float(c.max_score) for nb in found.notebooks for c in nb.grade_cells}
        scores = {s.student.id: {g.name: float(g.score) for nb in s.notebooks for g in nb.grades}
                  for s in found.submissions}
    source = root / "source" / assignment / f"{assignment}.ipynb"
    order = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nbformat.read(source, 4).cells] \
        if source.exists() else []
    cells = {c: points[c] for c in sorted(points, key=lambda c: order.index(c) if c in order else len(order))}
    messages = {}
    for student, got in scores.items():
        autograded = root / "autograded" / student / assignment / f"{assignment}.ipynb"
        if autograded.exists():
            shown = grading.messages(root, assignment, student)
            messages[student] = {c: shown.get(c, "no error shown: see the feedback page") for c in cells
                                 if got.get(c, 0.0) < cells[c]}
        else:
            messages[student] = {c: "nbgrader could not autograde this submission" for c in cells}
    return ClassResults(cells, scores, messages)


def first_line(message: str) -> str:
    line = next((x.strip() for x in message.splitlines() if x.strip()), "")
    return line if len(line) <= MESSAGE_CHARS else line[:MESSAGE_CHARS - 1] + "…"


def write_csv(results: ClassResults, path: Path) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["student", "score", "max_score", *results.cells])
        for student, got in sorted(results.scores.items()):
            out.writerow([student, f"{sum(got.values()):g}", f"{sum(results.cells.values()):g}",
                          *(f"{got.get(c, 0.0):g}" for c in results.cells)])


def png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return '<img alt="" src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '">'


def figures(results: ClassResults) -> tuple[str, str]:
    """(score distribution, failure rate per grade cell) as inline images."""
    totals = [sum(got.values()) for got in results.scores.values()]
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.hist(totals, bins=min(20, max(5, len(set(totals)))), range=(0, sum(results.cells.values())), color="#1f5fa8")
    ax.set(xlabel="score", ylabel="students", title="Score distribution")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    distribution = png(fig)
    rates = [sum(c in lost for lost in results.messages.values()) / max(1, len(results.scores)) for c in results.cells]
    fig = Figure(figsize=(6, 0.3 * len(results.cells) + 1))
    ax = fig.subplots()
    ax.barh(list(results.cells), [100 * r for r in rates], color="#c4561d")
    ax.invert_yaxis()
    ax.set(xlabel="% of students who lost points", xlim=(0, 100), title="Failure rate of each grade cell")
    return distribution, png(fig)


def write_html(results: ClassResults, assignment: str, path: Path, feedback: Path) -> None:
    distribution, failure_rates = figures(results)
    n = len(results.scores)
    rows = []
    for cell, points in results.cells.items():
        lost = Counter(first_line(m[cell]) for m in results.messages.values() if cell in m)
        common = "".join(f"<li>{count} &times; <code>{html.escape(msg)}</code></li>"
                         for msg, count in lost.most_common(3))
        rows.append(f"<tr><td><code>{cell}</code></td><td>{points:g}</td><td>{sum(lost.values())} of {n}</td>"
                    f"<td><ul>{common}</ul></td></tr>")
    students = []
    for student, got in sorted(results.scores.items()):
        page = feedback / student / assignment / f"{assignment}.html"
        link = f'<a href="{html.escape(os.path.relpath(page, path.parent))}">feedback</a>' \
            if page.exists() else "no feedback page"
        lost = ", ".join(results.messages[student]) or "none"
        students.append(f"<tr><td>{html.escape(student)}</td><td>{sum(got.values()):g}</td><td>{link}</td>"
                        f"<td>{html.escape(lost)}</td></tr>")
    total = sum(results.cells.values())
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{assignment}: class report</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}td,th{{border-bottom:1px solid #ddd;
padding:.3em .6em;text-align:left;vertical-align:top}}table{{border-collapse:collapse}}ul{{margin:0}}</style>
</head><body>
<h1>{assignment}: class report</h1>
<p>{n} students graded; out of {total:g} points.</p>
{distribution} {failure_rates}
<h2>The most common bugs, by grade cell</h2>
<table><tr><th>grade cell</th><th>points</th><th>students who lost them</th><th>most common messages</th></tr>
{"".join(rows)}</table>
<h2>Students</h2>
<table><tr><th>student</th><th>score</th><th>feedback</th><th>cells lost</th></tr>
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
