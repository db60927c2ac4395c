"""The "robustness" cell: one model (one seed) against one attack over a list of ε.

Returns one `robustness` row per ε, and beside it one `correctness` row (which examples were
right clean and under attack, bit-packed) for the worst case over attacks and the paired
sanity checks; when the plan asks, `checks` rows of the model-level sanity checks too. Built-in models
load the weights their train cell produced; users' models come from their factory and
checkpoint. Either way the model takes pixels in [0, 1] and is attacked in eval mode.
"""

from __future__ import annotations

import json
import math
import time
from typing import Callable

import torch
from torch import nn

from bench.attacks import ATTACKS, EpsilonResult, attack_mode, predict
from bench.cells import CellResult, RunEnv
from bench.cells.common import trained_classifier, user_classifier_and_notes
from bench.checks.model import convergence_rows, model_check_rows
from bench.data import ImageData, load_dataset, subset_indices
from bench.errors import CellFailed
from bench.fingerprint import data_fingerprint
from bench.identity import file_sha256
from bench.metrics.robustness import robustness_row
from bench.models.outputs import probability_output_warning
from bench.store import schema as S
from bench.store.correctness import correctness_record, subset_record
from bench.store.schema import row
from bench.suite.attack_options import SETTING_KEYS
from bench.suite.cell_configs import RobustnessCellConfig, UserSource


def run_robustness_cell(config: RobustnessCellConfig, inputs: dict[str, CellResult],
                        env: RunEnv) -> CellResult:
    split = load_dataset(config.dataset, config.split)
    # Seeded by the dataset seed, not the cell seed: every model, attack and seed is then
    # evaluated on the same examples, so their numbers compare pairwise (e.g. PGD vs FGSM).
    index = subset_indices(len(split), config.limit, config.dataset.seed)
    data = split if len(index) == len(split) else split.take(index)
    model, notes = load_model(config, inputs, data)
    warning = output_warning(model, data, config, env.device)
    sweep = ATTACKS.get(config.attack)  # imported before the clock starts

    start = time.perf_counter()
    clean_pred, results = clean_and_sweep(sweep, model, data, config, env)
    seconds = time.perf_counter() - start

    ident = {
        "model": config.model,
        "dataset": config.dataset.name,
        "split": config.split,
        "attack": config.attack,
        **setting_columns(config),
        "seed": config.seed,
        "data_fingerprint": data_fingerprint(data.x, data.y),  # what was evaluated
        "checkpoint_sha256": checkpoint_sha256(config, inputs),
    }
    subset = {"split_fingerprint": data_fingerprint(split.x, split.y),
              **subset_record(index, len(split))}
    clean_ok = clean_pred == data.y
    images_per_s = len(data) * len(results) / seconds if seconds > 0 else math.nan
    rows = [robustness_record(ident, res, data, clean_pred, notes=notes, warning=warning,
                              seconds=seconds, images_per_s=images_per_s) for res in results]
    correct = [row(S.CORRECTNESS, **ident, epsilon=res.epsilon, **subset,
                   **correctness_record(clean_ok, res.adv_correct)) for res in results]
    records = {S.ROBUSTNESS: rows, S.CORRECTNESS: correct}
    checks = sanity_checks(model, data, clean_ok, results, config, env.device)
    return CellResult(records=records | ({S.CHECKS: checks} if checks else {}))


def clean_and_sweep(sweep: Callable[..., list[EpsilonResult]], model: nn.Module, data: ImageData,
                    config: RobustnessCellConfig, env: RunEnv
                    ) -> tuple[torch.Tensor, list[EpsilonResult]]:
    """The clean predictions and the attack's results. The clean predictions come from the
    sweep when it has them (FGSM's gradient pass: `predict`'s, tests/test_attacks.py), else
    from a `predict` pass of their own."""
    results = sweep(model, data.x, data.y, config.epsilons, config.batch_size, env.device,
                    seed=config.seed, progress=env.progress,
                    **config.attack_params.sweep_kwargs())
    if results and results[0].clean_pred is not None:
        return results[0].clean_pred, results
    return predict(model, data.x, config.batch_size, env.device), results


def sanity_checks(model: nn.Module, data: ImageData, clean_ok: torch.Tensor,
                  results: list[EpsilonResult], config: RobustnessCellConfig,
                  device: str) -> list[dict]:
    """The `checks` rows this cell was asked for (bench.checks.model), timed apart."""
    rows = []
    if config.model_checks:
        rows += model_check_rows(model, data, config, device)
    if config.convergence:
        rows += convergence_rows(model, data, clean_ok, results, config, device)
    return rows


def setting_columns(config: RobustnessCellConfig) -> dict:
    """The attack's settings as configured (None where the attack has no such setting; alpha
    None is the default rule), the subset size and the batch size."""
    params = config.attack_params
    return {**{key: getattr(params, key, None) for key in SETTING_KEYS},
            "limit": config.limit, "batch_size": config.batch_size}


def robustness_record(ident: dict, res: EpsilonResult, data: ImageData,
                      clean_pred: torch.Tensor, *, notes: tuple[str, ...], warning: str | None,
                      seconds: float, images_per_s: float) -> dict:
    """One `robustness` row: what was evaluated, how, and the accuracies at one ε."""
    return row(S.ROBUSTNESS, **ident, alpha_used=res.params.get("alpha"),
               attack_params=json.dumps(dict(res.params), sort_keys=True),
               attack_repr=res.attack_repr, epsilon=res.epsilon,
               checkpoint_notes="; ".join(notes) or None, output_warning=warning,
               **robustness_row(data.y, clean_pred, res.adv_pred, res.linf, res.epsilon,
                                l2=res.l2, norm=res.norm),
               seconds=seconds,  # the whole cell's attack time: clean pass + every ε
               images_per_s=images_per_s)


def load_model(config: RobustnessCellConfig, inputs: dict[str, CellResult],
               data: ImageData) -> tuple[nn.Module, tuple[str, ...]]:
    """The model to attack, and what was done to its checkpoint to load it."""
    if isinstance(config.source, UserSource):
        return user_classifier_and_notes(config.source, config.model)
    if "model" not in inputs or "weights" not in inputs["model"].artifacts:
        raise CellFailed(f"model {config.model!r}: no trained weights from its train cell")
    return trained_classifier(config.source, inputs["model"].artifacts["weights"], data,
                              config.model), ()


def output_warning(model: nn.Module, data: ImageData, config: RobustnessCellConfig,
                   device: str) -> str | None:
    """The warning when the model's outputs on a first batch are already probabilities."""
    with attack_mode(model, device), torch.inference_mode():
        outputs = model(data.x[:config.batch_size].to(device))
    return probability_output_warning(outputs, f"models.{config.model}")


def checkpoint_sha256(config: RobustnessCellConfig, inputs: dict[str, CellResult]) -> str:
    """sha256 of the weights file evaluated: the user's checkpoint, or the trained weights."""
    if isinstance(config.source, UserSource):
        return config.source.checkpoint_sha256
    return file_sha256(inputs["model"].artifacts["weights"])
