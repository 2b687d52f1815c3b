"""Figures the lessons draw: loss curves, a Trainer's history (also live, while it trains), decision
boundaries, learning-verification tables, and interactive explorers of LR schedules and of clipping."""
import copy
import math
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython import get_ipython
from IPython.display import display
from matplotlib.ticker import MaxNLocator
import torch


def plot_losses(histories: dict[str, list[float]], title: str = "Training loss", log: bool = False):
    """One curve per named history (loss per epoch); returns the Axes."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, history in histories.items():
        ax.plot(range(1, len(history) + 1), history, marker="o", markersize=3, label=name)
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return ax


@torch.no_grad()
def plot_decision_boundary(model, x: torch.Tensor, y: torch.Tensor, title: str = "", ax=None):
    """Shade where a 2-D binary classifier (one logit) says 1, with the data on top."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    lo, hi = x.min(0).values - 0.5, x.max(0).values + 0.5
    gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], 200), torch.linspace(lo[1], hi[1], 200), indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    # A copy in eval mode: the plot must not change the caller's model.
    z = copy.deepcopy(model).eval()(grid).reshape(gx.shape) > 0
    ax.contourf(gx, gy, z.float(), levels=[-0.5, 0.5, 1.5], colors=["#dbe7f5", "#f8dcc8"])
    labels = y.reshape(-1)
    ax.scatter(*x[labels == 0].T, s=10, c="#1f5fa8", label="class 0")
    ax.scatter(*x[labels == 1].T, s=10, c="#c4561d", label="class 1")
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(loc="lower right", fontsize=8)
    return ax


def verification_table(rows: dict[str, dict]) -> str:
    """A Markdown table: one row per model, one column per learning-verification figure."""
    columns = list(next(iter(rows.values())))
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def schedule_explorer(schedule, steps: int, **sliders: widgets.ValueWidget) -> widgets.interactive:
    """Sliders for the keyword arguments of `schedule(step, **kwargs) -> float`; every change
    redraws the LR of steps 0..steps-1. Display the returned widget (last line of a cell)."""
    def draw(**kwargs):
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(range(steps), [schedule(step, **kwargs) for step in range(steps)])
        ax.set(xlabel="step", ylabel="learning rate", title=", ".join(f"{k}={v:g}" for k, v in kwargs.items()))
        ax.grid(alpha=0.3)
        fig.tight_layout()
        plt.show()

    return widgets.interactive(draw, **sliders)


def clipping_explorer(train, **sliders: widgets.ValueWidget) -> widgets.interactive:
    """Sliders for the keyword arguments of `train(**kwargs) -> (losses, norms)`, one of them `max_norm`:
    every change retrains and draws, per step, the loss and the gradient norm before clipping (`norms`)
    and after it (`min(norm, max_norm)`, what the optimizer applies). Display the returned widget."""
    def draw(**kwargs):
        losses, norms = train(**kwargs)
        steps = range(1, len(losses) + 1)
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
        left.plot(steps, losses, marker="o", markersize=3)
        left.set(xlabel="step", ylabel="loss (log scale)", yscale="log", title="Training loss")
        right.plot(steps, norms, marker="o", markersize=3, label="before clipping")
        right.plot(steps, [min(n, kwargs["max_norm"]) for n in norms], marker=".", label="after clipping")
        right.axhline(kwargs["max_norm"], color="gray", linestyle="--", linewidth=1, label="max_norm")
        right.set(xlabel="step", ylabel="gradient norm (log scale)", yscale="log",
                  title=", ".join(f"{k}={v:g}" for k, v in kwargs.items()))
        right.legend(fontsize=8)
        for ax in (left, right):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        plt.show()

    return widgets.interactive(draw, **sliders)


def plot_history(history: dict[str, list[float]], title: str = ""):
    """A Trainer's history (train_loss, val_loss, val_accuracy per epoch): losses on the left,
    validation accuracy on the right; returns the two Axes."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = range(1, len(history["train_loss"]) + 1)
    left.plot(epochs, history["train_loss"], marker="o", markersize=3, label="train")
    left.plot(epochs, history["val_loss"], marker="o", markersize=3, label="validation")
    left.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    left.legend()
    right.plot(epochs, history["val_accuracy"], marker="o", markersize=3, color="C2")
    right.set(xlabel="epoch", ylabel="validation accuracy", title=f"{title}: accuracy")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return left, right


class LiveHistory:
    """A Trainer callback (`callbacks=[LiveHistory("title")]`): after every epoch it redraws the
    Trainer's history as `plot_history` does, in place, so one figure grows while `fit` runs. Like a
    progress bar it redraws at most every `every` seconds (a frame costs ~0.1 s, more than an epoch of
    a small model): an epoch that ends sooner is drawn by a later one, or when the cell ends."""

    def __init__(self, title: str = "", every: float = 0.5):
        self.title, self.every = title, every
        self.handle = None
        self.drawn = -math.inf  # time.monotonic() of the last frame
        self.behind = None  # the trainer whose last epoch is not drawn yet
        self.hooked = False  # catch_up waits for the end of the cell

    def __call__(self, trainer) -> None:
        shell = get_ipython()
        if shell is None or time.monotonic() - self.drawn >= self.every:
            self.draw(trainer)
            return
        if not self.hooked:
            shell.events.register("post_run_cell", self.catch_up)
            self.hooked = True
        self.behind = trainer

    def catch_up(self, result=None) -> None:
        get_ipython().events.unregister("post_run_cell", self.catch_up)
        self.hooked = False
        if self.behind is not None:
            self.draw(self.behind)

    def draw(self, trainer) -> None:
        self.behind = None
        figure = plot_history(trainer.history, self.title)[0].figure
        if self.handle is None:
            self.handle = display(figure, display_id=True)
        else:
            self.handle.update(figure)
        plt.close(figure)  # drawn above; the inline backend must not show it again when the cell ends
        self.drawn = time.monotonic()
