"""Instruments the runner hands to student code: an optimizer and a loss that log what happened.

The log is plain data (event names, floats, cloned tensors), so the judge can read it safely.
"""
import weakref

import torch
from torch import nn


class Log:
    """What a student's training code did, in order."""

    def __init__(self):
        self.events: list[str] = []  # "loss", "backward", "zero_grad", "step"
        self.losses: list[float] = []  # every value loss_fn returned
        self.sizes: list[int] = []  # the batch size of each of those calls
        self.step_grads: list[dict] = []  # the gradients each optimizer.step() saw
        self.step_params: list[dict] = []  # the parameters each optimizer.step() started from
        self.step_lrs: list[float] = []  # the learning rate each optimizer.step() used
        self.empty_at_backward: list[bool] = []  # were all gradients empty as each backward began?
        self.loss_refs: list[weakref.ref] = []  # each loss tensor, alive only while something holds it

    def leaked(self) -> int:
        """How many loss tensors (each holding its batch's autograd graph) are still alive."""
        return sum(ref() is not None for ref in self.loss_refs)


class RecordingSGD(torch.optim.SGD):
    """Plain SGD that logs zero_grad/step calls and snapshots the gradients and LR at step time."""

    def __init__(self, model: nn.Module, lr: float, log: Log, **kwargs):
        self.named = list(model.named_parameters())
        self.log = log
        super().__init__([p for _, p in self.named], lr=lr, **kwargs)

    def zero_grad(self, set_to_none: bool = True):
        self.log.events.append("zero_grad")
        super().zero_grad(set_to_none)

    def step(self, closure=None):
        self.log.events.append("step")
        self.log.step_grads.append(grads(self.named))
        self.log.step_params.append(params(self.named))
        self.log.step_lrs.append(float(self.param_groups[0]["lr"]))
        return super().step(closure)


class RecordingLoss(nn.Module):
    """Wraps a loss function; logs each value and batch size, and when backward reaches it
    (with whether `model`'s gradients were all empty at that moment)."""

    def __init__(self, loss_fn: nn.Module, log: Log, model: nn.Module | None = None):
        super().__init__()
        self.loss_fn = loss_fn
        self.log = log
        self.watched = [] if model is None else list(model.parameters())

    def forward(self, output, target):
        loss = self.loss_fn(output, target)
        self.log.events.append("loss")
        self.log.losses.append(loss.item())
        self.log.sizes.append(len(target))
        self.log.loss_refs.append(weakref.ref(loss))
        if loss.requires_grad:
            loss.register_hook(self._backward)
        return loss

    def _backward(self, grad):
        # Runs as backward starts at the loss, before any parameter's .grad is touched.
        self.log.events.append("backward")
        self.log.empty_at_backward.append(all(p.grad is None or not p.grad.any() for p in self.watched))


def params(named) -> dict[str, torch.Tensor]:
    """A detached copy of each (name, parameter)."""
    return {n: p.detach().clone() for n, p in named}


def grads(named) -> dict[str, torch.Tensor | None]:
    """A copy of each parameter's .grad (None where there is none)."""
    return {n: None if p.grad is None else p.grad.detach().clone() for n, p in named}


def describe(value, depth: int = 0) -> dict:
    """Plain-data description of a value a student returned: its type as isinstance sees it (a subclass
    of float, int, bool, dict, list or tuple by its base's name: numpy.float64 is a float, an
    OrderedDict a dict; anything else, a tensor included, by its own), its class, and its number(s);
    containers two levels deep (a dict of lists of floats). Numbers are read as their base type stores
    them, so a subclass's overridden methods change nothing."""
    kind = type(value)
    cls = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    base = next((b for b in (bool, int, float, dict, list, tuple) if isinstance(value, b)), None)
    d = {"type": cls if base is None else base.__name__, "class": cls}
    if base is bool:
        d["value"] = float(bool.__bool__(value))
    elif base is int:
        d["value"] = float(int.__int__(value))
    elif base is float:
        d["value"] = float.__float__(value)
    elif isinstance(value, torch.Tensor):
        d["value"] = float(value.detach().float().reshape(-1)[0]) if value.numel() else None
        d["grad_fn"] = value.grad_fn is not None
        d["shape"] = list(value.shape)
    elif base in (list, tuple) and depth < 2:
        d["items"] = [describe(v, 1) for v in list(base.__iter__(value))[:1000]]
    elif base is dict and depth < 2:
        d["items"] = {str(k): describe(v, 1) for k, v in list(dict.items(value))[:1000]}
    return d
