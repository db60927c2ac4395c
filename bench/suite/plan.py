"""Turn a validated suite into independent cells, each with a stable id.

A cell's id (bench.identity.cell_id) is a hash of its kind, its fully resolved config and
the ids of the cells it depends on. Nothing run-specific (device, output folder, time) and
no machine-local path goes in, so the same suite gives the same ids on any machine, which is
what resume and `bench compare` match on. Files a suite points to enter by their sha256.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from bench import identity
from bench.suite.load import LoadedSuite
from bench.suite.schema import Suite


@dataclass(frozen=True)
class Cell:
    kind: str  # a key of bench.cells.CELL_KINDS
    config: dict  # resolved, JSON-serialisable
    deps: dict[str, str] = field(default_factory=dict)  # role -> id of the cell it needs
    label: str = ""  # short human name for progress bars and errors

    @property
    def id(self) -> str:
        return identity.cell_id(self.kind, self.config, self.deps)


def plan(loaded: LoadedSuite) -> list[Cell]:
    """All cells of the suite, dependencies before dependants, without duplicates."""
    suite, base = loaded.suite, loaded.path.parent
    cells: dict[str, Cell] = {}

    def add(cell: Cell) -> str:
        cells.setdefault(cell.id, cell)
        return cell.id

    for rob in suite.robustness:
        for model, seed in itertools.product(rob.models, suite.suite.seeds):
            deps, source = _model_source(suite, model, seed, base, add)
            params = ({"steps": rob.steps, "alpha": rob.alpha, "random_start": rob.random_start}
                      if rob.attack == "pgd" else {})
            config = {
                "model": model,
                "source": source,
                "dataset": dataset_config(suite, suite.models[model].dataset, base),
                "split": rob.split,
                "attack": rob.attack,
                "attack_params": params,
                "epsilons": list(rob.epsilons),
                "batch_size": rob.batch_size,
                "limit": rob.limit,
                "seed": seed,
            }
            add(Cell("robustness", config, deps, f"{rob.attack} {model} seed={seed}"))

    extractor_ids: dict[str, str] = {}
    for name, gan in suite.gans.items():
        if not gan.train:
            continue
        dataset = dataset_config(suite, gan.dataset, base)
        extractor = _extractor(gan.feature_extractor, suite.suite.inception_weights)
        deps = {}
        if extractor == "domain":
            ext_cell = Cell("extractor", {"dataset": dataset}, label=f"extractor {gan.dataset}")
            deps = {"extractor": extractor_ids.setdefault(gan.dataset, add(ext_cell))}
        for seed in suite.suite.seeds:
            weights = (resolve_path(suite.suite.inception_weights, base)
                       if extractor == "inception" else None)
            config = gan.model_dump(exclude={"dataset", "feature_extractor", "train"}) | {
                "gan": name,
                "dataset": dataset,
                "feature_extractor": extractor,
                "inception_weights": weights,
                "seed": seed,
            }
            if weights is not None:  # the path is machine-local; what it holds is identity
                config["inception_weights_sha256"] = _sha256_or_none(weights)
            add(Cell("gan", config, deps, f"gan {name} seed={seed}"))

    for tp in suite.throughput:
        targets = [("model", m) for m in tp.models] + [("gan", g) for g in tp.gans]
        axes = itertools.product(targets, tp.workloads, tp.batch_sizes, tp.precision,
                                 tp.channels_last, tp.compile, suite.suite.seeds)
        for (role, name), workload, bs, precision, cl, compiled, seed in axes:
            if (role == "gan") != workload.startswith("gan-"):
                continue  # GAN workloads apply to GANs, the others to classifiers
            if role == "model":
                target = {"model": name, **_untrained_source(suite, name, base)}
                dataset = suite.models[name].dataset
            else:
                target = {"gan": name, "arch": suite.gans[name].arch, "z_dim": suite.gans[name].z_dim}
                dataset = suite.gans[name].dataset
            config = {
                "workload": workload,
                "target": target,
                "dataset": dataset_config(suite, dataset, base),
                "batch_size": bs,
                "precision": precision,
                "channels_last": cl,
                "compile": compiled,
                "warmup": tp.warmup,
                "repeats": tp.repeats,
                "epsilon": tp.epsilon,
                "pgd_steps": tp.pgd_steps,
                "peak_tflops": tp.peak_tflops,
                "seed": seed,
            }
            label = f"{workload} {name} bs={bs} {precision}{' cl' if cl else ''}{' compiled' if compiled else ''}"
            add(Cell("throughput", config, {}, label))
    return list(cells.values())


def dataset_config(suite: Suite, name: str, base: Path) -> dict:
    cfg = suite.datasets[name].model_dump()
    cfg["root"] = resolve_path(cfg["root"], base)
    cfg["image_size"] = list(cfg["image_size"]) if cfg["image_size"] else None
    return {"name": name, **cfg}


def _model_source(suite: Suite, model: str, seed: int, base: Path, add) -> tuple[dict, dict]:
    """(deps, source) for evaluating `model`: a train cell for built-ins, the checkpoint otherwise."""
    m = suite.models[model]
    normalize = m.normalize.model_dump() if m.normalize else None
    if m.arch is None:
        checkpoint = resolve_path(m.checkpoint, base)
        return {}, {"factory": m.factory, "checkpoint": checkpoint,
                    "checkpoint_sha256": _sha256_or_none(checkpoint), "normalize": normalize}
    train_config = {
        "model": model,
        "arch": m.arch,
        "dataset": dataset_config(suite, m.dataset, base),
        "normalize": normalize,
        "train": (m.train or _default_train()).model_dump(),
        "seed": seed,
    }
    train_id = add(Cell("train", train_config, {}, f"train {model} seed={seed}"))
    return {"model": train_id}, {"arch": m.arch, "normalize": normalize}


def _untrained_source(suite: Suite, model: str, base: Path) -> dict:
    m = suite.models[model]
    normalize = m.normalize.model_dump() if m.normalize else None
    if m.arch is None:
        return {"factory": m.factory, "checkpoint": resolve_path(m.checkpoint, base), "normalize": normalize}
    return {"arch": m.arch, "normalize": normalize,
            "train": (m.train or _default_train()).model_dump()}


def _default_train():
    from bench.suite.schema import TrainConfig

    return TrainConfig()


def _extractor(requested: str, inception_weights: str | None) -> str:
    if requested == "auto":
        return "inception" if inception_weights else "domain"
    return requested


def resolve_path(path: str | None, base: Path) -> str | None:
    """Paths in a suite are relative to the suite file, as users expect."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _sha256_or_none(path: str) -> str | None:
    try:
        return identity.file_sha256(path)
    except OSError:
        return None  # reported by the cell, which fails with the path in its reason
