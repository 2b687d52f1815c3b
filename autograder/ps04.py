"""Hidden audit checks for ps04_gradient_clipping.

The norm and clipping functions run on hidden parameter sets (some parameters without .grad, a
generator instead of a list, norm types 1, 2, 3 and inf and left out, norms above and under the
bound, every gradient zero, no gradient at all); each judge rebuilds the same tensors and applies
torch's own `clip_grad_norm_` / `clip_grad_value_`. A generator case is run again with a list, so
that a generator used up by a second pass is told apart. `train_step_clipped` runs with an
instrumented optimizer on a problem whose unclipped training explodes, each call starting with an
earlier batch's gradient left in .grad: the gradient each `optimizer.step()` saw must be that batch's
own gradient, clipped.
"""
import math

import torch
from torch import nn

from autograder.audit import AuditFailure, Check
from autograder.instrument import Log, RecordingLoss, RecordingSGD, describe, grads, params
from autograder.judging import close, empty, loaded, ordinal, require_float, require_stepped
from autograder.problems import batches, mlp

INF = math.inf
EXPLODING_LR = 0.2
EXPLODING_MAX_NORM = 1.0
EXPLODING_EPOCHS = 10


# ---------------------------------------------------------------- hidden parameter sets

def parameter_set(seed: int) -> list[nn.Parameter]:
    """3 to 5 parameters of assorted shapes, gradients of assorted scales, the 2nd one without .grad."""
    g = torch.Generator().manual_seed(seed)
    ps = []
    for i in range(3 + seed % 3):
        shape = [int(s) for s in torch.randint(1, 6, (1 + i % 2,), generator=g)]
        p = nn.Parameter(torch.randn(shape, generator=g))
        scale = 0.5 + 6.0 * float(torch.rand(1, generator=g))
        if i != 1:
            p.grad = scale * (torch.randn(shape, generator=g) + 0.5)
            p.grad.view(-1)[0] = -p.grad.view(-1)[0].abs()  # every gradient has a negative element
        ps.append(p)
    return ps


def true_norm(ps: list[nn.Parameter], norm_type: float) -> float:
    """The global norm of the gradients, computed in float64 (0.0 when no parameter has one)."""
    gs = [p.grad.detach().double() for p in ps if p.grad is not None]
    if not gs:
        return 0.0
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, norm_type) for g in gs]), norm_type).item()


def effective(case: dict) -> float:
    """The norm type a case asks for: 2.0, the default, where it leaves norm_type out."""
    return 2.0 if case["norm_type"] is None else case["norm_type"]


def case_params(seed: int, case: dict) -> tuple[list[nn.Parameter], float]:
    """The parameters of a case, and its max_norm (`factor` times their norm, or a fixed `max_norm`).
    A case with zero="all" has every gradient zero; zero="none" has no parameter with a gradient."""
    ps = parameter_set(seed * 16 + case["k"])
    if case.get("zero") == "all":
        for p in ps:
            if p.grad is not None:
                p.grad = torch.zeros_like(p.grad)
    elif case.get("zero") == "none":
        for p in ps:
            p.grad = None
    if "max_norm" in case:
        return ps, case["max_norm"]
    return ps, case["factor"] * true_norm(ps, effective(case))


def passed(ps: list[nn.Parameter], as_generator: bool):
    return (p for p in ps) if as_generator else list(ps)


def how(case: dict) -> str:
    what = "a generator of parameters" if case.get("generator") else "a list of parameters"
    grads = {"all": "every gradient zero", "none": "no parameter with a gradient"}.get(
        case.get("zero"), "one parameter without .grad")
    if "norm_type" not in case:
        return f"{what}, {grads}"
    kind = "norm_type left out (the default)" if case["norm_type"] is None else f"norm_type={case['norm_type']}"
    return f"{kind}, {what}, {grads}"


