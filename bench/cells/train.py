"""The "train" cell: train one built-in classifier for one seed, or reuse the cached weights.

Weights are artefacts cached by what produced them: `<cache>/models/<key>.pt`, with
key = sha256 of the cell's JSON config, plus a `<key>.json` sidecar holding the training
history. The sidecar is written last, so its presence means the weights are complete; a
second run of the same suite then returns the recorded history without training.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path

import torch

from bench.cells import CellResult, RunEnv
from bench.data import ImageData, load_dataset
from bench.models.build import build_classifier
from bench.store import schema as S
from bench.store.atomic import atomic_write_bytes, atomic_write_text
from bench.training.loop import train_classifier

HELDOUT_FRACTION = 0.1  # of the train split, never trained on: the overfitting watch's data
HELDOUT_MAX = 256


def run_train_cell(config: dict, inputs: dict[str, CellResult], env: RunEnv) -> CellResult:
    del inputs  # a train cell depends on nothing
    weights, sidecar = cache_paths(config, env.cache_dir)
    history = read_cached_history(sidecar) if weights.exists() else None
    if history is None:
        history = train_and_cache(config, env, weights, sidecar)
    train = config["train"]
    identity = {
        "model": config["model"],
        "arch": config["arch"],
        "recipe": train["recipe"],
        "dataset": config["dataset"]["name"],
        "seed": config["seed"],
        "epsilon": math.nan if train.get("epsilon") is None else float(train["epsilon"]),
    }
    return CellResult(records={S.TRAINING: [{**identity, **row} for row in history]},
                      artifacts={"weights": str(weights)})


def cache_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def cache_paths(config: dict, cache_dir: Path) -> tuple[Path, Path]:
    key = cache_key(config)
    folder = Path(cache_dir) / "models"
    return folder / f"{key}.pt", folder / f"{key}.json"


def read_cached_history(sidecar: Path) -> list[dict] | None:
    try:
        return json.loads(sidecar.read_text(encoding="utf-8"))["history"]
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, KeyError, TypeError):
        return None  # an unreadable sidecar (written by another version): train again


def train_and_cache(config: dict, env: RunEnv, weights: Path, sidecar: Path) -> list[dict]:
    data = load_dataset(config["dataset"], "train")
    train, heldout = split_heldout(data, int(config["dataset"].get("seed", 0)))
    seed = int(config["seed"])
    # Initialisation draws from the global RNG: fork it so nothing leaks to the caller.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(config, (data.channels, *data.image_size), data.num_classes)
    history = train_classifier(model, train, heldout, config["train"], seed, env.device,
                               env.progress)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(weights, buffer.getvalue())
    # allow_nan: the standard recipe's PGD accuracy is NaN, and it must read back as NaN.
    atomic_write_text(sidecar, json.dumps({"config": config, "history": history}, indent=1,
                                          sort_keys=True, allow_nan=True))
    return history


def split_heldout(data: ImageData, seed: int) -> tuple[ImageData, ImageData]:
    """(train, held-out): a seeded slice of the train split, so the test split stays
    untouched for evaluation. Seeded by the dataset seed, so every training seed sees the
    same examples and seeds differ only in initialisation, order and random starts."""
    n = len(data)
    n_held = min(HELDOUT_MAX, max(1, round(HELDOUT_FRACTION * n))) if n > 2 else 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held, kept = order[:n_held].sort().values, order[n_held:].sort().values
    return _take(data, kept), _take(data, held)


def _take(data: ImageData, idx: torch.Tensor) -> ImageData:
    return ImageData(data.x[idx], data.y[idx], data.num_classes, data.name)
