"""The student-facing repo: what students clone or open on Binder, with no solution and no grader.

Usage: python -m autograder.export DEST [--repo OWNER/NAME]   (or `make student-export DEST=...`)
Writes DEST with release/, course/, datasets/, environment.yml (what Binder builds), a pyproject
that installs only the `course` package (torch as conda installed it), an nbgrader_config.py that
makes Validate run each cell as the grader does (its timeout, stderr never an error:
`course.validation`), .jupyter/ (Binder's home is the repo, so JupyterLab reads it there: nbgrader's
instructor tools and JupyterLab's news prompt turned off), and a README whose Binder links open each
assignment in JupyterLab and that says how to hand in. Refuses (and writes nothing) if the result
would hold anything from `autograder.leaks`.
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder.leaks import leaks
from autograder.notebooks import ROOT, assignments, release_path

BINDER = "https://mybinder.org/v2/gh/{repo}/HEAD?urlpath=lab/tree/{path}"
PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "training-loops-student"
version = "0.1.0"
description = "Training loops that really learn: the student notebooks and their helpers"
requires-python = ">=3.11"
dependencies = ["torch>=2.13,<2.14", "numpy", "matplotlib", "ipywidgets", "tqdm"]

[tool.setuptools]
packages = ["course"]
"""
# A student needs nbgrader's Validate button and Assignment List, never its instructor tools; nor
# JupyterLab's prompt to fetch news from the internet.
PAGE_CONFIG = {"disabledExtensions": {"@jupyter/nbgrader:formgrader": True, "@jupyter/nbgrader:create-assignment": True,
                                      "@jupyter/nbgrader:course-list": True,
                                      "@jupyterlab/apputils-extension:announcements": True}}
SERVER_CONFIG = {"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": False,
                                                       "nbgrader.server_extensions.course_list": False}}}
NBGRADER_CONFIG = '''"""nbgrader's Validate runs each cell as the autograder will: the same timeout, and a cell's result
depends only on whether it raised (what it writes to stderr never fails it)."""
from course.validation import configure

configure(get_config())  # noqa: F821 (nbgrader provides it)
'''


def title(name: str) -> str:
    """The first heading of the assignment's notebook."""
    nb = nbformat.read(release_path(name), as_version=4)
    heading = next(line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                   if line.startswith("# "))
    return heading[2:].strip()


def readme(repo: str) -> str:
    def link(name):
        return BINDER.format(repo=repo, path=release_path(name).relative_to(ROOT).as_posix())
    rows = "\n".join(f"| {title(n)} | [open in JupyterLab on Binder]({link(n)}) |" for n in assignments())
    return f"""# Training loops that really learn

PyTorch training loops, written piece by piece in Jupyter notebooks and checked as you go. Each
assignment teaches, then asks: read a section, fill in every cell that says `# YOUR CODE HERE`,
and run the visible test below it; its message says what is wrong.

## Open an assignment

On Binder, nothing to install (the first start builds the environment and takes a few minutes):

| assignment | |
|---|---|
{rows}

On your own machine, with [conda](https://conda-forge.org/download/):

```bash
conda env create -f environment.yml
conda activate training-loops
jupyter lab release/
```

## Before you hand in

Run **Kernel → Restart Kernel and Run All Cells**, check that every visible test passes, and
press **Validate** (nbgrader's button in the notebook toolbar): it runs the notebook as the grader
will and says which tests fail. After submission, hidden audits run your functions on new problems
in a clean process: code that trains correctly passes them, whatever its style, and the feedback of
a failed audit says what went wrong and where to look.

## Hand in

Hand in the notebook itself, `release/<assignment>/<assignment>.ipynb`, under that name (the grader
looks for it): on your course's JupyterHub, from **Nbgrader → Assignment List** (Submit); anywhere
else, as your course says (an upload to its LMS, for example), after **File → Download**.

**A Binder session is temporary.** It ends about ten minutes after its tab is closed or left idle,
and nothing you wrote is kept: download your notebook (**File → Download**) before you
leave, and upload it again (the upload button of the file browser) to go on later.

`course/` holds the helpers the notebooks import (datasets, synthetic data, plots);
`datasets/` holds the two real datasets (see `datasets/README.md` for their provenance).
"""


def export(dest: Path, repo: str) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise SystemExit(f"{dest} is not empty: export into a new folder")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "student"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
        for folder in ("release", "course", "datasets"):
            shutil.copytree(ROOT / folder, out / folder, ignore=ignore)
        shutil.copy(ROOT / "environment.yml", out)
        (out / "pyproject.toml").write_text(PYPROJECT)
        (out / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
        (out / "README.md").write_text(readme(repo))
        (out / ".jupyter" / "labconfig").mkdir(parents=True)
        (out / ".jupyter" / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG, indent=2) + "\n")
        (out / ".jupyter" / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG, indent=2) + "\n")
        found = leaks(out)
        if found:
            raise SystemExit("the export would leak, nothing written:\n" + "\n".join(found))
        shutil.copytree(out, dest, dirs_exist_ok=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.export", description=__doc__.split("\n")[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--repo", default="training-loops/student",
                        help="the GitHub repo the export is pushed to, for the Binder links")
    args = parser.parse_args(argv)
    export(args.dest, args.repo)
    print(f"student repo written to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
