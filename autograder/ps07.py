"""Hidden audit checks for ps07_capstone_trainer.

The Trainer is built in four classes, one per task: StepTrainer (the configuration and
`train_epoch`), EvalTrainer (`evaluate`), CheckpointTrainer (`save`, `load`) and Trainer (`fit`).
Each check runs the class of its task, so a bug costs the audits of the task it is in.
Where an earlier assignment audited the same property, the check runs the Trainer on that
assignment's hidden problem and reuses its judge: zero_grad and accumulation (ps02), eval mode and
the history (ps05). What only a Trainer combines is judged here: the schedule stepped once per
accumulation window, clipping of the accumulated gradient, and bit-exact resume.
"""
import math
import random
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR
from torch.utils.data import DataLoader, TensorDataset

from autograder.ps01 import CONVERGENCE_FRACTION, convergence_case, loss_change
from autograder.ps02 import (collect_run, judge_large_batch_gradient, judge_steps_per_window,
                             judge_zero_grad_at_window_start)
from autograder.ps03 import same, torch_lrs
from autograder.ps04 import EXPLODING_LR, clipped, exploding, exploding_setup, global_l2, own_gradient, step_max_norm
from autograder.ps05 import (WatchingLoss, fit_case, history_list, judge_batchnorm_untouched, judge_eval_deterministic,
                             judge_mode_restored, judge_no_graph, lists, result, truth)
from autograder.ps05 import collect_evaluate as collect_ps05_evaluate, judge_evaluate_values as judge_ps05_evaluate_values
from autograder.ps06 import Drawing, disk_full_at, plant
from autograder.audit import AuditFailure, Check
from autograder.instrument import describe, grads, params
from autograder.judging import close, empty, epoch_means, exact, loaded, ordinal, require_float, require_stepped
from autograder.problems import blobs, mlp, problem, setup


# ---------------------------------------------------------------- train_epoch: zero_grad and accumulation

def collect_accumulation(fns: dict, seed: int) -> dict:
    """ps02's hidden problem (a short last micro-batch, a leftover window), one epoch of StepTrainer
    on a model handed over in eval mode (as evaluate leaves a model it was given in eval mode)."""
    modes = []

    def train_epoch_accumulated(model, loader, loss_fn, optimizer, accum_steps):
        model.eval()
        model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
        return fns["StepTrainer"](model, optimizer, loss_fn, accum_steps=accum_steps).train_epoch(loader)
    rec = collect_run({"train_epoch_accumulated": train_epoch_accumulated}, seed)
    rec["modes"] = modes
    return rec


def judge_zero_grad(rec: dict, seed: int) -> None:
    judge_zero_grad_at_window_start(rec, seed)
    for j, got in enumerate(rec["step_grads"], 1):
        if empty(got):
            raise AuditFailure(f"At the {ordinal(j)} optimizer.step() every gradient was empty: zero_grad() ran "
                               f"between the window's last backward() and step(). Clear the gradients at the start "
                               f"of each window, before its first backward().")


def judge_accumulation(rec: dict, seed: int) -> None:
    if not all(rec["modes"]):
        raise AuditFailure(f"train_epoch was given a model in eval mode and ran {rec['modes'].count(False)} of its "
                           f"{len(rec['modes'])} forward passes in eval mode (Dropout off, BatchNorm frozen): put the "
                           f"model in train mode at the start of train_epoch.")
    judge_steps_per_window(rec, seed)
    judge_large_batch_gradient(rec, seed)
    value = require_float(rec["returned"], "train_epoch")
    expected, _ = epoch_means(rec["losses"], rec["sizes"])
    if not close(value, expected, rtol=1e-5):
        scaled = " Report the losses before scaling them for backward()." if value < expected / 1.5 else ""
        raise AuditFailure(f"train_epoch returned {value:.6g}; the micro-batch losses average {expected:.6g} per "
                           f"sample (each weighted by len(yb)).{scaled}")


# ---------------------------------------------------------------- train_epoch: the schedule, once per window

SCHEDULE_ACCUM = 2


def schedule_case(seed: int) -> tuple[nn.Sequential, DataLoader, float, int]:
    """A model, a loader of 6, 8 or 10 full micro-batches (whole windows: the accumulation audit owns
    leftovers), its LR and the number of epochs."""
    model, x, y, lr = problem(seed, 16 * (3 + seed % 3))
    return model, DataLoader(TensorDataset(x, y), batch_size=8), lr, 3


def collect_schedule(fns: dict, seed: int) -> dict:
    model, loader, lr, epochs = schedule_case(seed)
    log, opt, loss_fn = setup(model, lr)
    steps = epochs * len(loader) // SCHEDULE_ACCUM
    trainer = fns["StepTrainer"](model, opt, loss_fn, scheduler=CosineAnnealingLR(opt, steps, lr / 10),
                                 accum_steps=SCHEDULE_ACCUM)
    for _ in range(epochs):
        trainer.train_epoch(loader)
    return {"step_lrs": log.step_lrs}


