"""The grading corpus: hostile and broken submissions through `autograder grade` (real nbgrader, the
sandbox, two workers), each with its exact grade and message, in one class with a well-behaved one;
and a student whose kernel leaves processes and files behind, graded before another by the same
kernels' zygote."""
import json
import os
import re
import socket
from pathlib import Path

import nbformat
import pytest

from autograder import classroom, grading, sandbox
from autograder.hostile import HOSTILE, LEAVE_BEHIND, LEFT_BEHIND, NAME, Forbidden, prepend
from autograder.mutants import expected_scores, grade_cells, mutants, submission

pytestmark = pytest.mark.grading
MATRIX = {m.name: m for m in mutants(NAME)}
SECRET = ("COURSE_GRADEBOOK_PASSWORD", "8c1f-not-for-students")  # in the grader's environment while it grades


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """(course root, {student: outcome}) of the corpus and the reference, autograded together."""
    root = grading.scratch_course(tmp_path_factory.mktemp("hostile") / "course", [NAME])
    with open(root / "nbgrader_config.py", "a") as f:
        f.write("\nc.Execute.timeout = 20  # the cell that never ends waits for it: keep it short here\n")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        forbidden = Forbidden(str(root), str(root / "submitted" / "reference" / NAME), str(Path.home()),
                              server.getsockname()[1])
        grading.submit(root, NAME, "reference", submission(NAME, MATRIX["reference"], root))
        for case in HOSTILE:
            nb = submission(NAME, MATRIX[case.base], root)
            case.change(nb, forbidden)
            grading.submit(root, NAME, case.name, nb)
        os.environ[SECRET[0]] = SECRET[1]
        try:
            outcomes = {o.student: o for o in classroom.grade(root, NAME, workers=2, progress=False)}
        finally:
            del os.environ[SECRET[0]]
        with pytest.raises(BlockingIOError):
            server.accept()  # no submission connected to the host
    return root, outcomes


def outputs(root, student: str) -> str:
    nb = nbformat.read(root / "autograded" / student / NAME / f"{NAME}.ipynb", as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
def test_each_hostile_submission_gets_its_grade_and_message(graded, case):
    root, outcomes = graded
    assert outcomes[case.name].ok, outcomes[case.name].log
    fails = {**MATRIX[case.base].fails, **case.fails}
    expected = {cell: 0.0 if cell in fails else points for cell, points in grade_cells(NAME).items()}
    assert grading.scores(root, NAME)[case.name] == expected, case.why
    shown = grading.messages(root, NAME, case.name)
    for cell, phrase in fails.items():
        assert phrase.lower() in shown.get(cell, "").lower(), f"{cell} should say {phrase!r}: {shown.get(cell)!r}"


def test_no_route_shows_a_judge_the_checks_source_or_a_secret(graded):
    root, _ = graded
    for case in HOSTILE:
        shown = outputs(root, case.name)
        assert not [w for w in ("judge_", "CHECKS", "Check(", SECRET[1]) if w in shown], case.name


def test_the_well_behaved_student_keeps_every_point(graded):
    root, _ = graded
    assert grading.scores(root, NAME)["reference"] == expected_scores(NAME, MATRIX["reference"])


def test_nothing_outside_the_submission_was_written_or_read(graded):
    root, _ = graded
    assert not list(root.rglob("evil.txt")) and not (Path.home() / "evil.txt").exists()
    assert "reached: []" in outputs(root, "writes_and_connects_outside")


def test_a_fork_bomb_stops_at_the_kernels_own_process_limit(graded):
    root, _ = graded
    forked = re.search(r"forked (\d+), then: \[Errno 11\] Resource temporarily unavailable", outputs(root, "fork_bomb"))
    assert forked and sandbox.PROCESSES - 20 < int(forked[1]) < sandbox.PROCESSES, outputs(root, "fork_bomb")[-500:]


def test_an_error_from_a_sandbox_limit_names_the_limit(graded):
    root, _ = graded
    assert f"The grading sandbox allows {sandbox.MEMORY // 2**30} GiB of memory" in outputs(root, "memory_hog")
    assert sandbox.memory_in_all() in outputs(root, "memory_in_all")


def test_a_flood_of_output_is_cut_short(graded):
    root, _ = graded
    assert (root / "autograded" / "output_flood" / NAME / f"{NAME}.ipynb").stat().st_size < 2**20


def test_the_kernel_holds_no_check_code(graded):
    root, _ = graded
    shown = outputs(root, "tamper_reads_hidden_tests")
    assert "recorder.py" in shown and f"{NAME}.ipynb" in shown, shown[-2000:]
    assert "': [" not in shown.replace("': []", ""), "a file the kernel could read holds check code"


# A new first cell: what the kernel is, before any cell seeds a generator. The sandbox's first process
# (bwrap's init) started at the same moment for two students only if one kernels' zygote, in one
# sandbox, served both; each fork draws its own random numbers, reads its own /proc entries, and
# sees none of the grader's environment but what it may.
PROBE = """import json, os, random
import numpy, torch
print(json.dumps({'sandbox': open('/proc/1/stat').read().split()[21],
                  'draws': [random.random(), numpy.random.rand(), torch.rand(1).item()],
                  'own /proc': len(open('/proc/self/environ', 'rb').read()) > 0, 'environ': sorted(os.environ)}))
"""
# The witness loses the helpers (and their cells) if anything of an earlier student is left. Its
# sandbox holds bwrap (pid 1), the zygote (2) and this kernel.
WITNESS = LEFT_BEHIND + "\n\nleft_behind((os.getpid(),))\n"


def test_each_kernel_is_a_fresh_process_that_finds_nothing_of_the_last_student(tmp_path):
    root = grading.scratch_course(tmp_path / "course", [NAME])
    for student, code in [("a_leaver", LEAVE_BEHIND), ("b_witness", WITNESS)]:  # graded in this order
        nb = submission(NAME, MATRIX["reference"], root)
        prepend("learning_helpers", code)(nb, None)
        nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
        grading.submit(root, NAME, student, nb)
    assert all(o.ok for o in classroom.grade(root, NAME, workers=1, progress=False))
    scores = grading.scores(root, NAME)
    assert scores["a_leaver"] == scores["b_witness"] == expected_scores(NAME, MATRIX["reference"])
    leaver, witness = (json.loads(nbformat.read(root / "autograded" / s / NAME / f"{NAME}.ipynb", as_version=4)
                                  .cells[0].outputs[0].text) for s in ("a_leaver", "b_witness"))
    assert leaver["sandbox"] == witness["sandbox"], "one zygote served both"
    assert all(a != b for a, b in zip(leaver["draws"], witness["draws"])), "random, numpy and torch drawn anew"
    assert leaver["own /proc"] and witness["own /proc"]
    assert "NBGRADER_EXECUTION" in witness["environ"]
    graders = [n for n in leaver["environ"] + witness["environ"] if n in os.environ]  # not set by the kernel
    assert all(sandbox.PASSED.fullmatch(n) or n in sandbox.ENV for n in graders), graders


def test_sandboxed_code_sees_no_secret_of_the_graders_environment():
    env = sandbox.environment({"PATH": "/usr/bin", "COURSE_DB_URL": "postgresql+psycopg://ta:secret@db/gradebook",
                               "AWS_SECRET_ACCESS_KEY": "x", "NBGRADER_EXECUTION": "autograde",
                               "JPY_API_TOKEN": "hub", "JUPYTERHUB_API_TOKEN": "hub", "JPY_PARENT_PID": "4242"})
    assert env == {"PATH": "/usr/bin", "NBGRADER_EXECUTION": "autograde", **sandbox.ENV}
