"""What must never reach students: nbgrader's solution and hidden-test markers, the autograder, and
the reference solution's distinctive lines. The tests of the student world use it, and so does the
student export, which refuses to write a repo holding any of it."""
import re
from pathlib import Path

import nbformat

from autograder.notebooks import assignments, source_path

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "from autograder", "import autograder",
           'audit("')
# PyTorch idioms every lesson uses in its given code: they appear in a solution without revealing it.
IDIOMS = {"with torch.no_grad():"}
SUFFIXES = {".ipynb", ".py", ".md", ".txt", ".csv", ".yml", ".toml", ".cfg"}


def solution_lines(name: str) -> set[str]:
    """The distinctive lines of the reference solution's bodies (what a leak would contain)."""
    source = nbformat.read(source_path(name), as_version=4)
    lines = set()
    for cell in source.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            for body in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
                lines |= {line.strip() for line in body.splitlines() if len(line.strip()) >= 16}
    return lines - IDIOMS


def leaks(folder: Path) -> list[str]:
    """Every leak under `folder`, as 'path: what' (notebooks: their code cells)."""
    solution = set().union(*(solution_lines(name) for name in assignments()))
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and path.name in {"autograder", "source"}:
            found.append(f"{path.relative_to(folder)}: an instructor-only folder")
        if not path.is_file() or path.suffix not in SUFFIXES:
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".ipynb":
            nb = nbformat.reads(text, as_version=4)
            text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        found += [f"{path.relative_to(folder)}: contains {m!r}" for m in MARKERS if m in text]
        found += [f"{path.relative_to(folder)}: contains solution code {line!r}"
                  for line in sorted(solution & {line.strip() for line in text.splitlines()})]
    return found