NORM_CASES = [  # global_grad_norm
    {"k": 0, "norm_type": 2.0, "factor": 1.0, "generator": False},
    {"k": 1, "norm_type": 1.0, "factor": 1.0, "generator": True},
    {"k": 2, "norm_type": 3.0, "factor": 1.0, "generator": False},
    {"k": 3, "norm_type": INF, "factor": 1.0, "generator": False},
    {"k": 4, "norm_type": 2.0, "factor": 1.0, "generator": True},
    {"k": 5, "norm_type": None, "factor": 1.0, "generator": False},
    {"k": 6, "norm_type": 1.0, "factor": 1.0, "generator": False, "zero": "none"},
]
CLIP_CASES = [  # norm above the bound
    {"k": 5, "norm_type": 2.0, "factor": 0.3, "generator": False},
    {"k": 6, "norm_type": 1.0, "factor": 0.2, "generator": False},
    {"k": 7, "norm_type": 3.0, "factor": 0.5, "generator": False},
    {"k": 8, "norm_type": 2.0, "factor": 0.1, "generator": True},
    {"k": 15, "norm_type": None, "factor": 0.4, "generator": False},
]
UNDER_CASES = [  # norm already under the bound, or zero
    {"k": 9, "norm_type": 2.0, "factor": 1.5, "generator": False},
    {"k": 10, "norm_type": 1.0, "factor": 3.0, "generator": True},
    {"k": 11, "norm_type": 2.0, "factor": 1.01, "generator": False},
    {"k": 12, "norm_type": 2.0, "max_norm": 1.0, "generator": False, "zero": "all"},
    {"k": 13, "norm_type": None, "max_norm": 0.5, "generator": True, "zero": "none"},
]
INF_CASES = [
    {"k": 12, "norm_type": INF, "factor": 0.4, "generator": False},
    {"k": 13, "norm_type": INF, "factor": 0.25, "generator": True},
    {"k": 14, "norm_type": INF, "factor": 2.0, "generator": False},
]
VALUE_CASES = [{"k": 15, "clip": 0.5, "generator": False}, {"k": 16, "clip": 2.0, "generator": True},
               {"k": 17, "clip": 4.0, "generator": False}]


def grad_list(ps: list[nn.Parameter]) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in ps]


def same(a: list, b: list, exact: bool = False) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is None or y is None:
            if not (x is None and y is None):
                return False
        elif x.shape != y.shape or not (torch.equal(x, y) if exact else torch.allclose(x, y, rtol=1e-5, atol=1e-7)):
            return False
    return True


FIX = "Return total.item() (or float(total)), as the task asks."


