"""Hidden audit checks for ps01_training_loop.

Each check is a pair: `collect_*` runs the student's function in the runner on a problem built
from a seed (sizes and data the student never saw); `judge_*` rebuilds the same problem, recomputes
what correct code must produce with plain torch, and raises AuditFailure with what went wrong.
"""
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.audit import AuditFailure, Check
from autograder.instrument import describe, params
from autograder.judging import (close, empty, epoch_means, loaded, loss_and_grads, ordinal, require_float,
                                require_stepped)
from autograder.problems import batches, blobs, mlp, problem, setup, uneven_loader

CONVERGENCE_FRACTION = 0.5  # the hidden problem's loss must fall by at least this much


# ---------------------------------------------------------------- zero_grad

def collect_zero_grad(fns: dict, seed: int) -> dict:
    model, x, y, lr = problem(seed, 32)
    log, opt, loss_fn = setup(model, lr)
    calls = []
    for xb, yb in batches(x, y, 8):
        start, steps, before = len(log.events), len(log.step_grads), params(model.named_parameters())
        fns["train_step"](model, loss_fn, opt, xb, yb)
        calls.append({"before": before, "step_grads": log.step_grads[steps:], "events": log.events[start:]})
    return {"calls": calls, "after": params(model.named_parameters())}


def judge_zero_grad(rec: dict, seed: int) -> None:
    """What each call's optimizer.step() applied must be that call's batch gradient alone. Where the
    gradients are cleared (before backward, or after the previous step) is the student's choice."""
    model, x, y, lr = problem(seed, 32)
    previous = None
    afters = [call["before"] for call in rec["calls"][1:]] + [rec["after"]]
    for i, (call, after, (xb, yb)) in enumerate(zip(rec["calls"], afters, batches(x, y, 8), strict=True), 1):
        _, own = loss_and_grads(model, call["before"], xb, yb)
        events = call["events"]
        if not call["step_grads"] or ("backward" in events and events.index("step") < events.index("backward")):
            previous = None  # no step, or a step before backward: every_parameter_learns names that bug
            continue
        got = call["step_grads"][0]
        if close(got, own):
            if len(call["step_grads"]) == 1:
                require_stepped(call["before"], after, got, lr, f"the {ordinal(i)} call of train_step")
            previous = got
            continue
        if empty(got):
            if "zero_grad" in events and "backward" in events and events[::-1].index("zero_grad") < events[::-1].index("backward"):
                raise AuditFailure("optimizer.zero_grad() ran after loss.backward(): it erased this batch's "
                                   "gradients, so optimizer.step() had nothing to apply. "
                                   "Order the step as zero_grad(), forward, loss, backward(), step().")
            raise AuditFailure(f"At optimizer.step() in the {ordinal(i)} call of train_step the parameters had "
                               f"no gradient. train_step must call loss.backward() on the loss from loss_fn.")
        if close(got, {n: 2 * g for n, g in own.items()}):
            raise AuditFailure(f"At optimizer.step() in the {ordinal(i)} call of train_step every gradient was "
                               f"exactly twice this batch's gradient: the gradient was accumulated twice in one step "
                               f"(backward() called twice?). Call loss.backward() once per step.")
        if previous is not None and close(got, {n: previous[n] + g for n, g in own.items()}):
            raise AuditFailure(f"At optimizer.step() in the {ordinal(i)} call of train_step the gradients were "
                               f"this batch's gradient plus the previous batches': gradients accumulate across steps. "
                               f"Call optimizer.zero_grad() in train_step before loss.backward().")
        name = next(n for n in own if not close(got[n], own[n]))
        raise AuditFailure(f"At optimizer.step() in the {ordinal(i)} call of train_step, {name}.grad was not "
                           f"the gradient of this batch's loss. Compute the loss on (xb, yb) with loss_fn and call "
                           f"backward() on it once, after optimizer.zero_grad().")


# ---------------------------------------------------------------- train_step's return value

