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
from bench.suite.attack_options import ATTACK_KEYS
from bench.suite.cell_configs import (
    ATTACK_PARAMS,
    AttackParams,
    CellConfig,
    DatasetSpec,
    ExtractorCellConfig,
    GanCellConfig,
    GanTarget,
    ModelSource,
    RobustnessCellConfig,
    ThroughputCellConfig,
    TrainCellConfig,
    TrainedSource,
    TrainedTarget,
    UserSource,
    UserTarget,
)
from bench.suite.load import LoadedSuite
from bench.suite.schema import DatasetConfig, RobustnessConfig, Suite, TrainConfig


@dataclass(frozen=True)
class Cell:
    kind: str  # a key of bench.cells.CELL_KINDS
    config: CellConfig  # the typed, resolved config the cell runs with
    deps: dict[str, str] = field(default_factory=dict)  # role -> id of the cell it needs
    label: str = ""  # short human name for progress bars and errors

    @property
    def id(self) -> str:
        return identity.cell_id(self.kind, self.config.as_dict(), self.deps)


class _Plan:
    """Cells in the order added (dependencies first), each id once."""

    def __init__(self) -> None:
        self.cells: dict[str, Cell] = {}

    def add(self, cell: Cell) -> str:
        self.cells.setdefault(cell.id, cell)
        return cell.id


def plan(loaded: LoadedSuite) -> list[Cell]:
    """All cells of the suite, dependencies before dependants, without duplicates."""
    out = _Plan()
    plan_robustness(loaded.suite, loaded.path.parent, out)
    plan_gans(loaded.suite, loaded.path.parent, out)
    plan_throughput(loaded.suite, loaded.path.parent, out)
    return list(out.cells.values())


def plan_robustness(suite: Suite, base: Path, out: _Plan) -> None:
    """One robustness cell per (section, model, seed), after its model's train cell. The
    first cell of each model, seed, split, norm and batch size also runs the model-level
    sanity checks (they do not depend on the attack; a `limit`ed subset of a split already
    checked adds nothing)."""
    checked: set[tuple] = set()
    for rob in suite.robustness:
        for model, seed in itertools.product(rob.models, suite.suite.seeds):
            deps, source = _model_source(suite, model, seed, base, out)
            where = (model, seed, rob.split, rob.norm, rob.batch_size)
            config = RobustnessCellConfig(
                model=model, source=source,
                dataset=dataset_spec(suite, suite.models[model].dataset, base),
                split=rob.split, attack=rob.attack, attack_params=attack_params(rob),
                epsilons=list(rob.epsilons), batch_size=rob.batch_size, limit=rob.limit,
                seed=seed, model_checks=where not in checked, convergence=rob.convergence)
            checked.add(where)
            out.add(Cell("robustness", config, deps, f"{rob.attack} {model} seed={seed}"))


def attack_params(rob: RobustnessConfig) -> AttackParams:
    """The section's settings for its attack: the keys ATTACK_KEYS lists, typed."""
    return ATTACK_PARAMS[rob.attack](**{key: getattr(rob, key) for key in ATTACK_KEYS[rob.attack]})


def plan_gans(suite: Suite, base: Path, out: _Plan) -> None:
    """One gan cell per (GAN, seed); a domain extractor cell per dataset, shared."""
    for name, gan in suite.gans.items():
        if not gan.train:
            continue
        dataset = dataset_spec(suite, gan.dataset, base)
        extractor = _extractor(gan.feature_extractor, suite.suite.inception_weights)
        deps = {}
        if extractor == "domain":
            ext = Cell("extractor", ExtractorCellConfig(dataset=dataset),
                       label=f"extractor {gan.dataset}")
            deps = {"extractor": out.add(ext)}
        weights = (resolve_path(suite.suite.inception_weights, base)
                   if extractor == "inception" else None)
        for seed in suite.suite.seeds:
            config = GanCellConfig(
                gan=name, arch=gan.arch, dataset=dataset, steps=gan.steps,
                batch_size=gan.batch_size, eval_every=gan.eval_every, metrics=gan.metrics,
                num_samples=gan.num_samples, lr=gan.lr, lr_d=gan.lr_d, betas=gan.betas,
                n_critic=gan.n_critic, ema=gan.ema, divergence_patience=gan.divergence_patience,
                z_dim=gan.z_dim, amp=gan.amp, fid_float64=gan.fid_float64 or None,
                feature_extractor=extractor, inception_weights=weights,
                # The path is machine-local; what it holds is identity.
                inception_weights_sha256=None if weights is None else _sha256_or_none(weights),
                seed=seed)
            out.add(Cell("gan", config, deps, f"gan {name} seed={seed}"))