def called(fn, what: str, args: tuple, case: dict):
    """fn(*args) (student code, in the runner); a crash becomes a failure that names the call and the case."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as e:
        if case.get("zero") == "none" and what.startswith("global_grad_norm"):
            hint = " When no parameter has a gradient, return 0.0."
        elif isinstance(e, ZeroDivisionError):
            hint = (" With a zero norm, max_norm / norm divides by zero: that is what the 1e-6 in "
                    "max_norm / (norm + 1e-6) is for.")
        elif isinstance(e, TypeError) and "norm_type" in str(e) and case.get("norm_type", 0) is None:
            hint = " Called without norm_type, it must use the default, 2.0."
        elif isinstance(e, AttributeError) and "NoneType" in str(e):
            hint = " A parameter without a gradient has .grad None: skip it."
        else:
            hint = ""
        raise AuditFailure(f"{what} ({how(case)}) raised {type(e).__name__}: {e}.{hint}") from None


# ---------------------------------------------------------------- global_grad_norm

def norm_args(ps: list[nn.Parameter], case: dict, as_generator: bool) -> tuple:
    args = (passed(ps, as_generator),)
    return args if case["norm_type"] is None else args + (case["norm_type"],)


def collect_norms(fns: dict, seed: int) -> dict:
    out = []
    for case in NORM_CASES:
        ps, _ = case_params(seed, case)
        got = {"returned": describe(called(fns["global_grad_norm"], "global_grad_norm", norm_args(ps, case, case["generator"]),
                                           case)), "grads": grad_list(ps)}
        if case["generator"]:  # the same parameters as a list, to tell a used-up generator apart
            ps, _ = case_params(seed, case)
            got["as_list"] = describe(called(fns["global_grad_norm"], "global_grad_norm", norm_args(ps, case, False), case))
        out.append(got)
    return {"cases": out}


def judge_norms(rec: dict, seed: int) -> None:
    for case, got in zip(NORM_CASES, rec["cases"], strict=True):
        ps, _ = case_params(seed, case)
        value = require_float(got["returned"], "global_grad_norm", FIX)
        p = effective(case)
        right = true_norm(ps, p)
        if not close(value, right, rtol=1e-5):
            diagnose_norm(case, got, ps, value, right)
        if not same(got["grads"], grad_list(ps), exact=True):
            raise AuditFailure(f"global_grad_norm({how(case)}) changed the gradients it measured: it must leave "
                               f"every .grad as it was. Use operations that make new tensors (g.abs(), g ** p), "
                               f"not in-place ones (g.abs_(), g.pow_()) on the gradients themselves.")


def diagnose_norm(case: dict, got: dict, ps: list[nn.Parameter], value: float, right: float) -> None:
    p = effective(case)
    where = f"global_grad_norm({how(case)}) returned {value:.6g}, but the norm of all gradients together is {right:.6g}"
    if case["generator"] and got["as_list"]["type"] == "float" and close(got["as_list"]["value"], right, rtol=1e-5):
        raise AuditFailure(f"{where}, though the same parameters as a list give the right norm: a generator (like "
                           f"model.parameters()) can be iterated only once, and your code went through it more "
                           f"than once. Go through it once (or materialise it with list(parameters) first).")
    if case.get("zero") == "none":
        raise AuditFailure(f"{where}: when no parameter has a gradient, return 0.0.")
    if case["norm_type"] is None:
        raise AuditFailure(f"{where}: called without norm_type, it must use the default norm_type=2.0.")
    gs = [q.grad.double() for q in ps if q.grad is not None]
    if p == INF:
        raise AuditFailure(f"{where}. The inf-norm is the largest |gradient element| of all parameters; "
                           f"sum(|g|**p)**(1/p) cannot compute it with p = inf (it gives 1.0 or nan): "
                           f"handle norm_type == float('inf') on its own, with g.abs().max().")
    if close(value, sum(torch.linalg.vector_norm(g, p).item() for g in gs), rtol=1e-5):
        raise AuditFailure(f"{where}: you added up the per-parameter norms. Combine them as a norm "
                           f"(sum of |g|**p over every element of every gradient, then **(1/p)).")
    if close(value, max(torch.linalg.vector_norm(g, p).item() for g in gs), rtol=1e-5):
        raise AuditFailure(f"{where}: that is the norm of one parameter's gradient only. Take every "
                           f"parameter with a gradient into the one norm.")
    if p != 2.0 and close(value, true_norm(ps, 2.0), rtol=1e-5):
        raise AuditFailure(f"{where}: that is the 2-norm. Use the norm_type you are given: the sum of "
                           f"|g|**norm_type, then **(1/norm_type).")
    signed = sum(g.pow(p).sum().item() for g in gs)
    if signed > 0 and close(value, signed ** (1.0 / p), rtol=1e-5):
        raise AuditFailure(f"{where}: you raised the signed elements to the power p. Take absolute values "
                           f"first: |g|**norm_type.")
    if case["generator"] and close(value, 0.0):
        raise AuditFailure(f"{where}: given a generator (like model.parameters()), it saw no gradient. A "
                           f"generator can be iterated only once: materialise it with list(parameters) first.")
    raise AuditFailure(f"{where}. Take every element of every gradient into one norm (parameters without .grad "
                       f"skipped): (sum of |g|**p)**(1/p), or the largest |g| for p = inf.")


# ---------------------------------------------------------------- clip_grad_norm

def clip_args(ps: list[nn.Parameter], max_norm: float, case: dict, as_generator: bool) -> tuple:
    args = (passed(ps, as_generator), max_norm)
    return args if case["norm_type"] is None else args + (case["norm_type"],)


def collect_clips(cases: list[dict]):
    def collect(fns: dict, seed: int) -> dict:
        out = []
        for case in cases:
            ps, max_norm = case_params(seed, case)
            what = f"clip_grad_norm(parameters, max_norm={max_norm:.4g})"
            returned = called(fns["clip_grad_norm"], what, clip_args(ps, max_norm, case, case["generator"]), case)
            got = {"returned": describe(returned), "grads": grad_list(ps)}
            if case["generator"]:  # the same parameters as a list, to tell a used-up generator apart
                ps, _ = case_params(seed, case)
                called(fns["clip_grad_norm"], what, clip_args(ps, max_norm, case, False), case)
                got["as_list"] = grad_list(ps)
            out.append(got)
        return {"cases": out}
    return collect


def torch_clipped(seed: int, case: dict) -> tuple[list, list, float, float]:
    """(gradients before, gradients after torch's clip_grad_norm_, max_norm, total norm)."""
    ps, max_norm = case_params(seed, case)
    before = grad_list(ps)
    total = true_norm(ps, effective(case))
    nn.utils.clip_grad_norm_([p for p in ps], max_norm, effective(case))
    return before, grad_list(ps), max_norm, total


def per_parameter(before: list, max_norm: float, norm_type: float) -> list:
    out = []
    for g in before:
        if g is None:
            out.append(None)
            continue
        n = torch.linalg.vector_norm(g, norm_type).item()
        out.append(g * min(1.0, max_norm / (n + 1e-6)))
    return out


def scaled(before: list, factor: float) -> list:
    return [None if b is None else b * factor for b in before]


def diagnose_clip(case: dict, got: dict, before: list, right: list, max_norm: float, total: float) -> None:
    p = effective(case)
    grads = got["grads"]
    where = (f"clip_grad_norm(parameters, max_norm={max_norm:.4g}) on gradients of total norm {total:.4g} "
             f"({how(case)})")
    if same(grads, right):
        return
    if any(b is None and g is not None for b, g in zip(before, grads)):
        raise AuditFailure(f"{where} gave a gradient to a parameter that had none: skip parameters whose "
                           f".grad is None.")
    if case["generator"] and same(got["as_list"], right):
        raise AuditFailure(f"{where} left gradients that differ from torch.nn.utils.clip_grad_norm_'s, though "
                           f"the same parameters as a list are clipped right: given a generator (like "
                           f"model.parameters()), the norm used it up and the loop that scales the gradients "
                           f"saw nothing. Start with parameters = list(parameters).")
    if same(grads, before, exact=True):
        raise AuditFailure(f"{where} left the gradients unchanged, though their norm is above max_norm: "
                           f"multiply every gradient by max_norm / (total_norm + 1e-6), in place "
                           f"(p.grad.mul_(factor)); p.grad * factor makes a new tensor and changes nothing.")
    if same(grads, per_parameter(before, max_norm, p)):
        raise AuditFailure(f"{where} clipped each parameter by its own norm. Clipping is global: compute one "
                           f"norm over all gradients together and scale every gradient by the same factor "
                           f"max_norm / (total_norm + 1e-6), which keeps the direction of the whole gradient.")
    ratios = [g.double().sum() / b.double().sum() for g, b in zip(grads, before) if b is not None and g is not None
              and b.double().sum().abs() > 1e-3]
    if p == INF and ratios and all(close(r.item(), ratios[0].item(), rtol=1e-4) for r in ratios):
        raise AuditFailure(f"{where} scaled every gradient by {ratios[0].item():.4g}, not by max_norm / "
                           f"(total_norm + 1e-6) = {max_norm / (total + 1e-6):.4g}: with norm_type=inf the "
                           f"total norm is the largest |gradient element|; handle norm_type == float('inf') "
                           f"on its own.")
    if case["norm_type"] is None:
        raise AuditFailure(f"{where} left gradients that differ from torch.nn.utils.clip_grad_norm_'s: called "
                           f"without norm_type, it must use the default norm_type=2.0.")
    if p != 2.0:
        two = before_norm(before, 2.0)
        if same(grads, scaled(before, min(1.0, max_norm / (two + 1e-6)))):
            raise AuditFailure(f"{where} scaled the gradients by max_norm over their 2-norm ({two:.4g}): measure "
                               f"the norm with the norm_type you are given (pass it on to global_grad_norm).")
    raise AuditFailure(f"{where} left gradients that differ from torch.nn.utils.clip_grad_norm_'s: every "
                       f"gradient must be multiplied by the same factor max_norm / (total_norm + 1e-6), where "
                       f"total_norm is the norm of all gradients taken together.")


def before_norm(before: list, norm_type: float) -> float:
    gs = [g.double() for g in before if g is not None]
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, norm_type) for g in gs]),
                                    norm_type).item() if gs else 0.0


