"""Tests for course/plots.py, in a real kernel: what a student's notebook shows."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.plots

REPO = Path(__file__).resolve().parent.parent
# Five epochs of a stand-in Trainer (LiveHistory reads only its history), each faster than `every`
# or not; `frames` holds the number of epochs each frame drew.
FIT = """
import course.plots as plots

frames = []
plot_history = plots.plot_history
plots.plot_history = lambda history, title: frames.append(len(history["train_loss"])) or plot_history(history, title)


class Trainer:
    history = {"train_loss": [], "val_loss": [], "val_accuracy": []}


trainer, live = Trainer(), plots.LiveHistory("fit", every=EVERY)
for epoch in range(5):
    for values in trainer.history.values():
        values.append(1 / (epoch + 1))
    live(trainer)
"""


def live_history(every: float) -> tuple[list, list[list[int]]]:
    """The outputs of the cell that fit, and the frames drawn: after it, then in the next cell before
    and after one more call, then in a third cell."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in (
        FIT.replace("EVERY", repr(every)), "print(frames)\nlive(trainer)\nprint(frames)", "print(frames)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(REPO)}}).execute()
    printed = "".join(o.text for cell in nb.cells[1:] for o in cell.outputs if o.output_type == "stream")
    return nb.cells[0].outputs, [eval(line) for line in printed.splitlines()]


def test_live_history_draws_every_epoch_when_epochs_are_slower_than_a_frame():
    outputs, frames = live_history(every=0)
    assert frames == [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 5], [1, 2, 3, 4, 5, 5]]
    assert [o.output_type for o in outputs] == ["display_data"] and "image/png" in outputs[0].data


def test_live_history_skips_frames_of_fast_epochs_and_draws_the_last_when_the_cell_ends():
    outputs, frames = live_history(every=60)
    # the first epoch at once; the others came too soon, and the cell's end drew them all, in place;
    # a call soon after, in the next cell, is drawn when that cell ends
    assert frames == [[1, 5], [1, 5], [1, 5, 5]]
    assert [o.output_type for o in outputs] == ["display_data"] and "image/png" in outputs[0].data


def test_plot_steps_draws_each_steps_lr_and_norm_and_counts_the_clipped_steps():
    import matplotlib
    matplotlib.use("Agg")
    from course.plots import plot_steps
    history = {"lr": [0.1, 0.2, 0.3, 0.2], "grad_norm": [5.0, 0.5, 2.0, 1.0]}
    left, right = plot_steps(history, "run", max_grad_norm=1.0)
    assert list(left.lines[0].get_ydata()) == history["lr"]
    assert list(right.lines[0].get_xdata()) == [1, 2, 3, 4] and list(right.lines[0].get_ydata()) == history["grad_norm"]
    assert right.get_yscale() == "log"
    assert right.get_legend_handles_labels()[1][1] == "max_grad_norm 1: 2 of 4 steps clipped"
    assert len(plot_steps(history, "unclipped")[1].lines) == 1  # no max_grad_norm, no line


def test_plot_per_parameter_draws_none_unlike_zero():
    import matplotlib.pyplot as plt

    from course.plots import plot_per_parameter

    ax = plot_per_parameter({"a.weight": 2.0, "a.bias": 0.0, "b.weight": None}, title="t", ylabel="y")
    try:
        assert [bar.get_height() for bar in ax.containers[0]] == [2.0, 0.0, 0.0]
        assert [t.get_text() for t in ax.texts] == ["2", "0", "", "None"]  # the bars' labels, then None's
        assert ax.texts[-1].get_position()[0] == 2, "None is written on its own parameter's column"
        hatched = [p for p in ax.patches if p.get_hatch()]
        assert len(hatched) == 1 and hatched[0].get_x() < 2 < hatched[0].get_x() + hatched[0].get_width()
        assert [t.get_text() for t in ax.get_xticklabels()] == ["a.weight", "a.bias", "b.weight"]
    finally:
        plt.close(ax.figure)
