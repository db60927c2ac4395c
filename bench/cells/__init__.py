"""Cell runners: pure functions of a resolved config that return records.

A cell runner has the signature

    run(config: dict, inputs: dict[str, CellResult], env: RunEnv) -> CellResult

- `config` is the cell's fully resolved, JSON-serialisable config (its hash is the cell id);
- `inputs` maps a dependency's role (e.g. "model") to that dependency cell's result;
- `env` carries only run-specific things (device, cache and artefact folders).

Runners touch no global state, write only inside `env.cache_dir`/`env.artifacts_dir`
(atomically), and either return a `CellResult` or raise `CellFailed(reason)`. The same
function runs unchanged in-process or as a Ray task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.identity import code_identity
from bench.registry import Registry


@dataclass(frozen=True)
class RunEnv:
    device: str  # resolved torch device string, e.g. "cpu" or "cuda:0"
    cache_dir: Path  # artefacts shared across runs (trained weights, FID statistics)
    artifacts_dir: Path  # this run's artefacts (sample grids, per-run files)
    progress: bool = True  # show tqdm bars for long work inside the cell
    threads: int = 1  # torch intra-op threads for a CPU cell (set by execute_cell)
    deterministic: bool = False  # [suite] deterministic: deterministic kernels (execute_cell)
    code: dict = field(default_factory=code_identity)  # the bench code running the cells
    reuse_other_code: bool = False  # may cached artefacts of other bench code be reused?
    # The results folder this run is in: earlier runs' journals inform the parallel
    # executor's estimates (bench.executors.estimates). Cells do not read it.
    results_dir: Path | None = None


@dataclass
class CellResult:
    records: dict[str, list[dict]] = field(default_factory=dict)  # table name -> rows
    artifacts: dict[str, str] = field(default_factory=dict)  # artefact name -> path


CELL_KINDS: Registry = Registry("cell kind")
CELL_KINDS.register("train", "bench.cells.train:run_train_cell")
CELL_KINDS.register("robustness", "bench.cells.robustness:run_robustness_cell")
CELL_KINDS.register("robustness-shard", "bench.cells.robustness:run_robustness_shard")
CELL_KINDS.register("robustness-checks", "bench.cells.robustness:run_model_checks")
CELL_KINDS.register("extractor", "bench.cells.extractor:run_extractor_cell")
CELL_KINDS.register("gan", "bench.cells.gan:run_gan_cell")
CELL_KINDS.register("throughput", "bench.cells.throughput:run_throughput_cell")
