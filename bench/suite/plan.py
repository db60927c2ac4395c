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
    ExampleRange,
    ExtractorCellConfig,
    GanCellConfig,
    GanTarget,
    ModelSource,
    RobustBenchSource,
    RobustnessCellConfig,
    ThroughputCellConfig,
    TrainCellConfig,
    TrainedSource,
    TrainedTarget,
    UserSource,
    UserTarget,
)
from bench.suite.checkpoints import Checkpoint, expand_checkpoints, resolve_path
from bench.suite.load import LoadedSuite
from bench.suite.schema import DatasetConfig, ModelConfig, RobustnessConfig, Suite, TrainConfig
from bench.suite.shards import example_count, shard_ranges


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
    out, user_checkpoints = _Plan(), checkpoints(loaded)
    plan_robustness(loaded.suite, loaded.path.parent, out, user_checkpoints)
    plan_gans(loaded.suite, loaded.path.parent, out)
    plan_throughput(loaded.suite, loaded.path.parent, out, user_checkpoints)
    return list(out.cells.values())


def checkpoints(loaded: LoadedSuite) -> dict[str, list[Checkpoint]]:
    """Each user model's checkpoint(s): one, or one per file its glob matches."""
    base = loaded.path.parent
    return {name: expand_checkpoints(name, m.checkpoint, base, loaded.path, loaded.text)
            for name, m in loaded.suite.models.items() if m.checkpoint is not None}


def plan_robustness(suite: Suite, base: Path, out: _Plan,
                    user_checkpoints: dict[str, list[Checkpoint]]) -> None:
    """One robustness cell per (section, model and checkpoint, seed), after its model's
    train cell; with `shard_size` or `shards`, its sample shards before it. The first cell
    of each model, seed, split, norm and batch size also runs the model-level sanity checks
    (they do not depend on the attack; a `limit`ed subset of a split already checked adds
    nothing)."""
    checked: set[tuple] = set()
    for rob in suite.robustness:
        for model, seed in itertools.product(rob.models, suite.suite.seeds):
            for ckpt in user_checkpoints.get(model, [None]):
                deps, source = _model_source(suite, model, seed, base, out, ckpt)
                name = model if ckpt is None else ckpt.model
                where = model_check_key(name, seed, rob)
                config = RobustnessCellConfig(
                    model=name, source=source,
                    dataset=dataset_spec(suite, suite.models[model].dataset, base),
                    split=rob.split, attack=rob.attack, attack_params=attack_params(rob),
                    epsilons=list(rob.epsilons), batch_size=rob.batch_size, limit=rob.limit,
                    seed=seed, model_checks=where not in checked, convergence=rob.convergence,
                    implementation=rob.implementation)
                checked.add(where)
                label = f"{rob.attack} {name} seed={seed}"
                out.add(Cell("robustness", config, deps | plan_shards(rob, config, deps, label, out),
                             label))


def model_check_key(model: str, seed: int, rob: RobustnessConfig) -> tuple:
    """The model-level checks run once per value of this (in the first cell that has it)."""
    return model, seed, rob.split, rob.norm, rob.batch_size


def plan_shards(rob: RobustnessConfig, config: RobustnessCellConfig, deps: dict[str, str],
                label: str, out: _Plan) -> dict[str, str]:
    """The sample shards of one robustness cell (none unless the section asks), and the cell
    that runs its model-level checks beside them: role -> id. Each shard attacks whole
    batches of the evaluated examples and runs no sanity check; the model checks (which
    need no attack result) run as a cell of their own, so that they do not wait for the
    shards, nor the merging cell for them; the convergence check (which pairs with the
    attack's results) runs in the merging cell. Every check sees the examples an unsharded
    cell's would."""
    if rob.shard_size is None and rob.shards is None:
        return {}
    n = example_count(config.dataset, config.split, config.limit)
    ranges = shard_ranges(n, rob.batch_size, shard_size=rob.shard_size, shards=rob.shards)
    roles = {}
    if config.model_checks:  # first in plan order too: it cannot be split (balance.py says why)
        checks = config.model_copy(update={"convergence": False})
        roles[identity.CHECKS_ROLE] = out.add(Cell("robustness-checks", checks, deps,
                                                   f"{label} model checks"))
    for k, (start, stop) in enumerate(ranges):
        examples = ExampleRange(shard=k, shards=len(ranges), start=start, stop=stop)
        shard = config.model_copy(update={"examples": examples, "model_checks": False,
                                          "convergence": False})
        roles[f"{identity.SHARD_ROLE}{k:05d}"] = out.add(Cell(
            "robustness-shard", shard, deps, f"{label} shard {k + 1}/{len(ranges)}"))
    return roles


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


