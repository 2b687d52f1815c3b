"""Hidden audit checks for ps03_lr_schedules.

The schedule functions are compared with LRs that torch's own schedulers set (StepLR,
CosineAnnealingLR), so the truth here is torch's, never a copy of the reference solution. The
training loop runs with an optimizer that records the LR it actually used at every step.
"""
import copy
import math
import random

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, StepLR
from torch.utils.data import DataLoader, TensorDataset

from autograder.audit import AuditFailure, Check
from autograder.instrument import describe, params
from autograder.judging import loaded, ordinal, require_float
from autograder.problems import blobs, problem, setup


# -----------------------------------------------------------------------------
# the truth, from torch's schedulers

def torch_lrs(make, base_lrs: list[float], steps: int) -> list[list[float]]:
    """The LR of every group after 0, 1, ..., steps-1 calls of step() of the scheduler `make(optimizer)`."""
    opt = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": b} for b in base_lrs])
    scheduler, lrs = make(opt), []
    for _ in range(steps):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        scheduler.step()
    return lrs


def step_truth(base_lr: float, steps: int, step_size: int, gamma: float) -> list[float]:
    return [lr for lr, in torch_lrs(lambda opt: StepLR(opt, step_size, gamma), [base_lr], steps)]


def warmup_cosine_truth(base_lr: float, steps: int, warmup_steps: int, total_steps: int, min_lr: float) -> list[float]:
    """A linear warmup from 0, then torch's CosineAnnealingLR over the rest, then min_lr."""
    span = total_steps - warmup_steps
    cosine = [lr for lr, in torch_lrs(lambda opt: CosineAnnealingLR(opt, span, min_lr), [base_lr], span + 1)]
    lrs = [base_lr * s / warmup_steps for s in range(warmup_steps)] + cosine
    return (lrs + [min_lr] * steps)[:steps]


FIX = "Use math.cos and math.pi (or .item()) so that the schedule is a plain number."


def called(fn, *args, **kwargs) -> dict:
    """describe() of what fn returned, or {"type": "raised", "raised": "Error: message"} if it raised."""
    try:
        return describe(fn(*args, **kwargs))
    except NotImplementedError:
        raise
    except Exception as e:  # the student's bug, told apart from a wrong value by the judge
        return {"type": "raised", "raised": f"{type(e).__name__}: {e}"}


def number(d: dict, call: str, hint: str = "") -> float:
    """The float a schedule call returned; an AuditFailure if it raised or returned another type."""
    if d["type"] == "raised":
        raise AuditFailure(f"{call} raised {d['raised']}{hint}")
    return require_float(d, call, FIX)


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


# -----------------------------------------------------------------------------
# step_decay and warmup_cosine at hidden parameters

def step_params(seed: int) -> dict:
    rng = random.Random(seed)
    return dict(base_lr=rng.choice([0.3, 0.1, 0.05, 1.0]) * (1 + rng.random()), step_size=rng.randint(2, 7),
                gamma=rng.choice([0.1, 0.25, 0.5, 0.8]))


def collect_step_decay(fns: dict, seed: int) -> dict:
    p = step_params(seed)
    steps = range(4 * p["step_size"] + 2)
    return {"values": [describe(fns["step_decay"](s, **p)) for s in steps]}