def judge_clip(rec: dict, seed: int) -> None:
    for case, got in zip(CLIP_CASES, rec["cases"], strict=True):
        before, right, max_norm, total = torch_clipped(seed, case)
        diagnose_clip(case, got, before, right, max_norm, total)


def judge_under_bound(rec: dict, seed: int) -> None:
    for case, got in zip(UNDER_CASES, rec["cases"], strict=True):
        before, _, max_norm, total = torch_clipped(seed, case)
        if same(got["grads"], before, exact=True):
            continue
        if case.get("zero"):
            where = f"clip_grad_norm(parameters, max_norm={max_norm:.4g}) ({how(case)})"
            if any(b is None and g is not None for b, g in zip(before, got["grads"])):
                raise AuditFailure(f"{where} gave a gradient to a parameter that had none: skip parameters whose "
                                   f".grad is None.")
            raise AuditFailure(f"{where} changed the gradients. A zero norm must leave them as they are (the "
                               f"factor max_norm / (0 + 1e-6) is above 1).")
        where = (f"clip_grad_norm(parameters, max_norm={max_norm:.4g}, norm_type={case['norm_type']}) on gradients "
                 f"whose total norm {total:.4g} is already under max_norm")
        factor = max_norm / (total + 1e-6)
        if same(got["grads"], scaled(before, factor)):
            raise AuditFailure(f"{where} multiplied them by {factor:.4g}, scaling them up. Clipping only ever "
                               f"shrinks: scale by min(1, max_norm / (total_norm + 1e-6)), or only when that "
                               f"factor is below 1.")
        raise AuditFailure(f"{where} changed them. A norm under the bound must leave every gradient as it "
                           f"was, bit for bit.")


