"""FID, KID, IS and precision/recall through torch-fidelity, with the real side cached.

We never compute the metrics ourselves: images go to `torch_fidelity.calculate_metrics` as
Datasets of uint8 C×H×W tensors (its input convention). The real side is named
(`input2_cache_name`), so torch-fidelity caches its features and FID statistics under
`cache_dir/fidelity` (written with a temp file and a rename, so a reader never sees half a file)
and later evaluations compute only the generated side. torch-fidelity never downloads here:
inputs are in-memory Datasets, and Inception weights always come from a local file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from bench import identity
from bench.data import seeded_indices
from bench.fingerprint import data_fingerprint
from bench.store.atomic import atomic_write_text
from bench.suite.cell_configs import DatasetSpec

INCEPTION = "inception-v3-compat"
# Inception's FID features are 2048-d: with fewer samples a side, the covariance estimate is
# rank-deficient, the FID is biased upward, and it is not comparable to published values.
INCEPTION_MIN_SAMPLES = 2048
INCEPTION_LAYERS = {"fid": "2048", "kid": "2048", "prc": "2048", "isc": "logits_unbiased"}
METRIC_FLAGS = ("fid", "kid", "isc", "prc")
COLUMNS = ("fid", "kid_mean", "kid_std", "isc_mean", "isc_std", "precision", "recall")
KID_SUBSET_SIZE = 1000  # torch-fidelity's default; at most half the samples, so subsets differ
ISC_SPLITS = 10
REFERENCE_SUBSET_SEED = 0  # fixed: every cell must pick the same real subset to share the cache
BATCH_SIZE = 256


@dataclass(frozen=True)
class Extractor:
    """Which torch-fidelity feature extractor, with which weights, feeds which metric."""

    name: str  # a torch-fidelity registered name
    hash: str  # identifies the weights; part of every cache key and result row
    weights_path: str
    layers: dict  # metric ("fid", "kid", "isc", "prc") -> feature name
    rgb: bool = False  # the extractor needs 3 channels (Inception): gray planes are repeated


def domain_extractor(name: str, config_hash: str, weights_path: str) -> Extractor:
    from bench.metrics import feature_extractor as fe

    fe.ensure_registered(name)
    layers = {m: fe.DomainFeatureExtractor.get_default_feature_layer_for_metric(m) for m in METRIC_FLAGS}
    return Extractor(name, config_hash, str(weights_path), layers)


def inception_extractor(weights_path: str | Path) -> Extractor:
    """torch-fidelity's Inception-v3 with local weights (it would download them if given None)."""
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception weights not found: {path}")
    return Extractor(INCEPTION, identity.file_sha256(path)[:16], str(path), dict(INCEPTION_LAYERS), rgb=True)


def sample_count_warning(extractor: Extractor, num_samples: int) -> str:
    """A one-line warning when Inception FID runs on fewer samples than it has features; ""."""
    if extractor.name != INCEPTION or num_samples >= INCEPTION_MIN_SAMPLES:
        return ""
    return (f"Inception FID on {num_samples} samples (< {INCEPTION_MIN_SAMPLES}, its feature "
            "dimension): rank-deficient covariances, biased FID; use num_samples >= "
            f"{INCEPTION_MIN_SAMPLES} or the domain extractor")