def collect_step_loss(fns: dict, seed: int) -> dict:
    model, x, y, lr = problem(seed, 24)
    log, opt, loss_fn = setup(model, lr)
    returned, befores = [], []
    for xb, yb in batches(x, y, 8):
        befores.append(params(model.named_parameters()))
        out = fns["train_step"](model, loss_fn, opt, xb, yb)
        returned.append(describe(out))
        del out
    return {"returned": returned, "before": befores, "leaked": log.leaked()}


def judge_step_loss(rec: dict, seed: int) -> None:
    model, x, y, lr = problem(seed, 24)
    for i, (d, before, (xb, yb)) in enumerate(zip(rec["returned"], rec["before"], batches(x, y, 8), strict=True), 1):
        value = require_float(d, "train_step")
        expected, _ = loss_and_grads(model, before, xb, yb)
        if not close(value, expected, rtol=1e-5):
            raise AuditFailure(f"The {ordinal(i)} call of train_step returned {value:.6g}, but the batch's loss "
                               f"before the update was {expected:.6g}. Return the loss of this batch, "
                               f"computed before optimizer.step(), as loss.item().")
    if rec["leaked"] > 0:
        raise AuditFailure(f"After train_step returned, {rec['leaked']} loss tensor(s) were still alive, each holding "
                           f"its batch's autograd graph: something keeps the loss tensor alive (a global list of losses?). "
                           f"Keep loss.item() instead, so each step's graph is freed.")


# ---------------------------------------------------------------- every parameter learns

def collect_learns(fns: dict, seed: int) -> dict:
    model, x, y, lr = problem(seed + 7, 16)
    log, opt, loss_fn = setup(model, lr)
    calls = []
    for xb, yb in batches(x, y, 8):
        start, steps, before = len(log.events), len(log.step_grads), params(model.named_parameters())
        fns["train_step"](model, loss_fn, opt, xb, yb)
        calls.append({"events": log.events[start:], "step_grads": log.step_grads[steps:],
                      "before": before, "after": params(model.named_parameters())})
    return {"calls": calls}


def judge_learns(rec: dict, seed: int) -> None:
    model, _, _, lr = problem(seed + 7, 16)
    names = [n for n, _ in model.named_parameters()]
    for i, call in enumerate(rec["calls"], 1):
        events, steps = call["events"], call["events"].count("step")
        if steps == 0:
            raise AuditFailure("train_step never called optimizer.step(): gradients were computed but the "
                               "parameters were never updated. Call optimizer.step() after loss.backward().")
        if steps > 1:
            raise AuditFailure(f"The {ordinal(i)} call of train_step called optimizer.step() {steps} times; "
                               f"a training step updates the parameters once per batch.")
        if "backward" not in events:
            raise AuditFailure("train_step never called backward() on the loss returned by loss_fn. "
                               "Use the loss_fn passed in, and call loss.backward().")
        if events.index("step") < events.index("backward"):
            raise AuditFailure("train_step called optimizer.step() before loss.backward(): the step saw no "
                               "gradient from this batch. Order: zero_grad(), forward, loss, backward(), step().")
        at_step = call["step_grads"][0]
        missing = [n for n in names if at_step.get(n) is None or not at_step[n].any()]
        if missing:
            raise AuditFailure(f"At optimizer.step() these parameters had no gradient: {', '.join(missing)}. "
                               f"Nothing may clear gradients between loss.backward() and optimizer.step().")
        still = [n for n in names if torch.equal(call["before"][n], call["after"][n])]
        if still:
            raise AuditFailure(f"These parameters did not change in the {ordinal(i)} step: {', '.join(still)}. "
                               f"Give the optimizer the model's parameters and call optimizer.step().")
        require_stepped(call["before"], call["after"], at_step, lr, f"the {ordinal(i)} call of train_step")


# ---------------------------------------------------------------- train_epoch: one step per batch

def collect_steps(fns: dict, seed: int) -> dict:
    model, loader, lr = uneven_loader(seed + 11)
    log, opt, loss_fn = setup(model, lr)
    fns["train_epoch"](model, loader, loss_fn, opt)
    return {"events": log.events, "sizes": log.sizes}