def judge_returns(rec: dict, seed: int) -> None:
    for case, got in zip(CLIP_CASES + UNDER_CASES, rec["cases"], strict=True):
        _, _, max_norm, total = torch_clipped(seed, case)
        value = require_float(got["returned"], "clip_grad_norm", FIX)
        if close(value, total, rtol=1e-5):
            continue
        where = (f"clip_grad_norm(parameters, max_norm={max_norm:.4g}) ({how(case)}) returned {value:.6g}, but the "
                 f"gradients' total norm before clipping was {total:.6g}")
        if total > max_norm and close(value, min(total, max_norm), rtol=1e-4):
            raise AuditFailure(f"{where}: it returned the norm after clipping. Return the norm measured "
                               f"before scaling (as torch.nn.utils.clip_grad_norm_ does): it is what you "
                               f"log to see gradients explode.")
        raise AuditFailure(f"{where}. Return that pre-clip total norm as a float.")


def judge_inf(rec: dict, seed: int) -> None:
    for case, got in zip(INF_CASES, rec["cases"], strict=True):
        before, right, max_norm, total = torch_clipped(seed, case)
        value = require_float(got["returned"], "clip_grad_norm", FIX)
        if not close(value, total, rtol=1e-5):
            raise AuditFailure(f"clip_grad_norm(parameters, max_norm={max_norm:.4g}, norm_type=inf) returned "
                               f"{value:.6g}, but the inf-norm of the gradients (their largest |element|) is "
                               f"{total:.6g}. sum(|g|**p)**(1/p) gives 1.0 or nan for p = inf: handle "
                               f"norm_type == float('inf') on its own, with the max of g.abs().max().")
        if case["factor"] >= 1 and not same(got["grads"], before, exact=True):
            raise AuditFailure(f"clip_grad_norm(parameters, max_norm={max_norm:.4g}, norm_type=inf) changed "
                               f"gradients whose inf-norm {total:.4g} was already under max_norm.")
        diagnose_clip(case, got, before, right, max_norm, total)


# ---------------------------------------------------------------- clip_grad_value

def value_params(seed: int, case: dict) -> list[nn.Parameter]:
    """A parameter set with gradient elements both below -clip and above clip, so that every one-sided or
    missing clamp shows."""
    ps = parameter_set(seed * 16 + case["k"])
    with torch.no_grad():
        ps[0].grad.view(-1)[0] = -(case["clip"] + 1.0)
        ps[-1].grad.view(-1)[-1] = case["clip"] + 1.0
    return ps


def collect_value(fns: dict, seed: int) -> dict:
    out = []
    for case in VALUE_CASES:
        what = f"clip_grad_value(parameters, clip_value={case['clip']})"
        ps = value_params(seed, case)
        called(fns["clip_grad_value"], what, (passed(ps, case["generator"]), case["clip"]), case)
        got = {"grads": grad_list(ps)}
        if case["generator"]:  # the same parameters as a list, to tell a used-up generator apart
            ps = value_params(seed, case)
            called(fns["clip_grad_value"], what, (list(ps), case["clip"]), case)
            got["as_list"] = grad_list(ps)
        out.append(got)
    return {"cases": out}


def judge_value(rec: dict, seed: int) -> None:
    for case, got in zip(VALUE_CASES, rec["cases"], strict=True):
        ps = value_params(seed, case)
        before = grad_list(ps)
        nn.utils.clip_grad_value_(ps, case["clip"])
        right = grad_list(ps)
        if same(got["grads"], right, exact=True):
            continue
        c = case["clip"]
        where = f"clip_grad_value(parameters, clip_value={c}) ({'a generator' if case['generator'] else 'a list'} of parameters)"
        if any(b is None and g is not None for b, g in zip(before, got["grads"])):
            raise AuditFailure(f"{where} gave a gradient to a parameter that had none: skip parameters whose "
                               f".grad is None.")
        if case["generator"] and same(got["as_list"], right, exact=True):
            raise AuditFailure(f"{where} left gradients that differ from torch.nn.utils.clip_grad_value_'s, though "
                               f"the same parameters as a list are clamped right: a generator (like "
                               f"model.parameters()) can be iterated only once. Go through it in one loop, or "
                               f"materialise it with list(parameters) first.")
        if same(got["grads"], [None if b is None else b.clamp(max=c) for b in before], exact=True):
            raise AuditFailure(f"{where} clamped only the positive side: gradient elements below -{c} were "
                               f"left as they were. Clamp every element into [-clip_value, clip_value].")
        if same(got["grads"], [None if b is None else b.clamp(min=-c) for b in before], exact=True):
            raise AuditFailure(f"{where} clamped only the negative side: gradient elements above {c} were "
                               f"left as they were. Clamp every element into [-clip_value, clip_value].")
        if same(got["grads"], before, exact=True):
            raise AuditFailure(f"{where} left the gradients unchanged: clamp every p.grad in place "
                               f"(p.grad.clamp_(-clip_value, clip_value)).")
        raise AuditFailure(f"{where} left gradients that differ from torch.nn.utils.clip_grad_value_'s: every "
                           f"element must end up in [-clip_value, clip_value], and elements inside unchanged.")