def judge_schedule(rec: dict, seed: int) -> None:
    _, loader, lr, epochs = schedule_case(seed)
    micro, per_epoch = len(loader), len(loader) // SCHEDULE_ACCUM
    n, used = epochs * per_epoch, rec["step_lrs"]
    audit = (f"The audit ran train_epoch {epochs} times on {micro} micro-batches with accum_steps={SCHEDULE_ACCUM} "
             f"({per_epoch} optimizer steps an epoch) and a CosineAnnealingLR built for {n} steps, and recorded "
             f"the LR inside every optimizer.step().")
    if len(used) != n:
        raise AuditFailure(f"{audit} optimizer.step() ran {len(used)} times instead of {n}: step once per window "
                           f"(the accumulation audit says more).")
    truth = [value for value, in torch_lrs(lambda opt: CosineAnnealingLR(opt, n, lr / 10), [lr], epochs * micro + 1)]

    def matches(indices):
        return all(same(u, truth[i]) for u, i in zip(used, indices, strict=True))

    if matches(range(n)):
        return
    if all(same(u, used[0]) for u in used):
        raise AuditFailure(f"{audit} The LR stayed at {used[0]:.4g} for all {n} steps: the scheduler never reached "
                           f"the optimizer. Call self.scheduler.step() after every optimizer.step().")
    if matches(range(1, n + 1)):
        raise AuditFailure(f"{audit} Every step used the LR of the step after it: scheduler.step() ran before "
                           f"optimizer.step(). Call it right after.")
    ends = [(j + 1) * SCHEDULE_ACCUM for j in range(n)]
    if matches(ends) or matches([end - 1 for end in ends]):
        raise AuditFailure(f"{audit} The schedule advanced once per micro-batch, {SCHEDULE_ACCUM} times too fast: "
                           f"it counts optimizer steps. Call scheduler.step() once per window, after optimizer.step().")
    if matches([j // per_epoch for j in range(n)]) or matches([j // per_epoch + 1 for j in range(n)]):
        raise AuditFailure(f"{audit} The LR changed once per epoch: the schedule counts optimizer steps. Call "
                           f"scheduler.step() after every optimizer.step(), inside the loop over windows.")
    j = next(j for j in range(n) if not same(used[j], truth[j]))
    raise AuditFailure(f"{audit} The {ordinal(j + 1)} optimizer.step() used LR {used[j]:.6g}; after {j} steps the "
                       f"schedule gives {truth[j]:.6g}. Step the scheduler once after every optimizer.step().")


# ---------------------------------------------------------------- train_epoch: clipping the window's gradient

CLIP_ACCUM, CLIP_MICRO = 2, 16


def clip_windows(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """ps04's exploding regression in windows of CLIP_ACCUM micro-batches of CLIP_MICRO samples."""
    _, x, y = exploding(seed)
    size = CLIP_ACCUM * CLIP_MICRO
    return list(zip(x.split(size), y.split(size)))


def collect_clipping(fns: dict, seed: int) -> dict:
    """One window per call, each from the fresh model: every call meets an exploding gradient."""
    calls = []
    for x, y in clip_windows(seed):
        model = exploding(seed)[0]
        log, opt, loss_fn = exploding_setup(model)
        trainer = fns["StepTrainer"](model, opt, loss_fn, accum_steps=CLIP_ACCUM, max_grad_norm=step_max_norm(seed))
        trainer.train_epoch(DataLoader(TensorDataset(x, y), batch_size=CLIP_MICRO))
        calls.append({"step_grads": log.step_grads, "step_params": log.step_params,
                      "after": grads(model.named_parameters()), "end": params(model.named_parameters())})
    return {"calls": calls}


def judge_clipping(rec: dict, seed: int) -> None:
    max_norm = step_max_norm(seed)
    for i, (call, (x, y)) in enumerate(zip(rec["calls"], clip_windows(seed), strict=True), 1):
        where = (f"On a regression whose gradient explodes, train_epoch with accum_steps={CLIP_ACCUM} and "
                 f"max_grad_norm={max_norm} on one window of {CLIP_ACCUM} micro-batches (case {i})")
        if len(call["step_grads"]) != 1:
            raise AuditFailure(f"{where} called optimizer.step() {len(call['step_grads'])} times; one window is one step.")
        got, state = call["step_grads"][0], call["step_params"][0]
        parts = [{n: g * len(yb) / len(y) for n, g in own_gradient(seed, state, xb, yb)[1].items()}
                 for xb, yb in zip(x.split(CLIP_MICRO), y.split(CLIP_MICRO))]
        own = {n: sum(part[n] for part in parts) for n in parts[0]}
        right = clipped(own, max_norm)
        if close(got, right, rtol=1e-4):
            require_stepped(state, call["end"], got, EXPLODING_LR, f"the optimizer.step() of case {i}")
            continue
        total = global_l2(own)
        if empty(got):
            raise AuditFailure(f"{where}: the gradients were empty at optimizer.step(); nothing may clear them "
                               f"between backward() and step().")
        if close(got, own, rtol=1e-4):
            if close(call["after"], right, rtol=1e-4):
                raise AuditFailure(f"{where}: optimizer.step() applied the unclipped gradient (norm {total:.4g}); "
                                   f"it was clipped only after the step, too late to matter. Clip between the "
                                   f"window's last backward() and optimizer.step().")
            raise AuditFailure(f"{where}: optimizer.step() applied the unclipped gradient (norm {total:.4g}). When "
                               f"max_grad_norm is set, the window's gradient must be clipped to that global norm "
                               f"before optimizer.step(): look at what runs between the last backward() and the step.")
        running = None
        for part in parts:
            running = part if running is None else {n: running[n] + part[n] for n in part}
            running = clipped(running, max_norm)
        if close(got, running, rtol=1e-4):
            raise AuditFailure(f"{where}: the gradient was clipped after every micro-batch's backward(), inside "
                               f"the window, so each micro-batch was cut on its own. Clip once per window, "
                               f"after its last backward(), just before optimizer.step().")
        per = {n: g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for n, g in own.items()}
        if close(got, per, rtol=1e-4):
            raise AuditFailure(f"{where}: each parameter's gradient was clipped by its own norm. Clip by the global "
                               f"norm, that of all the gradients together, with one factor for all parameters (ps04).")
        if close(got, {n: g.clamp(-max_norm, max_norm) for n, g in own.items()}, rtol=1e-4):
            raise AuditFailure(f"{where}: every gradient element was clamped to [-{max_norm}, {max_norm}]: that is "
                               f"clipping by value. Clip by the global norm, that of all the gradients together (ps04).")
        raise AuditFailure(f"{where}: the gradient at optimizer.step() was not the window's gradient (norm "
                           f"{total:.4g}) scaled down to norm {max_norm}. If the zero_grad or accumulation audit "
                           f"fails too, fix that first: the window's gradient must be right before it is clipped.")


# ---------------------------------------------------------------- train_epoch: each step's LR and gradient norm

def collect_step_log(fns: dict, seed: int) -> dict:
    """`scheduled`: the schedule audit's run, several epochs of one Trainer, no clipping; `clipped`: one
    step per call from the fresh model on a batch of ps04's exploding regression, clipped to a norm
    below the batch's."""
    model, loader, lr, epochs = schedule_case(seed)
    log, opt, loss_fn = setup(model, lr)
    trainer = fns["StepTrainer"](model, opt, loss_fn, accum_steps=SCHEDULE_ACCUM,
                                 scheduler=CosineAnnealingLR(opt, epochs * len(loader) // SCHEDULE_ACCUM, lr / 10))
    for _ in range(epochs):
        trainer.train_epoch(loader)
    rec = {"scheduled": {"history": describe(trainer.history), "lrs": log.step_lrs, "applied": log.step_grads},
           "clipped": []}
    _, x, y = exploding(seed)
    for xb, yb in zip(x.split(CLIP_MICRO), y.split(CLIP_MICRO)):
        model = exploding(seed)[0]
        log, opt, loss_fn = exploding_setup(model)
        trainer = fns["StepTrainer"](model, opt, loss_fn, max_grad_norm=step_max_norm(seed))
        trainer.train_epoch(DataLoader(TensorDataset(xb, yb), batch_size=CLIP_MICRO))
        rec["clipped"].append({"history": describe(trainer.history), "applied": log.step_grads,
                               "start": log.step_params[:1]})
    return rec


def step_list(history: dict, key: str, where: str) -> list[float]:
    """history[key] as floats, or an AuditFailure naming what it holds instead."""
    if history["type"] != "dict" or key not in history.get("items", {}):
        raise AuditFailure(f"{where}, the Trainer's history had no {key!r} list: keep the history the constructor "
                           f"makes, and append to history[{key!r}] at every optimizer step.")
    return history_list(history, key, "optimizer step", f"{where}, ")


def judge_step_log(rec: dict, seed: int) -> None:
    """Each list against the steps the Trainer took. A Trainer that steps too often, or schedules before
    it steps, loses the audits of those requirements; here its record only has to follow its steps."""
    _, loader, lr, epochs = schedule_case(seed)
    run, windows = rec["scheduled"], epochs * len(loader) // SCHEDULE_ACCUM
    used, n = run["lrs"], len(run["lrs"])
    where = (f"After {epochs} epochs of train_epoch on {len(loader)} micro-batches with accum_steps={SCHEDULE_ACCUM} "
             f"and a CosineAnnealingLR, without clipping")
    lists = {key: step_list(run["history"], key, where) for key in ("lr", "grad_norm")}
    for key, got in lists.items():
        if len(got) == n or len(got) == windows:
            continue
        if len(got) == n // epochs:
            raise AuditFailure(f"{where} ({n} optimizer steps), history[{key!r}] held {len(got)} entries, the last "
                               f"epoch's: each epoch appends to the lists, never starts them over.")
        if len(got) == epochs * len(loader):
            raise AuditFailure(f"{where}, history[{key!r}] held one entry per micro-batch ({len(got)}) for {n} "
                               f"optimizer steps: record once per window, at its optimizer step.")
        raise AuditFailure(f"{where}, history[{key!r}] held {len(got)} entries for {n} optimizer steps: append one "
                           f"per optimizer step.")
    if n != windows:
        return
    lrs, norms = lists["lr"], lists["grad_norm"]
    if not all(map(same, lrs, used)) and not all(map(same, lrs, [lr] + used[:-1])):
        if all(map(same, lrs[:-1], used[1:])):
            raise AuditFailure(f"{where}, every entry of history['lr'] was the LR of the step after it: read "
                               f"optimizer.param_groups[0]['lr'] before scheduler.step() changes it.")
        k = next(k for k, (a, b) in enumerate(zip(lrs, used)) if not same(a, b))
        raise AuditFailure(f"{where}, the {ordinal(k + 1)} optimizer step used LR {used[k]:.6g}, but "
                           f"history['lr'][{k}] is {lrs[k]:.6g}.")
    for k, (got, applied) in enumerate(zip(norms, run["applied"])):
        if not close(got, global_l2(applied), rtol=1e-4):
            raise AuditFailure(f"{where}, history['grad_norm'][{k}] is {got:.6g}, but the gradient of the "
                               f"{ordinal(k + 1)} optimizer step had a global L2 norm of {global_l2(applied):.6g} "
                               f"(all parameters together).")
    _, x, y = exploding(seed)
    max_norm = step_max_norm(seed)
    for i, (call, xb, yb) in enumerate(zip(rec["clipped"], x.split(CLIP_MICRO), y.split(CLIP_MICRO)), 1):
        where = (f"On a regression whose gradient explodes, one step of train_epoch with max_grad_norm={max_norm} "
                 f"(case {i})")
        got = step_list(call["history"], "grad_norm", where)
        if len(got) != len(call["applied"]) or not got:
            raise AuditFailure(f"{where}: history['grad_norm'] held {len(got)} entries for {len(call['applied'])} "
                               f"optimizer steps: append one per optimizer step.")
        right = global_l2(own_gradient(seed, call["start"][0], xb, yb)[1])
        if close(got[0], right, rtol=1e-4):
            continue
        if close(got[0], global_l2(call["applied"][0]), rtol=1e-4):
            raise AuditFailure(f"{where}: history['grad_norm'][0] is {got[0]:.6g}, the norm of the gradient after "
                               f"clipping; the batch's gradient had norm {right:.6g}. Record the norm before "
                               f"clipping (what clip_grad_norm_ returns).")
        raise AuditFailure(f"{where}: history['grad_norm'][0] is {got[0]:.6g}, but the batch's gradient had a global "
                           f"L2 norm of {right:.6g} before clipping (all parameters together).")


# ---------------------------------------------------------------- evaluate

class TokenScorer(nn.Module):
    """A fixed model for a sequence task: token ids (batch, length) -> logits (batch, vocab, length)."""

    def __init__(self, vocab: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, vocab)

    def forward(self, tokens):
        return self.embed(tokens).transpose(1, 2)


def sequence_case(seed: int) -> tuple[TokenScorer, DataLoader]:
    """Sequences whose targets the model gets about two thirds right, batches of 8 and a short last one."""
    vocab, length, n = 5 + seed % 4, 4 + seed % 3, 8 * (2 + seed % 2) + 3
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TokenScorer(vocab)
    x = torch.randint(0, vocab, (n, length), generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    wrong = torch.rand(n, length, generator=g) < 1 / 3
    y[wrong] = (y[wrong] + 1) % vocab
    return model, DataLoader(TensorDataset(x, y), batch_size=8)


def collect_evaluate(fns: dict, seed: int) -> dict:
    """ps05's evaluate audit run through EvalTrainer, plus a sequence task (a label per token)."""
    def evaluate(model, loader, loss_fn):
        return fns["EvalTrainer"](model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn).evaluate(loader)
    rec = collect_ps05_evaluate({"evaluate": evaluate}, seed)
    model, loader = sequence_case(seed)
    try:
        rec["sequence"] = describe(evaluate(model, loader, nn.CrossEntropyLoss()))
    except Exception as e:
        rec["sequence"] = {"raised": f"{type(e).__name__}: {e}"[:300]}
    return rec


def judge_eval_mode(rec: dict, seed: int) -> None:
    for judge in (judge_eval_deterministic, judge_batchnorm_untouched, judge_mode_restored,
                  judge_no_graph):
        judge(rec, seed)


def judge_evaluate_values(rec: dict, seed: int) -> None:
    judge_ps05_evaluate_values(rec, seed)
    model, loader = sequence_case(seed)
    x, y = loader.dataset.tensors
    if "raised" in rec["sequence"]:
        raise AuditFailure(f"On {len(y)} sequences of {y.shape[1]} tokens (outputs (batch, vocab, length), a label per "
                           f"token), evaluate raised {rec['sequence']['raised']}. The prediction of each token is the "
                           f"largest logit over dimension 1, the vocabulary.")
    loss, accuracy = result(rec["sequence"], "evaluate")
    with torch.no_grad():
        out = model(x)
    want_loss = nn.functional.cross_entropy(out, y).item()
    right = (out.argmax(1) == y).sum().item()
    call = f"On {len(y)} sequences of {y.shape[1]} tokens (outputs (batch, vocab, length), a label per token), evaluate"
    if not close(loss, want_loss, rtol=1e-5):
        raise AuditFailure(f"{call} returned loss {loss:.6g}; the mean loss per token is {want_loss:.6g}.")
    if close(accuracy, right / y.numel(), rtol=1e-6):
        return
    if out.shape[1] == out.shape[2] and close(accuracy, (out.argmax(-1) == y).sum().item() / y.numel(), rtol=1e-6):
        raise AuditFailure(f"{call} returned accuracy {accuracy:.6g}, the accuracy of the largest logit over the last "
                           f"dimension (the positions): the prediction of each token is the largest logit over "
                           f"dimension 1, the vocabulary, {right / y.numel():.6g} here.")
    per_sequence = (" You divided by the number of sequences (len(yb)); count every label: yb.numel()."
                    if close(accuracy, right / len(y), rtol=1e-6) else "")
    raise AuditFailure(f"{call} returned accuracy {accuracy:.6g}; {right} of the {y.numel()} tokens are predicted "
                       f"right, {right / y.numel():.6g}.{per_sequence}")


# ---------------------------------------------------------------- fit: history and callbacks

def collect_history(fns: dict, seed: int) -> dict:
    model, train, val, lr, epochs = fit_case(seed)
    loss_fn = WatchingLoss(model, snapshots=True)
    seen = []

    def watch(trainer):
        seen.append([trainer.epoch, len(trainer.history["val_loss"])])

    history = fns["Trainer"](model, torch.optim.SGD(model.parameters(), lr=lr), loss_fn, callbacks=[watch]).fit(
        train, val, epochs)
    rec = {"returned": describe(history), "calls": loss_fn.calls, "seen": seen}
    # Several callbacks: the first asks to stop after epoch STOP_AFTER, those after it only watch.
    model, train, val, lr, _ = fit_case(seed)
    after = []
    stopped = fns["Trainer"](model, torch.optim.SGD(model.parameters(), lr=lr), nn.CrossEntropyLoss(),
                             callbacks=[lambda trainer: trainer.epoch >= STOP_AFTER,
                                        lambda trainer: after.append(trainer.epoch)]).fit(train, val, epochs + 2)
    rec["stopped"], rec["after"] = describe(stopped), after
    return rec


STOP_AFTER = 2


def epochs_of(calls: list[dict], n_train: int, n_val: int, epochs: int) -> list[tuple[list[dict], list[dict]]]:
    """Split the loss calls into (training calls, validation calls) per epoch."""
    per = n_train + n_val
    if len(calls) != per * epochs:
        raise AuditFailure(f"loss_fn was called {len(calls)} times in {epochs} epochs; each epoch trains on "
                           f"{n_train} batches, then evaluates val_loader ({n_val} batches) once: "
                           f"{per * epochs} calls.")
    return [(calls[e * per:e * per + n_train], calls[e * per + n_train:(e + 1) * per]) for e in range(epochs)]


def judge_history(rec: dict, seed: int) -> None:
    model, train, val, _, epochs = fit_case(seed)
    history = lists(rec["returned"])
    if len(history["train_loss"]) != epochs:
        raise AuditFailure(f"fit(train_loader, val_loader, epochs={epochs}) on a fresh Trainer returned histories of "
                           f"{len(history['train_loss'])} entries: it trains epochs 1 to {epochs} and records each.")
    order = [call["grad"] for call in rec["calls"]]
    if order == ([False] * len(val) + [True] * len(train)) * epochs:
        raise AuditFailure("Every epoch evaluated val_loader before training, so each history entry describes the "
                           "weights of the epoch before: record self.evaluate(val_loader) after each epoch's training.")
    split = epochs_of(rec["calls"], len(train), len(val), epochs)
    figures = [truth(model, val_calls[0]["params"], val) for _, val_calls in split]
    for e, ((train_calls, _), want) in enumerate(zip(split, figures)):
        mean, _ = epoch_means([c["loss"] for c in train_calls], [c["size"] for c in train_calls])
        if not close(history["train_loss"][e], mean, rtol=1e-5):
            raise AuditFailure(f"history['train_loss'][{e}] is {history['train_loss'][e]:.6g}; the training batches of "
                               f"epoch {e + 1} average {mean:.6g} per sample: record what train_epoch returns.")
        for key, got, right in zip(("val_loss", "val_accuracy"), (history["val_loss"][e], history["val_accuracy"][e]), want):
            if not close(got, right, rtol=1e-5):
                raise AuditFailure(f"history[{key!r}][{e}] is {got:.6g}, but the weights at the end of epoch {e + 1} "
                                   f"give {right:.6g} on val_loader: record self.evaluate(val_loader) after each "
                                   f"epoch's training.")
    seen = rec["seen"]
    if len(seen) != epochs:
        raise AuditFailure(f"In {epochs} epochs the callbacks were called {len(seen)} times: call each callback once "
                           f"per epoch, callback(self), after the epoch is recorded.")
    for e, (epoch, recorded) in enumerate(seen, 1):
        if recorded != e or epoch != e:
            raise AuditFailure(f"When the callbacks ran after epoch {e}, trainer.epoch was {epoch} and the history held "
                               f"{recorded} epochs: count the epoch (self.epoch += 1) and record it in the history "
                               f"before calling the callbacks.")
    ran = len(lists(rec["stopped"])["val_loss"])
    if ran != STOP_AFTER:
        raise AuditFailure(f"With two callbacks, the first of which returned True after epoch {STOP_AFTER} of "
                           f"fit(..., epochs={epochs + 2}), fit ran {ran} epochs: stop after the epoch in which any "
                           f"callback returns True.")
    if rec["after"] != list(range(1, STOP_AFTER + 1)):
        raise AuditFailure(f"With two callbacks, the first of which returned True after epoch {STOP_AFTER}, the second "
                           f"was called after epochs {rec['after']} instead of {list(range(1, STOP_AFTER + 1))}: every "
                           f"callback runs after every epoch, even when an earlier one asked to stop (any() over a "
                           f"generator stops calling at the first True; call them all, then decide).")


# ---------------------------------------------------------------- resume: bit-exact, and from the latest checkpoint

class Probe(nn.Module):
    """Cross-entropy that records, at each training call (train mode, autograd on), what the coming
    optimizer step depends on: the parameters, the torch RNG state (after Dropout drew its mask),
    Adam's state and the LR."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        super().__init__()
        self.model, self.optimizer, self.calls = model, optimizer, []

    def forward(self, output, target):
        if self.model.training and torch.is_grad_enabled():
            named = list(self.model.named_parameters())
            self.calls.append({"params": params(named), "rng": torch.get_rng_state(),
                               "lr": float(self.optimizer.param_groups[0]["lr"]),
                               "adam": {n: {k: v.clone() for k, v in self.optimizer.state[p].items()}
                                        for n, p in named if p in self.optimizer.state}})
        return nn.functional.cross_entropy(output, target)


RESUME_N, RESUME_VAL, RESUME_BATCH = 40, 16, 8


def resume_case(seed: int) -> tuple[int, int]:
    """(epochs, k): train `epochs` straight, or k, save, load into fresh objects, and the rest."""
    return 4 + seed % 2, 2 + seed % 2


def session(fns: dict, seed: int, rng_seed: int, ckpt_dir: Path | None = None) -> dict:
    """Fresh objects for one training session of the resume problem, the global RNGs seeded with `rng_seed`."""
    d, c = 3 + seed % 4, 2 + seed % 3
    x, y = blobs(seed + 5, RESUME_N + RESUME_VAL, d, c)
    torch.manual_seed(rng_seed)
    np.random.seed(rng_seed)
    random.seed(rng_seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, c))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    epochs, _ = resume_case(seed)
    scheduler = CosineAnnealingLR(opt, epochs * math.ceil(RESUME_N / RESUME_BATCH), 0.001)
    data = Drawing(x[:RESUME_N], y[:RESUME_N])
    train = DataLoader(data, batch_size=RESUME_BATCH, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(x[RESUME_N:], y[RESUME_N:]), batch_size=RESUME_BATCH)
    probe = Probe(model, opt)
    trainer = fns["Trainer"](model, opt, probe, scheduler=scheduler, ckpt_dir=ckpt_dir)
    return {"trainer": trainer, "train": train, "val": val, "probe": probe, "data": data, "model": model}


def trace(s: dict, history) -> dict:
    return {"calls": s["probe"].calls, "draws": s["data"].draws, "final": params(s["model"].named_parameters()),
            "history": describe(history)}


def collect_resume(fns: dict, seed: int) -> dict:
    epochs, k = resume_case(seed)
    continuous = session(fns, seed, seed)
    history = continuous["trainer"].fit(continuous["train"], continuous["val"], epochs)
    rec = {"continuous": trace(continuous, history)}
    first = session(fns, seed, seed)
    first["trainer"].fit(first["train"], first["val"], k)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs" / "last.pt"
        first["trainer"].save(path)
        resumed = session(fns, seed, seed + 1000)  # a new process: other RNG states until load restores them
        resumed["trainer"].load(path)
        history = resumed["trainer"].fit(resumed["train"], resumed["val"], epochs)
    rec["resumed"] = trace(resumed, history)
    return rec


def judge_resume(rec: dict, seed: int) -> None:
    epochs, k = resume_case(seed)
    per = math.ceil(RESUME_N / RESUME_BATCH)
    setup_text = (f"The audit trained a model with Dropout, using Adam, a CosineAnnealingLR and a shuffling DataLoader "
                  f"(with its own generator) over a dataset that draws augmentation from numpy and Python's random, "
                  f"{epochs} epochs straight; and again {k} epochs, save(path), load(path) into fresh objects (other "
                  f"RNG states), fit(..., epochs={epochs}).")
    cont, res = rec["continuous"], rec["resumed"]
    if len(cont["calls"]) != epochs * per:
        raise AuditFailure(f"{setup_text} The straight run trained {len(cont['calls'])} batches instead of "
                           f"{epochs} epochs of {per}: fit trains until self.epoch reaches epochs.")
    tail, got = cont["calls"][k * per:], res["calls"]
    if len(got) != len(tail):
        more = (f"{epochs} more epochs instead of the {epochs - k} left: save the epoch counter, restore it in load, "
                f"and let fit train until self.epoch reaches epochs" if len(got) == epochs * per else
                f"{len(got)} batches instead of the {len(tail)} of the {epochs - k} epochs left")
        raise AuditFailure(f"{setup_text} After load, fit trained {more}.")
    if not exact(got[0]["params"], tail[0]["params"]):
        raise AuditFailure(f"{setup_text} The resumed run started from other weights than the model had after epoch "
                           f"{k}: save self.model.state_dict() and load it back in load.")
    want, drawn = cont["draws"][k * RESUME_N:(k + 1) * RESUME_N], res["draws"][:RESUME_N]
    if [d[0] for d in drawn] != [d[0] for d in want]:
        raise AuditFailure(f"{setup_text} The resumed epoch {k + 1} visited the samples in another order than the "
                           f"straight run: the DataLoader's generator was not restored. Save "
                           f"self.train_loader.generator.get_state(), and set it back on the loader fit trains on.")
    for i, (name, fix) in [(1, ("numpy's global RNG", "np.random.get_state(), stored as plain lists and ints so that "
                                                     "torch.load(weights_only=True) accepts it")),
                           (2, ("Python's random", "random.getstate()"))]:
        if [d[i] for d in drawn] != [d[i] for d in want]:
            raise AuditFailure(f"{setup_text} The resumed epoch {k + 1} drew other augmentation from {name} than the "
                               f"straight run: save {fix}, and restore it in load.")
    if not torch.equal(got[0]["rng"], tail[0]["rng"]):
        raise AuditFailure(f"{setup_text} Dropout drew other masks in the resumed run: the torch RNG was not "
                           f"restored. Save torch.get_rng_state() and restore it with torch.set_rng_state in load.")
    if not exact(got[0]["adam"], tail[0]["adam"]):
        raise AuditFailure(f"{setup_text} At the first resumed step Adam's state (step count and moment estimates) "
                           f"differed from the straight run's: save self.optimizer.state_dict() and load it back.")
    for j, (a, b) in enumerate(zip(got, tail), 1):
        if a["lr"] != b["lr"]:
            raise AuditFailure(f"{setup_text} The {ordinal(j)} resumed step used LR {a['lr']:.6g}, the straight run "
                               f"{b['lr']:.6g}: the scheduler's state was not restored. Save "
                               f"self.scheduler.state_dict() and load it back.")
    if not exact(res["final"], cont["final"]):
        gap = max((res["final"][p] - cont["final"][p]).abs().max().item() for p in cont["final"])
        raise AuditFailure(f"{setup_text} The final weights differ from the straight run's by up to {gap:.3g}, "
                           f"although every state the audit watches was restored. If the zero_grad audit fails too, "
                           f"fix that first: gradients carried from one window into the next are in no checkpoint.")
    if lists(res["history"]) != lists(cont["history"]):
        raise AuditFailure(f"{setup_text} The resumed fit returned another history than the straight run "
                           f"({len(lists(res['history'])['val_loss'])} epochs instead of {epochs}): save "
                           f"self.history in the checkpoint and restore it.")


def restored(fns: dict, seed: int, path: Path) -> dict:
    """Everything a fresh Trainer (the global RNGs seeded alike every time) holds after load(path)."""
    s = session(fns, seed, seed + 2000)
    trainer = s["trainer"]
    trainer.load(path)
    kind, keys, *rest = np.random.get_state()
    return {"epoch": describe(trainer.epoch), "weights": params(s["model"].named_parameters()),
            "optimizer": trainer.optimizer.state_dict()["state"], "schedule": trainer.scheduler.state_dict()["last_epoch"],
            "history": describe(trainer.history), "torch RNG": torch.get_rng_state(),
            "numpy RNG": [kind, keys.tolist(), *rest], "Python RNG": list(random.getstate()[1]),
            "loader generator": trainer.loader_state if isinstance(trainer.loader_state, torch.Tensor) else None}


def collect_latest(fns: dict, seed: int) -> dict:
    epochs, k = resume_case(seed)
    with tempfile.TemporaryDirectory() as folder:
        ckpt_dir = Path(folder) / "checkpoints"
        first = session(fns, seed, seed, ckpt_dir)
        first["trainer"].fit(first["train"], first["val"], k)
        written = sorted(p.name for p in ckpt_dir.glob("*")) if ckpt_dir.is_dir() else []
        after_k = params(first["model"].named_parameters())
        rec = {"written": written, "after_k": after_k}
        if f"epoch_{k:04d}.pt" in written:
            # What fit wrote after epoch k, against save() once fit(..., epochs=k) has returned.
            first["trainer"].save(Path(folder) / "after_fit.pt")
            rec["states"] = [restored(fns, seed, Path(folder) / "after_fit.pt"),
                             restored(fns, seed, ckpt_dir / f"epoch_{k:04d}.pt")]
        resumed = session(fns, seed, seed + 1000, ckpt_dir)
        rec["fresh"] = params(resumed["model"].named_parameters())
        resumed["trainer"].fit(resumed["train"], resumed["val"], epochs)
        rec["later"] = sorted(p.name for p in ckpt_dir.glob("*")) if ckpt_dir.is_dir() else []
    calls = resumed["probe"].calls
    rec.update(start=calls[0]["params"] if calls else None, trained=len(calls))
    return rec


def judge_latest(rec: dict, seed: int) -> None:
    epochs, k = resume_case(seed)
    per = math.ceil(RESUME_N / RESUME_BATCH)
    name = f"epoch_{k:04d}.pt"
    where = (f"A Trainer with ckpt_dir ran fit(..., epochs={k}); then a fresh Trainer (new model, optimizer, "
             f"scheduler, loaders) with the same ckpt_dir ran fit(..., epochs={epochs})")
    missing = [f"epoch_{e:04d}.pt" for e in range(1, k + 1) if f"epoch_{e:04d}.pt" not in rec["written"]]
    if missing:
        raise AuditFailure(f"{where}. After the first fit, ckpt_dir held {rec['written'] or 'nothing'}, without "
                           f"{', '.join(missing)}: after every epoch, save to checkpoint_path(self.ckpt_dir, self.epoch).")
    saved, written = rec["states"]
    for what in saved:
        if not exact(saved[what], written[what]):
            raise AuditFailure(f"{where}. {name}, which fit wrote after epoch {k}, holds another {what} than save() "
                               f"called once fit had returned: fit saved before the epoch was complete. Save at the "
                               f"very end of the epoch: after evaluate, the history and self.epoch += 1.")
    trained, start = rec["trained"], rec["start"]
    if start is not None and trained == epochs * per and exact(start, rec["fresh"]):
        raise AuditFailure(f"{where}, and the second trained all {epochs} epochs from its fresh weights: it did not "
                           f"resume. At the start of fit, load latest_checkpoint(self.ckpt_dir) when there is one.")
    if start is None or not exact(start, rec["after_k"]):
        raise AuditFailure(f"{where}. The second started training from other weights than those of the latest "
                           f"checkpoint ({name}): load it at the start of fit, before the first epoch.")
    if trained != (epochs - k) * per:
        raise AuditFailure(f"{where}. It resumed from epoch {k}, then trained {trained // per} epochs instead of the "
                           f"{epochs - k} left: epochs is the total, so fit trains while self.epoch < epochs.")
    last = f"epoch_{epochs:04d}.pt"
    if last not in rec["later"]:
        raise AuditFailure(f"{where}. Afterwards ckpt_dir held {rec['later']}, without {last}: the resumed fit must "
                           f"keep saving a checkpoint after every epoch.")


# ---------------------------------------------------------------- save and load: safely

def _gpu_tag(storage):
    return "cuda:0"


def _no_restore(storage, location):
    return None


@contextmanager
def written_on_gpu():
    """Every tensor torch.save writes meanwhile is marked as living on cuda:0, as on a GPU machine:
    torch.load on this machine, which has no GPU, then needs a map_location to the CPU. Registered for
    the block alone: each copy of this check (its job, unpickled) registers its own, never two at once."""
    entry = (0, _gpu_tag, _no_restore)
    torch.serialization.register_package(*entry)
    try:
        yield
    finally:
        torch.serialization._package_registry.remove(entry)


def safety_step(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, seed: int) -> None:
    x, y = blobs(seed + 11, 16, 8, 4)
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    scheduler.step()


def safety_trainer(fns: dict, seed: int, trained: bool):
    """A CheckpointTrainer over a small MLP, Adam and a cosine schedule, with a shuffling loader (as
    fit would have set it); `trained`: one step taken, epoch 1 recorded."""
    model = mlp(seed, [8, 64, 64, 4])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = CosineAnnealingLR(optimizer, T_max=10)
    if trained:
        safety_step(model, optimizer, scheduler, seed)
    trainer = fns["CheckpointTrainer"](model, optimizer, nn.CrossEntropyLoss(), scheduler=scheduler)
    x, y = blobs(seed + 11, 32, 8, 4)
    trainer.train_loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True,
                                      generator=torch.Generator().manual_seed(seed))
    if trained:
        trainer.epoch = 1
        trainer.history = {"train_loss": [1.5], "val_loss": [1.25], "val_accuracy": [0.5]}
    return trainer


def reopened(fns: dict, seed: int, path: Path) -> dict:
    """What a fresh CheckpointTrainer holds after load(path): its epoch and weights, or the error."""
    trainer = safety_trainer(fns, seed + 1, trained=False)
    try:
        trainer.load(path)
    except NotImplementedError:
        raise
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    return {"epoch": describe(trainer.epoch), "weights": params(trainer.model.named_parameters())}


def collect_safety(fns: dict, seed: int) -> dict:
    trainer = safety_trainer(fns, seed, trained=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs" / f"run{seed}" / "last.pt"
        try:
            trainer.save(path)
        except NotImplementedError:
            raise
        except Exception as e:
            return {"created": False, "error_at_save": f"{type(e).__name__}: {e}"[:300]}
        rec = {"created": path.is_file(), "error_at_save": None}
        if not rec["created"]:
            return rec
        rec["saved"] = params(trainer.model.named_parameters())
        rec["first"] = reopened(fns, seed, path)
        # A second save into the same path, stopped halfway by a full disk.
        safety_step(trainer.model, trainer.optimizer, trainer.scheduler, seed)
        trainer.epoch = 2
        with disk_full_at(path.stat().st_size // 2):
            try:
                trainer.save(path)
                rec["raised"] = False
            except Exception:
                rec["raised"] = True
        rec["after"] = reopened(fns, seed, path)
        # A checkpoint with a pickled call inside, as a tampered download would be.
        tampered, marker = Path(folder) / "shared" / "ckpt.pt", Path(folder) / "payload-ran"
        trainer.save(tampered)
        plant(tampered, marker)
        victim = safety_trainer(fns, seed + 2, trained=False)
        try:
            victim.load(tampered)
            rec["tampered"] = "returned"
        except Exception as e:
            rec["tampered"] = f"{type(e).__name__}: {e}"[:200]
        rec["ran"] = marker.exists()
        # A checkpoint written on a GPU machine.
        from_gpu = Path(folder) / "gpu" / "epoch_0002.pt"
        with written_on_gpu():
            trainer.save(from_gpu)
        rec["gpu"] = reopened(fns, seed, from_gpu)
        rec["gpu_saved"] = params(trainer.model.named_parameters())
    return rec


def judge_safety(rec: dict, seed: int) -> None:
    if rec["error_at_save"] is not None or not rec["created"]:
        what = f"raised {rec['error_at_save']}" if rec["error_at_save"] else "did not create that file"
        raise AuditFailure(f"save(path), for a path whose folders did not exist yet, {what}: create the missing "
                           f"folders first (Path.mkdir makes the parents too, with parents=True).")
    first, after = rec["first"], rec["after"]
    if "error" in first:
        raise AuditFailure(f"load(path) could not read the checkpoint that save(path) had just written: "
                           f"{first['error']}. The file must open with torch.load(path, weights_only=True).")
    if "error" in after:
        raise AuditFailure(f"A save interrupted halfway (the disk filled up) destroyed the previous checkpoint: load "
                           f"then raised {after['error']}. torch.save(state, path) empties path before it writes; "
                           f"write to a temporary file in the same folder, then os.replace it onto path: the old "
                           f"checkpoint stays until the new one is complete.")
    if not (exact(after["epoch"], first["epoch"]) and exact(after["weights"], first["weights"])):
        raise AuditFailure("After a save interrupted halfway (the disk filled up), path no longer held the previous "
                           "checkpoint: os.replace the temporary file onto path only once it is completely written.")
    if not rec["raised"]:
        raise AuditFailure("The disk filled up halfway through save(path), and save returned as if it had saved: let "
                           "the error reach the caller, who must know that the checkpoint was not written.")
    if rec["ran"]:
        raise AuditFailure("Loading a checkpoint ran code hidden in it: the audit added to a checkpoint a pickled call "
                           "to os.mkdir, and load made that folder. torch.load(..., weights_only=False) runs any "
                           "function a file names, so a checkpoint from anyone else could do anything you can. Load "
                           "with weights_only=True.")
    if rec["tampered"] == "returned":
        raise AuditFailure("load returned normally for a checkpoint holding a pickled function call, which "
                           "torch.load(weights_only=True) refuses: let that error reach the caller (do not fall back "
                           "to weights_only=False, and do not ignore it).")
    gpu = rec["gpu"]
    if "error" in gpu:
        raise AuditFailure(f"A checkpoint written on a GPU machine (its tensors saved from cuda:0) would not load on "
                           f"this machine, which has none: load raised {gpu['error'][:200]}. Load with "
                           f"map_location=\"cpu\": every tensor, the RNG states included, then comes back on the CPU.")
    if not exact(gpu["weights"], rec["gpu_saved"]):
        raise AuditFailure("From a checkpoint written on a GPU machine, load restored other weights than those saved.")


# ---------------------------------------------------------------- fit: convergence and the milestone bar

CONVERGENCE_EPOCHS, CONVERGENCE_ACCUM = 12, 2


def collect_convergence(fns: dict, seed: int) -> dict:
    """ps01's hidden 4-class problem with every feature on: Adam, a schedule, accumulation, clipping."""
    model, x, y = convergence_case(seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    named, without = list(model.named_parameters()), []
    # Before every optimizer step (whoever calls it): which parameters have no gradient.
    opt.register_step_pre_hook(lambda *_: without.append([n for n, p in named if p.grad is None or not p.grad.any()]))
    windows = math.ceil(len(loader) / CONVERGENCE_ACCUM)
    start = params(named)
    fns["Trainer"](model, opt, nn.CrossEntropyLoss(), scheduler=CosineAnnealingLR(opt, CONVERGENCE_EPOCHS * windows),
                   accum_steps=CONVERGENCE_ACCUM, max_grad_norm=2.0).fit(
        loader, DataLoader(TensorDataset(x[:64], y[:64]), batch_size=64), CONVERGENCE_EPOCHS)
    return {"start": start, "final": params(named), "steps": len(without),
            "without_grad": sorted({n for names in without for n in names})}


def judge_convergence(rec: dict, seed: int) -> None:
    model, x, y = convergence_case(seed)
    windows = math.ceil(math.ceil(len(y) / 16) / CONVERGENCE_ACCUM)
    what = (f"On the audit's hidden 4-class problem, {CONVERGENCE_EPOCHS} epochs of fit (Adam, a cosine schedule, "
            f"accum_steps={CONVERGENCE_ACCUM}, max_grad_norm=2.0)")
    if rec["steps"] != CONVERGENCE_EPOCHS * windows:
        raise AuditFailure(f"{what} took {rec['steps']} optimizer steps instead of {CONVERGENCE_EPOCHS * windows}, "
                           f"one per window of accum_steps micro-batches.")
    if rec["without_grad"]:
        raise AuditFailure(f"{what}: at some optimizer.step() these parameters had no gradient: "
                           f"{', '.join(rec['without_grad'])}. Nothing may clear them between backward() and step().")
    still = [n for n in rec["start"] if torch.equal(rec["start"][n], rec["final"][n])]
    if still:
        raise AuditFailure(f"{what}: these parameters never moved: {', '.join(still)}.")
    with torch.no_grad():
        before = nn.functional.cross_entropy(model(x), y).item()
        after = nn.functional.cross_entropy(loaded(model, rec["final"])(x), y).item()
    if not math.isfinite(after) or (before - after) / before < CONVERGENCE_FRACTION:
        raise AuditFailure(f"{what} took the loss from {before:.4f} to {after:.4f}: "
                           f"{loss_change(before, after)}; correct training reaches at least "
                           f"{CONVERGENCE_FRACTION:.0%}. Check train_epoch: zero_grad at the start of each "
                           f"window, backward on every micro-batch, one step per window.")


class Sorter(nn.Module):
    """A small Transformer for sequence-to-sequence tasks, built otherwise than the notebook's: an
    embedding, learned positions, torch's TransformerEncoderLayer, a head; logits (batch, vocab, length)."""

    def __init__(self, vocab: int, length: int, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(0.1 * torch.randn(length, dim))
        self.block = nn.TransformerEncoderLayer(dim, 2, 2 * dim, dropout=0.0, batch_first=True)
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens):
        return self.head(self.block(self.embed(tokens) + self.position)).transpose(1, 2)


MILESTONE_BAR, MILESTONE_EPOCHS, MILESTONE_LR, MILESTONE_BATCH = 0.95, 6, 2e-2, 64
SORT_TRAIN, SORT_TEST, SORT_LENGTH, SORT_VOCAB = 2000, 500, 6, 10


def milestone_case(seed: int) -> tuple[Sorter, torch.Tensor, torch.Tensor]:
    """The Transformer milestone's task on hidden data: a model, and sequences with their sorted versions."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, SORT_VOCAB, (SORT_TRAIN + SORT_TEST, SORT_LENGTH), generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Sorter(SORT_VOCAB, SORT_LENGTH), x, x.sort(dim=1).values


def collect_milestone(fns: dict, seed: int) -> dict:
    model, x, y = milestone_case(seed)
    train = DataLoader(TensorDataset(x[:SORT_TRAIN], y[:SORT_TRAIN]), batch_size=MILESTONE_BATCH, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=MILESTONE_LR)
    steps = MILESTONE_EPOCHS * math.ceil(len(train) / 2)
    fns["Trainer"](model, opt, nn.CrossEntropyLoss(), scheduler=OneCycleLR(opt, MILESTONE_LR, total_steps=steps),
                   accum_steps=2).fit(
        train, DataLoader(TensorDataset(x[SORT_TRAIN:], y[SORT_TRAIN:]), batch_size=SORT_TEST), MILESTONE_EPOCHS)
    return {"final": params(model.named_parameters())}


def judge_milestone(rec: dict, seed: int) -> None:
    model, x, y = milestone_case(seed)
    with torch.no_grad():
        out = loaded(model, rec["final"]).eval()(x[SORT_TRAIN:])
    accuracy = (out.argmax(1) == y[SORT_TRAIN:]).float().mean().item()
    if accuracy < MILESTONE_BAR:
        raise AuditFailure(f"A hidden Transformer milestone: sorting sequences of {SORT_LENGTH} tokens, trained by your "
                           f"Trainer ({MILESTONE_EPOCHS} epochs, AdamW, OneCycleLR, accum_steps=2), "
                           f"reached {accuracy:.1%} token accuracy on new sequences; the bar is {MILESTONE_BAR:.0%}, "
                           f"which correct training clears on every hidden seed.")


STEP = ("StepTrainer",)
EVAL = ("EvalTrainer",)
CKPT = ("CheckpointTrainer",)
FIT = ("Trainer",)
CHECKS = [
    Check("ps07.zero_grad", STEP, collect_accumulation, judge_zero_grad, seed=4701),
    Check("ps07.accumulation", STEP, collect_accumulation, judge_accumulation, seed=4702),
    Check("ps07.lr_schedule", STEP, collect_schedule, judge_schedule, seed=4703),
    Check("ps07.clipping", STEP, collect_clipping, judge_clipping, seed=4704),
    Check("ps07.step_log", STEP, collect_step_log, judge_step_log, seed=4713),
    Check("ps07.eval_mode", EVAL, collect_evaluate, judge_eval_mode, seed=4705),
    Check("ps07.evaluate_values", EVAL, collect_evaluate, judge_evaluate_values, seed=4706),
    Check("ps07.checkpoint_safety", CKPT, collect_safety, judge_safety, seed=4712),
    Check("ps07.history", FIT, collect_history, judge_history, seed=4707),
    Check("ps07.resume_equality", FIT, collect_resume, judge_resume, seed=4708),
    Check("ps07.resume_latest", FIT, collect_latest, judge_latest, seed=4709),
    Check("ps07.convergence", FIT, collect_convergence, judge_convergence, seed=4710),
    Check("ps07.milestone", FIT, collect_milestone, judge_milestone, seed=4711),
]