def judge_steps(rec: dict, seed: int) -> None:
    _, loader, _ = uneven_loader(seed + 11)
    expected = [len(yb) for _, yb in loader]
    steps, n = rec["events"].count("step"), len(expected)
    if sorted(rec["sizes"]) != sorted(expected):
        raise AuditFailure(f"train_epoch computed the loss on batches of sizes {rec['sizes']}, but the loader "
                           f"yields {expected}: use every batch of the loader exactly once.")
    if steps != n:
        hint = {0: "it never called optimizer.step() (does train_epoch call train_step?)",
                1: "it stepped once per epoch, not once per batch"}.get(steps, "step once per batch")
        raise AuditFailure(f"train_epoch called optimizer.step() {steps} time(s) for a loader of {n} batches: "
                           f"{hint}.")


# ---------------------------------------------------------------- train_epoch: the sample-weighted mean

def collect_epoch_mean(fns: dict, seed: int) -> dict:
    model, loader, lr = uneven_loader(seed + 13)
    log, opt, loss_fn = setup(model, lr)
    out = fns["train_epoch"](model, loader, loss_fn, opt)
    return {"returned": describe(out), "losses": log.losses, "sizes": log.sizes}


def judge_epoch_mean(rec: dict, seed: int) -> None:
    _, loader, _ = uneven_loader(seed + 13)
    value = require_float(rec["returned"], "train_epoch")
    if len(rec["losses"]) != len(loader):
        raise AuditFailure(f"train_epoch computed {len(rec['losses'])} losses for a loader of {len(loader)} "
                           f"batches: call train_step once per batch.")
    weighted, plain = epoch_means(rec["losses"], rec["sizes"])
    if close(value, weighted, rtol=1e-5):
        return
    sizes = ", ".join(map(str, rec["sizes"]))
    if close(value, plain, rtol=1e-5):
        raise AuditFailure(f"train_epoch returned {value:.6g}, the plain average of the batch losses, but the "
                           f"batches differ in size ({sizes}): the epoch loss is {weighted:.6g}. Weight each "
                           f"batch's loss by its size (loss * len(yb)), sum, and divide by the number of samples.")
    raise AuditFailure(f"train_epoch returned {value:.6g}; the sample-weighted mean of its batch losses "
                       f"(batch sizes {sizes}) is {weighted:.6g}.")


# ---------------------------------------------------------------- fit: the history

def fit_case(seed: int) -> tuple[nn.Sequential, DataLoader, float, int]:
    model, loader, lr = uneven_loader(seed + 17)
    return model, loader, lr, 3 + seed % 2


def collect_history(fns: dict, seed: int) -> dict:
    model, loader, lr, epochs = fit_case(seed)
    log, opt, loss_fn = setup(model, lr)
    out = fns["fit"](model, loader, loss_fn, opt, epochs)
    return {"returned": describe(out), "losses": log.losses, "sizes": log.sizes}


def judge_history(rec: dict, seed: int) -> None:
    _, loader, _, epochs = fit_case(seed)
    d = rec["returned"]
    if d["type"] != "list":
        raise AuditFailure(f"fit returned a {d['type']}; it must return a list with one loss per epoch "
                           f"({epochs} floats for {epochs} epochs), e.g. history.append(train_epoch(...)).")
    if len(d["items"]) != epochs:
        raise AuditFailure(f"fit returned {len(d['items'])} losses for {epochs} epochs: append each "
                           f"epoch's loss to the list, one entry per epoch.")
    per_epoch = len(loader)
    if len(rec["losses"]) != epochs * per_epoch:
        raise AuditFailure(f"fit computed {len(rec['losses'])} batch losses over {epochs} epochs of "
                           f"{per_epoch} batches: train for exactly `epochs` epochs over the whole loader.")
    for e, item in enumerate(d["items"]):
        value = require_float(item, "an entry of fit's history")
        span = slice(e * per_epoch, (e + 1) * per_epoch)
        weighted, _ = epoch_means(rec["losses"][span], rec["sizes"][span])
        if not close(value, weighted, rtol=1e-5):
            raise AuditFailure(f"Entry {e} of fit's history is {value:.6g}, but epoch {e}'s sample-weighted "
                               f"mean loss was {weighted:.6g}: each entry is the value train_epoch returns "
                               f"for that epoch.")