# ---------------------------------------------------------------- train_step_clipped

def exploding(seed: int) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """A regression on inputs of scale 10 that plain SGD at EXPLODING_LR blows up within a few steps."""
    g = torch.Generator().manual_seed(seed)
    d = 3 + seed % 4
    x = 10.0 * torch.randn(64, d, generator=g)
    w = torch.randn(d, 1, generator=g)
    z = x @ w / 10.0
    return mlp(seed, [d, 32, 32, 1]), x, 3.0 * torch.sin(z) + z


def exploding_setup(model: nn.Module) -> tuple[Log, RecordingSGD, RecordingLoss]:
    log = Log()
    return log, RecordingSGD(model, EXPLODING_LR, log), RecordingLoss(nn.MSELoss(), log, model)


def step_max_norm(seed: int) -> float:
    return 0.5 + 0.25 * (seed % 4)


def collect_steps(fns: dict, seed: int) -> dict:
    """One call per batch, each from the fresh model: every call meets an exploding gradient. Each call
    starts with the gradient of the previous batch left in .grad, as an earlier step would leave it."""
    _, x, y = exploding(seed)
    calls = []
    bs = batches(x, y, 16)
    for j, (xb, yb) in enumerate(bs):
        model = exploding(seed)[0]
        nn.functional.mse_loss(model(bs[j - 1][0]), bs[j - 1][1]).backward()
        log, opt, loss_fn = exploding_setup(model)
        start, steps, before = len(log.events), len(log.step_grads), params(model.named_parameters())
        out = fns["train_step_clipped"](model, loss_fn, opt, xb, yb, step_max_norm(seed))
        calls.append({"returned": describe(out), "before": before, "events": log.events[start:],
                      "step_grads": log.step_grads[steps:], "after_grads": grads(model.named_parameters()),
                      "after": params(model.named_parameters())})
        del out
    return {"calls": calls}


def own_gradient(seed: int, state: dict, xb: torch.Tensor, yb: torch.Tensor) -> tuple[float, dict]:
    model = loaded(exploding(seed)[0], state)
    loss = nn.functional.mse_loss(model(xb), yb)
    named = list(model.named_parameters())
    gs = torch.autograd.grad(loss, [p for _, p in named])
    return loss.item(), {n: g for (n, _), g in zip(named, gs)}


def stale_gradient(seed: int, state: dict, x: torch.Tensor, y: torch.Tensor, i: int) -> dict:
    """The gradient left in .grad as the i-th call (1-based) began: the previous batch's."""
    bs = batches(x, y, 16)
    return own_gradient(seed, state, *bs[i - 2])[1]


def added(own: dict, stale: dict) -> dict:
    return {n: own[n] + stale[n] for n in own}


def global_l2(gs: dict) -> float:
    present = [g.double() for g in gs.values() if g is not None]
    return torch.linalg.vector_norm(torch.stack([g.norm() for g in present])).item() if present else 0.0


def clipped(gs: dict, max_norm: float) -> dict:
    total = global_l2(gs)
    return {n: g * min(1.0, max_norm / (total + 1e-6)) for n, g in gs.items()}


def one_step(call: dict, i: int) -> dict:
    steps = call["events"].count("step")
    if steps != 1:
        raise AuditFailure(f"The {ordinal(i)} call of train_step_clipped called optimizer.step() {steps} times; "
                           f"it must step exactly once: zero_grad(), forward, loss, backward(), clip, step().")
    return call["step_grads"][0]


def judge_norm_at_step(rec: dict, seed: int) -> None:
    max_norm = step_max_norm(seed)
    for i, call in enumerate(rec["calls"], 1):
        got = one_step(call, i)
        norm = global_l2(got)
        if norm > max_norm * (1 + 1e-4):
            raise AuditFailure(f"At the {ordinal(i)} optimizer.step() in train_step_clipped(..., max_norm={max_norm}) "
                               f"the gradient's global norm was {norm:.4g}, above max_norm: the step applied an "
                               f"unclipped gradient. Clip with clip_grad_norm(model.parameters(), max_norm) between "
                               f"loss.backward() and optimizer.step(), over all parameters at once.")


