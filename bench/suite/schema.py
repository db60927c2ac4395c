"""The suite file's schema: pydantic models that reject unknown keys and wrong types.

Key names here are the contract users write against; `suites/README.md` documents them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bench import defaults

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:\d+|mps)$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_epsilon(value: float | int | str) -> float:
    """Accept 0.1, 8, "8/255" or "0.03"; the result must lie in [0, 1] (pixel units)."""
    if isinstance(value, bool):
        raise ValueError("expected a number or a fraction string like '8/255'")
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9.]+)\s*(?:/\s*([0-9.]+)\s*)?", value)
        if not m:
            raise ValueError(f"expected a number or a fraction like '8/255', got {value!r}")
        num, den = float(m.group(1)), float(m.group(2) or 1)
        if den == 0:
            raise ValueError(f"division by zero in {value!r}")
        value = num / den
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1] (pixel units), got {value}")
    return value


Epsilon = Annotated[float, Field(ge=0.0, le=1.0)]


class SuiteMeta(Strict):
    name: Name
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: list(defaults.SEEDS), min_length=1)
    device: Annotated[str, Field(pattern=DEVICE_PATTERN)] = defaults.DEVICE
    executor: Literal["local", "ray"] = defaults.EXECUTOR
    ray_address: str | None = None
    threads: Annotated[int, Field(gt=0)] | Literal["all"] = defaults.THREADS  # per CPU cell
    ray_num_gpus: Annotated[float, Field(gt=0)] = defaults.RAY_NUM_GPUS  # per cell on CUDA
    ray_max_retries: Annotated[int, Field(ge=0)] = defaults.RAY_MAX_RETRIES  # worker deaths
    inception_weights: str | None = None  # local torch-fidelity Inception weights file

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be unique")
        return seeds


class DatasetConfig(Strict):
    kind: Literal["digits", "mnist", "fashion-mnist", "cifar10", "svhn", "imagefolder"]
    root: str | None = None
    download: bool = False
    image_size: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] | None = None
    channels: Literal[1, 3] | None = None
    seed: int = 0  # the train/test split seed where the dataset has no official split
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = defaults.DIGITS_TEST_FRACTION
    limit_train: Annotated[int, Field(gt=0)] | None = None
    limit_test: Annotated[int, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _root_required(self) -> "DatasetConfig":
        if self.kind not in ("digits",) and not self.root:
            raise ValueError(f"kind {self.kind!r} needs root = \"path/to/data\"")
        return self


class TrainConfig(Strict):
    recipe: Literal["standard", "fgsm-rs", "pgd"] = "standard"
    epochs: Annotated[int, Field(gt=0)] = defaults.TRAIN_EPOCHS
    lr: Annotated[float, Field(gt=0)] = defaults.TRAIN_LR
    batch_size: Annotated[int, Field(gt=0)] = defaults.TRAIN_BATCH_SIZE
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    epsilon: Epsilon | None = None  # adversarial recipes: the training ε-ball
    alpha: Annotated[float, Field(gt=0)] | None = None  # step size; recipe default if unset
    steps: Annotated[int, Field(gt=0)] = defaults.PGD_TRAIN_STEPS  # pgd recipe
    random_start: bool = True
    stop_on_overfit: bool = False  # stop when catastrophic overfitting is detected

    @field_validator("epsilon", mode="before")
    @classmethod
    def _eps(cls, v):
        return None if v is None else parse_epsilon(v)

    @model_validator(mode="after")
    def _adv_needs_eps(self) -> "TrainConfig":
        if self.recipe != "standard" and self.epsilon is None:
            raise ValueError(f"recipe {self.recipe!r} needs epsilon")
        return self


class Normalization(Strict):
    mean: list[float] = Field(min_length=1)
    std: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_length(self) -> "Normalization":
        if len(self.mean) != len(self.std):
            raise ValueError("mean and std must have the same length")
        return self


class ModelConfig(Strict):
    dataset: Name
    arch: str | None = None  # a built-in architecture, trained by bench
    train: TrainConfig | None = None
    factory: str | None = None  # "pkg.module:callable" returning an nn.Module
    checkpoint: str | None = None  # a state_dict file, loaded with weights_only=True
    normalize: Normalization | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        if (self.arch is None) == (self.factory is None):
            raise ValueError("set exactly one of arch (a built-in trained by bench) or factory")
        if self.factory is not None and self.train is not None:
            raise ValueError("a factory model is evaluated as given; remove train")
        if self.arch is None and self.checkpoint is None:
            raise ValueError("a factory model needs checkpoint")
        return self


class RobustnessConfig(Strict):
    models: list[Name] = Field(min_length=1)
    attack: Literal["fgsm", "pgd"] = "fgsm"
    epsilons: list[Epsilon] = Field(min_length=1)
    split: Literal["train", "test"] = "test"
    steps: Annotated[int, Field(gt=0)] = defaults.PGD_STEPS  # pgd only
    alpha: Annotated[float, Field(gt=0)] | None = None  # pgd step; default 2.5*eps/steps
    random_start: bool = True  # pgd only
    batch_size: Annotated[int, Field(gt=0)] = defaults.EVAL_BATCH_SIZE
    limit: Annotated[int, Field(gt=0)] | None = None  # evaluate on a seeded subset

    @field_validator("epsilons", mode="before")
    @classmethod
    def _eps(cls, v):
        return [parse_epsilon(e) for e in v] if isinstance(v, list) else v


class GanConfig(Strict):
    arch: str  # dcgan | wgan-gp | sngan (registry)
    dataset: Name
    steps: Annotated[int, Field(gt=0)] = defaults.GAN_STEPS
    batch_size: Annotated[int, Field(gt=0)] = defaults.GAN_BATCH_SIZE
    eval_every: Annotated[int, Field(gt=0)] = defaults.GAN_EVAL_EVERY
    metrics: list[Literal["fid", "kid", "isc", "prc"]] = Field(
        default_factory=lambda: list(defaults.GAN_METRICS), min_length=1)
    num_samples: Annotated[int, Field(gt=1)] = defaults.GAN_NUM_SAMPLES
    feature_extractor: str = "auto"  # auto | domain | inception
    lr: Annotated[float, Field(gt=0)] | None = None  # arch default if unset
    z_dim: Annotated[int, Field(gt=0)] | None = None
    amp: bool = False  # mixed precision on CUDA only
    # false: no gan cell (no training, no FID); the GAN is only timed by [[throughput]] cells,
    # as models are only trained when a [[robustness]] section evaluates them.
    train: bool = True


class ThroughputConfig(Strict):
    models: list[Name] = Field(default_factory=list)
    gans: list[Name] = Field(default_factory=list)
    workloads: list[Literal["inference", "train-step", "fgsm", "pgd", "gan-step", "gan-sample"]] = Field(
        min_length=1)
    batch_sizes: list[Annotated[int, Field(gt=0)]] = Field(
        default_factory=lambda: list(defaults.THROUGHPUT_BATCH_SIZES), min_length=1)
    precision: list[Literal["fp32", "bf16", "fp16"]] = Field(default_factory=lambda: ["fp32"], min_length=1)
    channels_last: list[bool] = Field(default_factory=lambda: [False], min_length=1)
    compile: list[bool] = Field(default_factory=lambda: [False], min_length=1)
    warmup: Annotated[int, Field(ge=0)] = defaults.THROUGHPUT_WARMUP
    repeats: Annotated[int, Field(gt=0)] = defaults.THROUGHPUT_REPEATS
    epsilon: Epsilon = 8 / 255  # for the attack workloads
    pgd_steps: Annotated[int, Field(gt=0)] = defaults.PGD_STEPS
    peak_tflops: float | None = None  # override the device peak used for MFU

    @model_validator(mode="after")
    def _something(self) -> "ThroughputConfig":
        if not self.models and not self.gans:
            raise ValueError("list at least one of models or gans")
        return self


class MetricRule(Strict):
    """A `bench compare` rule for one metric (suite `[compare.METRIC]` or a rules file)."""

    direction: Literal["higher", "lower"] | None = None
    rel_tol: Annotated[float, Field(ge=0)] | None = None
    abs_tol: Annotated[float, Field(ge=0)] | None = None
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


# Sections that reference other sections by name: (section, field, target section).
REFERENCES: list[tuple[str, str, str]] = [
    ("models", "dataset", "datasets"),
    ("gans", "dataset", "datasets"),
    ("robustness", "models", "models"),
    ("throughput", "models", "models"),
    ("throughput", "gans", "gans"),
]
SuiteSection = Union[DatasetConfig, ModelConfig, RobustnessConfig, GanConfig, ThroughputConfig]
