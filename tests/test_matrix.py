"""Each assignment's mutant matrix through the real tools: `nbgrader generate_assignment`, then
nbgrader's autograde of every submission (by `autograder grade`, two workers) into a real
gradebook, scores asserted cell by cell."""
import html
import re

import pytest
from conftest import ASSIGNMENTS, assignment_params

from autograder import classroom, grading
from autograder.mutants import expected_scores, mutants, submission

TOTALS = {"ps01_training_loop": 29.0, "ps02_zero_grad_accumulation": 13.0, "ps03_lr_schedules": 20.0,
          "ps04_gradient_clipping": 20.0, "ps05_train_eval": 22.0, "ps06_checkpointing": 27.0,
          "ps07_capstone_trainer": 38.0}  # the README's table


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Autograde an assignment's whole matrix once; (course root, {student: {cell: score}})."""
    done = {}

    def grade(name):
        if name not in done:
            root = grading.scratch_course(tmp_path_factory.mktemp(name), [name])
            for m in mutants(name):
                grading.submit(root, name, m.name, submission(name, m, root))
            outcomes = classroom.grade(root, name, workers=2, progress=False)
            assert all(o.ok for o in outcomes), [o.log for o in outcomes if not o.ok]
            done[name] = root, grading.scores(root, name)
        return done[name]
    return grade


@pytest.mark.parametrize("name, mutant", assignment_params([(n, m) for n in ASSIGNMENTS for m in mutants(n)]))
def test_every_grade_cell_scores_exactly_as_the_matrix_says(graded, name, mutant):
    root, scores = graded(name)
    expected = expected_scores(name, mutant)
    assert scores[mutant.name] == expected, mutant.why
    shown = grading.messages(root, name, mutant.name)
    for cell, phrase in mutant.fails.items():
        assert phrase in shown.get(cell, ""), f"{cell} should say {phrase!r}; it shows {shown.get(cell)!r}"
    assert set(shown) & set(expected) <= set(mutant.fails), "only the lost grade cells show errors"


@pytest.mark.parametrize("name", assignment_params([(n,) for n in ASSIGNMENTS]))
def test_the_gradebook_holds_every_submission(graded, name):
    _, scores = graded(name)
    assert sorted(scores) == sorted(m.name for m in mutants(name))
    assert sum(scores["reference"].values()) == TOTALS[name]


@pytest.mark.ps01
def test_feedback_shows_the_verdict_and_no_test_logic(graded):
    root, _ = graded("ps01_training_loop")
    page = html.unescape(re.sub(r"<[^>]+>", "", grading.feedback(root, "ps01_training_loop", "no_zero_grad")))
    assert "gradients accumulate across steps" in page
    assert "Call optimizer.zero_grad() in train_step before loss.backward()" in page
    assert 'audit("ps01.zero_grad")' in page, "the hidden cell shows as a single call"
    assert "collect_zero_grad" not in page and "judge_zero_grad" not in page


@pytest.mark.ps01
@pytest.mark.browser
def test_feedback_pages_wrap_each_message_at_the_page_width(graded, browser):
    """Opened in Chromium at a laptop's width, no output of the feedback page runs past its box: an
    audit's message is one long line, whose second half says how to find the bug."""
    root, _ = graded("ps01_training_loop")
    grading.feedback(root, "ps01_training_loop", "no_zero_grad")
    page_file = root / "feedback" / "no_zero_grad" / "ps01_training_loop" / "ps01_training_loop.html"
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    try:
        page.goto(page_file.as_uri())
        widths = page.evaluate("[...document.querySelectorAll('div.output_area pre')]"
                               ".map(e => [e.scrollWidth, e.clientWidth, e.textContent])")
    finally:
        page.close()
    long = [text for _, width, text in widths if len(text) > 2 * width / 8]  # more than two lines' worth
    assert any("zero_grad" in text for text in long), "the audit's message is on the page, longer than a line"
    assert all(scroll <= width + 1 for scroll, width, _ in widths), \
        [text[:80] for scroll, width, text in widths if scroll > width + 1]
