"""Inputs for running the gan cell directly: a quick extractor result, a resolved config."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.cells import CellResult, RunEnv
from bench.data import load_dataset
from bench.metrics import feature_extractor as fe
from bench.store import schema as S
from bench.suite.cell_configs import GanCellConfig
from bench.suite.schema import GanConfig
from tests.helpers.configs import DIGITS


def quick_extractor_result(folder: Path) -> CellResult:
    """The extractor cell's result shape, with a quickly trained (3 epochs) extractor."""
    train, test = load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")
    net = fe.train_extractor(train.x, train.y, 10, epochs=3, lr=1e-3, batch_size=64, seed=0)
    payload = fe.weights_payload(net, 1, 10, fe.accuracy(net, test.x, test.y))
    path = folder / "weights.pt"
    torch.save(payload, path)
    h = payload["hash"]
    row = {"name": fe.extractor_name(h), "hash": h, "dataset": "digits", "test_accuracy": 0.9}
    return CellResult(records={S.EXTRACTORS: [row]}, artifacts={"weights": str(path)})


def gan_config(**over) -> GanCellConfig:
    """A resolved gan-cell config: a small DCGAN with the schema's defaults, plus `over`."""
    section = GanConfig(arch="dcgan", dataset="digits", steps=4, batch_size=16, eval_every=2,
                        num_samples=40, z_dim=16)
    fields = section.model_dump(exclude={"dataset", "feature_extractor", "train"})
    return GanCellConfig(**fields | {"gan": "my-dcgan", "dataset": DIGITS,
                                     "feature_extractor": "domain", "inception_weights": None,
                                     "seed": 0} | over)


def env_for(tmp_path: Path) -> RunEnv:
    return RunEnv(device="cpu", cache_dir=tmp_path / "cache", artifacts_dir=tmp_path / "art",
                  progress=False)