def judge_step_decay(rec: dict, seed: int) -> None:
    p = step_params(seed)
    truth = step_truth(p["base_lr"], len(rec["values"]), p["step_size"], p["gamma"])
    call = "step_decay(step={}, base_lr={base_lr:.4g}, step_size={step_size}, gamma={gamma})"
    for s, (d, want) in enumerate(zip(rec["values"], truth, strict=True)):
        got = require_float(d, call.format(s, **p), FIX)
        if same(got, want):
            continue
        where = f"{call.format(s, **p)} returned {got:.6g}; torch's StepLR gives {want:.6g} after {s} steps"
        if same(got, p["base_lr"] * p["gamma"] ** (s / p["step_size"])):
            raise AuditFailure(f"{where}. Your LR shrinks a little at every step; step decay keeps it constant "
                               f"for step_size steps: the exponent is step // step_size (integer division).")
        if same(got, p["base_lr"] * p["gamma"] ** (s // p["step_size"] + 1)) or same(
                got, p["base_lr"] * p["gamma"] ** ((s + 1) // p["step_size"])) or (
                s < p["step_size"] and got < p["base_lr"]):
            raise AuditFailure(f"{where}. The decay comes early: the LR is base_lr for steps 0 to "
                               f"step_size - 1, and gamma * base_lr from step step_size on.")
        raise AuditFailure(f"{where} (base_lr * gamma ** (step // step_size)).")


def warmup_params(seed: int, warmup: bool = True) -> dict:
    rng = random.Random(seed)
    base = rng.choice([0.3, 0.1, 0.05, 1.0]) * (1 + rng.random())
    w = rng.randint(2, 6) if warmup else 0
    return dict(base_lr=base, warmup_steps=w, total_steps=w + rng.randint(8, 20),
                min_lr=base * rng.choice([0.01, 0.05, 0.1]))


def edge_steps(p: dict) -> list[int]:
    w, t = p["warmup_steps"], p["total_steps"]
    return sorted({0, 1, w - 1, w, w + 1, (w + t) // 2, t - 1, t, t + 1, t + 5, 2 * t} - {-1})


def default_steps(p: dict) -> list[int]:
    """Steps at which warmup_cosine is called with min_lr left out."""
    w, t = p["warmup_steps"], p["total_steps"]
    return [w, (w + t) // 2, t, t + 3]


def collect_warmup_cosine_edges(fns: dict, seed: int) -> dict:
    p = warmup_params(seed)
    fn = fns["warmup_cosine"]
    no_min = {k: v for k, v in p.items() if k != "min_lr"}
    return {"values": {str(s): called(fn, s, **p) for s in edge_steps(p)},
            "default": {str(s): called(fn, s, **no_min) for s in default_steps(p)}}


def warmup_call(s: int, p: dict) -> str:
    return (f"warmup_cosine(step={s}, base_lr={p['base_lr']:.4g}, warmup_steps={p['warmup_steps']}, "
            f"total_steps={p['total_steps']}, min_lr={p['min_lr']:.4g})")


def judge_warmup_cosine_edges(rec: dict, seed: int) -> None:
    p = warmup_params(seed)
    w, t = p["warmup_steps"], p["total_steps"]
    steps = edge_steps(p)
    truth = warmup_cosine_truth(p["base_lr"], max(steps) + 1, w, t, p["min_lr"])
    got = {s: number(rec["values"][str(s)], warmup_call(s, p)) for s in steps}
    for s in steps:
        if same(got[s], truth[s]):
            continue
        where = f"{warmup_call(s, p)} returned {got[s]:.6g}, expected {truth[s]:.6g}"
        if s < w:
            if same(got[s], p["base_lr"] * (s + 1) / w):
                raise AuditFailure(f"{where}: the warmup is one step ahead. It starts from 0 at step 0 "
                                   f"(base_lr * step / warmup_steps) and reaches base_lr at step warmup_steps.")
            raise AuditFailure(f"{where}: during the warmup the LR is base_lr * step / warmup_steps, "
                               f"from 0 at step 0 up to base_lr at step warmup_steps.")
        if s == w:
            raise AuditFailure(f"{where}: at the end of the warmup (step == warmup_steps) the LR is base_lr "
                               f"exactly; the cosine phase starts there.")
        if s <= t:
            raise AuditFailure(f"{where}: the cosine phase goes from base_lr at warmup_steps to min_lr at "
                               f"total_steps: min_lr + (base_lr - min_lr) * (1 + cos(pi * (step - warmup_steps) "
                               f"/ (total_steps - warmup_steps))) / 2.")
        rose = f" (the cosine climbs back up past total_steps: at step {2 * t} you gave {got[2 * t]:.4g})" \
            if got[2 * t] > p["min_lr"] * (1 + 1e-6) else ""
        raise AuditFailure(f"{where}: past total_steps the LR stays at min_lr{rose}. Clamp it: return min_lr "
                           f"when step >= total_steps.")
    no_min = {**p, "min_lr": 0.0}
    truth = warmup_cosine_truth(p["base_lr"], t + 4, w, t, 0.0)
    for s in default_steps(p):
        call = warmup_call(s, no_min).replace(", min_lr=0)", ")")
        got = number(rec["default"][str(s)], call, ": min_lr is optional; leave its default in the signature "
                                                   "(min_lr=0.0).")
        if not same(got, truth[s]):
            raise AuditFailure(f"{call}, with min_lr left out, returned {got:.6g}, expected {truth[s]:.6g}: "
                               f"min_lr defaults to 0.0 (keep min_lr=0.0 in the signature).")


def collect_cosine_matches_torch(fns: dict, seed: int) -> dict:
    cases = [warmup_params(seed, warmup=False), {**warmup_params(seed + 1, warmup=False), "min_lr": 0.0}]
    return {"values": [[called(fns["warmup_cosine"], s, **p) for s in range(p["total_steps"] + 1)] for p in cases]}


def judge_cosine_matches_torch(rec: dict, seed: int) -> None:
    cases = [warmup_params(seed, warmup=False), {**warmup_params(seed + 1, warmup=False), "min_lr": 0.0}]
    for p, values in zip(cases, rec["values"], strict=True):
        t = p["total_steps"]
        truth = [lr for lr, in torch_lrs(lambda opt: CosineAnnealingLR(opt, t, p["min_lr"]), [p["base_lr"]], t + 1)]
        for s, (d, want) in enumerate(zip(values, truth, strict=True)):
            got = number(d, warmup_call(s, p), ": with warmup_steps=0 there is no warmup step to divide by; the "
                                               "cosine starts at step 0.")
            if not same(got, want):
                raise AuditFailure(f"{warmup_call(s, p)} returned {got:.6g}, but torch's CosineAnnealingLR("
                                   f"T_max={t}, eta_min={p['min_lr']:.4g}) from LR {p['base_lr']:.4g} gives "
                                   f"{want:.6g} after {s} steps. With no warmup, the cosine runs from base_lr at "
                                   f"step 0 to min_lr at total_steps.")


# -----------------------------------------------------------------------------
# make_scheduler on two parameter groups

def scheduler_cases(seed: int) -> list[tuple[str, dict, int]]:
    """(kind, kwargs, steps) for each kind, at parameters of the seed."""
    step = step_params(seed)
    warm = warmup_params(seed + 7)
    bare = warmup_params(seed + 11)  # min_lr left out: it defaults to 0.0
    return [("step", dict(step_size=step["step_size"], gamma=step["gamma"]), 3 * step["step_size"] + 2),
            ("warmup_cosine", dict(warmup_steps=warm["warmup_steps"], total_steps=warm["total_steps"],
                                   min_lr=warm["min_lr"]), warm["total_steps"] + 1),
            ("warmup_cosine", dict(warmup_steps=bare["warmup_steps"], total_steps=bare["total_steps"]),
             bare["total_steps"] + 1)]


FUNCTION = {"step": "step_decay", "warmup_cosine": "warmup_cosine"}  # the schedule function of each kind


def base_lrs(seed: int) -> list[float]:
    rng = random.Random(seed)
    first = rng.choice([0.2, 0.5, 0.8])
    return [first, first / rng.choice([3, 4, 10])]


def collect_scheduler_lrs(fns: dict, seed: int) -> dict:
    runs = []
    for kind, kwargs, steps in scheduler_cases(seed):
        opt = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(2))], "lr": b} for b in base_lrs(seed)])
        try:
            scheduler = fns["make_scheduler"](opt, kind, **kwargs)
        except NotImplementedError:
            raise
        except Exception as e:
            runs.append({"raised": f"{type(e).__name__}: {e}"})
            continue
        run = {"type": describe(scheduler)["type"], "is_scheduler": isinstance(scheduler, LRScheduler), "lrs": []}
        if run["is_scheduler"]:
            for _ in range(steps):
                run["lrs"].append([float(g["lr"]) for g in opt.param_groups])
                opt.step()
                scheduler.step()
        runs.append(run)
    return {"runs": runs}


