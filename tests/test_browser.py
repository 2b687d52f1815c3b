"""A student's session in a real browser: JupyterLab on loopback, headless Debian Chromium driven by
Playwright, serving the student export. Every assignment opens from the path its Binder link names,
with its kernel, its tasks and nbgrader's Validate button. The LR-schedule notebook, filled in, runs
top to bottom without an error; its schedule explorer renders and redraws when a slider moves;
nbgrader's Validate button passes it. Screenshots are kept in build/test-artifacts/."""
import json
import time
import urllib.error
import urllib.request

import nbformat
import pytest

from autograder.export import export
from autograder.mutants import mutants, submission
from autograder.notebooks import ROOT, assignments, release_path
from conftest import ARTIFACTS, TOKEN, jupyterlab

pytestmark = pytest.mark.browser
NAME = "ps03_lr_schedules"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a loopback port, serving the student export and, in `filled/`, the notebook
    filled in; the URL of the server's tree with its token, as a format string for the path. Each
    page opens in a fresh workspace (`reset`), holding only that notebook. The lab's own settings
    attach every cell to the page, so that the tests see all of a notebook, not the part in view."""
    root = tmp_path_factory.mktemp("lab")
    export(root, "course-org/student")
    (root / "filled").mkdir()
    nbformat.write(submission(NAME, mutants(NAME)[0]), root / "filled" / f"{NAME}.ipynb")
    settings = root.parent / f"{root.name}-settings"
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    # On Binder the repo is the home folder, whose .jupyter/ JupyterLab reads
    with jupyterlab(root, f"--LabApp.user_settings_dir={settings}", env={"JUPYTER_CONFIG_DIR": str(root / ".jupyter")}) as url:
        yield f"{url}/lab/tree/{{}}?reset&token={TOKEN}"


def start_kernel(page) -> None:
    """Wait for the notebook's kernel. On a slow machine JupyterLab may open the notebook before it
    knows the kernel specs and ask which kernel to use: answer with the one it proposes, Python 3."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ask = page.locator(".jp-Dialog", has_text="Select Kernel")
        if ask.count():
            ask.get_by_role("button", name="Select", exact=True).click()
        if page.locator(".jp-Toolbar-kernelName", has_text="Python 3").count() and \
                page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count():
            return
        time.sleep(0.5)
    raise AssertionError("the notebook's kernel did not start")


@pytest.mark.parametrize("name", assignments())
def test_every_assignment_opens_in_jupyterlab_where_its_binder_link_points(lab, browser, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab.format(release_path(name).relative_to(ROOT).as_posix()))
        start_kernel(page)
        heading = nbformat.read(release_path(name), as_version=4).cells[0].source.splitlines()[0]
        assert heading.startswith("# ")
        page.locator(".jp-MarkdownCell h1", has_text=heading[2:].strip()).first.wait_for(timeout=30_000)
        assert page.locator(".jp-Toolbar >> text=Validate").count() == 1, "nbgrader's Validate button"
        # the tasks to fill in: the editors are drawn once the notebook has loaded
        page.locator(".jp-CodeCell", has_text="YOUR CODE HERE").first.wait_for(timeout=30_000)
    finally:
        page.screenshot(path=ARTIFACTS / f"{name}-opened.png")
        page.close()


def test_a_student_sees_no_instructor_tool_and_no_news_prompt(lab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab.format(release_path(NAME).relative_to(ROOT).as_posix()))
        start_kernel(page)
        page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
        shown = page.locator(".lm-Menu-item:not(.lm-mod-hidden) .lm-Menu-itemLabel").all_inner_texts()
        page.screenshot(path=ARTIFACTS / "student-nbgrader-menu.png")
        assert "Assignment List" in shown, shown
        assert not {"Formgrader", "Formgrader (local)", "Create assignment", "Course List"} & set(shown), shown
        page.keyboard.press("Escape")
        page.wait_for_timeout(3000)  # the news prompt shows a few seconds after the lab has loaded
        assert page.get_by_text("Create Assignment").count() == 0, "the instructor's sidebar"
        assert page.get_by_text("official Jupyter news").count() == 0
        base, token = lab.split("/lab/tree/")[0], TOKEN
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/formgrader?token={token}", timeout=30)
        assert refused.value.code == 404, "the Formgrader's pages are not served"
    finally:
        page.screenshot(path=ARTIFACTS / "student-no-instructor-tools.png")
        page.close()


def test_a_student_runs_explores_and_validates_in_jupyterlab(lab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab.format(f"filled/{NAME}.ipynb"))
        start_kernel(page)
        # What students are told to do before they hand in: Kernel > Restart Kernel and Run All Cells.
        page.get_by_role("menuitem", name="Kernel", exact=True).click()
        page.get_by_role("menuitem", name="Restart Kernel and Run All Cells…", exact=True).click()
        page.locator(".jp-Dialog").get_by_role("button", name="Confirm Kernel Restart").click()
        # every code cell shows an execution count once the kernel is through
        page.wait_for_function(
            "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];"
            " return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }", timeout=240_000)
        # JupyterLab renders tracebacks and stderr with this MIME type
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert errors.count() == 0, errors.all_inner_texts()

        explorer = page.locator(".widget-interact").first
        explorer.scroll_into_view_if_needed()
        assert explorer.locator(".noUi-handle").count() == 4, "the explorer shows its four sliders"
        before = explorer.locator("img").first.get_attribute("src")
        explorer.locator(".noUi-handle").first.focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        assert explorer.locator(".widget-readout").first.inner_text() == "0.15"
        page.wait_for_function(  # the plot is redrawn for the new base_lr
            "src => { const i = document.querySelector('.widget-interact img');"
            " return i !== null && i.getAttribute('src') !== src; }", arg=before, timeout=60_000)
        page.screenshot(path=ARTIFACTS / f"{NAME}-explorer.png")

        page.click(".jp-Toolbar >> text=Validate")
        page.wait_for_selector(".jp-Dialog >> text=Success! Your notebook passes all the tests.", timeout=240_000)
        page.screenshot(path=ARTIFACTS / f"{NAME}-validate.png")
    finally:
        page.screenshot(path=ARTIFACTS / f"{NAME}-last.png")
        page.close()
