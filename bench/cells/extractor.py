"""The "extractor" cell: train the domain feature extractor for a dataset, once.

The trained weights are cached (bench.store.artifact_cache) by the dataset's portable config,
the training data's fingerprint, the recipe and the bench code, so every GAN cell (and every
later run of the same code) that evaluates on the same data uses the same extractor.

The extractor is *identified* by a hash of its trained weights, not of its recipe: FIDs are
compared (and FID statistics reused) only under the very same network.
"""

from __future__ import annotations

import io

import torch

from bench.cells import CellResult, RunEnv
from bench.data import ImageData, load_dataset
from bench.fingerprint import data_fingerprint
from bench.identity import artifact_key
from bench.metrics import feature_extractor as fe
from bench.store import artifact_cache
from bench.store import schema as S
from bench.store.schema import row
from bench.suite.cell_configs import DatasetSpec, ExtractorCellConfig

# Bump "version" when DomainNet or the recipe changes meaning.
RECIPE = {"version": 1, "steps": 1500, "batch_size": 64, "lr": 1e-3, "seed": 0}
CACHE_KIND = "extractors"


def run_extractor_cell(config: ExtractorCellConfig, inputs: dict, env: RunEnv) -> CellResult:
    dataset = config.dataset
    train = load_dataset(dataset, "train")
    # The suite's name for the dataset does not change the data, so it stays out of the key.
    content = {"data": data_fingerprint(train.x, train.y), "recipe": RECIPE,
               "format": fe.WEIGHTS_FORMAT}
    key = artifact_key("extractor", dataset.as_content(), content)
    cached = artifact_cache.lookup(env.cache_dir, CACHE_KIND, key, env.code, env.reuse_other_code)
    if cached is None:
        payload = _train(dataset, train, env.device)
        buf = io.BytesIO()
        torch.save(payload, buf)
        cached = artifact_cache.store(env.cache_dir, CACHE_KIND, key, env.code, buf.getvalue(),
                                      {"hash": payload["hash"],
                                       "test_accuracy": payload["test_accuracy"],
                                       "feature_dim": payload["feature_dim"]})
    side = cached.sidecar
    record = row(S.EXTRACTORS, name=fe.extractor_name(side["hash"]), hash=side["hash"],
                 dataset=dataset.name, test_accuracy=side["test_accuracy"],
                 feature_dim=side["feature_dim"], train_steps=RECIPE["steps"],
                 data_fingerprint=content["data"])
    return CellResult(records={S.EXTRACTORS: [record]}, artifacts={"weights": str(cached.payload)})


def _train(dataset: DatasetSpec, train: ImageData, device: str) -> dict:
    test = load_dataset(dataset, "test")
    epochs = -(-RECIPE["steps"] * RECIPE["batch_size"] // len(train))  # ceil: at least `steps`
    net = fe.train_extractor(train.x, train.y, train.num_classes, epochs=epochs, lr=RECIPE["lr"],
                             batch_size=RECIPE["batch_size"], seed=RECIPE["seed"], device=device)
    return fe.weights_payload(net, train.channels, train.num_classes,
                              fe.accuracy(net, test.x, test.y))
