"""Hidden audit checks for ps05_train_eval.

`evaluate` runs on a model with BatchNorm (running statistics set away from their defaults) and
Dropout, called once from eval mode, then twice from train mode, with a loss that records
whether autograd was on at each call. `fit` runs with a loss that also snapshots the parameters at
every call, so the judge can recompute every epoch's validation figures itself.
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.audit import AuditFailure, Check
from autograder.instrument import describe, params
from autograder.judging import close, loaded, require_float
from autograder.problems import blobs, mlp, problem


class WatchingLoss(nn.Module):
    """Cross-entropy that records, at each call: the value, the batch size, whether autograd was on,
    the model's mode, and (if `snapshots`) the model's parameters."""

    def __init__(self, model: nn.Module, snapshots: bool = False):
        super().__init__()
        self.model, self.snapshots = model, snapshots
        self.calls: list[dict] = []

    def forward(self, output, target):
        loss = nn.functional.cross_entropy(output, target)
        call = {"loss": loss.item(), "size": len(target), "grad": torch.is_grad_enabled() and loss.requires_grad,
                "training": self.model.training}
        if self.snapshots:
            call["params"] = params(self.model.named_parameters())
        self.calls.append(call)
        return loss


def truth(model: nn.Module, state: dict, loader: DataLoader) -> tuple[float, float]:
    """(per-sample mean loss, per-sample accuracy) of the model with `state`, in eval mode."""
    model = loaded(model, state).eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            out = model(xb)
            total += nn.functional.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
            count += len(yb)
    return total / count, correct / count


def modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


# -----------------------------------------------------------------------------
# evaluate

def eval_case(seed: int) -> tuple[nn.Sequential, DataLoader]:
    """A classifier with BatchNorm and Dropout (in train mode), and a loader of batches of 8 with a
    short last one."""
    d, c, h = 3 + seed % 4, 2 + seed % 3, 16 + seed % 8
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, c))
        bn = model[1]
        bn.running_mean.copy_(0.5 * torch.randn(h))
        bn.running_var.copy_(0.5 + torch.rand(h))
        bn.num_batches_tracked.fill_(20)
    short = 2 + seed % 5
    x, y = blobs(seed + 3, 8 * (3 + seed % 3) + short, d, c)
    # The short last batch is all right and the first sample wrong, so that the mean of the batches'
    # accuracies always differs from the accuracy per sample.
    with torch.no_grad():
        predicted = model.eval()(x).argmax(1)
    model.train()
    y[-short:] = predicted[-short:]
    y[0] = (predicted[0] + 1) % c
    return model, DataLoader(TensorDataset(x, y), batch_size=8)


def buffers(model: nn.Module) -> dict:
    return {n: b.detach().clone() for n, b in model.named_buffers()}


def collect_evaluate(fns: dict, seed: int) -> dict:
    model, loader = eval_case(seed)
    loss_fn = WatchingLoss(model)
    model.eval()
    rec = {"from_eval": describe(fns["evaluate"](model, loader, loss_fn)), "modes_after_eval": modes(model)}
    rec["buffers_before"] = buffers(model)
    model.train()
    rec["first"] = describe(fns["evaluate"](model, loader, loss_fn))
    rec["modes_after_train"] = modes(model)
    model.train()
    rec["second"] = describe(fns["evaluate"](model, loader, loss_fn))
    rec["buffers_after"] = buffers(model)
    rec["grad"] = [call["grad"] for call in loss_fn.calls]
    return rec


def result(d: dict, call: str) -> tuple[float, float]:
    """(loss, accuracy) from what evaluate returned, or a failure naming what is missing."""
    if d["type"] != "dict" or not {"loss", "accuracy"} <= set(d.get("items", {})):
        raise AuditFailure(f"{call} returned a {d['type']}{' without loss and accuracy' if d['type'] == 'dict' else ''}; "
                           f"return {{'loss': float, 'accuracy': float}}.")
    fix = "Return .item() values, as floats."
    return (require_float(d["items"]["loss"], f"{call}['loss']", fix),
            require_float(d["items"]["accuracy"], f"{call}['accuracy']", fix))


def judge_eval_deterministic(rec: dict, seed: int) -> None:
    model, loader = eval_case(seed)
    want = truth(model, params(model.named_parameters()), loader)
    first = result(rec["first"], "evaluate(model in train mode, ...)")
    second = result(rec["second"], "evaluate(model in train mode, ...) called again")
    if not close(first[0], second[0], rtol=1e-6):
        raise AuditFailure(f"Two calls of evaluate on the same model (passed in train mode) gave two losses, "
                           f"{first[0]:.6g} and {second[0]:.6g}: Dropout was still dropping units at random. "
                           f"Call model.eval() in evaluate, before the first forward pass.")
    if not close(first[0], want[0], rtol=1e-5):
        raise AuditFailure(f"evaluate(model in train mode, ...) gave loss {first[0]:.6g}; the model in eval mode "
                           f"gives {want[0]:.6g}: BatchNorm and Dropout must run in eval mode. Call model.eval() "
                           f"in evaluate, before the first forward pass.")


def judge_batchnorm_untouched(rec: dict, seed: int) -> None:
    before, after = rec["buffers_before"], rec["buffers_after"]
    changed = [n for n in before if n not in after or not torch.equal(before[n], after[n])]
    if changed:
        raise AuditFailure(f"evaluate changed BatchNorm's running statistics ({', '.join(changed)}): in train mode "
                           f"BatchNorm normalises with the batch's statistics and updates its running averages "
                           f"with the validation data. Call model.eval() in evaluate.")


def judge_no_graph(rec: dict, seed: int) -> None:
    built = sum(rec["grad"])
    if built:
        raise AuditFailure(f"In {built} of {len(rec['grad'])} loss computations in evaluate, autograd was on and "
                           f"the loss carried a graph: evaluation builds graphs it never uses, which costs memory "
                           f"and time. Run the loop inside `with torch.no_grad():`.")


def judge_mode_restored(rec: dict, seed: int) -> None:
    if not all(rec["modes_after_train"]):
        raise AuditFailure("After evaluate(model, ...) on a model in train mode, the model was left in eval mode: "
                           "the next epoch of training would run with Dropout off and BatchNorm frozen. Note "
                           "was_training = model.training at the start and call model.train(was_training) at the end.")
    if any(rec["modes_after_eval"]):
        raise AuditFailure("After evaluate(model, ...) on a model in eval mode, the model was in train mode: "
                           "evaluate must give the caller back the mode it had, not always train. Call "
                           "model.train(was_training), with was_training = model.training taken at the start.")


def judge_evaluate_values(rec: dict, seed: int) -> None:
    model, loader = eval_case(seed)
    loss, accuracy = result(rec["from_eval"], "evaluate")
    want_loss, want_accuracy = truth(model, params(model.named_parameters()), loader)
    sizes = [len(yb) for _, yb in loader]
    if not close(loss, want_loss, rtol=1e-5):
        raise AuditFailure(f"evaluate returned loss {loss:.6g}; the mean loss per sample is {want_loss:.6g} (batches "
                           f"of sizes {sizes}): weight each batch's loss by its size, and divide by the number of "
                           f"samples.")
    if not close(accuracy, want_accuracy, rtol=1e-6):
        per_batch = ""
        correct = []
        model = model.eval()
        with torch.no_grad():
            correct = [(model(xb).argmax(1) == yb).float().mean().item() for xb, yb in loader]
        if close(accuracy, sum(correct) / len(correct), rtol=1e-6):
            per_batch = (" You averaged the batches' accuracies, but the last batch is smaller: count correct "
                         "predictions over all samples, then divide by the number of samples.")
        raise AuditFailure(f"evaluate returned accuracy {accuracy:.6g}; the fraction of samples classified correctly "
                           f"is {want_accuracy:.6g}.{per_batch}")


# -----------------------------------------------------------------------------
# fit: history and early stopping

def fit_case(seed: int) -> tuple[nn.Sequential, DataLoader, DataLoader, float, int]:
    """A classifier, a training loader (short last batch), a validation loader of equal batches,
    an LR and a number of epochs."""
    model, x, y, lr = problem(seed, 8 * (3 + seed % 3) + 3 + seed % 4)
    xv, yv = blobs(seed + 1, 8 * (2 + seed % 2), x.shape[1], int(y.max()) + 1)
    return (model, DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(xv, yv), batch_size=8),
            lr, 3 + seed % 2)


def stopping_case(seed: int) -> tuple[nn.Sequential, DataLoader, DataLoader, int, int]:
    """A problem whose validation loss turns back up within a few epochs: a quarter of the
    validation labels are wrong, so the more confident the model, the worse they cost.
    Returns the model, the loaders, the epoch budget and the patience."""
    d, c = 3 + seed % 4, 2 + seed % 3
    x, y = blobs(seed + 1, 160, d, c, scale=1.5)
    yv = y[96:].clone()
    flipped = torch.randperm(64, generator=torch.Generator().manual_seed(seed))[:16]
    yv[flipped] = (yv[flipped] + 1) % c
    return (mlp(seed, [d, 32, 32, c]), DataLoader(TensorDataset(x[:96], y[:96]), batch_size=16),
            DataLoader(TensorDataset(x[96:], yv), batch_size=16), 25, 2 + seed % 2)


def stopping_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)


def collect_fit(fns: dict, seed: int) -> dict:
    model, train, val, lr, epochs = fit_case(seed)
    loss_fn = WatchingLoss(model, snapshots=True)
    history = fns["fit"](model, train, val, loss_fn, torch.optim.SGD(model.parameters(), lr=lr), epochs)
    return {"returned": describe(history), "calls": loss_fn.calls}


def collect_stopping(fns: dict, seed: int) -> dict:
    model, train, val, epochs, patience = stopping_case(seed)
    loss_fn = WatchingLoss(model, snapshots=True)
    history = fns["fit"](model, train, val, loss_fn, stopping_optimizer(model), epochs, patience=patience)
    return {"returned": describe(history), "calls": loss_fn.calls, "final": params(model.named_parameters())}


KEYS = ("train_loss", "val_loss", "val_accuracy")


def lists(returned: dict) -> dict[str, list[float]]:
    """The history's three lists, checked to hold floats and to have one length."""
    if returned["type"] != "dict" or not set(KEYS) <= set(returned.get("items", {})):
        raise AuditFailure(f"fit returned a {returned['type']}; return a dict with the lists "
                           f"{', '.join(KEYS)}, one entry per epoch.")
    out = {}
    for key in KEYS:
        d = returned["items"][key]
        if d["type"] != "list":
            raise AuditFailure(f"history[{key!r}] is a {d['type']}; it should be a list with one float per epoch.")
        out[key] = [require_float(item, f"an entry of history[{key!r}]", "Append .item() values.") for item in d["items"]]
    lengths = {key: len(v) for key, v in out.items()}
    if len(set(lengths.values())) != 1:
        raise AuditFailure(f"The history's lists have different lengths {lengths}: append to all three once per epoch.")
    return out


