"""The typed config of each cell kind: what `plan` builds and what the cell takes.

Every field is resolved and validated when the suite is planned (paths made absolute, defaults
filled in, ε parsed), so a cell reads typed attributes and never re-casts or re-defaults a
value. `as_dict()` is the config's JSON form: it goes into the journal and, through
bench.identity, into the cell's id.

Pure pydantic, no torch: `bench validate` plans without importing torch. The suite layer owns
these types (plan produces them); cells import them, never the other way round.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from bench.suite.attack_options import (
    ATTACK_NAMES,
    AUTOATTACK_VERSIONS,
    DEFAULT_IMPLEMENTATION,
    IMPLEMENTATIONS,
    NORMS,
    PGD_LOSSES,
)
from bench.suite.schema import (
    ZOO_DATASETS,
    ZOO_THREAT_MODELS,
    DatasetConfig,
    Normalization,
    TrainConfig,
)


class CellConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    # Fields left out of the JSON form when they are None (added after ids were first
    # published: omitting them keeps the ids of cells that do not use them).
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        return {k: v for k, v in out.items() if not (k in self.OMIT_IF_NONE and v is None)}


class DatasetSpec(DatasetConfig):
    """A `[datasets.NAME]` table, resolved: its name, and `root` made absolute."""

    name: str

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def as_content(self) -> dict[str, Any]:
        """What the data is, without the suite's label for it (the name)."""
        return {k: v for k, v in self.as_dict().items() if k != "name"}


class TrainedSource(CellConfig):
    """A built-in architecture, trained by the model's train cell."""

    arch: str
    normalize: Normalization | None


class UserSource(CellConfig):
    """A user's own model: factory + checkpoint (a state_dict), identified by its sha256."""

    factory: str
    checkpoint: str
    checkpoint_sha256: str | None  # None: the file is missing; the cell fails naming it
    normalize: Normalization | None


class RobustBenchSource(CellConfig):
    """A RobustBench zoo model: the architecture robustbench builds for (dataset,
    threat_model, name), the weights from `checkpoint` in RobustBench's folder layout,
    identified by their sha256 (None: missing at plan time; fetched when `download`)."""

    name: str
    dataset: Literal[ZOO_DATASETS]
    threat_model: Literal[ZOO_THREAT_MODELS]
    checkpoint: str
    checkpoint_sha256: str | None
    download: bool = False
    normalize: Normalization | None

    @model_serializer(mode="wrap")
    def _download_off_is_not_identity(self, handler):
        # Allowing a download does not change what is evaluated (the sha256 says that), so a
        # suite that turns download off after the first fetch keeps its cell ids.
        out = handler(self)
        return {k: v for k, v in out.items() if not (k == "download" and v is False)}


class MemorySource(CellConfig):
    """A model handed over in memory (bench.api.evaluate_robustness), identified by a
    fingerprint of its state_dict (bench.fingerprint) in place of a checkpoint's sha256."""

    fingerprint: str


class MemoryData(CellConfig):
    """Examples handed over in memory (bench.api.evaluate_robustness): the name the rows
    give them, and the seed of a `limit` subset (a suite's `[datasets.X] seed`)."""

    name: str
    seed: int = 0


ModelSource = Union[TrainedSource, UserSource, RobustBenchSource]


class TrainCellConfig(CellConfig):
    model: str
    arch: str
    dataset: DatasetSpec
    normalize: Normalization | None
    train: TrainConfig
    seed: int


class AttackParams(CellConfig):
    """The settings of one `[[robustness]]` attack: exactly the suite keys
    bench.suite.attack_options.ATTACK_KEYS lists for it, which are its sweep's keywords
    (tests/test_robustness_wiring.py checks both). Every attack has a threat model."""

    norm: Literal[NORMS]

    def sweep_kwargs(self) -> dict[str, Any]:
        """The keyword parameters of the attack's sweep (bench.attacks.ATTACKS)."""
        return {name: getattr(self, name) for name in type(self).model_fields}


class FgsmParams(AttackParams):
    """FGSM: one step of ε, L∞ only."""


class PgdParams(AttackParams):
    steps: int = Field(gt=0)
    alpha: float | None  # None: the attack's default step rule, 2.5·ε/steps for each ε
    random_start: bool
    restarts: int = Field(gt=0)
    loss: Literal[PGD_LOSSES]


class IterativeParams(AttackParams):
    """APGD-CE, APGD-DLR, APGD-T, FAB and FAB-T."""

    steps: int = Field(gt=0)
    restarts: int = Field(gt=0)


class SquareParams(AttackParams):
    queries: int = Field(gt=0)
    restarts: int = Field(gt=0)


class AutoAttackParams(AttackParams):
    version: Literal[AUTOATTACK_VERSIONS]
    steps: int = Field(gt=0)  # of its APGD, APGD-T and FAB parts


ATTACK_PARAMS: dict[str, type[AttackParams]] = {
    "fgsm": FgsmParams, "pgd": PgdParams, "apgd-ce": IterativeParams,
    "apgd-dlr": IterativeParams, "apgd-t": IterativeParams, "fab": IterativeParams,
    "fab-t": IterativeParams, "square": SquareParams, "autoattack": AutoAttackParams,
}
AnyAttackParams = Union[FgsmParams, PgdParams, IterativeParams, SquareParams, AutoAttackParams]


