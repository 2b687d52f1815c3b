"""Tests for the shipped datasets and course/data.py."""

import gzip
import hashlib
import math
import re
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from course import data

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parent.parent
# database=None: failing examples are reported, not saved under .hypothesis/ for replay
fast = settings(max_examples=25, deadline=None, database=None)
seeds = st.integers(0, 2**31 - 1)

# -----------------------------------------------------------------------------
# the real datasets

@pytest.fixture(scope="module")
def iris():
    return data.load_iris()


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


def test_datasets_dir_is_the_repo_folder():
    assert data.DATASETS_DIR == REPO / "datasets"


def test_iris(iris):
    x, y = iris
    assert x.shape == (150, 4) and x.dtype == torch.float32
    assert y.shape == (150,) and y.dtype == torch.int64
    assert y.bincount().tolist() == [50, 50, 50]
    assert y.tolist() == sorted(y.tolist())  # file is grouped by species
    assert data.IRIS_CLASSES == ("setosa", "versicolor", "virginica")
    # min / max per feature as documented in scikit-learn's iris.rst
    assert x.min(0).values.tolist() == pytest.approx([4.3, 2.0, 1.0, 0.1])
    assert x.max(0).values.tolist() == pytest.approx([7.9, 4.4, 6.9, 2.5])
    assert x.mean(0).tolist() == pytest.approx([5.84, 3.05, 3.76, 1.20], abs=0.01)


def test_digits(digits):
    x, y = digits
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    assert torch.equal(x * 16, (x * 16).round())  # still the integer counts 0..16, scaled
    counts = y.bincount(minlength=10)
    assert len(counts) == 10 and counts.sum() == 1797
    assert counts.min() >= 170 and counts.max() <= 190


def test_digits_pixels_are_row_major(digits):
    # the first image is a zero; its top row in the raw file is 0,0,5,13,9,1,0,0
    x, _ = digits
    assert (x[0, 0, 0] * 16).tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def _readme_checksums() -> dict[str, str]:
    text = (REPO / "datasets" / "README.md").read_text()
    rows = re.findall(r"^\|\s*`?([\w.]+)`?\s*\|\s*`?([0-9a-f]{64})`?\s*\|", text, re.M)
    return dict(rows)


def test_checksums_match_readme():
    sums = _readme_checksums()
    assert set(sums) == {"iris.csv", "digits.csv.gz"}
    for name, expected in sums.items():
        actual = hashlib.sha256((REPO / "datasets" / name).read_bytes()).hexdigest()
        assert actual == expected, f"datasets/{name} changed: update datasets/README.md or restore it"


def test_digits_gzip_is_deterministic():
    raw = (REPO / "datasets" / "digits.csv.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # mtime 0, so re-creating it gives the same bytes


@pytest.mark.parametrize("load, name", [(data.load_iris, "iris.csv"), (data.load_digits, "digits.csv.gz")])
def test_missing_file_says_what_to_do(load, name, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATASETS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        load()
    assert str(tmp_path / name) in str(e.value)
    assert "COURSE_DATASETS_DIR" in str(e.value)


def test_env_var_redirects_loads(tmp_path, monkeypatch):
    (tmp_path / "iris.csv").write_bytes((REPO / "datasets" / "iris.csv").read_bytes())
    monkeypatch.setenv("COURSE_DATASETS_DIR", str(tmp_path))
    assert data.load_iris()[0].shape == (150, 4)


def _iris_text() -> str:
    return (REPO / "datasets" / "iris.csv").read_text()


CORRUPTIONS = {
    "iris.csv": [
        lambda: b"",                                                   # empty
        lambda: _iris_text().replace("sepal_length_cm", "sl").encode(),  # wrong header
        lambda: "\n".join(_iris_text().splitlines()[:100]).encode(),     # truncated
        lambda: _iris_text().replace("setosa", "rose").encode(),          # unknown species
        lambda: _iris_text().replace("5.1,3.5", "5.1,abc", 1).encode(),   # not a number
    ],
    "digits.csv.gz": [
        lambda: b"not gzip at all",
        lambda: (REPO / "datasets" / "digits.csv.gz").read_bytes()[:5000],  # cut short
        lambda: gzip.compress(b"p0,label\n1,2\n"),                            # wrong header
        lambda: gzip.compress(gzip.decompress((REPO / "datasets" / "digits.csv.gz").read_bytes())
                              .replace(b"\n0,0,5,13,", b"\n0,0,5,99,", 1)),  # pixel > 16
    ],
}


@pytest.mark.parametrize("name, i", [(n, i) for n, fs in CORRUPTIONS.items() for i in range(len(fs))])
def test_corrupt_file_raises_value_error(name, i, tmp_path, monkeypatch):
    (tmp_path / name).write_bytes(CORRUPTIONS[name][i]())
    monkeypatch.setenv("COURSE_DATASETS_DIR", str(tmp_path))
    load = data.load_iris if name == "iris.csv" else data.load_digits
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / name))):
        load()

