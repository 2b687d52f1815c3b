"""The instructor's side in a real browser: JupyterLab with nbgrader's extensions, served from a course
root with two collected submissions, opened in headless Chromium. From the Nbgrader menu's Formgrader
the instructor autogrades a submission by its button (the course's preprocessors and sandbox run in
the server's process), reads the score of each cell, gives a manual score and a comment, and
generates the student's feedback. Screenshots are kept in build/test-artifacts/formgrader-*.png."""
import re

import pytest
from nbgrader.api import Gradebook

from autograder import grading
from autograder.mutants import expected_scores, grade_cells, mutants, submission
from conftest import ARTIFACTS, TOKEN, jupyterlab

pytestmark = pytest.mark.browser
NAME = "ps01_training_loop"
MATRIX = {m.name: m for m in mutants(NAME)}
STUDENTS = {"ada": "reference", "alan": "no_zero_grad"}
COMMENT = "Clear the gradients before each backward(): see the demo of section 1."


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course root with the assignment generated and STUDENTS' submissions collected."""
    root = grading.scratch_course(tmp_path_factory.mktemp("formgrader") / "course", [NAME])
    for student, bug in STUDENTS.items():
        grading.submit(root, NAME, student, submission(NAME, MATRIX[bug], root))
    return root


def shot(page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"formgrader-{name}.png")


def test_the_instructor_autogrades_grades_by_hand_and_generates_feedback_in_the_formgrader(course, browser):
    root = course
    points = grade_cells(NAME)
    scores = expected_scores(NAME, MATRIX["no_zero_grad"])
    lost = next(c for c in points if scores[c] == 0 and c.startswith("audit_"))
    kept = next(c for c in points if scores[c] == points[c] and c.startswith("audit_"))
    with jupyterlab(root) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab?reset&token={TOKEN}")
            page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
            page.locator(".lm-Menu-item[data-command='nbgrader:open-formgrader']").click()
            formgrader = page.frame_locator("iframe").first
            formgrader.get_by_role("link", name=NAME).first.wait_for(timeout=60_000)
            shot(page, "assignments")

            formgrader.locator("td a", has_text=str(len(STUDENTS))).first.click()  # its submissions
            row = formgrader.locator("#main-table tr", has_text="alan")
            row.locator("td.status", has_text="needs autograding").wait_for(timeout=60_000)
            row.locator("td.autograde a").click()
            dialog = formgrader.locator(".modal-dialog", has_text="Successfully autograded")
            dialog.wait_for(timeout=300_000)
            shot(page, "autograded")
            assert "Applying preprocessor: AuditedExecute" in dialog.inner_text(), "the course's own autograde"
            dialog.get_by_role("button", name="OK").click()
            total = f"{sum(scores.values()):g} / {sum(points.values()):g}"
            row.locator("td.score", has_text=total).wait_for(timeout=30_000)
            assert row.locator("td.status").inner_text().strip() == "graded"

            row.locator("td.student-name a").click()  # alan's notebooks, then the one to grade
            formgrader.locator("#main-table a", has_text=NAME).first.click()
            formgrader.locator(f"input.score#{lost}").wait_for(timeout=60_000)
            for cell, got in scores.items():  # each cell's autograded score, the placeholder of its box
                assert float(formgrader.locator(f"input.score#{cell}").get_attribute("placeholder")) == got, cell
            formgrader.locator(f"input.score#{lost}").fill("1.5")
            formgrader.locator(f"input.score#{lost}").press("Tab")
            formgrader.locator("textarea#train_step-comment").fill(COMMENT)
            formgrader.locator("textarea#train_step-comment").press("Tab")
            page.wait_for_timeout(1000)  # each box saves itself when it loses the focus
            formgrader.locator(f"input.score#{lost}").scroll_into_view_if_needed()
            shot(page, "graded-by-hand")

            page.goto(f"{url}/lab?reset&token={TOKEN}")  # back to the Formgrader's submissions of the assignment
            page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
            page.locator(".lm-Menu-item[data-command='nbgrader:open-formgrader']").click()
            formgrader = page.frame_locator("iframe").first
            formgrader.locator("td a", has_text=str(len(STUDENTS))).first.click()
            row = formgrader.locator("#main-table tr", has_text="alan")
            row.locator("td.score", has_text=f"{sum(scores.values()) + 1.5:g} / ").wait_for(timeout=60_000)
            row.locator("td.generate-feedback a").click()
            formgrader.locator(".modal-dialog", has_text="Successfully generated feedback").wait_for(timeout=120_000)
            shot(page, "feedback")
        finally:
            shot(page, "last")
            page.close()
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert gb.find_grade(lost, NAME, NAME, "alan").score == 1.5
        assert gb.find_grade(kept, NAME, NAME, "alan").score == points[kept]
        assert gb.find_comment("train_step", NAME, NAME, "alan").comment == COMMENT
    assert not (root / "autograded" / "ada").exists(), "only the submission autograded from its button"
    page = (root / "feedback" / "alan" / NAME / f"{NAME}.html").read_text()
    assert re.search(rf"\(Score: {sum(scores.values()) + 1.5:g}(\.0)? / {sum(points.values()):g}(\.0)?\)", page)
    assert COMMENT.split(":")[0] in page