def judge_scheduler_lrs(rec: dict, seed: int) -> None:
    bases = base_lrs(seed)
    for (kind, kwargs, steps), run in zip(scheduler_cases(seed), rec["runs"], strict=True):
        call = f"make_scheduler(optimizer, {kind!r}, {', '.join(f'{k}={v:.4g}' for k, v in kwargs.items())})"
        if "raised" in run:
            omitted = " min_lr is optional (0.0 by default), so it may be left out." if "min_lr" not in kwargs \
                and kind == "warmup_cosine" else ""
            raise AuditFailure(f"{call} raised {run['raised']}.{omitted}")
        if not run["is_scheduler"]:
            raise AuditFailure(f"{call} returned a {run['type']}, not a torch scheduler (a subclass of "
                               f"torch.optim.lr_scheduler.LRScheduler).")
        if kind == "step":
            truth = [step_truth(b, steps, kwargs["step_size"], kwargs["gamma"]) for b in bases]
        else:
            truth = [warmup_cosine_truth(b, steps, kwargs["warmup_steps"], kwargs["total_steps"],
                                         kwargs.get("min_lr", 0.0)) for b in bases]
        lrs = run["lrs"]
        if len(lrs) != steps or any(len(row) != len(bases) for row in lrs):
            raise AuditFailure(f"{call} changed the optimizer's parameter groups; it should only set their LRs.")
        for s in range(steps):
            for g, base in enumerate(bases):
                got, want = lrs[s][g], truth[g][s]
                if same(got, want):
                    continue
                where = (f"With {call} on an optimizer whose two parameter groups start at LRs {bases[0]:.4g} "
                         f"and {bases[1]:.4g}, group {g} had LR {got:.6g} after {s} calls of scheduler.step(); "
                         f"its schedule gives {want:.6g}")
                if s == 0 and same(got, base):
                    raise AuditFailure(f"{where}: the LR was still the optimizer's own. A torch scheduler "
                                       f"writes the LR of step 0 when it is created (LRScheduler.__init__ does).")
                if all(same(lrs[s][h], truth[0][s]) for h in range(len(bases))):
                    raise AuditFailure(f"{where}: every group followed the first group's base LR. Each group "
                                       f"follows the schedule from its own base LR: loop over self.base_lrs.")
                if kind == "warmup_cosine" and "min_lr" not in kwargs and s >= kwargs["total_steps"] - 1:
                    where += ": with min_lr left out, the schedule ends at its default, 0.0"
                elif s + 1 < steps and same(got, truth[g][s + 1]):
                    where += (", its value one step later: after n calls of step() the LR is the schedule at "
                              "step n (self.last_epoch)")
                raise AuditFailure(f"{where}. If the audit of {FUNCTION[kind]} fails too, fix that first: "
                                   f"a scheduler built on it follows its values.")


