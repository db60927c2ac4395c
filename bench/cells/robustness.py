"""The robustness cells: one model (one seed) against one attack over a list of ε.

Two cell kinds share one code path:

- "robustness-shard" attacks a run of whole batches of the evaluated examples (its
  `examples` range, bench.suite.shards) and returns their per-example records
  (`example_blocks`, bench.store.examples) and what it cost (a `shards` row);
- "robustness-checks" runs the model-level sanity checks of a sharded evaluation beside its
  shards (they need the model and the examples, not the attack's results);
- "robustness" makes the rows of the whole evaluation from per-example records: its sample
  shards' (its inputs "shard/00000", ...) when the suite shards it, else its own, made by
  attacking every example exactly as one shard of all of them would.

Either way one function, `summary_records`, turns the records into one `robustness` row per
ε, one `correctness` row beside each (which examples were right clean and attacked,
bit-packed, for the worst case and the paired sanity checks) and, when the plan asks, the
model-level sanity checks' `checks` rows. So a sharded evaluation's rows equal the
unsharded one's, whatever the shard size, the executor or the order the shards finished
in; only the timing columns differ (`seconds` is the shards' sum). Built-in models load the
weights their train cell produced; users' models come from their factory and checkpoint.
Either way the model takes pixels in [0, 1] and is attacked in eval mode.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from bench.attacks import EpsilonResult, attack_mode, predict, sweep_for
from bench.cells import CellResult, RunEnv
from bench.cells.common import (
    trained_classifier,
    user_classifier_and_notes,
    zoo_classifier_and_notes,
)
from bench.checks.model import convergence_rows, model_check_rows
from bench.data import ImageData, load_dataset, subset_indices
from bench.errors import CellFailed
from bench.fingerprint import data_fingerprint
from bench.identity import CHECKS_ROLE, SHARD_ROLE, file_sha256
from bench.metrics.robustness import robustness_row
from bench.models.outputs import probability_output_warning
from bench.provenance import device_name
from bench.store import schema as S
from bench.store.correctness import correctness_record, subset_record
from bench.store.examples import block_row, merged_blocks
from bench.store.schema import row
from bench.suite.attack_options import SETTING_KEYS
from bench.suite.cell_configs import (
    MemorySource,
    RobustBenchSource,
    RobustnessCellConfig,
    UserSource,
)


def run_robustness_cell(config: RobustnessCellConfig, inputs: dict[str, CellResult],
                        env: RunEnv) -> CellResult:
    shards = [inputs[role] for role in sorted(inputs) if role.startswith(SHARD_ROLE)]
    if shards:
        own: dict[str, list[dict]] = {}  # the shards' own records are theirs to journal
        blocks = [b for s in shards for b in s.records.get(S.EXAMPLE_BLOCKS, [])]
        costs = [c for s in shards for c in s.records.get(S.SHARDS, [])]
        loaded = None
    else:
        own, loaded = attack_examples(config, inputs, env)
        blocks, costs = own[S.EXAMPLE_BLOCKS], own[S.SHARDS]
    return CellResult(records=own | summary_records(config, inputs, env, blocks, costs, loaded))


def run_robustness_shard(config: RobustnessCellConfig, inputs: dict[str, CellResult],
                         env: RunEnv) -> CellResult:
    return CellResult(records=attack_examples(config, inputs, env)[0])


def run_model_checks(config: RobustnessCellConfig, inputs: dict[str, CellResult],
                     env: RunEnv) -> CellResult:
    """A sharded evaluation's model-level checks, for its merging cell's `checks` rows."""
    data, _ = evaluated_examples(config)
    model = load_model(config, inputs, data)[0]
    return CellResult(records={S.MODEL_CHECK_PART: model_check_rows(model, data, config,
                                                                    env.device)})


Loaded = tuple[nn.Module, ImageData]  # the model and the evaluated examples, when at hand


@dataclass(frozen=True)
class Target:
    """The model attacked, what was done to its checkpoint to load it, and what identifies
    its weights in the rows (a checkpoint's sha256, or an in-memory model's fingerprint)."""

    model: nn.Module
    notes: tuple[str, ...]
    checkpoint_sha256: str | None


def attack_examples(config: RobustnessCellConfig, inputs: dict[str, CellResult],
                    env: RunEnv) -> tuple[dict[str, list[dict]], Loaded]:
    """Attack this cell's examples: their `example_blocks` rows (one per ε) and `shards`
    row; and the model with the evaluated examples, for the checks of an unsharded cell."""
    evaluated, subset = evaluated_examples(config)
    model, notes = load_model(config, inputs, shard_of(config, evaluated))
    target = Target(model, notes, checkpoint_sha256(config, inputs))
    return attack_loaded(config, env, target, evaluated, subset), (model, evaluated)


def shard_of(config: RobustnessCellConfig, evaluated: ImageData) -> ImageData:
    """The evaluated examples this cell attacks: all of them, or its shard's."""
    start, stop = example_range(config, len(evaluated))
    return evaluated if (start, stop) == (0, len(evaluated)) else evaluated.take(
        slice(start, stop))