class UInt8Images(Dataset):
    """A fixed set of images as torch-fidelity wants them: uint8 C×H×W tensors."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def images_to_uint8(x: torch.Tensor, rgb: bool = False) -> torch.Tensor:
    """Float N×C×H×W in [0, 1] -> uint8 (rounded), the quantisation of a saved PNG."""
    out = (x.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    if rgb and out.shape[1] == 1:
        out = out.repeat(1, 3, 1, 1)
    return out.contiguous()


@dataclass(frozen=True)
class Reference:
    """Real images plus the name their features are cached under."""

    images: torch.Tensor  # uint8 N×C×H×W, ready for the extractor
    cache_name: str


def real_reference(images: torch.Tensor, dataset: DatasetSpec, split: str, num_samples: int,
                   extractor: Extractor) -> Reference:
    """At most `num_samples` real images of `split` (a fixed random subset if there are more).

    The cache name is their identity: the dataset's portable config, the split, the count, a
    fingerprint of the very images and the extractor's weights, so statistics are never
    reused for other data or another network (bench.identity)."""
    if num_samples < images.shape[0]:
        images = images[seeded_indices(images.shape[0], num_samples, REFERENCE_SUBSET_SEED)]
    n = images.shape[0]
    key = identity.digest({"dataset": dataset.as_content(),
                           "split": split, "n": n, "data": data_fingerprint(images),
                           "extractor": extractor.hash})
    return Reference(images_to_uint8(images, extractor.rgb), f"bench-{key}-{split}-n{n}-{extractor.hash}")


def fidelity_kwargs(extractor: Extractor, metrics: list[str], device: str, cache_dir: Path,
                    seed: int) -> dict:
    """The calculate_metrics arguments that do not depend on the inputs."""
    flags = {m: (m in metrics) for m in METRIC_FLAGS}
    unknown = set(metrics) - set(METRIC_FLAGS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; known: {list(METRIC_FLAGS)}")
    return {
        **flags,
        "cuda": torch.device(device).type == "cuda",  # torch-fidelity defaults to CUDA
        "batch_size": BATCH_SIZE,
        "feature_extractor": extractor.name,
        "feature_extractor_weights_path": extractor.weights_path,
        **{f"feature_layer_{m}": extractor.layers[m] for m in METRIC_FLAGS},
        "cache_root": str(Path(cache_dir) / "fidelity"),
        "cache": True,
        "datasets_download": False,
        "rng_seed": int(seed),  # KID subsets and the IS shuffle
        "save_cpu_ram": True,  # no DataLoader worker processes for in-memory tensors
        "verbose": False,
    }


def compute_metrics(generated: torch.Tensor, reference: Reference, extractor: Extractor,
                    metrics: list[str], device: str, cache_dir: Path, seed: int = 0) -> dict:
    """Our metric columns for `generated` (float N×C×H×W in [0, 1]) against `reference`.

    Metrics not requested are NaN. Only the generated side is computed once the reference's
    features are cached.
    """
    import torch_fidelity

    fake = images_to_uint8(generated, extractor.rgb)
    n_fake, n_real = fake.shape[0], reference.images.shape[0]
    kwargs = fidelity_kwargs(extractor, metrics, device, cache_dir, seed)
    kwargs["input1"] = UInt8Images(fake)
    if any(kwargs[m] for m in ("fid", "kid", "prc")):  # IS alone needs no real images
        kwargs["input2"] = UInt8Images(reference.images)
        kwargs["input2_cache_name"] = reference.cache_name
    kwargs["kid_subset_size"] = max(2, min(KID_SUBSET_SIZE, n_fake // 2, n_real // 2))
    kwargs["isc_splits"] = min(ISC_SPLITS, n_fake)
    with _on_cuda_device(device):
        raw = torch_fidelity.calculate_metrics(**kwargs)
    return metrics_to_columns(raw)


def metrics_to_columns(raw: dict) -> dict:
    import torch_fidelity as tf

    keys = {"fid": tf.KEY_METRIC_FID, "kid_mean": tf.KEY_METRIC_KID_MEAN,
            "kid_std": tf.KEY_METRIC_KID_STD, "isc_mean": tf.KEY_METRIC_ISC_MEAN,
            "isc_std": tf.KEY_METRIC_ISC_STD, "precision": tf.KEY_METRIC_PRECISION,
            "recall": tf.KEY_METRIC_RECALL}
    return {col: float(raw[key]) if key in raw else math.nan for col, key in keys.items()}


def real_floor_fid(train: Reference, test: Reference, extractor: Extractor, device: str,
                   cache_dir: Path) -> float:
    """FID of the real test split against the real train reference, same extractor and counts.

    The best a generator can hope for at this sample count; computed once, then read from
    a small JSON file beside torch-fidelity's cache.
    """
    path = Path(cache_dir) / "fidelity" / f"floor-{test.cache_name}-vs-{train.cache_name}.json"
    if path.exists():
        return float(json.loads(path.read_text())["fid"])
    import torch_fidelity

    kwargs = fidelity_kwargs(extractor, ["fid"], device, cache_dir, seed=0)
    kwargs.update(input1=UInt8Images(test.images), input1_cache_name=test.cache_name,
                  input2=UInt8Images(train.images), input2_cache_name=train.cache_name)
    with _on_cuda_device(device):
        fid = float(torch_fidelity.calculate_metrics(**kwargs)[torch_fidelity.KEY_METRIC_FID])
    atomic_write_text(path, json.dumps({"fid": fid, "test": test.cache_name,
                                        "train": train.cache_name, "extractor": extractor.name}))
    return fid


def _on_cuda_device(device: str):
    """torch-fidelity moves things with .cuda(): make that mean the cell's device."""
    import contextlib

    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is not None:
        return torch.cuda.device(dev.index)
    return contextlib.nullcontext()