def plan_throughput(suite: Suite, base: Path, out: _Plan,
                    user_checkpoints: dict[str, list[Checkpoint]]) -> None:
    """One throughput cell per point of each section's grid (GAN workloads for GANs only)."""
    for tp in suite.throughput:
        targets = [("model", m) for m in tp.models] + [("gan", g) for g in tp.gans]
        axes = itertools.product(targets, tp.workloads, tp.batch_sizes, tp.precision,
                                 tp.channels_last, tp.compile, suite.suite.seeds)
        for (role, name), workload, bs, precision, cl, compiled, seed in axes:
            if (role == "gan") != workload.startswith("gan-"):
                continue  # GAN workloads apply to GANs, the others to classifiers
            target, dataset = _throughput_target(suite, role, name, base, user_checkpoints)
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


def _model_source(suite: Suite, model: str, seed: int, base: Path, out: _Plan,
                  ckpt: Checkpoint | None = None) -> tuple[dict[str, str], ModelSource]:
    """(deps, source) for evaluating `model`: a train cell for built-ins, the checkpoint
    (`ckpt`, one of the model's) otherwise."""
    m = suite.models[model]
    if m.robustbench is not None:
        checkpoint = zoo_checkpoint(m, base)
        return {}, RobustBenchSource(
            name=m.robustbench.name, dataset=m.robustbench.dataset,
            threat_model=m.robustbench.threat_model, checkpoint=checkpoint,
            checkpoint_sha256=_sha256_or_none(checkpoint), download=m.download,
            normalize=m.normalize)
    if m.arch is None:
        checkpoint = ckpt.path
        return {}, UserSource(factory=m.factory, checkpoint=checkpoint,
                              checkpoint_sha256=_sha256_or_none(checkpoint),
                              normalize=m.normalize)
    train = TrainCellConfig(model=model, arch=m.arch, dataset=dataset_spec(suite, m.dataset, base),
                            normalize=m.normalize, train=m.train or TrainConfig(), seed=seed)
    train_id = out.add(Cell("train", train, {}, f"train {model} seed={seed}"))
    return {"model": train_id}, TrainedSource(arch=m.arch, normalize=m.normalize)


def zoo_checkpoint(model: ModelConfig, base: Path) -> str:
    """Where RobustBench's layout puts a zoo model's weights: MODEL_DIR/DATASET/THREAT_MODEL/
    NAME.pt (robustbench.utils.load_model), MODEL_DIR relative to the suite file."""
    zoo = model.robustbench
    folder = Path(resolve_path(model.model_dir, base))
    return str(folder / zoo.dataset / zoo.threat_model / f"{zoo.name}.pt")


def _throughput_target(suite: Suite, role: str, name: str, base: Path,
                       user_checkpoints: dict[str, list[Checkpoint]]):
    """(target, dataset name): what a throughput cell times, freshly initialised."""
    if role == "gan":
        g = suite.gans[name]
        return GanTarget(gan=name, arch=g.arch, z_dim=g.z_dim), g.dataset
    m = suite.models[name]
    if m.arch is None:
        # The first file of a checkpoint glob: the weights do not change the speed.
        checkpoint = user_checkpoints[name][0].path
        return UserTarget(model=name, factory=m.factory, checkpoint=checkpoint,
                          checkpoint_sha256=_sha256_or_none(checkpoint),
                          normalize=m.normalize), m.dataset
    return TrainedTarget(model=name, arch=m.arch, normalize=m.normalize,
                         train=m.train or TrainConfig()), m.dataset


def _extractor(requested: str, inception_weights: str | None) -> str:
    if requested == "auto":
        return "inception" if inception_weights else "domain"
    return requested


def _sha256_or_none(path: str) -> str | None:
    try:
        return identity.file_sha256(path)
    except OSError:
        return None  # reported by the cell, which fails with the path in its reason
