"""The ps01 mutant matrix through the real tools: `nbgrader generate_assignment`, then
`nbgrader autograde` of every submission into a real gradebook, scores asserted cell by cell."""
import html
import re

import pytest

from autograder import grading
from autograder.mutants import expected_scores, mutants, submission

pytestmark = pytest.mark.ps01
NAME = "ps01_training_loop"
MUTANTS = mutants(NAME)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = grading.scratch_course(tmp_path_factory.mktemp("course"), [NAME])
    for m in MUTANTS:
        grading.submit(root, NAME, m.name, submission(NAME, m, root))
    grading.autograde(root, NAME)
    return root, grading.scores(root, NAME)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_every_grade_cell_scores_exactly_as_the_matrix_says(graded, mutant):
    root, scores = graded
    assert scores[mutant.name] == expected_scores(NAME, mutant), mutant.why
    shown = grading.messages(root, NAME, mutant.name)
    for cell, phrase in mutant.fails.items():
        assert phrase in shown.get(cell, ""), f"{cell} should say {phrase!r}; it shows {shown.get(cell)!r}"
    assert set(shown) - {"milestone_perceptron"} <= set(mutant.fails), "only the lost cells show errors"


def test_the_gradebook_holds_every_submission(graded):
    _, scores = graded
    assert sorted(scores) == sorted(m.name for m in MUTANTS)
    reference = scores["reference"]
    assert sum(reference.values()) == 29.0 and all(v > 0 for v in reference.values())


def test_feedback_shows_the_verdict_and_no_test_logic(graded):
    root, _ = graded
    page = html.unescape(re.sub(r"<[^>]+>", "", grading.feedback(root, NAME, "no_zero_grad")))
    assert "gradients accumulate across steps" in page
    assert "Call optimizer.zero_grad() in train_step before loss.backward()" in page
    assert 'audit("ps01.zero_grad")' in page, "the hidden cell shows as a single call"
    assert "collect_zero_grad" not in page and "judge_zero_grad" not in page
