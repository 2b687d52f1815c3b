"""Validate agrees with the grader: in the student export, nbgrader's Validate (loaded as JupyterLab's
button loads it, with the export's nbgrader_config.py) fails exactly the visible test cells that the
matrix says a submission loses at grading, so a student who passes Validate keeps every visible point
and noisy correct code (logging, stderr, progress bars) passes both. One process per core."""
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import nbformat
import pytest
from conftest import ASSIGNMENTS, assignment_params

from autograder.export import export
from autograder.mutants import BLANK, mutants, submission, visible_cells
from autograder.notebooks import release_path

CASES = [(n, m) for n in ASSIGNMENTS for m in mutants(n) if not m.tampers]


def failed_cells(root: str, path: str) -> list[str]:
    """The grade cells nbgrader's Validate fails in notebook `path`, run in the student repo `root`."""
    os.chdir(root)  # the Validate button loads the config of the server's folder, the repo's root
    # The kernel imports the exported helpers; one thread each, as two kernels share the test's cores.
    os.environ.update(PYTHONPATH=root, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    from nbgrader.apps import NbGrader
    from nbgrader.validator import Validator
    app = NbGrader()
    app.config_file_paths.append(root)
    app.load_config_file()
    result = Validator(config=app.config).validate(path)
    assert set(result) <= {"failed"}, result
    ids = {c.source.strip(): c.metadata.nbgrader["grade_id"] for c in nbformat.read(path, as_version=4).cells
           if c.metadata.get("nbgrader", {}).get("grade")}
    return sorted(ids[f["source"]] for f in result.get("failed", []))


@pytest.fixture(scope="module")
def validated(request, tmp_path_factory):
    """{(assignment, submission): failed cells} for every case of this module the session selected."""
    root = tmp_path_factory.mktemp("validate") / "student"
    export(root, "course-org/student")
    cases = [(item.callspec.params["name"], item.callspec.params["mutant"]) for item in request.session.items
             if getattr(item, "originalname", None) == "test_validate_fails_exactly_the_visible_cells_grading_takes"]
    paths = []
    for name, m in cases:
        path = root / "submissions" / name / m.name / release_path(name).name
        path.parent.mkdir(parents=True)
        nbformat.write(submission(name, m), path)
        paths.append(str(path))
    with ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("spawn")) as pool:
        failed = pool.map(failed_cells, [str(root)] * len(paths), paths)
        return {(name, m.name): cells for (name, m), cells in zip(cases, failed)}


@pytest.mark.parametrize("name, mutant", assignment_params(CASES))
def test_validate_fails_exactly_the_visible_cells_grading_takes(validated, name, mutant):
    expected = sorted(set(mutant.fails) & set(visible_cells(name)))
    assert validated[name, mutant.name] == expected, mutant.why
    if mutant.name == BLANK:
        assert expected, "a blank notebook fails Validate"
