"""Hidden audit checks for ps02_zero_grad_accumulation.

One recorded run of `train_epoch_accumulated` on a loader with a short last micro-batch and a
leftover window feeds four judges: the gradient at each step against the window's big batch, the
step count, where the gradients were cleared, and the reported loss.
"""
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.audit import AuditFailure, Check
from autograder.instrument import describe, params
from autograder.judging import (close, empty, epoch_means, loss_and_grads, ordinal, require_float,
                                require_stepped)
from autograder.problems import problem, setup


def accumulation_case(seed: int) -> tuple[nn.Sequential, DataLoader, float, int]:
    """A model, a loader of micro-batches of 8 (the last one short) and accum_steps leaving a tail window
    of at least 2 micro-batches, the short one among them (so equal weights per micro-batch are wrong)."""
    n_full, short = 8 + seed % 4, 2 + seed % 5
    model, x, y, lr = problem(seed, 8 * n_full + short)
    y[-short:] = (y[-short:] + 1) % int(y.max() + 1)  # a mislabelled short micro-batch: its loss stands apart
    micro = n_full + 1
    accum = next(a for a in (3, 4, 5) if micro % a >= 2)
    return model, DataLoader(TensorDataset(x, y), batch_size=8), lr, accum


def windows(loader: DataLoader, accum: int) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    micro = list(loader)
    return [micro[i:i + accum] for i in range(0, len(micro), accum)]


def collect_run(fns: dict, seed: int) -> dict:
    model, loader, lr, accum = accumulation_case(seed)
    log, opt, loss_fn = setup(model, lr)
    out = fns["train_epoch_accumulated"](model, loader, loss_fn, opt, accum)
    return {"returned": describe(out), "events": log.events, "losses": log.losses, "sizes": log.sizes,
            "step_grads": log.step_grads, "step_params": log.step_params,
            "empty_at_backward": log.empty_at_backward, "end": params(model.named_parameters())}


def combine(gs: list[dict], weights: list[float]) -> dict:
    return {n: sum(w * g[n] for w, g in zip(weights, gs)) for n in gs[0]}


def judge_large_batch_gradient(rec: dict, seed: int) -> None:
    model, loader, lr, accum = accumulation_case(seed)
    previous = None
    ends = rec["step_params"][1:] + [rec["end"]]
    for j, (window, got, state, end) in enumerate(zip(windows(loader, accum), rec["step_grads"], rec["step_params"],
                                                      ends), 1):
        gs = [loss_and_grads(model, state, xb, yb)[1] for xb, yb in window]
        sizes = [len(yb) for _, yb in window]
        right = combine(gs, [s / sum(sizes) for s in sizes])
        if close(got, right, rtol=1e-5):
            require_stepped(state, end, got, lr, f"the {ordinal(j)} optimizer.step()")
            previous = got
            continue
        m = len(window)
        where = (f"At the {ordinal(j)} optimizer.step() (a window of {m} micro-batch{'es' if m > 1 else ''}"
                 f" of sizes {sizes})")
        if empty(got):
            raise AuditFailure(f"{where} the gradients were empty: clear them at the start of a window, "
                               f"before its backward passes, never between backward() and step().")
        if close(got, combine(gs, [1.0] * m), rtol=1e-5):
            raise AuditFailure(f"{where} the gradient was the sum of the micro-batch gradients, {m} times "
                               f"too large (R1.6): scale each micro-batch loss before backward() (by its "
                               f"share of the window's samples).")
        if close(got, combine(gs, [0.0] * (m - 1) + [sizes[-1] / sum(sizes)]), rtol=1e-5):
            raise AuditFailure(f"{where} only the last micro-batch's gradient was left (R1.5): the gradients "
                               f"were cleared inside the micro-batch loop, erasing the others. Clear them "
                               f"once, at the start of the window.")
        if previous is not None and close(got, {n: previous[n] + right[n] for n in right}, rtol=1e-5):
            raise AuditFailure(f"{where} the gradient still held the previous window's gradient (R1.4): "
                               f"clear the gradients at the start of every window.")
        if close(got, combine(gs, [1.0 / accum] * m), rtol=1e-5):
            raise AuditFailure(f"{where} each micro-batch loss was divided by accum_steps={accum} (R1.7). "
                               f"That is the big batch only when every window has accum_steps micro-batches "
                               f"of equal size; weight each by its share of the window's samples instead.")
        if close(got, combine(gs, [1.0 / m] * m), rtol=1e-5):
            raise AuditFailure(f"{where} every micro-batch got the same weight 1/{m}, but their sizes "
                               f"differ (R1.7): weight each micro-batch loss by its share of the window's samples.")
        raise AuditFailure(f"{where} the gradient was not the gradient of the mean loss over the "
                           f"window's samples (relative tolerance 1e-5).")