def attack_loaded(config: RobustnessCellConfig, env: RunEnv, target: Target,
                  evaluated: ImageData, subset: dict) -> dict[str, list[dict]]:
    """`attack_examples` once the model and the examples are loaded (bench.api_robustness hands
    in-memory ones): the per-example blocks and the shard's cost row."""
    start, stop = example_range(config, len(evaluated))
    data = shard_of(config, evaluated)
    model = target.model
    warning = output_warning(model, data, config, env.device)
    sweep = sweep_for(config.attack, config.implementation)

    t0 = time.perf_counter()
    clean_pred, results = clean_and_sweep(sweep, model, data, config, env, start)
    seconds = time.perf_counter() - t0

    ident = identity_columns(config, target.checkpoint_sha256,
                             data_fingerprint(evaluated.x, evaluated.y))
    blocks = [block_row(ident, epsilon=res.epsilon, start=start,
                        arrays={"index": data.indices, "label": data.y, "clean_pred": clean_pred,
                                "adv_pred": res.adv_pred, "linf": res.linf, "l2": res.l2},
                        attack_repr=res.attack_repr,
                        attack_params=json.dumps(dict(res.params), sort_keys=True),
                        alpha_used=res.params.get("alpha"))
              for res in results]
    shard = config.examples
    cost = row(S.SHARDS, **ident, **subset, shard=shard.shard if shard else 0,
               shards=shard.shards if shard else 1, start=start, stop=stop, n=len(data),
               n_epsilons=len(results), seconds=seconds,
               examples_per_s=len(data) / seconds if seconds > 0 else math.nan,
               device=env.device, device_name=device_name(env.device),
               checkpoint_notes="; ".join(target.notes) or None, output_warning=warning)
    return {S.EXAMPLE_BLOCKS: blocks, S.SHARDS: [cost]}


def clean_and_sweep(sweep: Callable[..., list[EpsilonResult]], model: nn.Module, data: ImageData,
                    config: RobustnessCellConfig, env: RunEnv, offset: int
                    ) -> tuple[torch.Tensor, list[EpsilonResult]]:
    """The clean predictions and the attack's results. The clean predictions come from the
    sweep when it has them (FGSM's gradient pass: `predict`'s, tests/test_attacks.py), else
    from a `predict` pass of their own."""
    results = sweep(model, data.x, data.y, config.epsilons, config.batch_size, env.device,
                    seed=config.seed, offset=offset, progress=env.progress,
                    **config.attack_params.sweep_kwargs())
    if results and results[0].clean_pred is not None:
        return results[0].clean_pred, results
    return predict(model, data.x, config.batch_size, env.device), results


