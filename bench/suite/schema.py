"""The suite file's schema: pydantic models that reject unknown keys and wrong types.

Key names here are the contract users write against; `docs/suites.md` documents them
(tests/test_docs.py holds its key tables to these models).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from bench import defaults
from bench.suite.attack_options import (
    ATTACK_KEYS,
    ATTACK_NAMES,
    ATTACK_NORMS,
    AUTOATTACK_VERSIONS,
    DEFAULT_IMPLEMENTATION,
    IMPLEMENTATIONS,
    NORMS,
    PGD_LOSSES,
    REFERENCE_ATTACKS,
)
from bench.suite.epsilon import Epsilon, StepSize
from bench.suite.fields import (
    INT32_MAX,
    Count,
    ImageSide,
    ImportPath,
    NonNegativeCount,
    PathStr,
    Positive,
    Seed,
    not_bool,
    used_only_with,
)

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Beta = Annotated[float, Field(ge=0, lt=1)]  # an Adam beta or an EMA decay
DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:[0-9]{1,3}|mps)$"
TORCHVISION_KINDS = ("mnist", "fashion-mnist", "cifar10", "svhn")


class Strict(BaseModel):
    # strict: no bool-as-number or "1.0"-as-number coercion; allow_inf_nan=False: TOML's
    # inf/nan (and 1e309) are never a meaningful setting here.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False,
                              defer_build=True)


class SuiteMeta(Strict):
    name: Name
    description: str = ""
    seeds: list[Seed] = Field(default_factory=lambda: list(defaults.SEEDS), min_length=1)
    device: Annotated[str, Field(pattern=DEVICE_PATTERN)] = defaults.DEVICE
    executor: Literal["local", "ray"] = defaults.EXECUTOR
    ray_address: str | None = None
    threads: Count | Literal["all"] = defaults.THREADS  # per CPU cell
    workers: Count | Literal["auto"] = defaults.WORKERS  # local executor: cells at once
    ray_num_gpus: Positive = defaults.RAY_NUM_GPUS  # per cell on CUDA
    ray_max_retries: NonNegativeCount = defaults.RAY_MAX_RETRIES  # worker deaths
    ray_schedule_timeout: Positive = defaults.RAY_SCHEDULE_TIMEOUT  # seconds unscheduled
    inception_weights: PathStr | None = None  # local torch-fidelity Inception weights file
    deterministic: bool = defaults.DETERMINISTIC  # deterministic kernels for every cell

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be unique")
        return seeds


class DatasetConfig(Strict):
    kind: Literal["digits", "mnist", "fashion-mnist", "cifar10", "svhn", "imagefolder"]
    root: PathStr | None = None
    download: bool = False
    image_size: Annotated[list[ImageSide], Field(min_length=2, max_length=2)] | None = None  # [H, W]
    channels: Annotated[Literal[1, 3], not_bool] | None = None
    seed: Seed = 0  # the train/test split seed where the dataset has no official split
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = defaults.DIGITS_TEST_FRACTION
    limit_train: Count | None = None
    limit_test: Count | None = None

    _kind_keys = used_only_with("kind", {
        "root": TORCHVISION_KINDS + ("imagefolder",),  # digits are embedded
        "download": TORCHVISION_KINDS,
        "test_fraction": ("digits", "imagefolder"),  # the others have an official split
    })

    @model_validator(mode="after")
    def _root_required(self) -> "DatasetConfig":
        if self.kind not in ("digits",) and not self.root:
            raise ValueError(f"kind {self.kind!r} needs root = \"path/to/data\"")
        return self


class TrainConfig(Strict):
    recipe: Literal["standard", "fgsm-rs", "pgd"] = "standard"
    epochs: Count = defaults.TRAIN_EPOCHS
    lr: Positive = defaults.TRAIN_LR
    batch_size: Count = defaults.TRAIN_BATCH_SIZE
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    epsilon: Epsilon | None = None  # adversarial recipes: the training ε-ball
    alpha: StepSize | None = None  # step size; recipe default if unset
    steps: Count = defaults.PGD_TRAIN_STEPS  # pgd recipe
    random_start: bool = True
    stop_on_overfit: bool = False  # stop when catastrophic overfitting is detected
    # Which epoch's weights training returns: "best-pgd" (best held-out PGD accuracy) or
    # "last"; unset: defaults.KEEP_BY_RECIPE (best-pgd for fgsm-rs).
    keep: Literal["best-pgd", "last"] | None = None
    momentum: Annotated[float, Field(ge=0, lt=1)] = defaults.SGD_MOMENTUM  # sgd only
    nesterov: bool = defaults.SGD_NESTEROV  # sgd only; no effect at momentum 0
    crop_padding: NonNegativeCount = 0  # random crop after zero padding; 0: off
    flip: bool = False  # random horizontal flip

    _recipe_keys = used_only_with("recipe", {
        "epsilon": ("fgsm-rs", "pgd"), "alpha": ("fgsm-rs", "pgd"), "steps": ("pgd",),
        "random_start": ("fgsm-rs", "pgd"), "stop_on_overfit": ("fgsm-rs", "pgd"),
        "keep": ("fgsm-rs", "pgd"),
    })
    _optimizer_keys = used_only_with("optimizer", {"momentum": ("sgd",), "nesterov": ("sgd",)})

    # Keys added after cell ids were first published: left out of the dump at their default,
    # so the cells of suites that do not use them keep their ids (like CellConfig.OMIT_IF_NONE).
    OMIT_IF_DEFAULT: ClassVar[frozenset[str]] = frozenset(
        {"keep", "momentum", "nesterov", "crop_padding", "flip"})

    @model_serializer(mode="wrap")
    def _omit_new_keys_at_default(self, handler):
        fields = type(self).model_fields
        return {k: v for k, v in handler(self).items()
                if not (k in self.OMIT_IF_DEFAULT and v == fields[k].default)}

    @model_validator(mode="after")
    def _adv_needs_eps(self) -> "TrainConfig":
        if self.recipe != "standard" and self.epsilon is None:
            raise ValueError(f"recipe {self.recipe!r} needs epsilon")
        return self

    def with_arch_defaults(self, arch: str, dataset_kind: str | None) -> "TrainConfig":
        """This config with `arch`'s recipe defaults (bench.defaults) for the keys left unset."""
        optimizer = (self.optimizer if "optimizer" in self.model_fields_set
                     else defaults.ARCH_OPTIMIZER.get(arch, self.optimizer))
        found = {"optimizer": optimizer,
                 **defaults.ARCH_OPTIMIZER_SETTINGS.get((arch, optimizer), {}),
                 **defaults.ARCH_AUGMENTATION.get((arch, dataset_kind), {})}
        unset = {k: v for k, v in found.items() if k not in self.model_fields_set}
        return self.model_copy(update=unset) if unset else self


