"""Run the real nbgrader on a course root and read grades back from its gradebook.

Used by the demo and the mutant-matrix tests: a scratch course root (this repo's config and source
notebooks), `nbgrader generate_assignment`, submissions written to submitted/, `nbgrader autograde`,
then scores per grade cell from the gradebook and failure messages from the autograded notebooks.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from autograder import classroom
from autograder.notebooks import ROOT


def nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `nbgrader ARGS` in course root `root` with this Python; raise with its log if it fails."""
    return command(root, "nbgrader", *args)


def command(root: Path, tool: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m TOOL ARGS` in course root `root` with this Python, `env` over this environment;
    raise with its log if it fails."""
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "COURSE_DB_URL"}
    env["PATH"] = classroom.scripts_first(env.get("PATH", ""))
    done = subprocess.run([sys.executable, "-m", tool, *args], cwd=root, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def scratch_course(root: Path, names: list[str], db_url: str | None = None) -> Path:
    """A fresh course root at `root` with this course's config and sources, assignments generated
    (into the gradebook at `db_url`, or the course root's SQLite file)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    db = [f"--CourseDirectory.db_url={db_url}"] if db_url else []
    for name in names:
        shutil.copytree(ROOT / "source" / name, root / "source" / name)
        nbgrader(root, "generate_assignment", name, "--force", *db)
    return root


def submit(root: Path, name: str, student: str, nb: nbformat.NotebookNode) -> None:
    folder = root / "submitted" / student / name
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")


def autograde(root: Path, name: str) -> subprocess.CompletedProcess:
    """`nbgrader autograde` every submission of `name`, creating students as needed."""
    return nbgrader(root, "autograde", name, "--create", "--force")


def scores(root: Path, name: str, db_url: str | None = None) -> dict[str, dict[str, float]]:
    """{student: {grade cell: score}} for assignment `name`, from the gradebook (the course root's
    SQLite file unless `db_url` names another)."""
    with Gradebook(db_url or f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {sub.student.id: {g.name: float(g.score) for nb in sub.notebooks for g in nb.grades}
                for sub in gb.find_assignment(name).submissions}


def messages(root: Path, name: str, student: str) -> dict[str, str]:
    """{grade cell: the error text it shows} in a student's autograded notebook."""
    nb = nbformat.read(root / "autograded" / student / name / f"{name}.ipynb", as_version=4)
    found = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        errors = [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]
        errors += [o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr"]
        if grade_id and errors:
            found[grade_id] = "\n".join(errors)
    return found


def feedback(root: Path, name: str, student: str) -> str:
    """The HTML feedback page `nbgrader generate_feedback` writes for one student."""
    nbgrader(root, "generate_feedback", name, "--student", student, "--force")
    return (root / "feedback" / student / name / f"{name}.html").read_text()
