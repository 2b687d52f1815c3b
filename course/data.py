"""Course data: the Iris and 8x8 digits datasets, plus small synthetic problems.

Everything here is deterministic. The loaders read files shipped in datasets/
(see datasets/README.md), and every random function draws from its own
torch.Generator seeded by `seed`, never the global RNG, so the same call gives
the same tensors whatever else a notebook has run before it.
"""

import csv
import gzip
import math
import os
import zlib
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

# The repo's datasets/ folder. COURSE_DATASETS_DIR overrides it and is read at
# every load, so it can be set after import (e.g. from a notebook or a test).
DATASETS_DIR = Path(__file__).resolve().parent.parent / "datasets"

IRIS_CLASSES = ("setosa", "versicolor", "virginica")
IRIS_FEATURES = ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm")

# Neighbouring blob centres sit this far apart: 4 noise stds at spread=1.0,
# separable by eye but with a little overlap for a classifier to get wrong.
BLOB_SEPARATION = 4.0

# -----------------------------------------------------------------------------
# datasets on disk

def _dataset_path(name: str) -> Path:
    return Path(os.environ.get("COURSE_DATASETS_DIR") or DATASETS_DIR) / name


def _corrupt(path: Path, why) -> ValueError:
    return ValueError(f"{path} is corrupt ({why}): restore it from the course repo "
                      f"(git checkout -- datasets/{path.name})")


def _read_rows(name: str, header: tuple, n_rows: int) -> tuple[Path, list[list[str]]]:
    """Read a shipped CSV (optionally gzipped), checking its header and shape."""
    path = _dataset_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run from the course repo "
                                f"or set COURSE_DATASETS_DIR to the folder that holds {name}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as e:
        raise _corrupt(path, e) from e
    if not rows or tuple(rows[0]) != header:
        raise _corrupt(path, "unexpected header")
    rows = rows[1:]
    if len(rows) != n_rows or any(len(r) != len(header) for r in rows):
        raise _corrupt(path, f"expected {n_rows} rows of {len(header)} fields")
    return path, rows


def load_iris() -> tuple[torch.Tensor, torch.Tensor]:
    """Fisher's Iris: features float32 (150, 4) in cm, labels int64 (150,) indexing IRIS_CLASSES."""
    path, rows = _read_rows("iris.csv", IRIS_FEATURES + ("species",), 150)
    try:
        x = torch.tensor([[float(v) for v in r[:4]] for r in rows], dtype=torch.float32)
        y = torch.tensor([IRIS_CLASSES.index(r[4]) for r in rows], dtype=torch.int64)
    except ValueError as e:  # a non-number or an unknown species
        raise _corrupt(path, e) from e
    if not torch.isfinite(x).all():
        raise _corrupt(path, "non-finite feature")
    return x, y


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """UCI 8x8 digits: images float32 (1797, 1, 8, 8) in [0, 1], labels int64 (1797,) in 0..9."""
    header = tuple(f"p{i}" for i in range(64)) + ("label",)
    path, rows = _read_rows("digits.csv.gz", header, 1797)
    try:
        v = torch.tensor([[int(s) for s in r] for r in rows], dtype=torch.int64)
    except ValueError as e:
        raise _corrupt(path, e) from e
    pixels, y = v[:, :64], v[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or y.min() < 0 or y.max() > 9:
        raise _corrupt(path, "pixel outside 0..16 or label outside 0..9")
    # each pixel counts the on-bits of a 4x4 block, so 16 is "fully on"
    x = (pixels.float() / 16).reshape(-1, 1, 8, 8)
    return x, y

# -----------------------------------------------------------------------------
# splitting and batching

def train_test_split(x: torch.Tensor, y: torch.Tensor, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shuffle (deterministically for `seed`) and split; returns (x_train, y_train, x_test, y_test)."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = round(len(x) * test_fraction)
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


def make_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int = 32,
                shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader over (x, y). With shuffle=True the sequence of epoch orders depends only on `seed`."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator)

# -----------------------------------------------------------------------------
# synthetic problems

def _balanced_ids(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    # counts differ by at most one; shuffled so that unshuffled batches still mix classes
    return (torch.arange(n) % k)[torch.randperm(n, generator=g)]


def make_blobs(n: int = 300, n_classes: int = 3, n_features: int = 2, spread: float = 1.0,
               seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs: x float32 (n, n_features), y int64 (n,) class ids, classes balanced."""
    if n_classes < 2 or n_features < 2:
        raise ValueError("make_blobs needs n_classes >= 2 and n_features >= 2")
    g = torch.Generator().manual_seed(seed)
    # Centres sit evenly on a circle in a random plane, neighbours BLOB_SEPARATION
    # apart, so every seed poses an equally hard problem.
    plane, _ = torch.linalg.qr(torch.randn(n_features, 2, generator=g))  # orthonormal columns
    angles = 2 * math.pi * (torch.rand(1, generator=g) + torch.arange(n_classes) / n_classes)
    radius = BLOB_SEPARATION / (2 * math.sin(math.pi / n_classes))
    centres = radius * torch.stack([angles.cos(), angles.sin()], dim=1) @ plane.T
    y = _balanced_ids(n, n_classes, g)
    x = centres[y] + spread * torch.randn(n, n_features, generator=g)
    return x, y


def make_linearly_separable(n: int = 200, n_features: int = 2, margin: float = 0.5,
                            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes split by a random hyperplane through the origin with a gap of `margin` each side.

    x float32 (n, n_features); y float32 (n, 1) in {0., 1.}, ready for BCEWithLogitsLoss.
    """
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_features, generator=g)
    w = w / w.norm()
    x = torch.randn(n, n_features, generator=g)
    side = torch.where(x @ w >= 0, 1.0, -1.0)
    # Push every point `margin` further from the plane instead of rejecting
    # points inside the gap: n stays exact and |w.x| >= margin for all points.
    x = x + margin * side[:, None] * w
    y = (side > 0).float()[:, None]
    return x, y


def make_xor(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """XOR: points around the corners (+-1, +-1), y float32 (n, 1) = 1. where the corner's signs differ.

    Labels come from the corner, not the noisy point, so large `noise` makes label noise.
    """
    g = torch.Generator().manual_seed(seed)
    corner = _balanced_ids(n, 4, g)
    signs = torch.stack([corner // 2, corner % 2], dim=1).float() * 2 - 1
    x = signs + noise * torch.randn(n, 2, generator=g)
    y = (signs[:, 0] != signs[:, 1]).float()[:, None]
    return x, y
