"""FID, KID, IS and precision/recall through torch-fidelity, with the real side cached.

We never compute the metrics ourselves: torch-fidelity extracts the features (uint8 C×H×W
tensors in, its input convention) and turns them into metrics with its own functions. A
`Scorer` runs the steps of its `calculate_metrics` one by one (features of each side, FID
statistics, then every metric from the features) so that the generated side can stream in
from memory, batch by batch, and its features stay at hand for the FID checks
(bench.checks.fid); a test proves the result equal to `calculate_metrics`. The real side is
named, so torch-fidelity caches its features and FID statistics under `cache_dir/fidelity`
(written with a temp file and a rename, so a reader never sees half a file) and later
evaluations compute only the generated side. torch-fidelity never downloads here: inputs are
in-memory tensors, and Inception weights always come from a local file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from bench import defaults, identity
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
BATCH_SIZE = defaults.FID_BATCH_SIZE


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
    """Float N×C×H×W in [0, 1] -> uint8 (rounded), the quantisation of a saved PNG; uint8
    images stay as they are. Gray planes are repeated to RGB when `rgb`."""
    if x.dtype == torch.uint8:
        out = x.detach().cpu()
    else:
        out = (x.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    if rgb and out.shape[1] == 1:
        out = out.repeat(1, 3, 1, 1)
    return out.contiguous()


@dataclass(frozen=True)
class Reference:
    """Real images plus the name their features are cached under."""

    images: torch.Tensor  # uint8 N×C×H×W, ready for the extractor
    cache_name: str


def real_reference(images: torch.Tensor, dataset: DatasetSpec | None, split: str,
                   num_samples: int, extractor: Extractor) -> Reference:
    """At most `num_samples` real images of `split` (a fixed random subset if there are more);
    `images` float in [0, 1] or uint8.

    The cache name is their identity: the dataset's portable config (None: images that come
    from no bench dataset), the split, the count, a fingerprint of the very images and the
    extractor's weights, so statistics are never reused for other data or another network
    (bench.identity)."""
    if num_samples < images.shape[0]:
        images = images[seeded_indices(images.shape[0], num_samples, REFERENCE_SUBSET_SEED)]
    n = images.shape[0]
    key = identity.digest({"dataset": None if dataset is None else dataset.as_content(),
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


@dataclass(frozen=True)
class RealFeatures:
    """The real side as the metrics need it: features (None when only statistics are known,
    bench.metrics.reference_stats), the FID statistics and the image count."""

    features: dict | None  # torch-fidelity featuresdict: layer -> N×D tensor
    fid_stats: dict  # {"mu", "sigma"} of the FID layer
    n: int
    shape: tuple  # C×H×W of the images, as the extractor sees them


class Scorer:
    """One feature extractor, loaded once, scoring generated images through torch-fidelity.

    `batch_size` images go through the extractor at a time. `float64` runs the extractor and
    the statistics in float64 (torch-fidelity's `feature_extractor_internal_dtype`; bench's
    domain extractor honours it too): features then barely depend on the batch size (kernels
    pick other reduction orders for other batch shapes, torch-fidelity #43), at 2-3× the
    extraction time on a CPU and much more on GPUs with slow float64. Its reference statistics
    are cached apart ("-f64"), since float32 and float64 features differ.
    """

    def __init__(self, extractor: Extractor, metrics: list[str], device: str, cache_dir: Path,
                 seed: int = 0, *, batch_size: int = BATCH_SIZE, float64: bool = False):
        self.extractor, self.metrics, self.device = extractor, list(metrics), device
        self.batch_size, self.float64 = int(batch_size), bool(float64)
        self.kwargs = fidelity_kwargs(extractor, self.metrics, device, cache_dir, seed)
        self.kwargs["batch_size"] = self.batch_size
        if float64:
            self.kwargs["feature_extractor_internal_dtype"] = "float64"
        self.cache_dir = Path(cache_dir)
        self.layers = {m: extractor.layers[m] for m in self.metrics}
        self.fid_layer = extractor.layers["fid"]  # always extracted: the floor and the checks
        self._module = None
        self._real: dict[str, RealFeatures] = {}

    @property
    def module(self):
        """torch-fidelity's extractor module, created on first use."""
        if self._module is None:
            from torch_fidelity.utils import create_feature_extractor

            with _on_cuda_device(self.device):
                self._module = create_feature_extractor(
                    self.extractor.name, sorted({self.fid_layer, *self.layers.values()}),
                    **self.kwargs)
        return self._module

    def features(self, batches, batch_size: int | None = None) -> dict:
        """Features of uint8 N×C×H×W `batches` (an iterable, or one tensor), in order, through
        torch-fidelity's own loop, `batch_size` (default: the scorer's) images at a time."""
        from torch_fidelity.utils import get_featuresdict_from_dataset

        if isinstance(batches, torch.Tensor):
            batches = [batches]
        parts = []
        with _on_cuda_device(self.device):
            for batch in batches:
                parts.append(get_featuresdict_from_dataset(
                    UInt8Images(batch), self.module, batch_size or self.batch_size,
                    self.kwargs["cuda"], True, False))
        if not parts:
            raise ValueError("no images to extract features from")
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def real(self, reference: Reference) -> RealFeatures:
        """The reference's features and FID statistics, from torch-fidelity's cache when it
        holds them under the reference's name."""
        name = self.cache_name(reference)
        if name not in self._real:
            from torch_fidelity.metric_fid import fid_featuresdict_to_statistics_cached
            from torch_fidelity.utils import extract_featuresdict_from_input_id_cached

            kwargs = self.kwargs | {"input2": UInt8Images(reference.images),
                                    "input2_cache_name": name}
            with _on_cuda_device(self.device):
                features = extract_featuresdict_from_input_id_cached(2, self.module, **kwargs)
                stats = fid_featuresdict_to_statistics_cached(
                    features, name, self.module, self.fid_layer, **kwargs)
            self._real[name] = RealFeatures(features, stats, reference.images.shape[0],
                                            tuple(reference.images.shape[1:]))
        return self._real[name]

    def cache_name(self, reference: Reference) -> str:
        return reference.cache_name + ("-f64" if self.float64 else "")

    def score(self, generated: dict, real: RealFeatures) -> dict:
        """Our metric columns (NaN where not asked) from the generated side's features, with
        torch-fidelity's functions, as its calculate_metrics calls them."""
        from torch_fidelity.metric_isc import isc_featuresdict_to_metric
        from torch_fidelity.metric_kid import kid_featuresdict_to_metric
        from torch_fidelity.metric_prc import prc_featuresdict_to_metric

        n_fake = next(iter(generated.values())).shape[0]
        kwargs = self.kwargs | {"kid_subset_size": max(2, min(KID_SUBSET_SIZE, n_fake // 2,
                                                               real.n // 2)),
                                "isc_splits": min(ISC_SPLITS, n_fake)}
        needs_features = [m for m in ("kid", "prc") if m in self.layers]
        if needs_features and real.features is None:
            raise ValueError(f"{', '.join(needs_features)} need the reference's features; "
                             "reference statistics hold only FID's mean and covariance")
        raw = {}
        if "isc" in self.layers:
            raw |= isc_featuresdict_to_metric(generated, self.layers["isc"], **kwargs)
        if "fid" in self.layers:
            raw |= self.fid_raw(generated[self.fid_layer], real)
        if "kid" in self.layers:
            raw |= kid_featuresdict_to_metric(generated, real.features, self.layers["kid"],
                                              **kwargs)
        if "prc" in self.layers:
            raw |= prc_featuresdict_to_metric(generated, real.features, self.layers["prc"],
                                              **kwargs)
        return metrics_to_columns(raw)

    def fid(self, fid_features: torch.Tensor, real: RealFeatures) -> float:
        """FID of generated FID-layer features (N×D) against `real`."""
        import torch_fidelity

        return float(self.fid_raw(fid_features, real)[torch_fidelity.KEY_METRIC_FID])

    def fid_at(self, generated: dict, real: RealFeatures, n: int) -> float:
        """FID of the first `n` generated samples."""
        return self.fid(generated[self.fid_layer][:n], real)

    def fid_raw(self, fid_features: torch.Tensor, real: RealFeatures) -> dict:
        from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

        return fid_statistics_to_metric(fid_features_to_statistics(fid_features),
                                        real.fid_stats, False)

    def floor(self, train: Reference, test: Reference) -> float:
        """FID of the real test images against the real train reference (same extractor,
        dtype and counts): the best a generator can hope for at this sample count. Computed
        once, then read from a small JSON file beside torch-fidelity's cache."""
        path = (self.cache_dir / "fidelity"
                / f"floor-{self.cache_name(test)}-vs-{self.cache_name(train)}.json")
        if path.exists():
            return float(json.loads(path.read_text())["fid"])
        test_fid = self.real(test).features[self.fid_layer]
        fid = self.fid(test_fid, self.real(train))
        atomic_write_text(path, json.dumps({"fid": fid, "test": test.cache_name,
                                            "train": train.cache_name,
                                            "extractor": self.extractor.name}))
        return fid


@dataclass(frozen=True)
class RealSide:
    """The real images generated ones are compared against, and what real data scores."""

    reference: Reference  # FID/KID/PRC reference (the GAN cells: the train split)
    test: Reference | None  # held-out real images for the floor; None: none at hand
    floor: float  # FID of `test` against `reference`; NaN without held-out images


def real_side(dataset: DatasetSpec | None, train_x: torch.Tensor, test_x: torch.Tensor | None,
              scorer: Scorer, *, n_reference: int, n_floor: int) -> RealSide:
    """Up to `n_reference` images of `train_x` as the reference, and the floor: up to `n_floor`
    held-out images of `test_x` against it (as many as the generated side has, where the
    held-out split holds that many)."""
    reference = real_reference(train_x, dataset, "train", n_reference, scorer.extractor)
    if test_x is None:
        return RealSide(reference, None, math.nan)
    test = real_reference(test_x, dataset, "test", n_floor, scorer.extractor)
    return RealSide(reference, test, scorer.floor(reference, test))


def compute_metrics(generated: torch.Tensor, reference: Reference, extractor: Extractor,
                    metrics: list[str], device: str, cache_dir: Path, seed: int = 0) -> dict:
    """Our metric columns for `generated` (float N×C×H×W in [0, 1]) against `reference`.

    Metrics not requested are NaN. Only the generated side is computed once the reference's
    features are cached.
    """
    scorer = Scorer(extractor, metrics, device, cache_dir, seed)
    fake = images_to_uint8(generated, extractor.rgb)
    return scorer.score(scorer.features(fake), scorer.real(reference))


def metrics_to_columns(raw: dict) -> dict:
    import torch_fidelity as tf

    keys = {"fid": tf.KEY_METRIC_FID, "kid_mean": tf.KEY_METRIC_KID_MEAN,
            "kid_std": tf.KEY_METRIC_KID_STD, "isc_mean": tf.KEY_METRIC_ISC_MEAN,
            "isc_std": tf.KEY_METRIC_ISC_STD, "precision": tf.KEY_METRIC_PRECISION,
            "recall": tf.KEY_METRIC_RECALL}
    return {col: float(raw[key]) if key in raw else math.nan for col, key in keys.items()}


def real_floor_fid(train: Reference, test: Reference, extractor: Extractor, device: str,
                   cache_dir: Path) -> float:
    """Scorer.floor with a scorer of its own (FID only)."""
    return Scorer(extractor, ["fid"], device, cache_dir).floor(train, test)


def _on_cuda_device(device: str):
    """torch-fidelity moves things with .cuda(): make that mean the cell's device."""
    import contextlib

    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is not None:
        return torch.cuda.device(dev.index)
    return contextlib.nullcontext()