def evaluated_examples(config: RobustnessCellConfig) -> tuple[ImageData, dict]:
    """The examples the whole evaluation attacks, and the columns naming them in the split."""
    return limited(load_dataset(config.dataset, config.split), config.limit,
                   config.dataset.seed)


def limited(split: ImageData, limit: int | None, seed: int) -> tuple[ImageData, dict]:
    """The seeded `limit` subset of `split` (all of it without one), and the columns naming
    it in the split. Seeded by the dataset seed, not the cell seed: every model, attack and
    seed is then evaluated on the same examples, so their numbers compare pairwise."""
    index = subset_indices(len(split), limit, seed)
    evaluated = split if len(index) == len(split) else split.take(index)
    return evaluated, {"split_fingerprint": data_fingerprint(split.x, split.y),
                       **subset_record(index, len(split))}


def example_range(config: RobustnessCellConfig, n: int) -> tuple[int, int]:
    """[start, stop) of the evaluated examples this cell attacks (all, unless a shard)."""
    shard = config.examples
    if shard is None:
        return 0, n
    if shard.stop > n:  # the plan counted the files; the loader found fewer examples
        raise CellFailed(f"shard {shard.shard + 1}/{shard.shards} covers examples "
                         f"[{shard.start}, {shard.stop}) but the data has {n}: the dataset "
                         "changed since the run was planned; run the suite again")
    return shard.start, shard.stop


def identity_columns(config: RobustnessCellConfig, checkpoint: str | None,
                     fingerprint: str) -> dict:
    """What was evaluated: the columns every record of this evaluation starts with."""
    return {"model": config.model, "dataset": config.dataset.name, "split": config.split,
            "attack": config.attack, **setting_columns(config), "seed": config.seed,
            "data_fingerprint": fingerprint,  # of the whole evaluated subset, in every shard
            "checkpoint_sha256": checkpoint}


def summary_records(config: RobustnessCellConfig, inputs: dict[str, CellResult], env: RunEnv,
                    blocks: list[dict], costs: list[dict],
                    loaded: Loaded | None = None) -> dict[str, list[dict]]:
    """The `robustness`, `correctness` and `checks` rows of the whole evaluation, from the
    per-example blocks of every shard and their `shards` rows."""
    if not costs or len(costs) != costs[0]["shards"]:
        raise CellFailed(f"expected the records of {costs[0]['shards'] if costs else 1} "
                         f"shard(s), got {len(costs)}")
    first = min(costs, key=lambda c: c["shard"])  # shard 0 holds the first batch
    merged = merged_blocks(blocks)
    results = [epsilon_result(float(eps), merged[float(eps)], config) for eps in config.epsilons]
    arrays = merged[float(config.epsilons[0])]
    y, clean_pred = torch.from_numpy(arrays["label"].copy()), torch.from_numpy(
        arrays["clean_pred"].copy())
    ident = {k: blocks[0][k] for k in (*ROW_IDENTITY, *SETTING_COLUMNS)}
    seconds = sum(c["seconds"] for c in costs)
    images_per_s = len(y) * len(results) / seconds if seconds > 0 else math.nan
    rows = [robustness_record(ident, res, y, clean_pred, notes=first["checkpoint_notes"],
                              warning=first["output_warning"], seconds=seconds,
                              images_per_s=images_per_s) for res in results]
    clean_ok = clean_pred == y
    subset = {k: first[k] for k in ("split_fingerprint", "split_n", "examples")}
    correct = [row(S.CORRECTNESS, **ident, epsilon=res.epsilon, **subset,
                   **correctness_record(clean_ok, res.adv_correct)) for res in results]
    records = {S.ROBUSTNESS: rows, S.CORRECTNESS: correct}
    checks = sanity_checks(config, inputs, env, clean_ok, results, loaded)
    return records | ({S.CHECKS: checks} if checks else {})


ROW_IDENTITY = ("model", "dataset", "split", "attack", "seed", "data_fingerprint",
                "checkpoint_sha256")
SETTING_COLUMNS = (*SETTING_KEYS, "limit", "batch_size")