def judge_steps_per_window(rec: dict, seed: int) -> None:
    _, loader, _, accum = accumulation_case(seed)
    n_micro, steps = len(loader), rec["events"].count("step")
    expected = math.ceil(n_micro / accum)
    if steps == expected:
        return
    if steps == n_micro // accum:
        raise AuditFailure(f"{n_micro} micro-batches with accum_steps={accum} make {expected} windows, the "
                           f"last one of {n_micro % accum}, but optimizer.step() ran {steps} times: the "
                           f"leftover window was dropped (R1.3). Step once more for it.")
    if steps == n_micro:
        raise AuditFailure(f"optimizer.step() ran after every micro-batch ({steps} times); it must run once "
                           f"per window of accum_steps={accum} micro-batches ({expected} times here, R1.2).")
    raise AuditFailure(f"optimizer.step() ran {steps} times for {n_micro} micro-batches with "
                       f"accum_steps={accum}; ceil({n_micro} / {accum}) = {expected} windows need {expected} steps.")


def judge_zero_grad_at_window_start(rec: dict, seed: int) -> None:
    _, loader, _, accum = accumulation_case(seed)
    empty_at = rec["empty_at_backward"]
    if not rec["losses"]:
        raise AuditFailure(_NEVER_CALLED)
    if len(empty_at) != len(loader):
        raise AuditFailure(f"backward() reached the loss {len(empty_at)} times for {len(loader)} micro-batches: "
                           f"call backward once per micro-batch, on the loss from loss_fn (scaled).")
    for i, was_empty in enumerate(empty_at):
        window, position = i // accum + 1, i % accum
        if position == 0 and not was_empty:
            raise AuditFailure(f"When the first backward of window {window} began, .grad still held an "
                               f"earlier gradient (R1.4): clear the gradients at the start of every window.")
        if position > 0 and was_empty:
            raise AuditFailure(f"When the backward of micro-batch {position + 1} of window {window} began, the "
                               f"gradients had been cleared (R1.5): zero_grad() sits inside the micro-batch "
                               f"loop. Clear the gradients once per window, before its first backward.")


_NEVER_CALLED = ("loss_fn was never called: compute each micro-batch's loss with the loss_fn passed in (R1.1), "
                 "not with a loss function of your own; the audits pass an instrumented one.")


def judge_epoch_loss(rec: dict, seed: int) -> None:
    _, loader, _, _ = accumulation_case(seed)
    value = require_float(rec["returned"], "train_epoch_accumulated")
    losses, sizes = rec["losses"], rec["sizes"]
    if not losses:
        raise AuditFailure(_NEVER_CALLED)
    if len(losses) != len(loader):
        raise AuditFailure(f"loss_fn was called {len(losses)} times for {len(loader)} micro-batches: "
                           f"compute the loss of every micro-batch once, with loss_fn (R1.1).")
    expected, plain = epoch_means(losses, sizes)
    if close(value, expected, rtol=1e-5):
        return
    if value < expected / 1.5:
        raise AuditFailure(f"train_epoch_accumulated returned {value:.6g}, but the micro-batch losses average "
                           f"{expected:.6g} per sample: report the losses before scaling them for backward() (R1.9).")
    if close(value, plain, rtol=1e-5):
        raise AuditFailure(f"train_epoch_accumulated returned {value:.6g}, the plain mean of the micro-batch "
                           f"losses, but the last micro-batch is shorter: the mean per sample is {expected:.6g} "
                           f"(weight each micro-batch's loss by its size, R1.10).")
    raise AuditFailure(f"train_epoch_accumulated returned {value:.6g}; the per-sample mean of the "
                       f"micro-batch losses is {expected:.6g} (weight each loss by len(yb)).")


NEEDS = ("train_epoch_accumulated",)
CHECKS = [
    Check("ps02.large_batch_gradient", NEEDS, collect_run, judge_large_batch_gradient, seed=4201),
    Check("ps02.steps_per_window", NEEDS, collect_run, judge_steps_per_window, seed=4202),
    Check("ps02.zero_grad_at_window_start", NEEDS, collect_run, judge_zero_grad_at_window_start, seed=4203),
    Check("ps02.accumulated_epoch_loss", NEEDS, collect_run, judge_epoch_loss, seed=4204),
]
