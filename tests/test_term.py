"""A term through nbgrader's own exchange, in a folder of the test's own: release, fetch, submit (one
student twice, one late), collect, `autograder grade`, generate and release feedback, each student
fetching their own."""
import re

import pytest

from autograder.mutants import expected_scores, mutants
from autograder.term import round_trip

pytestmark = pytest.mark.grading
NAME = "ps01_training_loop"
MATRIX = {m.name: m for m in mutants(NAME)}
SUBMITS = [("ada", "reference"), ("grace", "blank"), ("grace", "reference"), ("alan", "no_zero_grad"),
           ("edsger", "reference")]


@pytest.fixture(scope="module")
def turned(tmp_path_factory):
    return round_trip(tmp_path_factory.mktemp("term"), NAME, SUBMITS, late_from=4)


def test_each_student_fetches_their_own_feedback_with_nbgraders_late_penalty(turned):
    full = sum(expected_scores(NAME, MATRIX["reference"]).values())
    raw = {"ada": full, "grace": full, "alan": sum(expected_scores(NAME, MATRIX["no_zero_grad"]).values()),
           "edsger": full}
    assert {s: got.raw for s, got in turned.items()} == raw, "grace's second submission is the one graded"
    assert {s: got.penalty for s, got in turned.items()} == {"ada": 0, "grace": 0, "alan": 0, "edsger": full}
    for student, got in turned.items():
        assert got.feedback.parts[-5:-2] == (student, NAME, "feedback"), "in the student's own folder"
        assert len(list(got.feedback.parents[1].glob(f"*/{NAME}.html"))) == 1, "one page: the graded submission's"
        page = got.feedback.read_text()
        score = re.search(r"\(Score: ([\d.]+) / ([\d.]+)\)</h4>", page)
        assert score and float(score[1]) == max(0.0, got.raw - got.penalty) and float(score[2]) == full, student
        assert ("Late submission penalty (Score: -" in page) == (student == "edsger")