def judge_step_gradient(rec: dict, seed: int) -> None:
    _, x, y = exploding(seed)
    max_norm = step_max_norm(seed)
    for i, (call, (xb, yb)) in enumerate(zip(rec["calls"], batches(x, y, 16), strict=True), 1):
        got = one_step(call, i)
        _, own = own_gradient(seed, call["before"], xb, yb)
        right = clipped(own, max_norm)
        if close(got, right, rtol=1e-4):
            require_stepped(call["before"], call["after"], got, EXPLODING_LR,
                            f"the {ordinal(i)} call of train_step_clipped")
            continue
        where = f"At the {ordinal(i)} optimizer.step() in train_step_clipped(..., max_norm={max_norm})"
        total = global_l2(own)
        if close(got, clipped(added(own, stale_gradient(seed, call["before"], x, y, i)), max_norm), rtol=1e-4):
            raise AuditFailure(f"{where} the gradient was this batch's gradient plus the one left in .grad from "
                               f"before the call (an earlier batch's), clipped together: clear the gradients "
                               f"with optimizer.zero_grad() before loss.backward().")
        if empty(got):
            raise AuditFailure(f"{where} the gradients were empty: nothing may clear them between "
                               f"loss.backward() and optimizer.step().")
        if close(got, own, rtol=1e-4):
            if close(call["after_grads"], right, rtol=1e-4):
                raise AuditFailure(f"{where} the gradient was this batch's unclipped gradient (norm {total:.4g}), "
                                   f"and it was clipped only after the step, too late to matter. Clip between "
                                   f"loss.backward() and optimizer.step().")
            returned = call["returned"].get("items") or [{}]
            norm = returned[-1].get("value")
            if norm is not None and not close(norm, total, rtol=1e-4):
                raise AuditFailure(f"{where} the gradient was this batch's unclipped gradient (norm {total:.4g}): "
                                   f"the clip ran before loss.backward() filled the gradients (it measured "
                                   f"{norm:.4g}). Clip between loss.backward() and optimizer.step().")
            raise AuditFailure(f"{where} the gradient was this batch's unclipped gradient (norm {total:.4g}): "
                               f"nothing clipped it. Call clip_grad_norm(model.parameters(), max_norm) between "
                               f"loss.backward() and optimizer.step().")
        per = {n: g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for n, g in own.items()}
        if close(got, per, rtol=1e-4):
            raise AuditFailure(f"{where} each parameter's gradient had been clipped by its own norm. Clip by the "
                               f"global norm: one norm over all gradients, one factor for all of them.")
        if close(got, {n: g.clamp(-max_norm, max_norm) for n, g in own.items()}, rtol=1e-4):
            raise AuditFailure(f"{where} every gradient element had been clamped to [-{max_norm}, {max_norm}]: "
                               f"that is clip_grad_value, which bends the gradient's direction. Clip by norm "
                               f"with clip_grad_norm(model.parameters(), max_norm).")
        raise AuditFailure(f"{where} the gradient was not this batch's gradient (norm {total:.4g}) scaled down "
                           f"to norm max_norm. Order the step as zero_grad(), forward, loss, backward(), "
                           f"clip_grad_norm(model.parameters(), max_norm), step().")


def judge_step_returns(rec: dict, seed: int) -> None:
    _, x, y = exploding(seed)
    max_norm = step_max_norm(seed)
    for i, (call, (xb, yb)) in enumerate(zip(rec["calls"], batches(x, y, 16), strict=True), 1):
        d = call["returned"]
        if d["type"] not in ("tuple", "list") or len(d.get("items", [])) != 2:
            raise AuditFailure(f"train_step_clipped returned a {d['type']}; it must return a tuple of two floats: "
                               f"(the batch's loss, the gradient norm before clipping).")
        loss, total = own_gradient(seed, call["before"], xb, yb)
        got_loss = require_float(d["items"][0], "train_step_clipped's loss (the first item)")
        got_norm = require_float(d["items"][1], "train_step_clipped's norm (the second item)", FIX)
        norm = global_l2(total)
        if close(got_loss, norm, rtol=1e-4) and close(got_norm, loss, rtol=1e-4):
            raise AuditFailure(f"The {ordinal(i)} call of train_step_clipped returned ({got_loss:.6g}, "
                               f"{got_norm:.6g}): the gradient norm first and the loss second. Return "
                               f"(loss, norm), in that order.")
        if not close(got_loss, loss, rtol=1e-5):
            raise AuditFailure(f"The {ordinal(i)} call of train_step_clipped returned the loss {got_loss:.6g}, but "
                               f"the batch's loss before the update was {loss:.6g}: return loss.item() of this "
                               f"batch, computed before optimizer.step().")
        if close(got_norm, norm, rtol=1e-4):
            continue
        where = (f"The {ordinal(i)} call of train_step_clipped(..., max_norm={max_norm}) returned the norm "
                 f"{got_norm:.6g}, but the batch's gradient norm before clipping was {norm:.6g}")
        if close(got_norm, max_norm, rtol=1e-4):
            raise AuditFailure(f"{where}: it returned the norm after clipping. Return what clip_grad_norm "
                               f"returns, the norm before clipping.")
        if close(got_norm, 0.0):
            raise AuditFailure(f"{where}: the norm was measured when there was no gradient yet. Clip (and "
                               f"measure) after loss.backward().")
        if close(got_norm, global_l2(added(total, stale_gradient(seed, call["before"], x, y, i))), rtol=1e-4):
            raise AuditFailure(f"{where}: it was measured with the gradient left in .grad from before the call "
                               f"(an earlier batch's) added in. Clear the gradients with optimizer.zero_grad() "
                               f"before loss.backward().")
        raise AuditFailure(f"{where}. Return the value clip_grad_norm returns, as a float.")