def epochs_of(calls: list[dict], n_train: int, n_val: int, epochs: int) -> list[tuple[list[dict], list[dict]]]:
    """Split the loss calls into (training calls, validation calls) per epoch."""
    per = n_train + n_val
    if len(calls) != per * epochs:
        raise AuditFailure(f"loss_fn was called {len(calls)} times in {epochs} epochs; each epoch trains on "
                           f"{n_train} batches, then evaluates val_loader ({n_val} batches) once: "
                           f"{per * epochs} calls.")
    return [(calls[e * per:e * per + n_train], calls[e * per + n_train:(e + 1) * per]) for e in range(epochs)]


def val_figures(model: nn.Module, val: DataLoader, split: list) -> list[tuple[float, float]]:
    """The true (val_loss, val_accuracy) of each epoch, from the weights its validation saw."""
    return [truth(model, val_calls[0]["params"], val) for _, val_calls in split]


def judge_history(rec: dict, seed: int) -> None:
    model, train, val, _, epochs = fit_case(seed)
    history = lists(rec["returned"])
    if len(history["train_loss"]) != epochs:
        raise AuditFailure(f"fit(..., epochs={epochs}) returned histories of {len(history['train_loss'])} entries; "
                           f"with patience=None it runs every epoch and records each.")
    split = epochs_of(rec["calls"], len(train), len(val), epochs)
    for e, ((train_calls, _), (want_loss, want_accuracy)) in enumerate(zip(split, val_figures(model, val, split))):
        mean = sum(c["loss"] * c["size"] for c in train_calls) / sum(c["size"] for c in train_calls)
        if not close(history["train_loss"][e], mean, rtol=1e-5):
            raise AuditFailure(f"history['train_loss'][{e}] is {history['train_loss'][e]:.6g}; the training batches "
                               f"of epoch {e + 1} average {mean:.6g} per sample (weight each batch loss by its size).")
        for key, got, want in [("val_loss", history["val_loss"][e], want_loss),
                               ("val_accuracy", history["val_accuracy"][e], want_accuracy)]:
            if not close(got, want, rtol=1e-5):
                raise AuditFailure(f"history[{key!r}][{e}] is {got:.6g}, but evaluate on val_loader with the weights "
                                   f"at the end of epoch {e + 1} gives {want:.6g}: record evaluate(model, "
                                   f"val_loader, loss_fn) after each epoch's training.")