# -----------------------------------------------------------------------------
# splitting and batching

@fast
@given(n=st.integers(2, 300), frac=st.floats(0.05, 0.95), seed=seeds)
def test_train_test_split_is_a_deterministic_partition(n, frac, seed):
    x = torch.arange(n).float()[:, None]
    y = torch.arange(n)
    xtr, ytr, xte, yte = data.train_test_split(x, y, frac, seed)
    assert len(yte) == round(n * frac) and len(ytr) + len(yte) == n
    assert torch.equal(xtr[:, 0].long(), ytr) and torch.equal(xte[:, 0].long(), yte)  # rows stay paired
    assert sorted(torch.cat([ytr, yte]).tolist()) == list(range(n))
    again = data.train_test_split(x, y, frac, seed)
    assert all(torch.equal(a, b) for a, b in zip((xtr, ytr, xte, yte), again))


def test_train_test_split_shuffles_by_seed():
    y = torch.arange(100)
    a = data.train_test_split(y, y, 0.2, seed=0)[3]
    b = data.train_test_split(y, y, 0.2, seed=1)[3]
    assert not torch.equal(a, b) and not torch.equal(a, torch.arange(20))


def test_train_test_split_rejects_bad_input():
    with pytest.raises(ValueError):
        data.train_test_split(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError):
        data.train_test_split(torch.zeros(3), torch.zeros(3), test_fraction=1.0)


def _epochs(loader, k=2):
    return [torch.cat([yb for _, yb in loader]) for _ in range(k)]


@fast
@given(n=st.integers(1, 200), batch_size=st.integers(1, 64), seed=seeds)
def test_make_loader_shuffle_is_seeded_and_covers_everything(n, batch_size, seed):
    x, y = torch.randn(n, 3), torch.arange(n)
    def loader():
        return data.make_loader(x, y, batch_size=batch_size, shuffle=True, seed=seed)
    batches = list(loader())
    assert all(len(yb) == batch_size for _, yb in batches[:-1]) and 1 <= len(batches[-1][1]) <= batch_size
    assert all(torch.equal(xb, x[yb]) for xb, yb in batches)  # pairs stay together
    epochs = _epochs(loader())
    for order in epochs:
        assert sorted(order.tolist()) == list(range(n))  # every sample exactly once
    assert all(torch.equal(a, b) for a, b in zip(epochs, _epochs(loader())))


def test_make_loader_order():
    y = torch.arange(100)
    plain = _epochs(data.make_loader(y, y, batch_size=7))
    assert all(torch.equal(o, y) for o in plain)  # shuffle=False keeps the order
    a = _epochs(data.make_loader(y, y, shuffle=True, seed=0))
    b = _epochs(data.make_loader(y, y, shuffle=True, seed=1))
    assert not torch.equal(a[0], y) and not torch.equal(a[0], b[0])
    assert not torch.equal(a[0], a[1])  # a fresh order each epoch


def test_make_loader_leaves_global_rng_alone():
    state = torch.get_rng_state()
    _epochs(data.make_loader(torch.arange(50), torch.arange(50), shuffle=True, seed=3))
    assert torch.equal(torch.get_rng_state(), state)

# -----------------------------------------------------------------------------
# synthetic problems

GENERATORS = {
    "blobs": lambda n, seed: data.make_blobs(n=n, seed=seed),
    "linear": lambda n, seed: data.make_linearly_separable(n=n, seed=seed),
    "xor": lambda n, seed: data.make_xor(n=n, seed=seed),
}


@pytest.mark.parametrize("kind", GENERATORS)
@fast
@given(n=st.integers(1, 300), seed=seeds, other=seeds)
def test_generators_are_deterministic_per_seed(kind, n, seed, other):
    make = GENERATORS[kind]
    state = torch.get_rng_state()
    x, y = make(n, seed)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never touched
    x2, y2 = make(n, seed)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    if other != seed:
        assert not torch.equal(x, make(n, other)[0])