class Normalization(Strict):
    mean: list[float] = Field(min_length=1)
    std: list[Positive] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_length(self) -> "Normalization":
        if len(self.mean) != len(self.std):
            raise ValueError("mean and std must have the same length")
        return self


# RobustBench's model zoo: its datasets and the threat-model folders of its checkpoints
# (robustbench.model_zoo.enums; "corruptions_3d" models live in the "corruptions" folder).
ZOO_DATASETS = ("cifar10", "cifar100", "imagenet")
ZOO_THREAT_MODELS = ("Linf", "L2", "corruptions")


class RobustBenchModel(Strict):
    """`robustbench = { name = "Standard", dataset = "cifar10", threat_model = "Linf" }`: a
    model of RobustBench's zoo, as `robustbench.utils.load_model` names it."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    dataset: Literal[ZOO_DATASETS] = "cifar10"
    threat_model: Literal[ZOO_THREAT_MODELS] = "Linf"


class ModelConfig(Strict):
    dataset: Name
    arch: str | None = None  # a built-in architecture, trained by bench
    train: TrainConfig | None = None
    factory: ImportPath | None = None  # "pkg.module:callable" returning an nn.Module
    # A state_dict file, loaded with weights_only=True; or a glob ("weights/*.pt"): one model
    # per matching file, named "<model>@<file stem>" (bench/suite/checkpoints.py).
    checkpoint: PathStr | None = None
    normalize: Normalization | None = None
    robustbench: RobustBenchModel | None = None  # a RobustBench zoo model (reference extra)
    # robustbench only: the folder holding RobustBench's layout, DATASET/THREAT_MODEL/NAME.pt
    # (relative to the suite file), and whether a missing checkpoint may be downloaded.
    model_dir: PathStr = defaults.ROBUSTBENCH_MODEL_DIR
    download: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        sources = [k for k in ("arch", "factory", "robustbench") if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError("set exactly one of arch (a built-in trained by bench), factory "
                             "(your own model) or robustbench (a RobustBench zoo model)")
        if self.robustbench is not None:
            return self._zoo_model()
        zoo_only = sorted(self.model_fields_set & {"model_dir", "download"})
        if zoo_only:
            raise ValueError(f"{', '.join(zoo_only)}: used only with robustbench; remove it")
        if self.factory is not None and self.train is not None:
            raise ValueError("a factory model is evaluated as given; remove train")
        if self.arch is None and self.checkpoint is None:
            raise ValueError("a factory model needs checkpoint")
        if self.arch is not None and self.checkpoint is not None:
            raise ValueError("checkpoint is only used with factory (a built-in arch is trained "
                             "by bench); remove it")
        return self

    def _zoo_model(self) -> "ModelConfig":
        if self.train is not None:
            raise ValueError("a robustbench model is evaluated as published; remove train")
        if self.checkpoint is not None:
            raise ValueError("a robustbench model's checkpoint is MODEL_DIR/DATASET/"
                             "THREAT_MODEL/NAME.pt (set model_dir); remove checkpoint")
        return self


class RobustnessConfig(Strict):
    models: list[Name] = Field(min_length=1)
    attack: Literal[ATTACK_NAMES] = "fgsm"
    # Before epsilons, alpha and loss: their validators read it (bench/suite/epsilon.py).
    norm: Literal[NORMS] = defaults.NORM
    epsilons: list[Epsilon] = Field(min_length=1)
    split: Literal["train", "test"] = "test"
    steps: Count = defaults.PGD_STEPS  # pgd, apgd-*, fab*, autoattack (its gradient parts)
    alpha: StepSize | None = None  # pgd step; default 2.5*eps/steps
    random_start: bool = True  # pgd only
    batch_size: Count = defaults.EVAL_BATCH_SIZE
    limit: Count | None = None  # evaluate on a seeded subset
    restarts: Count = defaults.RESTARTS  # pgd, apgd-*, fab*, square
    loss: Literal[PGD_LOSSES] = defaults.PGD_LOSS  # pgd only
    version: Literal[AUTOATTACK_VERSIONS] = defaults.AUTOATTACK_VERSION  # autoattack only
    queries: Count = defaults.SQUARE_QUERIES  # square only
    # Who runs the attack: torchattacks, or the original AutoAttack code ("reference": the
    # reference extra, for REFERENCE_ATTACKS; bench.attacks.reference).
    implementation: Literal[IMPLEMENTATIONS] = DEFAULT_IMPLEMENTATION
    # pgd only: also run PGD with CONVERGENCE_FACTOR× the steps and restarts on a subset,
    # and flag when it does better beyond chance (bench.checks.convergence).
    convergence: bool = False
    # Sample shards (bench/suite/plan.py): the examples of each (model, seed) are cut into
    # shards of whole batches, each a cell of its own; the merged rows equal the unsharded
    # ones. At most one of the two.
    shard_size: Count | None = None  # examples per shard (rounded up to whole batches)
    shards: Count | None = None  # number of shards (fewer when there are fewer batches)

    # Keys an attack does not take are errors (bench.suite.attack_options.ATTACK_KEYS).
    _attack_keys = used_only_with("attack", {
        key: tuple(a for a, keys in ATTACK_KEYS.items() if key in keys)
        for key in ("steps", "alpha", "random_start", "restarts", "loss", "version", "queries")})
    # A sanity check, not a sweep setting, so not in ATTACK_KEYS.
    _check_keys = used_only_with("attack", {"convergence": ("pgd",)})

    @field_validator("norm")
    @classmethod
    def _norm_of_attack(cls, norm: str, info: ValidationInfo) -> str:
        attack = info.data.get("attack")
        if attack is not None and norm not in ATTACK_NORMS[attack]:
            raise ValueError(f"attack {attack!r} has no {norm!r} form in torchattacks (only "
                             f"{', '.join(map(repr, ATTACK_NORMS[attack]))})")
        return norm

    @field_validator("implementation")
    @classmethod
    def _implementation_of_attack(cls, implementation: str, info: ValidationInfo) -> str:
        attack = info.data.get("attack")
        if implementation == "reference" and attack is not None and \
                attack not in REFERENCE_ATTACKS:
            raise ValueError(f"attack {attack!r} has no reference implementation (the original "
                             f"AutoAttack code has {', '.join(map(repr, REFERENCE_ATTACKS))}); "
                             "remove implementation")
        return implementation

    @field_validator("loss")
    @classmethod
    def _loss_of_norm(cls, loss: str, info: ValidationInfo) -> str:
        if loss != "ce" and info.data.get("norm") == "l2":
            raise ValueError(f"loss {loss!r} needs norm = 'linf': torchattacks' L2 PGD (PGDL2) "
                             "has only cross-entropy; use attack = 'apgd-dlr' for DLR in L2")
        return loss

    @field_validator("epsilons")
    @classmethod
    def _unique_epsilons(cls, epsilons: list[float]) -> list[float]:
        repeated = sorted({e for e in epsilons if epsilons.count(e) > 1})
        if repeated:
            raise ValueError(f"each ε once: {', '.join(f'{e:g}' for e in repeated)} is listed "
                             "more than once")
        return epsilons

    @field_validator("shards")
    @classmethod
    def _one_way_to_shard(cls, shards: int | None, info: ValidationInfo) -> int | None:
        if shards is not None and info.data.get("shard_size") is not None:
            raise ValueError("set shard_size or shards, not both")
        return shards

    @field_validator("restarts")
    @classmethod
    def _restarts_need_random_start(cls, restarts: int, info: ValidationInfo) -> int:
        if restarts > 1 and info.data.get("attack") == "pgd" and \
                info.data.get("random_start") is False:
            raise ValueError("restarts > 1 needs random_start = true (restarts from the clean "
                             "point all find the same adversarial example)")
        return restarts


class GanConfig(Strict):
    arch: str  # dcgan | wgan-gp | sngan (registry)
    dataset: Name
    steps: Count = defaults.GAN_STEPS
    batch_size: Count = defaults.GAN_BATCH_SIZE
    eval_every: Count = defaults.GAN_EVAL_EVERY
    metrics: list[Literal["fid", "kid", "isc", "prc"]] = Field(
        default_factory=lambda: list(defaults.GAN_METRICS), min_length=1)
    num_samples: Annotated[int, Field(gt=1, le=INT32_MAX)] = defaults.GAN_NUM_SAMPLES
    feature_extractor: Literal["auto", "domain", "inception"] = "auto"
    lr: Positive | None = None  # G and D; the paper's if unset (docs/generative.md)
    lr_d: Positive | None = None  # D only (TTUR); default: lr, else the paper's
    betas: Annotated[list[Beta], Field(min_length=2, max_length=2)] | None = None  # Adam (β1, β2)
    n_critic: Count | None = None  # D updates per G update; the paper's if unset
    ema: Beta | None = None  # decay of the generator-weight EMA that is sampled; 0: none
    divergence_patience: NonNegativeCount = defaults.GAN_DIVERGENCE_PATIENCE  # 0: off
    z_dim: Count | None = None
    amp: bool = False  # mixed precision on CUDA only
    # float64 features and FID statistics (bench.metrics.fidelity.Scorer): FID then barely
    # depends on the batch size (check fid_batch_size_invariance), at 2-3× the extraction time.
    fid_float64: bool = False
    # false: no gan cell (no training, no FID); the GAN is only timed by [[throughput]] cells,
    # as models are only trained when a [[robustness]] section evaluates them.
    train: bool = True

    @model_validator(mode="after")
    def _untrained_keys(self) -> "GanConfig":
        if not self.train:
            unused = sorted(self.model_fields_set & GAN_TRAINING_KEYS)
            if unused:
                raise ValueError(f"{', '.join(unused)}: not used with train = false (the GAN is "
                                 "only timed by [[throughput]]); remove them")
        return self


# What a GAN with train = false ignores: [[throughput]] times its freshly built generator and
# discriminator (arch, z_dim) with its own batch sizes and precisions.
GAN_TRAINING_KEYS = frozenset({"steps", "batch_size", "eval_every", "metrics", "num_samples",
                               "feature_extractor", "lr", "lr_d", "betas", "n_critic", "ema",
                               "divergence_patience", "amp", "fid_float64"})


class ThroughputConfig(Strict):
    models: list[Name] = Field(default_factory=list)
    gans: list[Name] = Field(default_factory=list)
    workloads: list[Literal["inference", "train-step", "fgsm", "pgd", "gan-step", "gan-sample"]] = Field(
        min_length=1)
    batch_sizes: list[Count] = Field(
        default_factory=lambda: list(defaults.THROUGHPUT_BATCH_SIZES), min_length=1)
    precision: list[Literal["fp32", "bf16", "fp16"]] = Field(default_factory=lambda: ["fp32"], min_length=1)
    channels_last: list[bool] = Field(default_factory=lambda: [False], min_length=1)
    compile: list[bool] = Field(default_factory=lambda: [False], min_length=1)
    warmup: NonNegativeCount = defaults.THROUGHPUT_WARMUP
    repeats: Count = defaults.THROUGHPUT_REPEATS
    epsilon: Epsilon = defaults.THROUGHPUT_EPSILON  # for the attack workloads
    pgd_steps: Count = defaults.PGD_STEPS
    peak_tflops: Positive | None = None  # override the device peak used for MFU

    _workload_keys = used_only_with("workloads", {"epsilon": ("fgsm", "pgd"), "pgd_steps": ("pgd",)})

    @model_validator(mode="after")
    def _something(self) -> "ThroughputConfig":
        if not self.models and not self.gans:
            raise ValueError("list at least one of models or gans")
        gan_workloads = [w for w in self.workloads if w.startswith("gan-")]
        if self.models and len(gan_workloads) == len(self.workloads):
            raise ValueError("models are timed by the inference, train-step, fgsm and pgd "
                             "workloads; none is listed")
        if self.gans and not gan_workloads:
            raise ValueError("gans are timed by the gan-step and gan-sample workloads; none is listed")
        return self


class MetricRule(Strict):
    """A `bench compare` rule for one metric (suite `[compare.METRIC]` or a rules file)."""

    direction: Literal["higher", "lower"] | None = None
    # inf is allowed: a tolerance of inf never gates the metric.
    rel_tol: Annotated[float, Field(ge=0, allow_inf_nan=True)] | None = None
    abs_tol: Annotated[float, Field(ge=0, allow_inf_nan=True)] | None = None
    alpha: Annotated[float, Field(gt=0, lt=1)] | None = None


class Suite(Strict):
    suite: SuiteMeta
    datasets: dict[Name, DatasetConfig] = Field(default_factory=dict)
    models: dict[Name, ModelConfig] = Field(default_factory=dict)
    robustness: list[RobustnessConfig] = Field(default_factory=list)
    gans: dict[Name, GanConfig] = Field(default_factory=dict)
    throughput: list[ThroughputConfig] = Field(default_factory=list)
    # Checked by bench.suite.rules.validate_rules (metric names, nested [compare.table.metric]).
    compare: dict[str, dict] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _arch_train_defaults(self) -> "Suite":
        # Resolved here, once, so the plan, the manifest and every cell see the values used.
        for name, model in self.models.items():
            if model.arch is None:
                continue
            dataset = self.datasets.get(model.dataset)  # a missing one is reported by load
            train = model.train or TrainConfig()
            resolved = train.with_arch_defaults(model.arch, dataset.kind if dataset else None)
            if resolved is not train:
                self.models[name] = model.model_copy(update={"train": resolved})
        return self


# Sections that reference other sections by name: (section, field, target section).
REFERENCES: list[tuple[str, str, str]] = [
    ("models", "dataset", "datasets"),
    ("gans", "dataset", "datasets"),
    ("robustness", "models", "models"),
    ("throughput", "models", "models"),
    ("throughput", "gans", "gans"),
]
SuiteSection = Union[DatasetConfig, ModelConfig, RobustnessConfig, GanConfig, ThroughputConfig]