class ExampleRange(CellConfig):
    """The examples a sample shard evaluates: positions [start, stop) of the cell's evaluated
    examples (the dataset split, or its seeded `limit` subset, in dataset order), always
    whole batches, so that every batch is the one the unsharded cell attacks."""

    shard: int = Field(ge=0)  # 0-based
    shards: int = Field(gt=0)
    start: int = Field(ge=0)
    stop: int = Field(gt=0)


class RobustnessCellConfig(CellConfig):
    # The sanity-check switches (bench.checks) are left out of the JSON form when off, so the
    # ids of cells that run no check stay those published before the checks; likewise the
    # implementation when it is torchattacks, the default it had before it was a key.
    OMIT_IF_FALSE: ClassVar[frozenset[str]] = frozenset({"model_checks", "convergence"})
    OMIT_IF_DEFAULT: ClassVar[frozenset[str]] = frozenset({"implementation"})
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"examples"})

    model: str
    source: ModelSource | MemorySource  # in memory: bench.api_robustness only, never planned
    dataset: DatasetSpec | MemoryData
    split: Literal["train", "test"]
    attack: Literal[ATTACK_NAMES]
    attack_params: AnyAttackParams  # the model ATTACK_PARAMS names for `attack`
    epsilons: list[float]
    batch_size: int
    limit: int | None
    seed: int
    # Run the model-level checks (determinism, gradient saturation, unbounded ε): set by the
    # plan on one cell per model, seed, split, norm and batch size, not on every attack's.
    model_checks: bool = False
    convergence: bool = False  # pgd only: the PGD convergence check ([[robustness]] key)
    # Who runs the attack (bench.suite.attack_options.IMPLEMENTATIONS); a row column too.
    implementation: Literal[IMPLEMENTATIONS] = DEFAULT_IMPLEMENTATION
    # A sample shard ("robustness-shard" cells): which of the evaluated examples it attacks.
    # None: all of them (a "robustness" cell, sharded or not: it merges its shards' records).
    examples: ExampleRange | None = None

    def as_dict(self) -> dict[str, Any]:
        fields = type(self).model_fields
        return {k: v for k, v in super().as_dict().items()
                if not (k in self.OMIT_IF_FALSE and v is False)
                and not (k in self.OMIT_IF_DEFAULT and v == fields[k].default)}

    @field_validator("attack_params", mode="before")
    @classmethod
    def _params_of_attack(cls, params, info: ValidationInfo):
        """Read the JSON form back as the attack's own model, not whichever fits first."""
        attack = info.data.get("attack")
        if isinstance(params, dict) and attack in ATTACK_PARAMS:
            return ATTACK_PARAMS[attack].model_validate(params)
        return params

    @model_validator(mode="after")
    def _params_match_attack(self) -> "RobustnessCellConfig":
        expected = ATTACK_PARAMS[self.attack]
        if type(self.attack_params) is not expected:
            raise ValueError(f"attack {self.attack!r} takes {expected.__name__}, got "
                             f"{type(self.attack_params).__name__}")
        return self


class ExtractorCellConfig(CellConfig):
    dataset: DatasetSpec


class GanCellConfig(CellConfig):
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset(
        {"inception_weights_sha256", "lr_d", "betas", "n_critic", "ema", "fid_float64"})

    gan: str
    arch: str
    dataset: DatasetSpec
    steps: int
    batch_size: int
    eval_every: int
    metrics: list[Literal["fid", "kid", "isc", "prc"]]
    num_samples: int
    lr: float | None  # None: the architecture's (paper's) recipe, as for the next four
    lr_d: float | None = None
    betas: tuple[float, float] | None = None
    n_critic: int | None = None
    ema: float | None = None
    divergence_patience: int
    z_dim: int | None  # None: the default
    amp: bool
    fid_float64: Literal[True] | None = None  # None (False): float32 features, as older ids
    feature_extractor: Literal["domain", "inception"]
    inception_weights: str | None
    inception_weights_sha256: str | None = None
    seed: int

    @field_validator("fid_float64", mode="before")
    @classmethod
    def _false_is_unset(cls, value):
        return None if value is False else value


class TrainedTarget(CellConfig):
    """A built-in classifier to time: freshly initialised, optimised as its recipe says."""

    model: str
    arch: str
    normalize: Normalization | None
    train: TrainConfig


class UserTarget(CellConfig):
    model: str
    factory: str
    checkpoint: str
    checkpoint_sha256: str | None
    normalize: Normalization | None


class GanTarget(CellConfig):
    gan: str
    arch: str
    z_dim: int | None


ThroughputTarget = Union[TrainedTarget, UserTarget, GanTarget]


class ThroughputCellConfig(CellConfig):
    workload: str
    target: ThroughputTarget
    dataset: DatasetSpec
    batch_size: int
    precision: Literal["fp32", "bf16", "fp16"]
    channels_last: bool
    compile: bool
    warmup: int
    repeats: int
    epsilon: float
    pgd_steps: int
    peak_tflops: float | None
    seed: int


CELL_CONFIGS: dict[str, type[CellConfig]] = {
    "train": TrainCellConfig,
    "robustness": RobustnessCellConfig,
    "robustness-shard": RobustnessCellConfig,
    "robustness-checks": RobustnessCellConfig,
    "extractor": ExtractorCellConfig,
    "gan": GanCellConfig,
    "throughput": ThroughputCellConfig,
}