@fast
@given(n=st.integers(1, 300), k=st.integers(2, 6), d=st.integers(2, 5),
       spread=st.floats(0.1, 3.0), seed=seeds)
def test_blobs_shapes_and_balance(n, k, d, spread, seed):
    x, y = data.make_blobs(n, n_classes=k, n_features=d, spread=spread, seed=seed)
    assert x.shape == (n, d) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    counts = y.bincount(minlength=k)
    assert len(counts) == k and counts.max() - counts.min() <= 1


@fast
@given(k=st.integers(2, 6), d=st.integers(2, 5), seed=seeds)
def test_blob_centres_are_separated(k, d, seed):
    # with no noise every point sits on its class centre
    x, y = data.make_blobs(10 * k, n_classes=k, n_features=d, spread=0.0, seed=seed)
    centres = torch.stack([x[y == c][0] for c in range(k)])
    assert all(torch.allclose(x[y == c], centres[c]) for c in range(k))
    dist = torch.cdist(centres.double(), centres.double())
    nearest = (dist + torch.eye(k, dtype=torch.float64) * 1e9).min()
    assert nearest.item() == pytest.approx(data.BLOB_SEPARATION, rel=1e-4)


def test_blobs_are_learnable():
    # at the default spread a nearest-centre rule is right most of the time
    x, y = data.make_blobs(seed=0)
    centres = torch.stack([x[y == c].mean(0) for c in range(3)])
    accuracy = (torch.cdist(x, centres).argmin(1) == y).float().mean()
    assert accuracy > 0.9


def _perceptron_mistakes(x, s, max_mistakes):
    """Mistakes a bias-free perceptron makes before separating (x, s), or None past max_mistakes."""
    w = torch.zeros(x.shape[1], dtype=x.dtype)
    for k in range(max_mistakes + 1):
        wrong = (s * (x @ w) <= 0).nonzero()
        if len(wrong) == 0:
            return k
        i = wrong[0, 0]
        w += s[i] * x[i]
    return None


@fast
@given(n=st.integers(1, 200), d=st.integers(1, 5), margin=st.floats(0.2, 2.0), seed=seeds)
def test_linearly_separable_has_the_margin(n, d, margin, seed):
    x, y = data.make_linearly_separable(n, n_features=d, margin=margin, seed=seed)
    assert x.shape == (n, d) and x.dtype == torch.float32
    assert y.shape == (n, 1) and y.dtype == torch.float32
    assert set(y.flatten().tolist()) <= {0.0, 1.0}
    # Novikoff: if some unit w has s * (w . x) >= margin for every point, a perceptron
    # separates the data after at most (R / margin)^2 mistakes, R = max |x|.
    x64, s = x.double(), y.double().flatten() * 2 - 1
    gamma = margin * (1 - 1e-4)  # float32 rounding of x
    bound = math.floor((x64.norm(dim=1).max().item() / gamma) ** 2)
    assert _perceptron_mistakes(x64, s, bound) is not None


@fast
@given(n=st.integers(1, 200), margin=st.floats(0.0, 2.0), seed=seeds)
def test_linearly_separable_1d_gap(n, margin, seed):
    # in one dimension w is +1 or -1, so the gap must show up directly
    x, y = data.make_linearly_separable(n, n_features=1, margin=margin, seed=seed)
    assert (x.abs() >= margin * (1 - 1e-6)).all()
    pos, neg = x[y == 1], x[y == 0]
    assert (pos > 0).all() and (neg < 0).all() or (pos < 0).all() and (neg > 0).all()


def test_linearly_separable_default_has_both_classes():
    _, y = data.make_linearly_separable()
    assert 0.3 < y.mean() < 0.7


@fast
@given(n=st.integers(1, 300), noise=st.floats(0.0, 0.15), seed=seeds)
def test_xor_follows_the_sign_rule(n, noise, seed):
    x, y = data.make_xor(n, noise=noise, seed=seed)
    assert x.shape == (n, 2) and x.dtype == torch.float32
    assert y.shape == (n, 1) and y.dtype == torch.float32
    # noise <= 0.15 is > 6 stds short of flipping a sign
    assert torch.equal(y.flatten(), (x[:, 0] * x[:, 1] < 0).float())
    corners = torch.stack([x[:, 0] > 0, x[:, 1] > 0], 1).long() @ torch.tensor([2, 1])
    counts = corners.bincount(minlength=4)
    assert counts.max() - counts.min() <= 1  # the four corners are balanced
    if noise == 0:
        assert torch.equal(x.abs(), torch.ones(n, 2))
