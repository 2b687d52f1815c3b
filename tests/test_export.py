"""The student export: a repo with the notebooks, helpers and data, and nothing of the grader, whose
notebooks run to their first task, and whose Binder environment agrees with the pinned one."""
import os
import re
import shutil
import subprocess
import tomllib

import nbformat
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder.leaks import leaks
from autograder.notebooks import ROOT, assignments, source_path

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    dest = tmp_path_factory.mktemp("export") / "student"
    done = subprocess.run(["make", "--no-print-directory", "student-export", f"DEST={dest}", "REPO=course-org/student"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return dest


def test_export_holds_the_student_world_and_nothing_else(export):
    assert sorted(p.name for p in export.iterdir()) == [
        ".jupyter", "README.md", "course", "datasets", "environment.yml", "nbgrader_config.py", "pyproject.toml",
        "release"]
    assert sorted(p.name for p in (export / "release").iterdir()) == assignments()
    assert not leaks(export)
    text = "\n".join(p.read_text(errors="replace") for p in export.rglob("*") if p.is_file())
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text


def test_the_leak_search_finds_a_planted_solution(tmp_path):
    name = assignments()[0]
    shutil.copy(source_path(name), tmp_path / "notes.ipynb")
    (tmp_path / "autograder").mkdir()
    found = leaks(tmp_path)
    assert any("solution code" in f for f in found) and any("BEGIN SOLUTION" in f for f in found)
    assert any("instructor-only folder" in f for f in found)


def test_readme_opens_every_assignment_in_jupyterlab_on_binder(export):
    readme = (export / "README.md").read_text()
    for name in assignments():
        url = f"https://mybinder.org/v2/gh/course-org/student/HEAD?urlpath=lab/tree/release/{name}/{name}.ipynb"
        assert url in readme
        assert (export / "release" / name / f"{name}.ipynb").exists()


def test_binder_environment_agrees_with_the_pinned_requirements(export):
    env = yaml.safe_load((export / "environment.yml").read_text())
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    pins = {k.lower(): v for k, v in pins.items()}
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            package, _, version = dep.partition("=")
            conda[package] = version
    assert conda["python"] == "3.11"
    named = {"pytorch-cpu": "torch"}  # conda-forge's CPU build of PyTorch
    for package, version in conda.items():
        pip = named.get(package, package)
        if version and pip in pins:
            assert pins[pip] == version or pins[pip].startswith(version + "."), f"{package}={version} vs {pins[pip]}"
    for package in ["numpy", "matplotlib", "ipywidgets", "tqdm", "jupyterlab", "nbgrader", "pytorch-cpu"]:
        assert package in conda, f"Binder's environment lacks {package}"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-e ."], "the rest comes from conda-forge; pip only installs the course package"
    needs = tomllib.loads((export / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {re.split(r"[=<>]", d)[0] for d in needs} <= {named.get(c, c) for c in conda}
    # pip must accept whichever 2.13 release conda installed, so that it never fetches another torch
    torch = SpecifierSet(next(d for d in needs if d.startswith("torch"))[len("torch"):])
    assert all(v in torch for v in [pins["torch"], conda["pytorch-cpu"] + ".0", conda["pytorch-cpu"] + ".9"])
    assert "2.14.0" not in torch


@pytest.mark.parametrize("name", assignments())
def test_each_exported_notebook_runs_to_its_first_task(export, name):
    path = export / "release" / name / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    # The notebook must use the exported helpers, not this repo's.
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"import course\nassert course.__file__.startswith({str(export)!r})"))
    env = {**os.environ, "PYTHONPATH": str(export), "MPLBACKEND": "Agg"}
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    with pytest.raises(CellExecutionError) as stopped:
        client.execute(env=env)
    assert "NotImplementedError" in str(stopped.value), f"{name} broke before its first task:\n{stopped.value}"
