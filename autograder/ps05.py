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
from autograder.judging import close, loaded, loss_and_grads, require_float
from autograder.problems import blobs, problem


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
    from_eval = result(rec["from_eval"], "evaluate(model in eval mode, ...)")
    first = result(rec["first"], "evaluate(model in train mode, ...)")
    second = result(rec["second"], "evaluate(model in train mode, ...) called again")
    if not close(first[0], second[0], rtol=1e-6):
        raise AuditFailure(f"Two calls of evaluate on the same model (passed in train mode) gave two losses, "
                           f"{first[0]:.6g} and {second[0]:.6g}: Dropout was still dropping units at random. "
                           f"Call model.eval() in evaluate, before the first forward pass.")
    if not (close(first[0], from_eval[0], rtol=1e-6) and close(first[1], from_eval[1], rtol=1e-6)):
        raise AuditFailure(f"evaluate gave loss {first[0]:.6g} on a model passed in train mode, but "
                           f"{from_eval[0]:.6g} on the same model passed in eval mode: BatchNorm and Dropout "
                           f"must run in eval mode whatever mode the caller left. Call model.eval() in evaluate, "
                           f"before the first forward pass.")


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
# fit: history, train mode, early stopping

def fit_case(seed: int) -> tuple[nn.Sequential, DataLoader, DataLoader, float, int]:
    """A classifier, a training loader (short last batch), a validation loader of equal batches,
    an LR and a number of epochs."""
    model, x, y, lr = problem(seed, 8 * (3 + seed % 3) + 3 + seed % 4)
    xv, yv = blobs(seed + 1, 8 * (2 + seed % 2), x.shape[1], int(y.max()) + 1)
    return (model, DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(xv, yv), batch_size=8),
            lr, 3 + seed % 2)


