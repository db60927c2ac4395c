"""How many seconds a cell will take: what bench.executors.balance splits between workers.

Two sources; the first that knows wins:

1. **Earlier runs** in the results folder (their journals, the HISTORY_RUNS most recent): the
   median seconds of the same cell (its id); else of the cells that do the same work per
   example (its `work group`: bench.identity.group_id with the seed and the example count,
   `limit`, left out: other seeds, other subsets), scaled by the examples this cell evaluates.
   So a cell over a slice of the examples (a shard) is estimated from whole cells, and the
   other way round.
2. **A FLOP model** (MODELS, one per cell kind): the model's forward FLOPs per image (its
   convolutions and linear layers, counted once per architecture and input shape; a user's
   model: two per parameter of its checkpoint) x images x passes (forward 1, forward and backward 3), at NOMINAL_FLOPS per
   second (one thread of a current CPU); GAN cells: steps x their measured step cost.

A new cell kind plugs in with a function (cell) -> seconds in MODELS and, if its work grows
with the examples it evaluates, one (config as a dict) -> examples in EXAMPLES (plus the config keys that
only choose the examples in SIZE_KEYS). Estimates only order the cells: no number depends on
them. Pure arithmetic until a FLOP count is needed, so a run without choices costs nothing.
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
from pathlib import Path
from typing import Callable, Iterable

from bench import defaults
from bench.identity import SHARD_ROLE, group_id
from bench.suite.cell_configs import DatasetSpec, UserSource, UserTarget
from bench.suite.plan import Cell

NOMINAL_FLOPS = 5e10  # FLOP/s of one thread (small CNN and ResNet-18 training here: 5-10e10)
GAN_STEP_SECONDS = 0.058  # one DCGAN step at batch 64 (gan-digits: 2500 steps in 145 s)
BASE_BATCH = 64  # the batch the GANs' step costs were measured at
# A critic update's share of the cost of a generator step with one critic update: five
# critic updates make a step ~3.5x dearer (benchmarks/gan_step_cost.py), 1 + 4x = 3.5.
CRITIC_SHARE = 0.625
EXTRACTOR_SECONDS = 22.5  # the domain extractor's fixed recipe (gan-digits, 8x8 digits)
HISTORY_RUNS = 20  # earlier runs read, most recent first
MERGE_SECONDS = 1.0  # merging a sharded cell's records (its sanity checks aside)

# dataset kind -> (channels, height, width, train examples, test examples)
NATIVE = {"digits": (1, 8, 8, 1347, 450), "mnist": (1, 28, 28, 60000, 10000),
          "fashion-mnist": (1, 28, 28, 60000, 10000), "cifar10": (3, 32, 32, 50000, 10000),
          "svhn": (3, 32, 32, 73257, 26032), "imagefolder": (3, 32, 32, 10000, 2000)}
NUM_CLASSES = 10  # every built-in dataset; the FLOPs of the last layer barely depend on it


# -- the work itself ---------------------------------------------------------------------------

def data_shape(spec: DatasetSpec) -> tuple[int, int, int]:
    channels, height, width, _, _ = NATIVE[spec.kind]
    if spec.image_size is not None:
        height, width = spec.image_size
    return (spec.channels or channels, height, width)


def split_size(spec, split: str) -> int:
    """Examples in a split of a dataset (a DatasetSpec, or its JSON form from a journal)."""
    get = spec.get if isinstance(spec, dict) else lambda key, default=None: getattr(
        spec, key, default)
    native = NATIVE[get("kind")][3 if split == "train" else 4]
    if get("kind") == "digits":  # scikit-learn rounds the test share up
        test = math.ceil(1797 * get("test_fraction", 0.25))
        native = 1797 - test if split == "train" else test
    limit = get(f"limit_{split}")
    return min(native, limit) if limit else native


@functools.lru_cache(maxsize=64)
def arch_flops(arch: str, shape: tuple[int, int, int]) -> float:
    """Forward FLOPs of one image through a built-in architecture: its convolutions and
    linear layers, two per multiply-add, read off one forward pass (what
    bench.throughput.flops.count_flops counts, without its second of set-up)."""
    import torch

    from bench.models import MODELS

    model = MODELS.get(arch)(shape[0], NUM_CLASSES, shape[1:]).eval()
    total = [0.0]

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            total[0] += 2.0 * output.numel() * per_output
        elif isinstance(module, torch.nn.Linear):
            total[0] += 2.0 * output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for hook in hooks:
        hook.remove()
    return total[0]


def checkpoint_flops(path: str) -> float:
    """A user's model is never run here (its code could do anything): two FLOPs per
    parameter, the parameters counted from the checkpoint's size (4 bytes each). Exact for
    dense layers, low for convolutions; earlier runs correct it."""
    try:
        return 2.0 * os.path.getsize(path) / 4
    except OSError:
        return 2.0 * 1e6


def model_flops(source, dataset: DatasetSpec) -> float:
    if isinstance(source, (UserSource, UserTarget)):
        return checkpoint_flops(source.checkpoint)
    return arch_flops(source.arch, data_shape(dataset))


def train_seconds(cell: Cell) -> float:
    c, t = cell.config, cell.config.train
    passes = {"standard": 3, "fgsm-rs": 6, "pgd": 3 * (t.steps + 1)}[t.recipe]
    images = t.epochs * split_size(c.dataset, "train")
    return arch_flops(c.arch, data_shape(c.dataset)) * images * passes / NOMINAL_FLOPS


def attack_passes(attack: str, params, epsilons: int) -> float:
    """Forward passes (a gradient counts 3) per example, per ε of the sweep."""
    steps = getattr(params, "steps", 1)
    restarts = getattr(params, "restarts", 1)
    per_eps = {
        "fgsm": 1, "pgd": 3 * steps * restarts, "apgd-ce": 3 * steps * restarts,
        "apgd-dlr": 3 * steps * restarts, "apgd-t": 3 * steps * restarts * 9,
        "fab": 3 * steps * restarts * NUM_CLASSES, "fab-t": 6 * steps * restarts * 9,
        "square": getattr(params, "queries", 1) * restarts,
        "autoattack": 3 * steps * (1 + 9 + 18) + 5000,  # APGD-CE, APGD-T, FAB-T, Square
    }[attack]
    shared = 3 if attack == "fgsm" else 0  # FGSM's one gradient serves every ε
    return 1 + shared + epsilons * (per_eps + 1)  # the clean pass; per ε the check pass


def robustness_examples(config: dict) -> int:
    """How many examples a robustness cell evaluates (its `limit`, a shard's count), from its
    JSON form (as journals keep it)."""
    examples = config.get("examples")
    if isinstance(examples, dict):  # a sample shard: positions [start, stop)
        return int(examples["stop"]) - int(examples["start"])
    if examples:  # an older journal's count
        return int(examples)
    size = split_size(config["dataset"], config["split"])
    return min(size, config["limit"]) if config.get("limit") else size


def robustness_seconds(cell: Cell) -> float:
    c = cell.config
    if merges_shards(cell):
        return MERGE_SECONDS
    passes = attack_passes(c.attack, c.attack_params, len(c.epsilons))
    flops = model_flops(c.source, c.dataset)
    checks = model_checks_seconds(cell) if c.model_checks else 0.0  # unsharded: its own
    return flops * robustness_examples(c.as_dict()) * passes / NOMINAL_FLOPS + checks


def model_checks_seconds(cell: Cell) -> float:
    """The model-level checks on their first CHECK_SAMPLE examples: determinism (two
    forwards), gradient saturation (a gradient) and PGD-10 at an unbounded ε."""
    c = cell.config
    examples = min(defaults.CHECK_SAMPLE, robustness_examples(c.as_dict()))
    passes = 2 + 3 + 3 * defaults.PGD_STEPS + 1
    return model_flops(c.source, c.dataset) * examples * passes / NOMINAL_FLOPS


def merges_shards(cell) -> bool:
    """A robustness cell whose shards did the attacking: it only merges their records (its
    id is the unsharded cell's, so earlier unsharded runs must not price it)."""
    return any(role.startswith(SHARD_ROLE) for role in (cell.deps or {}))


def throughput_seconds(cell: Cell) -> float:
    c = cell.config
    steps = c.warmup + c.repeats + 1  # and one for the FLOP count
    if c.workload.startswith("gan-"):
        per_step = gan_step_seconds(c.target.arch, None) * c.batch_size / BASE_BATCH
        return steps * (per_step if c.workload == "gan-step" else per_step / 3)
    passes = {"inference": 1, "train-step": 3, "fgsm": 4, "pgd": 3 * c.pgd_steps + 1}
    flops = model_flops(c.target, c.dataset)
    return flops * steps * c.batch_size * passes.get(c.workload, 3) / NOMINAL_FLOPS


def gan_step_seconds(arch: str, n_critic: int | None) -> float:
    from bench.gans import GANS  # the architectures' measured step costs

    gan = GANS.get(arch)
    n_critic = n_critic if n_critic is not None else gan.paper.n_critic
    return GAN_STEP_SECONDS * gan.step_cost * ((1 - CRITIC_SHARE) + CRITIC_SHARE * n_critic)


def gan_seconds(cell: Cell) -> float:
    c = cell.config
    return c.steps * gan_step_seconds(c.arch, c.n_critic) * c.batch_size / BASE_BATCH


# Cell kind -> its FLOP model (seconds). Kinds not listed have no estimate, and their cells
# run in plan order.
MODELS: dict[str, Callable[[Cell], float]] = {
    "train": train_seconds, "robustness": robustness_seconds,
    "robustness-shard": robustness_seconds, "robustness-checks": model_checks_seconds,
    "throughput": throughput_seconds,
    "gan": gan_seconds, "extractor": lambda cell: EXTRACTOR_SECONDS,
}
# Cell kind -> how many examples it evaluates: earlier runs are scaled by it.
EXAMPLES: dict[str, Callable[[dict], int]] = {"robustness": robustness_examples,
                                              "robustness-shard": robustness_examples}
# Config keys that only choose which examples a cell evaluates (left out of its work group),
# and the sanity-check switches a shard turns off (its merging cell runs the checks).
SIZE_KEYS = frozenset({"limit", "examples", "shard", "model_checks", "convergence"})
# A shard does a whole cell's work per example: priced from either, and the other way round.
SAME_WORK = {"robustness-shard": "robustness"}


def model_seconds(cell: Cell) -> float | None:
    model = MODELS.get(cell.kind)
    return model(cell) if model is not None else None


# -- earlier runs -------------------------------------------------------------------------------

def work_group(kind: str, config: dict, dep_groups: dict[str, str]) -> str:
    """Cells that do the same work per example share it: other seeds, other subsets."""
    config = {k: v for k, v in config.items() if k not in SIZE_KEYS}
    return group_id(SAME_WORK.get(kind, kind), config, dep_groups)


def dependency_groups(cells: Iterable) -> dict[str, str]:
    """cell id -> group id, for cells (or journal records) with kind, config (a dict or a
    typed config), deps; dependencies resolved within the same collection."""
    by_id = {c.id: c for c in cells}
    out: dict[str, str] = {}

    def of(cell_id: str) -> str:
        if cell_id not in out:
            c = by_id.get(cell_id)
            if c is None:
                return cell_id  # a dependency outside the collection: its id will do
            out[cell_id] = group_id(c.kind, _as_dict(c.config),
                                    {role: of(dep) for role, dep in c.deps.items()})
        return out[cell_id]

    for cell_id in by_id:
        of(cell_id)
    return out


def _as_dict(config) -> dict:
    return config if isinstance(config, dict) else config.as_dict()


class History:
    """Seconds of the cells finished in earlier runs: by cell id, and per example by work group."""

    def __init__(self, records: Iterable = ()):
        self.by_id: dict[str, list[float]] = {}
        self.by_work: dict[str, list[float]] = {}  # seconds per unit of size
        records = list(records)
        groups = dependency_groups(records)
        for r in records:
            if r.status != "ok" or not r.seconds or r.seconds <= 0 or merges_shards(r):
                continue
            self.by_id.setdefault(r.id, []).append(r.seconds)
            key = work_group(r.kind, r.config, _deps(r, groups))
            self.by_work.setdefault(key, []).append(r.seconds / _size(r.kind, r.config))

    @classmethod
    def read(cls, results_dir: Path | None, runs: int = HISTORY_RUNS) -> "History":
        """The journals of the `runs` most recently written runs under `results_dir`."""
        if results_dir is None or not Path(results_dir).is_dir():
            return cls()
        journals = [d for d in Path(results_dir).glob("*/*/cells") if d.is_dir()]
        journals.sort(key=lambda d: d.stat().st_mtime, reverse=True)
        records = []
        for cells_dir in journals[:runs]:
            records.extend(_read_journal(cells_dir))
        return cls(records)


def _deps(record, groups: dict[str, str]) -> dict[str, str]:
    return {role: groups.get(dep, dep) for role, dep in record.deps.items()}


def _size(kind: str, config: dict) -> float:
    examples = EXAMPLES.get(kind)
    if examples is None:
        return 1.0
    try:
        return float(max(1, examples(config)))
    except (KeyError, TypeError, ValueError):  # an older config this code cannot read
        return 1.0


class _Record:
    __slots__ = ("id", "kind", "config", "deps", "status", "seconds")

    def __init__(self, data: dict):
        for name in self.__slots__:
            setattr(self, name, data.get(name))
        self.deps = self.deps or {}


def _read_journal(cells_dir: Path) -> list[_Record]:
    out = []
    for name in os.listdir(cells_dir):
        if not name.endswith(".json"):
            continue
        try:
            out.append(_Record(json.loads((cells_dir / name).read_text(encoding="utf-8"))))
        except (OSError, ValueError, AttributeError):  # half-written or foreign: not a source
            continue
    return out


class Estimates:
    """Cell -> estimated seconds: earlier runs first, else the FLOP model."""

    def __init__(self, cells: list[Cell], history: History | None = None):
        self.history = history or History()
        self.groups = dependency_groups(cells)
        self._cache: dict[str, float | None] = {}

    def __call__(self, cell: Cell) -> float | None:
        if cell.id not in self._cache:
            self._cache[cell.id] = self.measured(cell)
            if self._cache[cell.id] is None:
                self._cache[cell.id] = model_seconds(cell)
        return self._cache[cell.id]

    def measured(self, cell: Cell) -> float | None:
        """From earlier runs: the same cell, else its work group scaled to its size."""
        if merges_shards(cell):
            return None  # the FLOP model's merge cost, never a whole cell's time
        if cell.id in self.history.by_id:
            return statistics.median(self.history.by_id[cell.id])
        key = work_group(cell.kind, cell.config.as_dict(), _deps(cell, self.groups))
        per_unit = self.history.by_work.get(key)
        if per_unit:
            return statistics.median(per_unit) * _size(cell.kind, cell.config.as_dict())
        return None