UNKNOWN = ["cosine", "exponential", "linear", "constant", "onecycle", "plateau", "polynomial"]


def unknown_kinds(seed: int) -> list[str]:
    return random.Random(seed).sample(UNKNOWN, 2)


def collect_unknown_kind(fns: dict, seed: int) -> dict:
    runs = []
    for kind in unknown_kinds(seed):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)
        try:
            out = fns["make_scheduler"](opt, kind, step_size=3, gamma=0.5)
        except NotImplementedError:
            raise
        except Exception as e:
            runs.append({"raised": type(e).__name__, "value_error": isinstance(e, ValueError), "message": str(e)[:2000]})
        else:
            runs.append({"returned": describe(out)["type"]})
    return {"runs": runs}


def judge_unknown_kind(rec: dict, seed: int) -> None:
    for kind, run in zip(unknown_kinds(seed), rec["runs"], strict=True):
        call = f"make_scheduler(optimizer, {kind!r}, step_size=3, gamma=0.5)"
        if "returned" in run:
            raise AuditFailure(f"{call} returned a {run['returned']} instead of raising: a kind other than 'step' "
                               f"and 'warmup_cosine' must raise a ValueError.")
        if not run["value_error"]:
            raise AuditFailure(f"{call} raised {run['raised']}, not a ValueError: check the kind yourself and "
                               f"raise ValueError for any other.")
        missing = [k for k in ("'step'", "'warmup_cosine'") if k.strip("'") not in run["message"]]
        if missing:
            raise AuditFailure(f"{call} raised ValueError({run['message']!r}), which does not name the kinds "
                               f"make_scheduler accepts ({' and '.join(missing)} missing): say which kinds exist.")


