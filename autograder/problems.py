"""Hidden problems the audits build from a seed: small models and data the student never saw.

Built identically in the runner (to run student code on) and in the judge (to recompute answers).
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.instrument import Log, RecordingLoss, RecordingSGD


def mlp(seed: int, sizes: list[int]) -> nn.Sequential:
    """An MLP with ReLUs between layers, initialised from `seed` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])


def blobs(seed: int, n: int, n_features: int, n_classes: int, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian classes around random means (`scale` apart): learnable, never seen by the student."""
    g = torch.Generator().manual_seed(seed)
    means = scale * torch.randn(n_classes, n_features, generator=g)
    y = (torch.arange(n) % n_classes)[torch.randperm(n, generator=g)]
    return means[y] + torch.randn(n, n_features, generator=g), y


def problem(seed: int, n: int) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor, float]:
    """A small classifier, its data and a learning rate, all varying with the seed."""
    n_features, n_classes, hidden = 3 + seed % 5, 2 + seed % 3, 6 + seed % 7
    x, y = blobs(seed + 1, n, n_features, n_classes)
    return mlp(seed, [n_features, hidden, hidden, n_classes]), x, y, 0.05 + 0.01 * (seed % 5)


def batches(x: torch.Tensor, y: torch.Tensor, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(zip(x.split(size), y.split(size)))


def uneven_loader(seed: int) -> tuple[nn.Sequential, DataLoader, float]:
    """Batches of 8 and a short last batch whose loss stands apart, so weighting matters."""
    model, x, y, lr = problem(seed, 8 * (3 + seed % 3) + 2 + seed % 4)
    y[-(2 + seed % 4):] = (y[-(2 + seed % 4):] + 1) % int(y.max() + 1)  # mislabelled tail: a higher loss
    return model, DataLoader(TensorDataset(x, y), batch_size=8), lr


def setup(model: nn.Module, lr: float) -> tuple[Log, RecordingSGD, RecordingLoss]:
    log = Log()
    return log, RecordingSGD(model, lr, log), RecordingLoss(nn.CrossEntropyLoss(), log, model)
