"""Trusted helpers for judges: recompute what correct code gives, compare, and phrase failures."""
import math

import torch
from torch import nn

from autograder.audit import AuditFailure


def loaded(model: nn.Module, state: dict) -> nn.Module:
    """`model` with the recorded parameter values (shapes checked by copy_)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(state[n])
    return model


def loss_and_grads(model: nn.Module, state: dict, xb, yb) -> tuple[float, dict]:
    model = loaded(model, state)
    loss = nn.functional.cross_entropy(model(xb), yb)
    named = list(model.named_parameters())
    gs = torch.autograd.grad(loss, [p for _, p in named])
    return loss.item(), {n: g for (n, _), g in zip(named, gs)}


def close(a, b, rtol=1e-4, atol=1e-6) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rtol, atol) for k in a)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a, b, rtol=rtol, atol=atol)
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def exact(a, b) -> bool:
    """Bit-identical: tensors (dtype and values), and dicts, lists and plain values holding them."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(exact(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b))
    return a == b


def require_stepped(before: dict, after: dict, grads: dict, lr: float, where: str) -> None:
    """Raise AuditFailure unless plain SGD at `lr` (the audits' RecordingSGD) applying `grads` takes the
    parameters `before` to `after`: the gradients a step recorded (at `where`) must be those it applied.
    Student code runs beside the log and could rewrite it; the parameters it cannot fake without
    training as it should."""
    if not close(after, {n: p if grads.get(n) is None else p - lr * grads[n] for n, p in before.items()}):
        raise AuditFailure(f"The parameters did not move by the gradients that optimizer.step() was given at "
                           f"{where}: something changed them, or rewrote the gradients the audit recorded, "
                           f"outside optimizer.step(). Let optimizer.step() alone update the parameters.")


def epoch_means(losses: list[float], sizes: list[int]) -> tuple[float, float]:
    """(sample-weighted mean, plain mean of batch means) of batch losses."""
    weighted = sum(l * s for l, s in zip(losses, sizes, strict=True)) / sum(sizes)
    return weighted, sum(losses) / len(losses)


def empty(gs: dict) -> bool:
    return all(g is None or not g.any() for g in gs.values())


def ordinal(i: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(i, f"{i}th")


def require_float(d: dict, what: str, fix: str = "Return loss.item(): a float lets PyTorch free the graph "
                                                   "of every batch.") -> float:
    """The number a student returned, or an AuditFailure saying the type is wrong and how to `fix` it."""
    if d["type"] == "float":
        return d["value"]
    if d["type"] == "torch.Tensor":
        graph = " that still carries the autograd graph" if d.get("grad_fn") else ""
        raise AuditFailure(f"{what} returned a torch.Tensor{graph}, not a Python float. {fix}")
    raise AuditFailure(f"{what} returned a {d['type']}, not a Python float.")
