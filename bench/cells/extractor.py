"""The "extractor" cell: train the domain feature extractor for a dataset, once.

The weights are cached under `env.cache_dir/extractors/<hash>.pt`, keyed by a hash of the
dataset config and the training recipe, so every GAN cell (and every later run) that
evaluates on the same data uses the same extractor, and FIDs stay comparable.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch

from bench.cells import CellResult, RunEnv
from bench.data import load_dataset
from bench.metrics import feature_extractor as fe
from bench.store.atomic import atomic_write_bytes

# Bump "version" when DomainNet or the recipe changes meaning: it changes every hash.
RECIPE = {"version": 1, "steps": 1500, "batch_size": 64, "lr": 1e-3, "seed": 0}


def extractor_hash(dataset: dict) -> str:
    """16 hex digits identifying (dataset content config, recipe, weights format)."""
    # The suite's name for the dataset does not change the data, so it stays out of the hash.
    data = {k: v for k, v in dataset.items() if k != "name"}
    payload = json.dumps({"dataset": data, "recipe": RECIPE, "format": fe.WEIGHTS_FORMAT},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def run_extractor_cell(config: dict, inputs: dict, env: RunEnv) -> CellResult:
    dataset = config["dataset"]
    config_hash = extractor_hash(dataset)
    path = Path(env.cache_dir) / "extractors" / f"{config_hash}.pt"
    if path.exists():
        payload = fe.load_weights(path)
    else:
        payload = _train(dataset, config_hash, env.device)
        buf = io.BytesIO()
        torch.save(payload, buf)
        atomic_write_bytes(path, buf.getvalue())
    row = {
        "name": fe.extractor_name(config_hash),
        "hash": config_hash,
        "dataset": dataset["name"],
        "test_accuracy": float(payload["test_accuracy"]),
        "feature_dim": int(payload["feature_dim"]),
        "train_steps": RECIPE["steps"],
    }
    return CellResult(records={"extractors": [row]}, artifacts={"weights": str(path)})


def _train(dataset: dict, config_hash: str, device: str) -> dict:
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    epochs = -(-RECIPE["steps"] * RECIPE["batch_size"] // len(train))  # ceil: at least `steps`
    net = fe.train_extractor(train.x, train.y, train.num_classes, epochs=epochs, lr=RECIPE["lr"],
                             batch_size=RECIPE["batch_size"], seed=RECIPE["seed"], device=device)
    return fe.weights_payload(net, train.channels, train.num_classes, config_hash,
                              fe.accuracy(net, test.x, test.y))