class PresetWeights(torch.optim.SGD):
    """An optimizer whose steps ignore the gradients: every step of epoch e (counted in steps of
    `per_epoch`) sets the weights to `script[e]`, so each epoch's validation loss is known in advance."""

    def __init__(self, model: nn.Module, script: list[dict], per_epoch: int):
        self.named = list(model.named_parameters())
        super().__init__([p for _, p in self.named], lr=0.0)
        self.script, self.per_epoch, self.steps = script, per_epoch, 0

    @torch.no_grad()
    def step(self, closure=None):
        weights = self.script[min(self.steps // self.per_epoch, len(self.script) - 1)]
        self.steps += 1
        for n, p in self.named:
            p.copy_(weights[n])


def scripted_case(seed: int, levels: list[int]) -> tuple[nn.Module, DataLoader, DataLoader, PresetWeights]:
    """A linear classifier whose weights at the end of epoch e are levels[e] times a matrix that
    classifies every validation sample right: a higher level gives a strictly lower validation loss,
    an equal level exactly the same one. Training batches of 16 and a short last one; validation
    batches of 16 and 8."""
    d, c = 2 + seed % 3, 3 + seed % 2
    g = torch.Generator().manual_seed(seed)
    good = torch.randn(c, d, generator=g)
    x, xv = torch.randn(16 * (2 + seed % 2) + 5 + seed % 4, d, generator=g), torch.randn(24, d, generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Linear(d, c)
    unit = 0.3 + 0.05 * (seed % 3)
    script = [{"weight": unit * level * good, "bias": torch.zeros(c)} for level in levels]
    train = DataLoader(TensorDataset(x, (x @ good.T).argmax(1)), batch_size=16)
    val = DataLoader(TensorDataset(xv, (xv @ good.T).argmax(1)), batch_size=16)
    return model, train, val, PresetWeights(model, script, len(train))


def stopping_levels(patience: int) -> list[int]:
    """Two improvements, a shorter streak than `patience` without one, a new best, a tie with it, then
    worse epochs until `patience` in a row, and improvements after: stopping there is the only right
    answer."""
    return [1, 3] + [2] * (patience - 1) + [5, 5] + [4] * (patience - 1) + [6, 7]


def full_run_levels(seed: int) -> tuple[list[int], int]:
    """Levels whose best epoch is not the last and which never make `patience` epochs in a row
    without improving; and that patience."""
    return ([1, 4, 2, 3] + [3] * (seed % 2), 4)


def no_patience_levels(seed: int) -> list[int]:
    """The best epoch early, then three epochs in a row without improving, none of them the best."""
    return [2, 4, 3, 1, 3] + [2] * (seed % 2)


def stopping_patience(seed: int) -> int:
    return 2 + seed % 2


def collect_fit(fns: dict, seed: int) -> dict:
    model, train, val, lr, epochs = fit_case(seed)
    loss_fn = WatchingLoss(model, snapshots=True)
    history = fns["fit"](model, train, val, loss_fn, torch.optim.SGD(model.parameters(), lr=lr), epochs)
    return {"returned": describe(history), "calls": loss_fn.calls}


def with_leaky_evaluate(fit):
    """`fit`, calling an `evaluate` that leaves the model in eval mode (as a validation written
    elsewhere may), where `fit` calls the notebook's evaluate."""
    import types
    if "evaluate" not in getattr(fit, "__globals__", {}):
        return fit
    real = fit.__globals__["evaluate"]

    def evaluate(model, loader, loss_fn):
        scores = real(model, loader, loss_fn)
        model.eval()
        return scores

    leaky = types.FunctionType(fit.__code__, {**fit.__globals__, "evaluate": evaluate}, fit.__name__,
                               fit.__defaults__, fit.__closure__)
    leaky.__kwdefaults__ = fit.__kwdefaults__
    return leaky


class ModeSGD(torch.optim.SGD):
    """Plain SGD that notes the model's mode at every step."""

    def __init__(self, model: nn.Module, lr: float):
        super().__init__(model.parameters(), lr=lr)
        self.model, self.modes = model, []

    def step(self, closure=None):
        self.modes.append(self.model.training)
        return super().step(closure)


def collect_train_mode(fns: dict, seed: int) -> dict:
    model, train, val, lr, epochs = fit_case(seed)
    optimizer = ModeSGD(model, lr)
    model.eval()
    with_leaky_evaluate(fns["fit"])(model, train, val, nn.CrossEntropyLoss(), optimizer, epochs)
    return {"modes": optimizer.modes}


def run_scripted(fit, seed: int, levels: list[int], **patience) -> dict:
    model, train, val, optimizer = scripted_case(seed, levels)
    loss_fn = WatchingLoss(model, snapshots=True)
    history = fit(model, train, val, loss_fn, optimizer, len(levels), **patience)
    return {"returned": describe(history), "calls": loss_fn.calls, "final": params(model.named_parameters())}


def collect_stopping(fns: dict, seed: int) -> dict:
    levels, patience = full_run_levels(seed)
    return {"stops": run_scripted(fns["fit"], seed, stopping_levels(stopping_patience(seed)),
                                  patience=stopping_patience(seed)),
            "full": run_scripted(fns["fit"], seed, levels, patience=patience)}


def collect_no_patience(fns: dict, seed: int) -> dict:
    return run_scripted(fns["fit"], seed, no_patience_levels(seed))


KEYS = ("train_loss", "val_loss", "val_accuracy")


def history_list(returned: dict, key: str, per: str = "epoch", where: str = "") -> list[float]:
    """history[key] of a described history, checked to be a list of floats (one per `per`)."""
    d = returned["items"][key]
    if d["type"] not in ("list", "tuple"):
        raise AuditFailure(f"{where}history[{key!r}] is a {d['type']}; it should be a list with one float per {per}.")
    return [require_float(item, f"{where}an entry of history[{key!r}]", "Append .item() values.") for item in d["items"]]


def lists(returned: dict) -> dict[str, list[float]]:
    """The history's three sequences, checked to hold floats and to have one length."""
    if returned["type"] != "dict" or not set(KEYS) <= set(returned.get("items", {})):
        raise AuditFailure(f"fit returned a {returned['type']}; return a dict with the lists "
                           f"{', '.join(KEYS)}, one entry per epoch.")
    out = {key: history_list(returned, key) for key in KEYS}
    lengths = {key: len(v) for key, v in out.items()}
    if len(set(lengths.values())) != 1:
        raise AuditFailure(f"The history's lists have different lengths {lengths}: append to all three once per epoch.")
    return out


def epochs_of(calls: list[dict], train: DataLoader, val: DataLoader, epochs: int) -> list[tuple[list[dict], list[dict]]]:
    """Split the loss calls into (training calls, validation calls) per epoch, checking their order
    by the batch sizes (the training loader's last batch is short)."""
    train_sizes, val_sizes = [len(yb) for _, yb in train], [len(yb) for _, yb in val]
    n_train, per = len(train_sizes), len(train_sizes) + len(val_sizes)
    if len(calls) != per * epochs:
        raise AuditFailure(f"loss_fn was called {len(calls)} times in {epochs} epochs; each epoch trains on "
                           f"every one of the {n_train} batches of train_loader, then evaluates val_loader "
                           f"({len(val_sizes)} batches) once: {per * epochs} calls.")
    if [c["size"] for c in calls] != (train_sizes + val_sizes) * epochs:
        raise AuditFailure(f"loss_fn saw batches of sizes {[c['size'] for c in calls[:per]]} in the first epoch; "
                           f"training on train_loader (sizes {train_sizes}) and then evaluating val_loader (sizes "
                           f"{val_sizes}) gives {train_sizes + val_sizes}. Each epoch trains first, then evaluates.")
    return [(calls[e * per:e * per + n_train], calls[e * per + n_train:(e + 1) * per]) for e in range(epochs)]


def val_figures(model: nn.Module, val: DataLoader, split: list) -> list[tuple[float, float]]:
    """The true (val_loss, val_accuracy) of each epoch, from the weights its validation saw."""
    return [truth(model, val_calls[0]["params"], val) for _, val_calls in split]


def judge_steps(model: nn.Module, train: DataLoader, split: list, lr: float) -> None:
    """Each training batch's weights are those of the batch before, moved by one SGD step on that
    batch's own gradient."""
    batches = list(train)
    for e, (train_calls, val_calls) in enumerate(split):
        states = [c["params"] for c in train_calls] + [val_calls[0]["params"]]
        for k, (xb, yb) in enumerate(batches):
            _, g = loss_and_grads(model, states[k], xb, yb)
            want = {n: states[k][n] - lr * g[n] for n in g}
            if close(states[k + 1], want, rtol=1e-4, atol=1e-6):
                continue
            where = f"batch {k + 1} of epoch {e + 1}"
            if close(states[k + 1], states[k], rtol=0, atol=0):
                raise AuditFailure(f"The weights did not change after training {where}: fit must take one "
                                   f"optimizer step per batch (zero_grad, backward, step), not one per epoch.")
            raise AuditFailure(f"After {where}, the weights moved by something other than one step on that "
                               f"batch's gradient: zero the gradients before each backward, and call "
                               f"optimizer.step() once per batch.")


def judge_history(rec: dict, seed: int) -> None:
    model, train, val, lr, epochs = fit_case(seed)
    history = lists(rec["returned"])
    if len(history["train_loss"]) != epochs:
        raise AuditFailure(f"fit(..., epochs={epochs}) returned histories of {len(history['train_loss'])} entries; "
                           f"with patience=None it runs every epoch and records each.")
    split = epochs_of(rec["calls"], train, val, epochs)
    for e, (train_calls, _) in enumerate(split):
        mean = sum(c["loss"] * c["size"] for c in train_calls) / sum(c["size"] for c in train_calls)
        if not close(history["train_loss"][e], mean, rtol=1e-5):
            raise AuditFailure(f"history['train_loss'][{e}] is {history['train_loss'][e]:.6g}; the training batches "
                               f"of epoch {e + 1} average {mean:.6g} per sample (weight each batch loss by its size).")
    judge_steps(model, train, split, lr)
    for e, (want_loss, want_accuracy) in enumerate(val_figures(model, val, split)):
        for key, got, want in [("val_loss", history["val_loss"][e], want_loss),
                               ("val_accuracy", history["val_accuracy"][e], want_accuracy)]:
            if not close(got, want, rtol=1e-5):
                raise AuditFailure(f"history[{key!r}][{e}] is {got:.6g}, but evaluate on val_loader with the weights "
                                   f"at the end of epoch {e + 1} gives {want:.6g}: record evaluate(model, "
                                   f"val_loader, loss_fn) after each epoch's training.")


def judge_train_mode(rec: dict, seed: int) -> None:
    _, train, _, _, _ = fit_case(seed)
    if all(rec["modes"]):
        return
    step = rec["modes"].index(False)
    epoch = step // len(train) + 1
    if epoch == 1:
        raise AuditFailure("fit was given a model in eval mode and trained its first epoch in eval mode "
                           "(Dropout off, BatchNorm frozen). Call model.train() at the start of every epoch.")
    raise AuditFailure(f"Epoch {epoch} trained in eval mode: the validation before it left the model in eval "
                       f"mode, and fit did not switch it back. Call model.train() at the start of every epoch, "
                       f"not once before the loop.")


def scripted_trace(rec: dict, seed: int, levels: list[int]) -> tuple[list, list[float], int]:
    """(per-epoch split of the loss calls, the true val_loss of each epoch run, epochs run)."""
    model, train, val, _ = scripted_case(seed, levels)
    ran = len(lists(rec["returned"])["val_loss"])
    split = epochs_of(rec["calls"], train, val, ran)
    return split, [loss for loss, _ in val_figures(model, val, split)], ran


def best_weights(rec: dict, split: list, losses: list[float], setting: str, ran: int, when: str) -> None:
    best = min(range(len(losses)), key=losses.__getitem__)
    if close(rec["final"], split[best][1][0]["params"], rtol=1e-6, atol=1e-8):
        return
    last = f" (those of the last epoch, {ran})" if close(rec["final"], split[-1][1][0]["params"], rtol=1e-6, atol=1e-8) else ""
    raise AuditFailure(f"{setting} {when}, but the model ended with other weights{last} than those of the best "
                       f"epoch, {best + 1} (val_loss {losses[best]:.4f}). With patience set, fit ends with the best "
                       f"weights in every case: keep a copy of the best state_dict (copy.deepcopy: state_dict() "
                       f"returns the live tensors, which training keeps changing) and load it back with "
                       f"model.load_state_dict before returning, whether or not it stopped early.")


def judge_early_stopping(rec: dict, seed: int) -> None:
    patience = stopping_patience(seed)
    levels = stopping_levels(patience)
    split, losses, ran = scripted_trace(rec["stops"], seed, levels)
    best, stop = 0, len(levels)
    for e, loss in enumerate(losses):
        if loss < losses[best]:
            best = e
        if e - best >= patience:
            stop = e + 1
            break
    setting = f"fit(..., epochs={len(levels)}, patience={patience})"
    trace = ", ".join(f"{v:.4f}" for v in losses)
    if ran > stop:
        ties = [e + 1 for e in range(best + 1, stop) if losses[e] == losses[best]]
        tie = (f" Epoch {ties[0]} only equalled the best val_loss: improving means strictly lower." if ties else "")
        raise AuditFailure(f"{setting} ran {ran} epochs with validation losses {trace}. The best was epoch "
                           f"{best + 1}; after {patience} epochs in a row without a lower val_loss it should have "
                           f"stopped, after epoch {stop}.{tie} Count the epochs since the last improvement and stop "
                           f"when the count reaches patience.")
    if ran < stop:
        raise AuditFailure(f"{setting} stopped after epoch {ran}, but its validation losses {trace} had not gone "
                           f"{patience} epochs in a row without improving on the best so far: reset the count of "
                           f"epochs without improvement to 0 at every improvement.")
    best_weights(rec["stops"], split, losses, setting, ran, f"stopped after epoch {ran}")
    levels, patience = full_run_levels(seed)
    split, losses, ran = scripted_trace(rec["full"], seed, levels)
    setting = f"fit(..., epochs={len(levels)}, patience={patience})"
    if ran != len(levels):
        raise AuditFailure(f"{setting} stopped after epoch {ran}, but its validation losses "
                           f"{', '.join(f'{v:.4f}' for v in losses)} never went {patience} epochs in a row without "
                           f"improving.")
    best_weights(rec["full"], split, losses, setting, ran, "ran every epoch without stopping early")


def judge_no_patience(rec: dict, seed: int) -> None:
    levels = no_patience_levels(seed)
    split, losses, ran = scripted_trace(rec, seed, levels)
    setting = f"fit(..., epochs={len(levels)}) without patience"
    if ran != len(levels):
        raise AuditFailure(f"{setting} ran {ran} epochs: with patience=None (the default) it runs every epoch, "
                           f"however the validation loss goes.")
    if not close(rec["final"], split[-1][1][0]["params"], rtol=1e-6, atol=1e-8):
        raise AuditFailure(f"{setting} ended with other weights than those of its last epoch: without patience, "
                           f"fit leaves the model as training left it; only early stopping (patience set) loads "
                           f"the best weights back.")


NEEDS = ("evaluate",)
FIT = ("evaluate", "fit")
CHECKS = [
    Check("ps05.eval_deterministic", NEEDS, collect_evaluate, judge_eval_deterministic, seed=4501),
    Check("ps05.batchnorm_untouched", NEEDS, collect_evaluate, judge_batchnorm_untouched, seed=4502),
    Check("ps05.no_graph", NEEDS, collect_evaluate, judge_no_graph, seed=4503),
    Check("ps05.mode_restored", NEEDS, collect_evaluate, judge_mode_restored, seed=4504),
    Check("ps05.evaluate_values", NEEDS, collect_evaluate, judge_evaluate_values, seed=4505),
    Check("ps05.history", FIT, collect_fit, judge_history, seed=4506),
    Check("ps05.train_mode", FIT, collect_train_mode, judge_train_mode, seed=4508),
    Check("ps05.early_stopping", FIT, collect_stopping, judge_early_stopping, seed=4507),
    Check("ps05.no_patience", FIT, collect_no_patience, judge_no_patience, seed=4509),
]