# -----------------------------------------------------------------------------
# train_with_scheduler: the LR each step used, and what the function reports

def loop_case(seed: int) -> tuple[nn.Sequential, DataLoader, float, int]:
    """A model, a loader of batches of 8 (the last one short), its LR and the number of epochs."""
    model, x, y, lr = problem(seed, 8 * (4 + seed % 4) + 3 + seed % 4)
    return model, DataLoader(TensorDataset(x, y), batch_size=8), lr, 3 + seed % 2


def loop_schedule(lr: float, steps: int) -> list[float]:
    """The schedule the audit hands to train_with_scheduler: a cosine, different at every step."""
    return [lr for lr, in torch_lrs(lambda opt: CosineAnnealingLR(opt, steps, lr / 10), [lr], steps + 1)]


def collect_loop(fns: dict, seed: int) -> dict:
    model, loader, lr, epochs = loop_case(seed)
    log, opt, loss_fn = setup(model, lr)
    scheduler = CosineAnnealingLR(opt, epochs * len(loader), lr / 10)
    out = fns["train_with_scheduler"](model, loader, loss_fn, opt, scheduler, epochs)
    return {"returned": describe(out), "step_lrs": log.step_lrs, "losses": log.losses}


def judge_lr_used_per_step(rec: dict, seed: int) -> None:
    _, loader, lr, epochs = loop_case(seed)
    per_epoch, n = len(loader), epochs * len(loader)
    schedule, used = loop_schedule(lr, n), rec["step_lrs"]
    if len(used) != n:
        raise AuditFailure(f"optimizer.step() ran {len(used)} times for {epochs} epochs of {per_epoch} batches; "
                           f"train_with_scheduler takes one optimizer step per batch ({n} here).")

    def matches(expected):
        return all(same(a, b) for a, b in zip(used, expected))

    if matches(schedule[:n]):
        return
    audit = (f"The audit ran train_with_scheduler for {epochs} epochs of {per_epoch} batches with a "
             f"CosineAnnealingLR built for {n} optimizer steps, and recorded the LR inside every optimizer.step().")
    if all(same(u, used[0]) for u in used):
        raise AuditFailure(f"{audit} The learning rate stayed at {used[0]:.4g} for all {n} steps: the scheduler "
                           f"never reached the optimizer. Call scheduler.step() after every optimizer.step().")
    if matches(schedule[1:n + 1]):
        raise AuditFailure(f"{audit} The 1st optimizer.step() already used the schedule's LR for step 1 "
                           f"({used[0]:.4g} instead of {schedule[0]:.4g}), and every step after it was one "
                           f"ahead: scheduler.step() ran before optimizer.step(). Call it right after.")
    if matches([schedule[i // per_epoch] for i in range(n)]) or matches([schedule[i // per_epoch + 1] for i in range(n)]):
        raise AuditFailure(f"{audit} The LR changed only once every {per_epoch} steps, once per epoch, so the "
                           f"schedule had advanced {epochs} of its {n} steps when training ended. Step the "
                           f"scheduler after every optimizer.step(), inside the batch loop.")
    i = next(i for i in range(n) if not same(used[i], schedule[i]))
    raise AuditFailure(f"{audit} The {ordinal(i + 1)} optimizer.step() used LR {used[i]:.6g}; after {i} calls of "
                       f"scheduler.step() the schedule gives {schedule[i]:.6g}. Step the scheduler exactly once "
                       f"after every optimizer.step().")


def float_list(returned: dict, key: str, n: int) -> list[float]:
    """history[key] from the student's returned dict, checked to be n Python floats."""
    if returned["type"] != "dict" or key not in returned.get("items", {}):
        raise AuditFailure(f"train_with_scheduler returned a {returned['type']}"
                           f"{' without the key ' + repr(key) if returned['type'] == 'dict' else ''}; "
                           f"return {{'loss': [...], 'lr': [...]}}.")
    d = returned["items"][key]
    if d["type"] not in ("list", "tuple"):
        raise AuditFailure(f"history[{key!r}] is a {d['type']}; it should be a list with one number per optimizer step.")
    items = d["items"]
    if len(items) != n:
        per = " (one per epoch?)" if key == "loss" and len(items) < n else ""
        raise AuditFailure(f"history[{key!r}] has {len(items)} entries{per} for {n} optimizer steps: record "
                           f"one per optimizer step.")
    for i, item in enumerate(items):
        if item["type"] not in ("float", "int"):
            raise AuditFailure(f"history[{key!r}][{i}] is a {item['type']}; record Python floats"
                               f"{' (loss.item())' if key == 'loss' else ''}.")
    return [item["value"] for item in items]


def judge_lr_history(rec: dict, seed: int) -> None:
    _, loader, _, epochs = loop_case(seed)
    n = epochs * len(loader)
    used = rec["step_lrs"]
    if len(used) != n:
        raise AuditFailure(f"optimizer.step() ran {len(used)} times for {n} batches; history can only be "
                           f"right with one step per batch.")
    lrs = float_list(rec["returned"], "lr", n)
    if not all(same(a, b) for a, b in zip(lrs, used)):
        i = next(i for i in range(n) if not same(lrs[i], used[i]))
        where = f"history['lr'][{i}] is {lrs[i]:.6g}, but the {ordinal(i + 1)} optimizer.step() used {used[i]:.6g}"
        if all(same(a, b) for a, b in zip(lrs, used[1:])):
            raise AuditFailure(f"{where}: your list is one step ahead, the LR read after scheduler.step() "
                               f"moved it on. Read optimizer.param_groups[0]['lr'] before scheduler.step().")
        if all(same(a, b) for a, b in zip(lrs[1:], used)):
            raise AuditFailure(f"{where}: your list is one step behind the LR the optimizer used. Read the LR "
                               f"when the optimizer uses it, and step the scheduler after optimizer.step().")
        raise AuditFailure(f"{where}: record, for every step, the LR in optimizer.param_groups[0]['lr'] "
                           f"when optimizer.step() runs.")
    losses = float_list(rec["returned"], "loss", n)
    if len(rec["losses"]) == 2 * n and all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
                                           for a, b in zip(losses, rec["losses"][1::2])):
        raise AuditFailure("history['loss'] holds a second loss, computed again after optimizer.step(): record "
                           "the loss of the step itself, the one backward() ran on (loss.item()), computed "
                           "before the step.")
    if len(rec["losses"]) != n:
        raise AuditFailure(f"loss_fn was called {len(rec['losses'])} times for {n} batches: compute each "
                           f"batch's loss once.")
    for i, (got, want) in enumerate(zip(losses, rec["losses"])):
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            raise AuditFailure(f"history['loss'][{i}] is {got:.6g}, but loss_fn returned {want:.6g} for the "
                               f"{ordinal(i + 1)} batch: record each batch's loss (loss.item()), in order.")


# -----------------------------------------------------------------------------
# a decaying schedule against the constant LR on a noisy convex problem

def noisy_case(seed: int) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """Logistic regression on overlapping classes with a fifth of the labels flipped: a problem
    where a large constant LR keeps bouncing around the minimum."""
    n_features, n_classes = 2 + seed % 3, 2 + seed % 2
    x, y = blobs(seed + 7, 96 + 16 * (seed % 3), n_features, n_classes, scale=0.7)
    flipped = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[: len(y) // 5]
    y[flipped] = (y[flipped] + 1) % n_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(n_features, n_classes), x, y


NOISY_LR, NOISY_EPOCHS, NOISY_BATCH = 1.0, 6, 4


def collect_decay_beats_constant(fns: dict, seed: int) -> dict:
    model, x, y = noisy_case(seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=NOISY_BATCH)
    total = NOISY_EPOCHS * len(loader)
    final = {}
    for label, make in [("constant", lambda opt: LambdaLR(opt, lambda step: 1.0)),
                        ("decaying", lambda opt: CosineAnnealingLR(opt, total))]:
        run = copy.deepcopy(model)
        opt = torch.optim.SGD(run.parameters(), lr=NOISY_LR)
        fns["train_with_scheduler"](run, loader, nn.CrossEntropyLoss(), opt, make(opt), NOISY_EPOCHS)
        final[label] = params(run.named_parameters())
    return final


def full_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return nn.functional.cross_entropy(model(x), y).item()


def best_loss(model: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    """The minimum of the (convex) full-data loss, by L-BFGS."""
    model = copy.deepcopy(model)
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=500, tolerance_grad=1e-10,
                            tolerance_change=1e-12, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    return full_loss(model, x, y)


def judge_decay_beats_constant(rec: dict, seed: int) -> None:
    model, x, y = noisy_case(seed)
    best = best_loss(model, x, y)
    constant = full_loss(loaded(copy.deepcopy(model), rec["constant"]), x, y)
    decaying = full_loss(loaded(copy.deepcopy(model), rec["decaying"]), x, y)
    if math.isfinite(decaying) and decaying - best <= 0.5 * (constant - best):
        return
    raise AuditFailure(
        f"On a hidden noisy problem (logistic regression, a fifth of the labels flipped, batches of "
        f"{NOISY_BATCH}, LR {NOISY_LR}, {NOISY_EPOCHS} epochs), train_with_scheduler with a cosine decay to 0 "
        f"ended at loss {decaying:.4f}, and with the constant LR at {constant:.4f}; the best reachable is "
        f"{best:.4f}. A decay that takes effect ends at least halfway from the constant LR's loss down to the "
        f"best. The schedule did not reach the training: step the scheduler "
        f"after every optimizer.step(), inside the batch loop.")


CHECKS = [
    Check("ps03.step_decay", ("step_decay",), collect_step_decay, judge_step_decay, seed=4301),
    Check("ps03.warmup_cosine_edges", ("warmup_cosine",), collect_warmup_cosine_edges, judge_warmup_cosine_edges,
          seed=4302),
    Check("ps03.cosine_matches_torch", ("warmup_cosine",), collect_cosine_matches_torch, judge_cosine_matches_torch,
          seed=4303),
    Check("ps03.scheduler_lrs", ("make_scheduler",), collect_scheduler_lrs, judge_scheduler_lrs, seed=4304),
    Check("ps03.unknown_kind", ("make_scheduler",), collect_unknown_kind, judge_unknown_kind, seed=4308),
    Check("ps03.lr_used_per_step", ("train_with_scheduler",), collect_loop, judge_lr_used_per_step, seed=4305),
    Check("ps03.lr_history", ("train_with_scheduler",), collect_loop, judge_lr_history, seed=4306),
    Check("ps03.decay_beats_constant", ("train_with_scheduler",), collect_decay_beats_constant,
          judge_decay_beats_constant, seed=4307),
]
