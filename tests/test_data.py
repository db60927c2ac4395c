"""Dataset loaders, run through the real loading code on tiny files in the real formats."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import DATASETS, ImageData, load_dataset
from bench.data.transforms import conform
from bench.errors import DatasetNotFound, UserError
from bench.suite.cell_configs import DatasetSpec

try:
    from tests.helpers import formats
except ImportError:  # torch-fidelity installs a top-level `tests` package that can shadow ours
    from helpers import formats  # type: ignore[no-redef]

N_TRAIN, N_TEST, N_PER_BATCH, SVHN_TRAIN, SVHN_TEST = 64, 32, 20, 40, 20


def make_cfg(kind: str, **overrides) -> DatasetSpec:
    """A resolved `[datasets.NAME]` table: every key present, None when unset."""
    cfg = {
        "name": f"my-{kind}",
        "kind": kind,
        "root": None,
        "download": False,
        "image_size": None,
        "channels": None,
        "seed": 0,
        "test_fraction": 0.25,
        "limit_train": None,
        "limit_test": None,
    }
    assert set(overrides) <= set(cfg), f"unknown keys {set(overrides) - set(cfg)}"
    return DatasetSpec(name=cfg["name"], kind=kind, **overrides)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """One directory holding every fixture dataset (their layouts do not overlap)."""
    root = tmp_path_factory.mktemp("datasets")
    formats.write_mnist(root, N_TRAIN, N_TEST, seed=1)
    formats.write_mnist(root, N_TRAIN, N_TEST, seed=2, folder="FashionMNIST")
    formats.write_cifar10(root, N_PER_BATCH, seed=3)
    formats.write_svhn(root, SVHN_TRAIN, SVHN_TEST, seed=4)
    formats.write_imagefolder(root / "folder", classes=("cat", "dog", "eel"), n_per_class=8)
    return root


# kind -> (root below data_root, (C, H, W), len(train), len(test), num_classes)
FILE_KINDS = {
    "mnist": (".", (1, 28, 28), N_TRAIN, N_TEST, 10),
    "fashion-mnist": (".", (1, 28, 28), N_TRAIN, N_TEST, 10),
    "cifar10": (".", (3, 32, 32), 5 * N_PER_BATCH, N_PER_BATCH, 10),
    "svhn": (".", (3, 32, 32), SVHN_TRAIN, SVHN_TEST, 10),
    "imagefolder": ("folder", (3, 12, 12), 18, 6, 3),
}
TORCHVISION_KINDS = ["mnist", "fashion-mnist", "cifar10", "svhn"]


def check_image_data(data: ImageData, shape: tuple, n: int, num_classes: int, name: str) -> None:
    assert isinstance(data, ImageData)
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    assert tuple(data.x.shape) == (n, *shape) and tuple(data.y.shape) == (n,)
    assert data.x.is_contiguous()
    assert 0.0 <= data.x.min().item() and data.x.max().item() <= 1.0
    assert data.x.max().item() > 0.5  # not all dark: really scaled to [0, 1], not [0, 1/255]
    assert data.num_classes == num_classes and data.name == name
    assert 0 <= data.y.min().item() and data.y.max().item() < num_classes


def test_every_registered_kind_is_tested():
    assert set(DATASETS.names()) == set(FILE_KINDS) | {"digits"}


# --- every file-based kind, from its fixture ------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FILE_KINDS))
def test_loads_fixture_in_real_format(kind, data_root):
    sub, shape, n_train, n_test, num_classes = FILE_KINDS[kind]
    cfg = make_cfg(kind, root=str(data_root / sub))
    train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    check_image_data(train, shape, n_train, num_classes, cfg.name)
    check_image_data(test, shape, n_test, num_classes, cfg.name)
    assert set(train.y.tolist()) == set(range(num_classes))  # labels were not collapsed
    assert not torch.equal(train.x[: len(test)], test.x)


@pytest.mark.parametrize("kind", sorted(FILE_KINDS))
def test_image_size_and_channels_apply_to_every_kind(kind, data_root):
    sub, (c, _, _), n_train, _, num_classes = FILE_KINDS[kind]
    channels = 1 if c == 3 else 3
    cfg = make_cfg(kind, root=str(data_root / sub), image_size=[16, 20], channels=channels)
    data = load_dataset(cfg, "train")
    check_image_data(data, (channels, 16, 20), n_train, num_classes, cfg.name)


# --- exact round trips of known pixels and labels --------------------------------------------


MNIST_SPLITS = [("train", "train", N_TRAIN), ("test", "t10k", N_TEST)]


@pytest.mark.parametrize("kind, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
@pytest.mark.parametrize("split, prefix, n", MNIST_SPLITS)
def test_mnist_idx_round_trip(kind, folder, split, prefix, n, data_root):
    raw = data_root / folder / "raw"
    images = (raw / f"{prefix}-images-idx3-ubyte").read_bytes()
    labels = (raw / f"{prefix}-labels-idx1-ubyte").read_bytes()
    # The fixture itself follows the IDX spec: big-endian magic and sizes, then the bytes.
    assert struct.unpack(">IIII", images[:16]) == (2051, n, 28, 28)
    assert struct.unpack(">II", labels[:8]) == (2049, n)
    data = load_dataset(make_cfg(kind, root=str(data_root)), split)
    for i, r, c in [(0, 0, 0), (n - 1, 27, 27), (5, 12, 3), (n // 2, 7, 20)]:
        assert data.x[i, 0, r, c].item() == pytest.approx(images[16 + i * 784 + r * 28 + c] / 255)
    assert data.y.tolist() == list(labels[8:])


CIFAR_CASES = [("train", "data_batch_3", 2 * N_PER_BATCH), ("test", "test_batch", 0)]


@pytest.mark.parametrize("split, batch, offset", CIFAR_CASES)
def test_cifar10_pickle_round_trip(split, batch, offset, data_root):
    with open(data_root / "cifar-10-batches-py" / batch, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    data = load_dataset(make_cfg("cifar10", root=str(data_root)), split)
    for i, ch, r, c in [(0, 0, 0, 0), (3, 1, 17, 5), (N_PER_BATCH - 1, 2, 31, 30)]:
        expected = entry["data"][i, ch * 1024 + r * 32 + c] / 255
        assert data.x[offset + i, ch, r, c].item() == pytest.approx(expected)
    assert data.y[offset : offset + N_PER_BATCH].tolist() == entry["labels"]


@pytest.mark.parametrize("split, n", [("train", SVHN_TRAIN), ("test", SVHN_TEST)])
def test_svhn_mat_round_trip_and_label_ten_is_zero(split, n, data_root):
    from scipy.io import loadmat

    mat = loadmat(data_root / f"{split}_32x32.mat")
    assert mat["X"].shape == (32, 32, 3, n) and mat["y"].shape == (n, 1)
    raw = mat["y"][:, 0].astype(int)
    assert 10 in raw and 0 not in raw  # the official convention, so the mapping is exercised
    data = load_dataset(make_cfg("svhn", root=str(data_root)), split)
    for i, ch, r, c in [(0, 0, 0, 0), (2, 1, 9, 30), (n - 1, 2, 31, 1)]:
        assert data.x[i, ch, r, c].item() == pytest.approx(mat["X"][r, c, ch, i] / 255)
    assert data.y.tolist() == [0 if v == 10 else v for v in raw]


# --- digits ---------------------------------------------------------------------------------


def _rows(x: torch.Tensor, y: torch.Tensor) -> list[tuple]:
    return sorted(zip(y.tolist(), (tuple(v) for v in x.flatten(1).tolist())))


def test_digits_shapes_range_and_classes():
    cfg = make_cfg("digits")
    train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    check_image_data(train, (1, 8, 8), 1347, 10, "my-digits")
    check_image_data(test, (1, 8, 8), 450, 10, "my-digits")
    assert train.x.max().item() == 1.0  # raw 16 -> 1.0
    values = torch.unique(train.x * 16)
    assert torch.equal(values, values.round())  # k/16 exactly


def test_digits_split_is_a_stratified_partition():
    from sklearn.datasets import load_digits

    cfg = make_cfg("digits", seed=3, test_fraction=0.3)
    train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    bunch = load_digits()
    full_x = torch.tensor(bunch.images / 16.0, dtype=torch.float32)
    full_y = torch.tensor(bunch.target)
    # train + test is exactly the dataset, each image once: disjoint and complete.
    both_x, both_y = torch.cat([train.x, test.x])[:, 0], torch.cat([train.y, test.y])
    assert _rows(both_x, both_y) == _rows(full_x, full_y)
    for k in range(10):
        total = int((full_y == k).sum())
        assert abs(int((test.y == k).sum()) - 0.3 * total) <= 1


def test_digits_split_depends_on_seed_only():
    a = load_dataset(make_cfg("digits", seed=0), "test")
    again = load_dataset(make_cfg("digits", seed=0), "test")
    other = load_dataset(make_cfg("digits", seed=1), "test")
    assert torch.equal(a.x, again.x) and torch.equal(a.y, again.y)
    assert not torch.equal(a.x, other.x)


def test_digits_cache_is_not_shared_with_callers():
    first = load_dataset(make_cfg("digits"), "train")
    first.x.zero_()
    first.y.fill_(-1)
    second = load_dataset(make_cfg("digits"), "train")
    assert second.x.max().item() == 1.0 and second.y.min().item() == 0


def test_digits_resize_and_channels():
    base = load_dataset(make_cfg("digits"), "test")
    big = load_dataset(make_cfg("digits", image_size=[16, 16], channels=3), "test")
    assert tuple(big.x.shape[1:]) == (3, 16, 16)
    assert torch.equal(big.x[:, 0], big.x[:, 1]) and torch.equal(big.x[:, 0], big.x[:, 2])
    assert 0.0 <= big.x.min().item() and big.x.max().item() <= 1.0
    # bilinear upsampling keeps the mean brightness close
    assert big.x.mean().item() == pytest.approx(base.x.mean().item(), abs=0.02)


# --- conform --------------------------------------------------------------------------------


def test_conform_rgb_to_gray_uses_luma():
    x = torch.zeros(2, 3, 4, 4)
    x[:, 0], x[:, 1], x[:, 2] = 1.0, 0.5, 0.25
    gray = conform(x, None, 1)
    assert gray.shape == (2, 1, 4, 4)
    assert torch.allclose(gray, torch.full_like(gray, 0.299 + 0.587 * 0.5 + 0.114 * 0.25))


def test_conform_downsampling_is_antialiased():
    checker = (torch.arange(30).view(1, 30) + torch.arange(30).view(30, 1)) % 2
    x = checker.float().expand(1, 1, 30, 30).contiguous()
    small = conform(x, (10, 10), None)  # plain bilinear would sample pure 0s and 1s here
    assert small.shape == (1, 1, 10, 10)
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.05)
    assert torch.equal(conform(x, (30, 30), None), x) and torch.equal(conform(x, None, None), x)
    with pytest.raises(ValueError):
        conform(x, None, 2)


# --- imagefolder ----------------------------------------------------------------------------


def test_imagefolder_flat_split_is_seeded_and_stratified(tmp_path):
    formats.write_imagefolder(tmp_path, classes=("a", "b"), n_per_class=12, seed=5)
    cfg = make_cfg("imagefolder", root=str(tmp_path), test_fraction=0.25)
    train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    assert (len(train), len(test)) == (18, 6)
    assert test.y.bincount().tolist() == [3, 3]
    assert _rows(torch.cat([train.x, test.x]), torch.cat([train.y, test.y])) == _rows(
        *_read_folder(tmp_path, ["a", "b"])
    )
    again = load_dataset(cfg, "test")
    assert torch.equal(again.x, test.x)
    other = load_dataset(cfg.model_copy(update={"seed": 1}), "test")
    assert not torch.equal(other.x, test.x)


def _read_folder(root: Path, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for k, cls in enumerate(classes):
        for path in sorted((root / cls).glob("*.png")):
            xs.append(torch.from_numpy(np.array(Image.open(path).convert("RGB"))))
            ys.append(k)
    return torch.stack(xs).permute(0, 3, 1, 2).float() / 255, torch.tensor(ys)


def test_imagefolder_split_layout_round_trip(tmp_path):
    formats.write_imagefolder(
        tmp_path, classes=("x", "y"), n_per_class=3, size=(10, 14), with_splits=True
    )
    cfg = make_cfg("imagefolder", root=str(tmp_path))
    test = load_dataset(cfg, "test")
    expected_x, expected_y = _read_folder(tmp_path / "test", ["x", "y"])
    assert tuple(test.x.shape) == (6, 3, 10, 14)  # (H, W) from the files, not transposed
    assert torch.equal(test.x, expected_x) and torch.equal(test.y, expected_y)
    gray = load_dataset(cfg.model_copy(update={"channels": 1, "image_size": [5, 7]}), "train")
    assert tuple(gray.x.shape) == (6, 1, 5, 7)
    first = Image.open(tmp_path / "train" / "x" / "000.png").convert("L")
    first = first.resize((7, 5), Image.Resampling.BILINEAR)
    assert torch.allclose(gray.x[0, 0] * 255, torch.tensor(np.asarray(first), dtype=torch.float))


def test_imagefolder_class_indices_come_from_train(tmp_path):
    formats.write_imagefolder(tmp_path, classes=("a", "b", "c"), n_per_class=2, with_splits=True)
    for path in (tmp_path / "test" / "b").iterdir():
        path.unlink()
    (tmp_path / "test" / "b").rmdir()
    test = load_dataset(make_cfg("imagefolder", root=str(tmp_path)), "test")
    assert test.num_classes == 3 and test.y.tolist() == [0, 0, 2, 2]
    (tmp_path / "test" / "zebra").mkdir()
    with pytest.raises(UserError, match="zebra"):
        load_dataset(make_cfg("imagefolder", root=str(tmp_path)), "test")


def test_imagefolder_size_defaults_to_first_training_image(tmp_path):
    formats.write_imagefolder(tmp_path, classes=("a", "b"), n_per_class=4, size=(9, 11))
    Image.new("RGB", (30, 20), (255, 0, 0)).save(tmp_path / "b" / "zzz.png")
    cfg = make_cfg("imagefolder", root=str(tmp_path), test_fraction=0.4)
    both = [load_dataset(cfg, s) for s in ("train", "test")]
    assert all(tuple(d.x.shape[2:]) == (9, 11) for d in both)
    assert sum(len(d) for d in both) == 9


# --- load_dataset limits --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["digits", "mnist"])
def test_limit_takes_a_seeded_subset(kind, data_root):
    cfg = make_cfg(kind, **({} if kind == "digits" else {"root": str(data_root)}))
    full = load_dataset(cfg, "train")
    limited = load_dataset(cfg.model_copy(update={"limit_train": 10}), "train")
    again = load_dataset(cfg.model_copy(update={"limit_train": 10}), "train")
    assert len(limited) == 10 and limited.num_classes == full.num_classes
    assert torch.equal(limited.x, again.x) and torch.equal(limited.y, again.y)
    full_rows = set(_rows(full.x, full.y))
    assert set(_rows(limited.x, limited.y)) <= full_rows
    assert not torch.equal(limited.x, full.x[:10])  # a random subset, not a prefix
    assert len(load_dataset(cfg.model_copy(update={"limit_train": 10**6}), "train")) == len(full)
    assert len(load_dataset(cfg.model_copy(update={"limit_test": 7}), "train")) == len(full)  # other split only


def test_limit_subset_depends_on_seed(data_root):
    cfg = make_cfg("mnist", root=str(data_root), limit_test=8)
    a, b = load_dataset(cfg, "test"), load_dataset(cfg.model_copy(update={"seed": 1}), "test")
    assert len(a) == len(b) == 8 and not torch.equal(a.x, b.x)


# --- missing files --------------------------------------------------------------------------

EXPECTED_LAYOUT = {
    "mnist": "MNIST/raw/train-images-idx3-ubyte",
    "fashion-mnist": "FashionMNIST/raw/train-images-idx3-ubyte",
    "cifar10": "cifar-10-batches-py/data_batch_1",
    "svhn": "train_32x32.mat",
}


@pytest.mark.parametrize("kind", TORCHVISION_KINDS)
def test_missing_files_name_key_root_and_layout(kind, tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    with pytest.raises(DatasetNotFound) as info:
        load_dataset(make_cfg(kind, root=str(empty)), "train")
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert message.startswith(f"datasets.my-{kind}.root: ")
    assert str(empty) in message and EXPECTED_LAYOUT[kind] in message
    assert "download = true" in message and "\n" not in message


@pytest.mark.parametrize("kind", sorted(FILE_KINDS))
def test_a_dataset_without_root_cannot_be_configured(kind):
    """Loaders never see a missing root: the typed config refuses it (bench validate says so
    in one line, tests/test_suite_validation.py)."""
    with pytest.raises(ValueError, match=f"kind '{kind}' needs root"):
        make_cfg(kind)


def test_one_missing_mnist_file_is_named(tmp_path):
    formats.write_mnist(tmp_path, 10, 10)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFound, match="t10k-labels-idx1-ubyte"):
        load_dataset(make_cfg("mnist", root=str(tmp_path)), "train")


def test_gzipped_mnist_gets_a_gunzip_hint(tmp_path):
    formats.write_mnist(tmp_path, 10, 10)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "train-images-idx3-ubyte").rename(raw / "train-images-idx3-ubyte.gz")
    with pytest.raises(DatasetNotFound, match="train-images-idx3-ubyte.gz is there: gunzip it"):
        load_dataset(make_cfg("mnist", root=str(tmp_path)), "test")


def test_missing_cifar_meta_is_reported(tmp_path):
    formats.write_cifar10(tmp_path, 10)
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    with pytest.raises(DatasetNotFound, match="batches.meta"):
        load_dataset(make_cfg("cifar10", root=str(tmp_path)), "test")


def test_failed_download_is_a_dataset_not_found(tmp_path, monkeypatch):
    from urllib.error import URLError

    import torchvision.datasets.mnist as tv_mnist

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFound, match="download failed.*no network") as info:
        load_dataset(make_cfg("mnist", root=str(tmp_path), download=True), "train")
    assert "\n" not in str(info.value)


def test_download_true_uses_files_already_there(data_root, monkeypatch):
    import bench.data.torchvision_sets as sets

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download although the file exists")

    monkeypatch.setattr(sets, "download_url", no_network)
    data = load_dataset(make_cfg("svhn", root=str(data_root), download=True), "test")
    assert len(data) == SVHN_TEST


@pytest.mark.parametrize("layout", ["missing", "empty", "only-train"])
def test_imagefolder_missing_root_is_reported(layout, tmp_path):
    root = tmp_path / "imgs"
    if layout == "empty":
        root.mkdir()
    elif layout == "only-train":
        formats.write_imagefolder(root / "train", n_per_class=2)
    with pytest.raises(DatasetNotFound) as info:
        load_dataset(make_cfg("imagefolder", root=str(root)), "train")
    message = str(info.value)
    assert message.startswith("datasets.my-imagefolder.root: ") and str(root) in message
    assert "<root>/<class>/<image>" in message
