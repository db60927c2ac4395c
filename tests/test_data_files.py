"""The pure-Python file checks of `bench validate` agree with the loaders they stand for.

bench.data.files decides without reading data or importing torch; each test here builds a
dataset (sound or broken in one way) in the real on-disk format and asserts that the check
refuses exactly what the real loader refuses, with the same key in the message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.data import load_dataset
from bench.data.files import (
    DIGITS_CLASS_COUNTS,
    IMG_EXTENSIONS,
    check_dataset_files,
    stratified_split_problem,
)
from bench.errors import UserError
from bench.registry import check_target, import_target
from bench.suite.cell_configs import DatasetSpec

try:
    from tests.helpers import formats
except ImportError:  # torch-fidelity installs a top-level `tests` package that can shadow ours
    from helpers import formats  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]


def loader_refuses(cfg: DatasetSpec) -> str | None:
    try:
        for split in ("train", "test"):
            load_dataset(cfg, split)
    except UserError as exc:
        return str(exc)
    return None


def check_refuses(cfg: DatasetSpec) -> str | None:
    try:
        check_dataset_files(cfg)
    except UserError as exc:
        return str(exc)
    return None


def assert_agree(cfg: DatasetSpec) -> str | None:
    by_loader, by_check = loader_refuses(cfg), check_refuses(cfg)
    assert (by_loader is None) == (by_check is None), (by_loader, by_check)
    if by_check:  # the same key first, one line
        assert by_check.split(":")[0] == by_loader.split(":")[0] and "\n" not in by_check
    return by_check


def test_constants_equal_the_libraries():
    from sklearn.datasets import load_digits
    from torchvision.datasets.folder import IMG_EXTENSIONS as TORCHVISION_EXTENSIONS

    assert IMG_EXTENSIONS == TORCHVISION_EXTENSIONS
    assert tuple(np.bincount(load_digits().target)) == DIGITS_CLASS_COUNTS


@pytest.mark.parametrize("counts", [[2, 2], [3, 5, 2], [1, 9], [20, 20, 20], [6, 7, 8, 9]])
@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_split_rule_is_scikit_learns(counts, fraction):
    from sklearn.model_selection import train_test_split

    y = np.repeat(np.arange(len(counts)), counts)
    try:
        train_test_split(np.arange(len(y)), test_size=fraction, random_state=0, stratify=y)
        refused = False
    except ValueError:
        refused = True
    assert refused == (stratified_split_problem(counts, fraction) is not None)


@pytest.mark.parametrize("fraction", [0.001, 0.005, 0.25, 0.995, 0.999])
def test_digits_check_agrees_with_the_loader(fraction):
    assert_agree(DatasetSpec(name="d", kind="digits", test_fraction=fraction))


def _mnist(root: Path) -> None:
    formats.write_mnist(root, 10, 10)


BREAKS = {  # kind -> (writer, a file to remove or gzip)
    "mnist": (_mnist, "MNIST/raw/t10k-labels-idx1-ubyte"),
    "cifar10": (lambda root: formats.write_cifar10(root, 4), "cifar-10-batches-py/batches.meta"),
    "svhn": (lambda root: formats.write_svhn(root, 8, 4), "test_32x32.mat"),
}


@pytest.mark.parametrize("kind", sorted(BREAKS))
@pytest.mark.parametrize("damage", ["none", "removed", "gzipped"])
def test_torchvision_files_check_agrees_with_the_loader(kind, damage, tmp_path):
    write, victim = BREAKS[kind]
    write(tmp_path)
    if damage == "removed":
        (tmp_path / victim).unlink()
    elif damage == "gzipped":
        (tmp_path / victim).rename(tmp_path / f"{victim}.gz")
    message = assert_agree(DatasetSpec(name="x", kind=kind, root=str(tmp_path)))
    assert (message is None) == (damage == "none")
    if damage == "gzipped":
        assert "gunzip" in message


def _imagefolder(layout: str, root: Path) -> None:
    if layout == "flat":
        formats.write_imagefolder(root, n_per_class=4)
    elif layout == "splits":
        formats.write_imagefolder(root, n_per_class=2, with_splits=True)
    elif layout == "only-train":
        formats.write_imagefolder(root / "train", n_per_class=2)
    elif layout == "empty-root":
        root.mkdir()
    elif layout == "empty-class":
        formats.write_imagefolder(root, n_per_class=4)
        (root / "c").mkdir()
    elif layout == "no-images-but-text":
        (root / "a").mkdir(parents=True)
        (root / "a" / "notes.txt").write_text("not an image")
    elif layout == "test-class-not-in-train":
        formats.write_imagefolder(root, n_per_class=2, with_splits=True)
        formats.write_imagefolder(root / "test", classes=("z",), n_per_class=1)
    elif layout == "empty-test":
        formats.write_imagefolder(root / "train", n_per_class=2)
        for cls in ("a", "b"):
            (root / "test" / cls).mkdir(parents=True)
    elif layout == "too-few-to-split":
        formats.write_imagefolder(root, classes=("a", "b", "c"), n_per_class=1)
    elif layout == "nested-and-upper-case":
        formats.write_imagefolder(root, n_per_class=4)
        for path in (root / "a").glob("*.png"):
            (root / "a" / "deep").mkdir(exist_ok=True)
            path.rename(root / "a" / "deep" / path.name.replace(".png", ".PNG"))


@pytest.mark.parametrize("layout", ["flat", "splits", "only-train", "missing", "empty-root",
                                    "empty-class", "no-images-but-text", "test-class-not-in-train",
                                    "empty-test", "too-few-to-split", "nested-and-upper-case"])
def test_imagefolder_check_agrees_with_the_loader(layout, tmp_path):
    root = tmp_path / "imgs"
    _imagefolder(layout, root)
    message = assert_agree(DatasetSpec(name="x", kind="imagefolder", root=str(root),
                                       test_fraction=0.25))
    assert (message is None) == (layout in ("flat", "splits", "nested-and-upper-case"))


def _write_module(folder: Path, name: str, source: str) -> None:
    path = folder.joinpath(*name.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.parents:  # packages whose __init__ must never run
        if parent == folder:
            break
        (parent / "__init__.py").write_text("raise SystemExit('imported')\n")
    path.write_text(source)


SOURCE = """
import os.path
from math import sqrt as root
if True:
    AssignedInIf = 1
