"""Notebooks as reviewable text: authoring/<ps>.py (jupytext percent) builds source/<ps>/<ps>.ipynb.

Usage: python -m autograder.notebooks build | check
`build` writes every source notebook; `check` exits 1 if any differs from what `build` would write.
The percent files carry short nbgrader metadata; `build` fills in nbgrader's defaults, gives every
cell a stable id, and clears outputs, so the same text always gives the same notebook.
Also here: reading the reference solution out of a source notebook, and filling a release notebook
with solution code (the reference, a mutant or an alternative) to make a submission.
"""
import copy
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
AUTHORING = ROOT / "authoring"
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|\Z)", re.M)


def assignments() -> list[str]:
    return sorted(p.stem for p in AUTHORING.glob("ps*.py"))


def source_path(name: str, root: Path = ROOT) -> Path:
    return root / "source" / name / f"{name}.ipynb"


def release_path(name: str, root: Path = ROOT) -> Path:
    return root / "release" / name / f"{name}.ipynb"


def build(name: str) -> nbformat.NotebookNode:
    """The source notebook of assignment `name`, from its percent file."""
    nb = jupytext.read(AUTHORING / f"{name}.py", fmt="py:percent")
    nb.metadata.pop("jupytext", None)
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)  # jupytext's spacing hint, noise in a notebook
        meta = cell.metadata.get("nbgrader")
        if meta is not None:
            solution = meta.get("solution", False)
            cell.metadata["nbgrader"] = {"grade": False, "locked": not solution, "schema_version": 3,
                                         "solution": solution, "task": False, **meta}
        cell.id = meta["grade_id"].replace("_", "-") if meta else f"{name[:4]}-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def text(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def solutions(source: nbformat.NotebookNode) -> dict[str, str]:
    """{grade_id: code} of every solution cell, as a student would have written it."""
    return {c.metadata.nbgrader["grade_id"]: MARKER.sub("", c.source)
            for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}


def fill(release: nbformat.NotebookNode, code: dict[str, str]) -> nbformat.NotebookNode:
    """A copy of the release notebook with the given solution cells' code put in."""
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in code:
            cell.source = code[grade_id]
    return nb


def namespace(name: str, code: dict[str, str] | None = None) -> dict:
    """Live functions of assignment `name`: its import cell, then the solution cells' code
    (`code`, by grade_id; the reference solution by default)."""
    source = nbformat.read(source_path(name), as_version=4)
    code = solutions(source) if code is None else code
    ns: dict = {}
    for cell in source.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "imports" or grade_id in code:
            text = cell.source if grade_id == "imports" else code[grade_id]
            exec(compile(text, f"<{name}:{grade_id}>", "exec"), ns)
    return ns


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "build"
    stale = []
    for name in assignments():
        path, want = source_path(name), text(build(name))
        if command == "check":
            if not path.exists() or path.read_text() != want:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(want)
            print(f"built {path.relative_to(ROOT)}")
    if stale:
        print("out of date with authoring/ (run `make notebooks`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
