"""Tiny suite files for executor, fault and resume tests: real cells, seconds to run."""

from __future__ import annotations

from pathlib import Path


def tiny_digits_suite(name: str = "tiny", seeds: tuple[int, ...] = (0, 1), epochs: int = 1,
                      limit_train: int = 300, limit: int = 200, pgd: bool = True,
                      extra_suite_keys: str = "") -> str:
    """Train a small CNN per seed on the embedded digits, then FGSM (and PGD) sweeps on it.

    Cells: one train cell per seed, and per seed one robustness cell per attack, each
    depending on that seed's train cell.
    """
    text = f"""
[suite]
name = "{name}"
seeds = {list(seeds)}
device = "cpu"
{extra_suite_keys}

[datasets.digits]
kind = "digits"
limit_train = {limit_train}

[models.cnn]
arch = "small-cnn"
dataset = "digits"
train = {{ epochs = {epochs} }}

[[robustness]]
models = ["cnn"]
attack = "fgsm"
epsilons = [0, 0.1, 0.3]
limit = {limit}
"""
    if pgd:
        text += f"""
[[robustness]]
models = ["cnn"]
attack = "pgd"
steps = 3
epsilons = [0.1]
limit = {limit}
"""
    return text


def write_suite(folder: Path, text: str, filename: str = "suite.toml") -> Path:
    path = Path(folder) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cells_per_tiny_suite(seeds: int = 2, pgd: bool = True) -> int:
    return seeds * (2 + pgd)


def fast_then_slow_suite(name: str = "twospeed", slow_epochs: int = 10, limit: int = 200) -> str:
    """Two models, one seed: a fast one (1 epoch on 300 digits) and a slow one (`slow_epochs`
    on all ~1350 training digits, about 0.1-0.3 s per epoch on one core), each with an FGSM
    sweep. Plan (and local run) order: train fast, fgsm fast, train slow, fgsm slow, so an
    interruption after two journaled cells lands inside the slow training."""
    return f"""
[suite]
name = "{name}"
seeds = [0]
device = "cpu"

[datasets.small]
kind = "digits"
limit_train = 300

[datasets.full]
kind = "digits"

[models.fast]
arch = "small-cnn"
dataset = "small"
train = {{ epochs = 1 }}

[models.slow]
arch = "small-cnn"
dataset = "full"
train = {{ epochs = {slow_epochs} }}

[[robustness]]
models = ["fast", "slow"]
attack = "fgsm"
epsilons = [0, 0.1]
limit = {limit}
"""


# `bench run` end to end (tests/test_run_e2e.py), run once per session by the `tiny_run`
# fixture (tests/conftest.py): two seeds of a small CNN, FGSM and PGD.
E2E_TINY = """
[suite]
name = "tiny"
seeds = [0, 1]

[datasets.digits]
kind = "digits"
limit_train = 400
limit_test = 150

[models.cnn]
arch = "small-cnn"
dataset = "digits"
train = { recipe = "standard", epochs = 2 }

[[robustness]]
models = ["cnn"]
attack = "fgsm"
epsilons = [0, 0.1, 0.3]

[[robustness]]
models = ["cnn"]
attack = "pgd"
steps = 3
epsilons = [0.1]
"""