def plan_throughput(suite: Suite, base: Path, out: _Plan) -> None:
    """One throughput cell per point of each section's grid (GAN workloads for GANs only)."""
    for tp in suite.throughput:
        targets = [("model", m) for m in tp.models] + [("gan", g) for g in tp.gans]
        axes = itertools.product(targets, tp.workloads, tp.batch_sizes, tp.precision,
                                 tp.channels_last, tp.compile, suite.suite.seeds)
        for (role, name), workload, bs, precision, cl, compiled, seed in axes:
            if (role == "gan") != workload.startswith("gan-"):
                continue  # GAN workloads apply to GANs, the others to classifiers
            target, dataset = _throughput_target(suite, role, name, base)
            config = ThroughputCellConfig(
                workload=workload, target=target, dataset=dataset_spec(suite, dataset, base),
                batch_size=bs, precision=precision, channels_last=cl, compile=compiled,
                warmup=tp.warmup, repeats=tp.repeats, epsilon=tp.epsilon,
                pgd_steps=tp.pgd_steps, peak_tflops=tp.peak_tflops, seed=seed)
            label = (f"{workload} {name} bs={bs} {precision}{' cl' if cl else ''}"
                     f"{' compiled' if compiled else ''}")
            out.add(Cell("throughput", config, {}, label))


def dataset_spec(suite: Suite, name: str, base: Path) -> DatasetSpec:
    return resolve_dataset(suite.datasets[name], name, base)


def resolve_dataset(cfg: DatasetConfig, name: str, base: Path) -> DatasetSpec:
    """A validated `[datasets.NAME]` table, resolved: `root` made absolute against `base`."""
    fields = cfg.model_dump(exclude_unset=True)  # keys the kind does not use stay unset
    if cfg.root is not None:
        fields["root"] = resolve_path(cfg.root, base)
    return DatasetSpec(name=name, **fields)


def _model_source(suite: Suite, model: str, seed: int, base: Path,
                  out: _Plan) -> tuple[dict[str, str], ModelSource]:
    """(deps, source) for evaluating `model`: a train cell for built-ins, the checkpoint otherwise."""
    m = suite.models[model]
    if m.arch is None:
        checkpoint = resolve_path(m.checkpoint, base)
        return {}, UserSource(factory=m.factory, checkpoint=checkpoint,
                              checkpoint_sha256=_sha256_or_none(checkpoint),
                              normalize=m.normalize)
    train = TrainCellConfig(model=model, arch=m.arch, dataset=dataset_spec(suite, m.dataset, base),
                            normalize=m.normalize, train=m.train or TrainConfig(), seed=seed)
    train_id = out.add(Cell("train", train, {}, f"train {model} seed={seed}"))
    return {"model": train_id}, TrainedSource(arch=m.arch, normalize=m.normalize)


def _throughput_target(suite: Suite, role: str, name: str, base: Path):
    """(target, dataset name): what a throughput cell times, freshly initialised."""
    if role == "gan":
        g = suite.gans[name]
        return GanTarget(gan=name, arch=g.arch, z_dim=g.z_dim), g.dataset
    m = suite.models[name]
    if m.arch is None:
        checkpoint = resolve_path(m.checkpoint, base)
        return UserTarget(model=name, factory=m.factory, checkpoint=checkpoint,
                          checkpoint_sha256=_sha256_or_none(checkpoint),
                          normalize=m.normalize), m.dataset
    return TrainedTarget(model=name, arch=m.arch, normalize=m.normalize,
                         train=m.train or TrainConfig()), m.dataset


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