def epsilon_result(eps: float, arrays: dict, config: RobustnessCellConfig) -> EpsilonResult:
    """One ε of the merged per-example records, as the attack's sweep returned it."""
    def tensor(name):
        return torch.from_numpy(arrays[name].copy())

    adv_pred = tensor("adv_pred")
    return EpsilonResult(eps, adv_pred, tensor("linf"), arrays["attack_repr"],
                         adv_correct=adv_pred == tensor("label"), l2=tensor("l2"),
                         norm=config.attack_params.norm,
                         params=json.loads(arrays["attack_params"]))


def sanity_checks(config: RobustnessCellConfig, inputs: dict[str, CellResult], env: RunEnv,
                  clean_ok: torch.Tensor, results: list[EpsilonResult],
                  loaded: Loaded | None) -> list[dict]:
    """The `checks` rows this cell was asked for (bench.checks.model) on the evaluated
    examples: the model checks from the cell that ran them beside the shards, if any; a
    merging cell loads the model and the examples only when it must run a check itself."""
    rows = []
    if config.model_checks and CHECKS_ROLE in inputs:  # run beside the shards
        rows += inputs[CHECKS_ROLE].records[S.MODEL_CHECK_PART]
    own_model_checks = config.model_checks and CHECKS_ROLE not in inputs
    if not (own_model_checks or config.convergence):
        return rows
    if loaded is None:
        data, _ = evaluated_examples(config)
        loaded = load_model(config, inputs, data)[0], data
    model, data = loaded
    if own_model_checks:
        rows += model_check_rows(model, data, config, env.device)
    if config.convergence:
        rows += convergence_rows(model, data, clean_ok, results, config, env.device)
    return rows


def setting_columns(config: RobustnessCellConfig) -> dict:
    """The attack's settings as configured (None where the attack has no such setting; alpha
    None is the default rule), the subset size and the batch size."""
    params = config.attack_params
    return {**{key: getattr(params, key, None) for key in SETTING_KEYS},
            "implementation": config.implementation,
            "limit": config.limit, "batch_size": config.batch_size}


def robustness_record(ident: dict, res: EpsilonResult, y: torch.Tensor,
                      clean_pred: torch.Tensor, *, notes: str | None, warning: str | None,
                      seconds: float, images_per_s: float) -> dict:
    """One `robustness` row: what was evaluated, how, and the accuracies at one ε."""
    return row(S.ROBUSTNESS, **ident, alpha_used=res.params.get("alpha"),
               attack_params=json.dumps(dict(res.params), sort_keys=True),
               attack_repr=res.attack_repr, epsilon=res.epsilon,
               checkpoint_notes=notes, output_warning=warning,
               **robustness_row(y, clean_pred, res.adv_pred, res.linf, res.epsilon,
                                l2=res.l2, norm=res.norm),
               seconds=seconds,  # the attack time of every shard: clean pass + every ε
               images_per_s=images_per_s)


def load_model(config: RobustnessCellConfig, inputs: dict[str, CellResult],
               data: ImageData) -> tuple[nn.Module, tuple[str, ...]]:
    """The model to attack, and what was done to its checkpoint to load it."""
    if isinstance(config.source, UserSource):
        return user_classifier_and_notes(config.source, config.model)
    if isinstance(config.source, RobustBenchSource):
        return zoo_classifier_and_notes(config.source, config.model)
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
    """sha256 of the weights file evaluated: the user's checkpoint, or the trained weights
    (an in-memory model's fingerprint in its place)."""
    if isinstance(config.source, MemorySource):
        return config.source.fingerprint
    if isinstance(config.source, UserSource):
        return config.source.checkpoint_sha256
    if isinstance(config.source, RobustBenchSource):  # None at plan time when downloaded
        return config.source.checkpoint_sha256 or file_sha256(config.source.checkpoint)
    return file_sha256(inputs["model"].artifacts["weights"])