def judge_early_stopping(rec: dict, seed: int) -> None:
    model, train, val, epochs, patience = stopping_case(seed)
    ran = len(lists(rec["returned"])["val_loss"])
    split = epochs_of(rec["calls"], len(train), len(val), ran)
    losses = [loss for loss, _ in val_figures(model, val, split)]
    best, stop = 0, epochs
    for e, loss in enumerate(losses):
        if loss < losses[best]:
            best = e
        if e - best >= patience:
            stop = e + 1
            break
    setting = f"fit(..., epochs={epochs}, patience={patience})"
    trace = ", ".join(f"{v:.4f}" for v in losses)
    if ran != stop:
        if ran > stop or stop == epochs:
            raise AuditFailure(f"{setting} ran {ran} epochs with validation losses {trace}. The best was epoch {best + 1}; "
                               f"after {patience} epochs in a row without a lower val_loss it should have stopped, "
                               f"after epoch {stop}. Count the epochs since the last improvement and stop when the "
                               f"count reaches patience.")
        raise AuditFailure(f"{setting} stopped after epoch {ran}, but its validation losses {trace} had not gone "
                           f"{patience} epochs in a row without improving on the best (epoch {best + 1}).")
    best_state = split[best][1][0]["params"]
    if close(rec["final"], best_state, rtol=1e-6, atol=1e-8):
        return
    last = f" (those of the last epoch, {ran})" if close(rec["final"], split[-1][1][0]["params"], rtol=1e-6, atol=1e-8) else ""
    raise AuditFailure(f"{setting} stopped after epoch {ran}, but the model ended with other weights{last} than those "
                       f"of the best epoch, {best + 1} (val_loss {losses[best]:.4f}). Keep a copy of the best "
                       f"state_dict (copy.deepcopy: state_dict() returns the live tensors, which training keeps "
                       f"changing) and load it back with model.load_state_dict before returning.")


NEEDS = ("evaluate",)
FIT = ("evaluate", "fit")
CHECKS = [
    Check("ps05.eval_deterministic", NEEDS, collect_evaluate, judge_eval_deterministic, seed=4501),
    Check("ps05.batchnorm_untouched", NEEDS, collect_evaluate, judge_batchnorm_untouched, seed=4502),
    Check("ps05.no_graph", NEEDS, collect_evaluate, judge_no_graph, seed=4503),
    Check("ps05.mode_restored", NEEDS, collect_evaluate, judge_mode_restored, seed=4504),
    Check("ps05.evaluate_values", NEEDS, collect_evaluate, judge_evaluate_values, seed=4505),
    Check("ps05.history", FIT, collect_fit, judge_history, seed=4506),
    Check("ps05.early_stopping", FIT, collect_stopping, judge_early_stopping, seed=4507),
]
