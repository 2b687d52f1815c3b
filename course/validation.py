"""How nbgrader runs a notebook of this course, the same at Validate and at grading.

nbgrader scores a test cell 0 for any output on stderr, so correct code that logs, warns or draws a
terminal progress bar would lose points for what it prints. Here a cell's score depends only on
whether it raised: whatever it wrote to stderr stays in its output, as ordinary text. Both the
course's and the student repo's `nbgrader_config.py` call `configure(c)`.
"""

CELL_TIMEOUT = 120  # seconds each cell may run; nbgrader's own default is 30
# Once a cell has replied, how long its last outputs may take to arrive. nbgrader waits 4 s and then
# fails the whole notebook: a cell that prints a line per step, on a machine busy grading, can take
# longer. Past this wait the rest of its output is dropped, never its score (an error is in the reply).
OUTPUT_WAIT = 60


def stderr_as_text(cell) -> None:
    """The cell's stderr streams become stdout streams."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            output["name"] = "stdout"


def configure(c) -> None:
    """Set nbgrader's Execute (Validate's, and the autograder's, which extends it) to this policy.

    nbgrader's Execute defines nbclient's `on_cell_executed` hook as a method (it records timeouts),
    which hides the configurable hook, and Validate's list of preprocessors is not configurable: so
    that method is wrapped, once per process, to relabel stderr after nbgrader's own handling."""
    from nbgrader.preprocessors import Execute

    c.Execute.timeout = CELL_TIMEOUT
    c.Execute.iopub_timeout = OUTPUT_WAIT
    c.Execute.raise_on_iopub_timeout = False
    if getattr(Execute.on_cell_executed, "relabels_stderr", False):
        return
    nbgraders = Execute.on_cell_executed

    def on_cell_executed(self, **kwargs):
        nbgraders(self, **kwargs)
        stderr_as_text(kwargs["cell"])

    on_cell_executed.relabels_stderr = True
    Execute.on_cell_executed = on_cell_executed