def net(): ...
class Net: ...
raise SystemExit("this module must not run when it is only checked")
"""


@pytest.mark.parametrize("target, ok", [
    ("pkg.sub.nets:net", True), ("pkg.sub.nets:Net", True), ("pkg.sub.nets:root", True),
    ("pkg.sub.nets:os", True), ("pkg.sub.nets:AssignedInIf", True), ("pkg.sub.nets.Net", True),
    ("pkg.sub.nets:Net.forward", True), ("pkg.sub.nets:absent", False),
    ("pkg.sub.missing:net", False), ("nosuchpkg.nets:net", False), ("json:loads", True),
    ("json:nothing_like_this", False), ("bench.models.zoo:fgsm_tutorial_net", None), ("bench.models.zoo:no_such_net", None),
])
def test_factory_check_reads_source_without_running_it(target, ok, tmp_path, monkeypatch):
    _write_module(tmp_path, "pkg.sub.nets", SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    if ok is None:  # a real module: the check must agree with importing it
        try:
            import_target(target)
            ok = True
        except UserError:
            ok = False
    if ok:
        check_target(target)
    else:
        with pytest.raises(UserError, match="cannot import module|has no attribute"):
            check_target(target)
    assert "pkg" not in sys.modules


def test_validate_imports_no_heavy_library():
    """`bench validate` on every shipped suite that needs no downloaded data: no torch,
    torchvision, scikit-learn, pandas or matplotlib in the process afterwards."""
    code = (
        "import sys\n"
        "from bench.cli import main\n"
        "codes = [main(['validate', s]) for s in ('suites/quickstart.toml', 'suites/gan-digits.toml',"
        " 'suites/throughput.toml')]\n"
        "heavy = ('torch', 'torchvision', 'sklearn', 'pandas', 'scipy', 'matplotlib', 'torchattacks',"
        " 'torch_fidelity', 'numpy', 'ray')\n"
        "print(codes, sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "[0, 0, 0] []"


def test_help_imports_no_heavy_library():
    code = ("import sys\nfrom bench.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'pandas', 'numpy', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "[]"
