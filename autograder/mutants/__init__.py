"""The mutant matrix: buggy and alternative-correct submissions, each with the grade it must get.

A mutant is the reference solution with small text edits (the bug a real student makes, or another
valid style), so mutants follow the reference as it evolves; an edit that no longer applies is an
error, never a silently correct mutant. `fails` names every grade cell the submission must lose,
with a phrase its message must contain; every other grade cell must keep full marks.

Every requirement a task states carries an id shown to the student beside its text (`**R2.3**`,
task 2's third); `breaks` names the ids a mutant breaks, and each id needs at least one mutant that
breaks it alone and loses a cell. `headline` marks the lesson's own bugs: a visible test must catch
each, so the student meets it before submitting.
"""
import importlib
import re
from dataclasses import dataclass, field

import nbformat

from autograder.nbgrader_plugin import audit_names
from autograder.notebooks import ROOT, fill, release_path, solutions, source_path

BLANK = "blank"


@dataclass(frozen=True)
class Mutant:
    name: str
    why: str  # the bug, or the alternative style, in a few words
    edits: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # grade_id -> [(old, new)]
    fails: dict[str, str] = field(default_factory=dict)  # grade cell -> phrase in its failure message
    tampers: bool = False  # attacks the kernel it runs in: only ever run inside nbgrader's kernel
    breaks: tuple[str, ...] = ()  # the requirement ids (R1.2, ...) this bug breaks
    headline: bool = False  # the bug the lesson is about: a visible test must fail on it


def mutants(name: str) -> list[Mutant]:
    """Every submission of assignment `name`'s matrix, the reference and the blank release first."""
    return importlib.import_module(f"autograder.mutants.{name}").MUTANTS


def code(name: str, mutant: Mutant) -> dict[str, str]:
    """The solution cells of `mutant`: the reference's code with its edits applied exactly once each."""
    result = solutions(nbformat.read(source_path(name), as_version=4))
    for grade_id, edits in mutant.edits.items():
        for old, new in edits:
            if result[grade_id].count(old) != 1:
                raise ValueError(f"mutant {mutant.name}: {old!r} is not in {grade_id} exactly once; "
                                 f"update the mutant to the current reference")
            result[grade_id] = result[grade_id].replace(old, new)
    return result


def submission(name: str, mutant: Mutant, root=ROOT) -> nbformat.NotebookNode:
    """The notebook a student would hand in: the release notebook, filled in unless blank."""
    release = nbformat.read(release_path(name, root), as_version=4)
    return release if mutant.name == BLANK else fill(release, code(name, mutant))


def grade_cells(name: str) -> dict[str, float]:
    """{grade_id: points} of every graded cell of the source notebook."""
    nb = nbformat.read(source_path(name), as_version=4)
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


def expected_scores(name: str, mutant: Mutant) -> dict[str, float]:
    """{grade cell: the exact score `mutant` must get}."""
    cells = grade_cells(name)
    unknown = set(mutant.fails) - set(cells)
    if unknown:
        raise ValueError(f"mutant {mutant.name} names cells that do not exist: {sorted(unknown)}")
    return {cell: 0.0 if cell in mutant.fails else points for cell, points in cells.items()}


REQUIREMENT = re.compile(r"\*\*(R\d+\.\d+)\*\*\s*(.*)")


def requirements(name: str) -> dict[str, str]:
    """{id: the line stating it} of every requirement the source notebook's text states, in order."""
    nb = nbformat.read(source_path(name), as_version=4)
    found: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for rid, text in REQUIREMENT.findall(cell.source):
                if rid in found:
                    raise ValueError(f"{name}: requirement {rid} is stated twice")
                found[rid] = text.strip()
    return found


def visible_cells(name: str) -> list[str]:
    """The grade cells a student sees and runs before submitting: every grade cell but the hidden audits."""
    return [cell for cell in grade_cells(name) if cell not in audit_cells(name)]


def audit_cells(name: str) -> dict[str, str]:
    """{grade cell: check name} for every hidden audit cell of the source notebook."""
    nb = nbformat.read(source_path(name), as_version=4)
    return {c.metadata.nbgrader["grade_id"]: check for c in nb.cells for check in audit_names(c)}