# ---------------------------------------------------------------- fit: convergence

def convergence_case(seed: int) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    x, y = blobs(seed + 1, 256, 8, 4, scale=1.0)  # overlapping classes: no loss of zero to coast to
    return mlp(seed, [8, 24, 4]), x, y


def collect_convergence(fns: dict, seed: int) -> dict:
    model, x, y = convergence_case(seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    log, opt, loss_fn = setup(model, 0.2)
    fns["fit"](model, loader, loss_fn, opt, 12)
    return {"final": params(model.named_parameters())}


def loss_change(before: float, after: float) -> str:
    """How a loss moved, in words: "a 34% decrease", or "it rose by 12%" (never "a -12% decrease")."""
    change = (before - after) / before
    if not math.isfinite(change):
        return f"it became {after}"
    if change > 0:
        return f"a {change:.0%} decrease"
    return f"it rose by {-change:.0%}" if change < 0 else "no change at all"


def judge_convergence(rec: dict, seed: int) -> None:
    model, x, y = convergence_case(seed)
    with torch.no_grad():
        start = nn.functional.cross_entropy(model(x), y).item()
        end = nn.functional.cross_entropy(loaded(model, rec["final"])(x), y).item()
    if not math.isfinite(end):
        raise AuditFailure(f"Training on the audit's hidden problem diverged: the loss became {end}.")
    if (start - end) / start < CONVERGENCE_FRACTION:
        raise AuditFailure(f"On the audit's hidden 4-class problem, 12 epochs of fit (SGD, lr 0.2) took the "
                           f"loss from {start:.4f} to {end:.4f}: {loss_change(start, end)}, where correct training "
                           f"reaches at least {CONVERGENCE_FRACTION:.0%}. Check that every batch does "
                           f"zero_grad, backward and step, in that order.")


# ---------------------------------------------------------------- learning-verification helpers

def flow_model(seed: int) -> nn.Sequential:
    """A model after one backward pass, with a frozen layer, a parameter the forward never uses
    (.grad None) and one whose gradient is all zeros (norm 0.0, not None)."""
    model, x, y, _ = problem(seed, 16)
    model[2].requires_grad_(False)
    model.register_parameter("unused", nn.Parameter(torch.ones(3)))
    model.register_parameter("zeroed", nn.Parameter(torch.ones(2)))
    nn.functional.cross_entropy(model(x), y).backward()
    model.zeroed.grad = torch.zeros(2)
    return model


def collect_gradient_flow(fns: dict, seed: int) -> dict:
    return {"returned": describe(fns["gradient_flow"](flow_model(seed + 19)))}


def judge_gradient_flow(rec: dict, seed: int) -> None:
    model = flow_model(seed + 19)
    d = rec["returned"]
    if d["type"] != "dict":
        raise AuditFailure(f"gradient_flow returned a {d['type']}; it must return a dict from each "
                           f"parameter name (model.named_parameters()) to a float or None.")
    got, names = d["items"], [n for n, _ in model.named_parameters()]
    if sorted(got) != sorted(names):
        missing, extra = sorted(set(names) - set(got)), sorted(set(got) - set(names))
        raise AuditFailure(f"gradient_flow's keys must be every name in model.named_parameters(), including "
                           f"frozen and unused parameters. Missing: {missing or 'none'}; unexpected: {extra or 'none'}.")
    for n, p in model.named_parameters():
        item = got[n]
        if p.grad is None:
            if item["type"] != "NoneType":
                raise AuditFailure(f"'{n}' has no gradient (its .grad is None), so gradient_flow must report "
                                   f"None for it, not {item.get('value', item['type'])}: None is how you spot "
                                   f"a parameter that no gradient reaches.")
            continue
        if item["type"] == "NoneType":
            raise AuditFailure(f"gradient_flow reported None for '{n}', but it has a gradient (its .grad is a "
                               f"tensor{' of zeros, norm 0.0' if not p.grad.any() else ''}): report None only "
                               f"where p.grad is None, and the L2 norm everywhere else.")
        value = require_float(item, f"gradient_flow (for '{n}')")
        g = p.grad
        if close(value, g.norm().item()):
            continue
        for name, other in [("L1 norm (sum of absolute values)", g.abs().sum()), ("squared L2 norm", g.pow(2).sum()),
                            ("largest absolute value", g.abs().max()), ("mean", g.mean())]:
            if close(value, other.item()):
                raise AuditFailure(f"gradient_flow reported {value:.6g} for '{n}', its {name}; report the L2 "
                                   f"norm, {g.norm().item():.6g}: the square root of the sum of the squared "
                                   f"gradient entries.")
        raise AuditFailure(f"gradient_flow reported {value:.6g} for '{n}'; the L2 norm of its gradient is "
                           f"{g.norm().item():.6g}.")


def change_case(seed: int) -> tuple[dict, dict]:
    """Snapshots before and after an update: several shapes, one tensor left unchanged."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"0.weight": (4, 3), "0.bias": (4,), "2.weight": (2, 4), "2.bias": (2,)}
    before = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    after = {n: t + (0 if n == "2.bias" else 0.1) * torch.randn(t.shape, generator=g) for n, t in before.items()}
    return before, after


def collect_weight_change(fns: dict, seed: int) -> dict:
    before, after = change_case(seed + 23)
    return {"returned": describe(fns["weight_change"](before, after))}


def judge_weight_change(rec: dict, seed: int) -> None:
    before, after = change_case(seed + 23)
    d = rec["returned"]
    if d["type"] != "dict" or sorted(d["items"]) != sorted(before):
        raise AuditFailure(f"weight_change must return a dict with the same keys as `before` "
                           f"({', '.join(before)}); it returned a {d['type']} "
                           f"with keys {sorted(d.get('items', {})) or 'none'}.")
    for n in before:
        value = require_float(d["items"][n], f"weight_change (for '{n}')")
        expected = (after[n] - before[n]).norm().item()
        if not close(value, expected):
            raise AuditFailure(f"weight_change reported {value:.6g} for '{n}'; the L2 norm of after - before "
                               f"is {expected:.6g}. Look at what you take the norm of, and which norm.")


LOSS_HISTORIES = ([2.0, 1.5, 0.5], [1.0, 1.25], [0.8], [0.5, 0.5, 0.5], [3.0, 2.0, 2.5, 1.2, 0.9])


def collect_loss_decrease(fns: dict, seed: int) -> dict:
    return {"returned": [describe(fns["loss_decrease"](list(h))) for h in LOSS_HISTORIES]}


def judge_loss_decrease(rec: dict, seed: int) -> None:
    for h, d in zip(LOSS_HISTORIES, rec["returned"], strict=True):
        value = require_float(d, f"loss_decrease({h})")
        expected = (h[0] - h[-1]) / h[0]
        if not close(value, expected):
            raise AuditFailure(f"loss_decrease({h}) returned {value:.6g}; (first - last) / first is "
                               f"{expected:.6g} (negative when the loss went up).")


CHECKS = [
    Check("ps01.zero_grad", ("train_step",), collect_zero_grad, judge_zero_grad, seed=4101),
    Check("ps01.step_loss", ("train_step",), collect_step_loss, judge_step_loss, seed=4102),
    Check("ps01.every_parameter_learns", ("train_step",), collect_learns, judge_learns, seed=4103),
    Check("ps01.one_step_per_batch", ("train_epoch",), collect_steps, judge_steps, seed=4104),
    Check("ps01.epoch_mean", ("train_epoch",), collect_epoch_mean, judge_epoch_mean, seed=4105),
    Check("ps01.fit_history", ("fit",), collect_history, judge_history, seed=4106),
    Check("ps01.convergence", ("fit",), collect_convergence, judge_convergence, seed=4107, timeout=120),
    Check("ps01.gradient_flow", ("gradient_flow",), collect_gradient_flow, judge_gradient_flow, seed=4108),
    Check("ps01.weight_change", ("weight_change",), collect_weight_change, judge_weight_change, seed=4109),
    Check("ps01.loss_decrease", ("loss_decrease",), collect_loss_decrease, judge_loss_decrease, seed=4110),
]
