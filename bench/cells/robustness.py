"""The "robustness" cell: one model (one seed) against one attack over a list of ε.

Returns one `robustness` row per ε. Built-in models load the weights their train cell
produced; users' models come from their factory and checkpoint. Either way the model takes
pixels in [0, 1] and is attacked in eval mode.
"""

from __future__ import annotations

import math
import time

from torch import nn

from bench.attacks import ATTACKS, predict
from bench.cells import CellResult, RunEnv
from bench.cells.common import trained_classifier, user_classifier
from bench.data import ImageData, load_dataset, seeded_subset
from bench.errors import CellFailed
from bench.fingerprint import data_fingerprint
from bench.identity import file_sha256
from bench.metrics.robustness import robustness_row
from bench.store import schema as S
from bench.store.schema import row
from bench.suite.cell_configs import RobustnessCellConfig, UserSource


def run_robustness_cell(config: RobustnessCellConfig, inputs: dict[str, CellResult],
                        env: RunEnv) -> CellResult:
    # Seeded by the dataset seed, not the cell seed: every model, attack and seed is then
    # evaluated on the same examples, so their numbers compare pairwise (e.g. PGD vs FGSM).
    data = seeded_subset(load_dataset(config.dataset, config.split), config.limit,
                         config.dataset.seed)
    model = load_model(config, inputs, data)
    sweep = ATTACKS.get(config.attack)

    start = time.perf_counter()
    clean_pred = predict(model, data.x, config.batch_size, env.device)
    results = sweep(model, data.x, data.y, config.epsilons, config.batch_size, env.device,
                    seed=config.seed, progress=env.progress, **config.attack_params.model_dump())
    seconds = time.perf_counter() - start

    cell = {
        "model": config.model,
        "dataset": config.dataset.name,
        "split": config.split,
        "attack": config.attack,
        "seed": config.seed,
        "data_fingerprint": data_fingerprint(data.x, data.y),  # what was evaluated
        "checkpoint_sha256": checkpoint_sha256(config, inputs),
    }
    images_per_s = len(data) * len(results) / seconds if seconds > 0 else math.nan
    rows = [row(S.ROBUSTNESS, **cell, attack_repr=res.attack_repr, epsilon=res.epsilon,
                **robustness_row(data.y, clean_pred, res.adv_pred, res.linf, res.epsilon),
                zero_grad_frac=res.zero_grad_frac, eval_mode=res.eval_mode,
                seconds=seconds,  # the whole cell's attack time: clean pass + every ε
                images_per_s=images_per_s)
            for res in results]
    return CellResult(records={S.ROBUSTNESS: rows})


def load_model(config: RobustnessCellConfig, inputs: dict[str, CellResult],
               data: ImageData) -> nn.Module:
    if isinstance(config.source, UserSource):
        return user_classifier(config.source, config.model)
    if "model" not in inputs or "weights" not in inputs["model"].artifacts:
        raise CellFailed(f"model {config.model!r}: no trained weights from its train cell")
    return trained_classifier(config.source, inputs["model"].artifacts["weights"], data,
                              config.model)


def checkpoint_sha256(config: RobustnessCellConfig, inputs: dict[str, CellResult]) -> str:
    """sha256 of the weights file evaluated: the user's checkpoint, or the trained weights."""
    if isinstance(config.source, UserSource):
        return config.source.checkpoint_sha256
    return file_sha256(inputs["model"].artifacts["weights"])