def collect_training(fns: dict, seed: int) -> dict:
    model, x, y = exploding(seed)
    log, opt, loss_fn = exploding_setup(model)
    for _ in range(EXPLODING_EPOCHS):
        for xb, yb in batches(x, y, 16):
            fns["train_step_clipped"](model, loss_fn, opt, xb, yb, EXPLODING_MAX_NORM)
    final = params(model.named_parameters())
    return {"losses": log.losses, "finite": all(bool(torch.isfinite(p).all()) for p in final.values())}


def judge_training(rec: dict, seed: int) -> None:
    _, x, y = exploding(seed)
    losses, per_epoch = rec["losses"], len(batches(x, y, 16))
    steps = per_epoch * EXPLODING_EPOCHS
    what = (f"Trained with train_step_clipped (max_norm={EXPLODING_MAX_NORM}, SGD lr={EXPLODING_LR}, {steps} "
            f"steps) on a hidden regression that plain SGD blows up")
    if len(losses) != steps:
        raise AuditFailure(f"{what}, loss_fn was called {len(losses)} times in {steps} steps: compute the loss "
                           f"once per call of train_step_clipped.")
    bad = next((i for i, l in enumerate(losses) if not math.isfinite(l)), None)
    if bad is not None or not rec["finite"]:
        at = f"the loss became {losses[bad]} at step {bad + 1}" if bad is not None else "the weights became inf or nan"
        raise AuditFailure(f"{what}, {at}: the training exploded, so the gradient was not clipped before "
                           f"optimizer.step().")
    peak = max(losses)
    if peak > 100 * losses[0]:
        raise AuditFailure(f"{what}, the loss rose from {losses[0]:.4g} to {peak:.4g}: the training exploded, so "
                           f"the gradient was not clipped before optimizer.step().")
    last = sum(losses[-per_epoch:]) / per_epoch
    if last >= 0.5 * losses[0]:
        raise AuditFailure(f"{what}, the last epoch's mean loss {last:.4g} is not below half the first loss "
                           f"{losses[0]:.4g}: clipped training should keep learning.")


NEEDS_NORM = ("global_grad_norm",)
NEEDS_CLIP = ("global_grad_norm", "clip_grad_norm")
NEEDS_STEP = ("global_grad_norm", "clip_grad_norm", "train_step_clipped")
CHECKS = [
    Check("ps04.global_grad_norm", NEEDS_NORM, collect_norms, judge_norms, seed=4401),
    Check("ps04.clip_grad_norm", NEEDS_CLIP, collect_clips(CLIP_CASES), judge_clip, seed=4402),
    Check("ps04.clip_under_bound", NEEDS_CLIP, collect_clips(UNDER_CASES), judge_under_bound, seed=4403),
    Check("ps04.clip_returns_pre_clip_norm", NEEDS_CLIP, collect_clips(CLIP_CASES + UNDER_CASES), judge_returns,
          seed=4404),
    Check("ps04.clip_inf_norm", NEEDS_CLIP, collect_clips(INF_CASES), judge_inf, seed=4405),
    Check("ps04.clip_grad_value", ("clip_grad_value",), collect_value, judge_value, seed=4406),
    Check("ps04.norm_at_step", NEEDS_STEP, collect_steps, judge_norm_at_step, seed=4407),
    Check("ps04.clipped_step_gradient", NEEDS_STEP, collect_steps, judge_step_gradient, seed=4408),
    Check("ps04.step_returns", NEEDS_STEP, collect_steps, judge_step_returns, seed=4409),
    Check("ps04.clipped_training_converges", NEEDS_STEP, collect_training, judge_training, seed=4410),
]
