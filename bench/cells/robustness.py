"""The "robustness" cell: one model (one seed) against one attack over a list of ε.

Returns one `robustness` row per ε. Built-in models load the weights their train cell
produced; users' models come from their factory and checkpoint. Either way the model takes
pixels in [0, 1] and is attacked in eval mode.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from bench.attacks import ATTACKS, attack_mode, predict
from bench.cells import CellResult, RunEnv
from bench.data import ImageData, load_dataset
from bench.errors import CellFailed
from bench.fingerprint import data_fingerprint
from bench.identity import file_sha256
from bench.metrics.robustness import robustness_row
from bench.models.build import build_classifier, load_state_dict_file, load_strict, load_user_model
from bench.store import schema as S


def run_robustness_cell(config: dict, inputs: dict[str, CellResult], env: RunEnv) -> CellResult:
    data = load_dataset(config["dataset"], config["split"])
    # Seeded by the dataset seed, not the cell seed: every model, attack and seed is then
    # evaluated on the same examples, so their numbers compare pairwise (e.g. PGD vs FGSM).
    data = limit_subset(data, config.get("limit"), int(config["dataset"].get("seed", 0)))
    fingerprint = data_fingerprint(data.x, data.y)  # what was evaluated: part of identity
    model = load_model(config, inputs, data)
    sweep = ATTACKS.get(config["attack"])
    batch_size = int(config["batch_size"])

    start = time.perf_counter()
    with attack_mode(model, env.device):
        clean_pred = predict(model, data.x, batch_size, env.device)
        results = sweep(model, data.x, data.y, config["epsilons"], batch_size, env.device,
                        seed=int(config["seed"]), progress=env.progress, **config["attack_params"])
    seconds = time.perf_counter() - start

    images = len(data) * len(results)
    rows = []
    for res in results:
        rows.append({
            "model": config["model"],
            "dataset": config["dataset"]["name"],
            "split": config["split"],
            "attack": config["attack"],
            "attack_repr": res.attack_repr,
            "epsilon": res.epsilon,
            "seed": config["seed"],
            "data_fingerprint": fingerprint,
            "checkpoint_sha256": checkpoint_sha256(config, inputs),
            **robustness_row(data.y, clean_pred, res.adv_pred, res.linf, res.epsilon),
            "zero_grad_frac": res.zero_grad_frac,
            "eval_mode": res.eval_mode,
            "seconds": seconds,  # the whole cell's attack time: clean pass + every ε
            "images_per_s": images / seconds if seconds > 0 else float("nan"),
        })
    return CellResult(records={S.ROBUSTNESS: rows})


def load_model(config: dict, inputs: dict[str, CellResult], data: ImageData) -> nn.Module:
    source, name = config["source"], config["model"]
    if source.get("factory") is not None:
        return load_user_model(source, name)
    if "model" not in inputs or "weights" not in inputs["model"].artifacts:
        raise CellFailed(f"model {name!r}: no trained weights from its train cell")
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten anyway
        model = build_classifier(source, (data.channels, *data.image_size), data.num_classes)
    path = inputs["model"].artifacts["weights"]
    load_strict(model, load_state_dict_file(path, f"models.{name} (trained weights)"),
                f"models.{name} (trained weights)", f"architecture {source['arch']!r}")
    return model.eval()


def checkpoint_sha256(config: dict, inputs: dict[str, CellResult]) -> str:
    """sha256 of the weights file evaluated: the user's checkpoint, or the trained weights."""
    source = config["source"]
    if source.get("factory") is not None:
        return source["checkpoint_sha256"]
    return file_sha256(inputs["model"].artifacts["weights"])


def limit_subset(data: ImageData, limit: int | None, seed: int) -> ImageData:
    """A seeded random subset of `limit` examples (files are often sorted by class)."""
    if limit is None or limit >= len(data):
        return data
    gen = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(data), generator=gen)[:limit].sort().values
    return ImageData(data.x[keep], data.y[keep], data.num_classes, data.name)
