"""The "train" cell: train one built-in classifier for one seed, or reuse the cached weights.

Weights are artefacts cached by what produced them (bench.store.artifact_cache): the cell's
portable config, the fingerprint of the training data and the bench code. A sidecar holds the
training history, so a second run of the same suite with the same code returns the recorded
history without training; changed code trains anew unless `reuse_other_code` is set.
"""

from __future__ import annotations

import io
import math

import torch

from bench.cells import CellResult, RunEnv
from bench.cells.common import fresh_classifier
from bench.data import ImageData, load_dataset
from bench.fingerprint import data_fingerprint
from bench.identity import artifact_key
from bench.store import artifact_cache
from bench.store import schema as S
from bench.store.schema import row
from bench.suite.cell_configs import TrainCellConfig
from bench.training.loop import train_classifier

HELDOUT_FRACTION = 0.1  # of the train split, never trained on: the overfitting watch's data
HELDOUT_MAX = 256
CACHE_KIND = "models"


def run_train_cell(config: TrainCellConfig, inputs: dict[str, CellResult],
                   env: RunEnv) -> CellResult:
    del inputs  # a train cell depends on nothing
    data = load_dataset(config.dataset, "train")
    fingerprint = data_fingerprint(data.x, data.y)
    key = artifact_key("train", config.as_dict(), {"data": fingerprint})
    cached = artifact_cache.lookup(env.cache_dir, CACHE_KIND, key, env.code, env.reuse_other_code)
    if cached is None:
        cached = train_and_cache(config, data, env, key)
    train = config.train
    identity = {
        "model": config.model,
        "arch": config.arch,
        "recipe": train.recipe,
        "dataset": config.dataset.name,
        "seed": config.seed,
        "epsilon": math.nan if train.epsilon is None else train.epsilon,
        "data_fingerprint": fingerprint,
        # Which bench code trained these weights (another code's only with reuse_other_code).
        "weights_code_sha256": cached.sidecar["code"]["source_sha256"],
    }
    history = cached.sidecar["history"]
    # kept: None in histories cached by code from before it was recorded (reuse_other_code).
    return CellResult(records={S.TRAINING: [row(S.TRAINING, **identity, **{"kept": None, **epoch})
                                            for epoch in history]},
                      artifacts={"weights": str(cached.payload)})


def train_and_cache(config: TrainCellConfig, data: ImageData, env: RunEnv,
                    key: str) -> artifact_cache.CachedArtifact:
    train, heldout = split_heldout(data, config.dataset.seed)
    model = fresh_classifier(config, data, config.seed)
    history = train_classifier(model, train, heldout, config.train, config.seed, env.device,
                               env.progress)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return artifact_cache.store(env.cache_dir, CACHE_KIND, key, env.code, buffer.getvalue(),
                                {"config": config.as_dict(), "history": history})


def split_heldout(data: ImageData, seed: int) -> tuple[ImageData, ImageData]:
    """(train, held-out): a seeded slice of the train split, so the test split stays
    untouched for evaluation. Seeded by the dataset seed, so every training seed sees the
    same examples and seeds differ only in initialisation, order and random starts."""
    n = len(data)
    n_held = min(HELDOUT_MAX, max(1, round(HELDOUT_FRACTION * n))) if n > 2 else 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held, kept = order[:n_held].sort().values, order[n_held:].sort().values
    return data.take(kept), data.take(held)
