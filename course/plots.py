"""Figures the lessons draw: loss curves, a Trainer's history (also live, while it trains) and its
record of every step, per-parameter bars, decision boundaries, learning-verification tables, and
interactive explorers of LR schedules and of clipping."""
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


def plot_steps(history: dict[str, list[float]], title: str = "", max_grad_norm: float | None = None):
    """A Trainer's record of every optimizer step: the LR each step used on the left, the window's
    gradient norm before clipping on the right (log scale), with `max_grad_norm` drawn as the line
    that clipping brings every norm above it down to; returns the two Axes."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    steps = range(1, len(history["lr"]) + 1)
    left.plot(steps, history["lr"], color="C4")
    left.set(xlabel="optimizer step", ylabel="learning rate", title=f"{title}: LR per step")
    right.plot(steps, history["grad_norm"], color="C1", linewidth=0.8, label="gradient norm before clipping")
    right.set_yscale("log")
    if max_grad_norm is not None:
        clipped = sum(norm > max_grad_norm for norm in history["grad_norm"])
        right.axhline(max_grad_norm, color="gray", linestyle="--", linewidth=1,
                      label=f"max_grad_norm {max_grad_norm:g}: {clipped} of {len(steps)} steps clipped")
    right.set(xlabel="optimizer step", ylabel="gradient norm", title=f"{title}: gradient norm per step")
    right.legend(fontsize="small")
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


def plot_per_parameter(values: dict, title: str = "", ylabel: str = "", color=None, ax=None):
    """One bar per parameter of `{name: number or None}` (what gradient_flow and weight_change
    return), each labelled with its number. A None, where there is no number at all (no gradient
    reached that parameter), is a hatched column labelled "None": it must not pass for a 0, which is
    a bar of height 0 labelled 0. Returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    names, numbers = list(values), list(values.values())
    bars = ax.bar(range(len(names)), [0.0 if v is None else v for v in numbers], color=color)
    ax.bar_label(bars, labels=["" if v is None else f"{v:.2g}" for v in numbers], fontsize=7, padding=1)
    for i, v in enumerate(numbers):
        if v is None:  # the whole height of the plot, whatever its scale
            ax.axvspan(i - 0.4, i + 0.4, facecolor="none", edgecolor="0.6", hatch="///", linewidth=0)
            ax.text(i, 0.5, "None", transform=ax.get_xaxis_transform(), ha="center", va="center", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "0.6", "boxstyle": "round,pad=0.2"})
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    ax.margins(y=0.2)  # room for the labels above the tallest bar
    return ax
