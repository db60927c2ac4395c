"""FID of any sampler, from Python: what `bench.api.fid` runs (docs/api.md).

`fid` scores generated images with the code the GAN cells run (bench.metrics.fidelity.Scorer
through torch-fidelity, bench.checks.fid for its checks), against the same reference, with
the same extractor, so that the same samples score the same through a suite and through here.
Samples stream from the sampler to the extractor batch by batch; nothing is written to disk
but torch-fidelity's cache of the reference side and the trained domain extractor, both under
`cache_dir` (by default the one `bench run` uses from this folder, so the two share them).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from torch.utils.data import Dataset

from bench import defaults
from bench.checks.fid import fid_check_rows, fid_checks
from bench.data import seeded_indices
from bench.metrics import fidelity
from bench.metrics.reference_stats import ReferenceStats, load_reference_stats, save_reference_stats
from bench.metrics.samples import SampleError, check_count, gather, sample_batches
from bench.suite.cell_configs import DatasetSpec

__all__ = ["fid", "save_reference", "domain_extractor", "inception_extractor", "SampleError"]

Sampler = Callable[[int], torch.Tensor]
Reference = str | Path | dict | DatasetSpec | Dataset | torch.Tensor | ReferenceStats


def fid(sampler: Sampler | Dataset | torch.Tensor, reference: Reference = "digits", *,
        num_samples: int = defaults.GAN_NUM_SAMPLES, extractor="auto",
        inception_weights: str | Path | None = None,
        batch_size: int = defaults.FID_BATCH_SIZE, metrics: list[str] | None = None,
        num_real_samples: int | None = None, float64: bool = False, checks: bool = True,
        seed: int = 0, device: str = "auto", cache_dir: str | Path | None = None,
        name: str = "sampler") -> dict:
    """FID (with KID, IS, precision/recall) of `num_samples` generated images against
    `reference`, and the FID checks. See docs/api.md for the contract of every argument.

    sampler: `sampler(n)` returning exactly n images N×C×H×W (C = 1 or 3; uint8 in [0, 255]
      or float in [0, 1]), called with n = `batch_size` until `num_samples` are drawn (the
      last call asks for the rest); or a Dataset of C×H×W images; or an N×C×H×W tensor.
    reference: a bench dataset (a kind such as "digits", a `[datasets.X]` table as a dict, or
      a DatasetSpec): its train split is the reference, its test split gives the real-data
      floor; or real images (a Dataset or a tensor); or reference statistics (a file written
      by `save_reference`, or what it returns), FID and IS only.
    extractor: "auto" (Inception when `inception_weights` is given, else "domain"),
      "domain" (bench's classifier trained on the reference dataset, cached), "inception"
      (torch-fidelity's Inception-v3 from the local `inception_weights` file), or an
      extractor from `domain_extractor`/`inception_extractor`.
    Returns the metric columns of the `gan` table, the counts, the floor, the extractor, and
    `checks`: the FID checks as `checks` table rows (a failed one also warns).
    """
    _positive("num_samples", num_samples, 2)
    _positive("batch_size", batch_size, 1)
    cache = Path(cache_dir or defaults.RESULTS_DIR / defaults.CACHE_SUBDIR).resolve()
    device = _device(device)
    real_in = real_input(reference)
    ext = resolve_extractor(extractor, inception_weights, real_in, device, cache)
    scorer = fidelity.Scorer(ext, resolve_metrics(metrics, real_in), device, cache, seed,
                             batch_size=batch_size, float64=float64)
    check_count(sampler, num_samples)
    real, real_features = real_side(real_in, scorer, num_samples, num_real_samples)
    head: list[torch.Tensor] = []
    batches = sample_batches(sampler, num_samples, batch_size, rgb=ext.rgb,
                             expect=real_features.shape)
    generated = scorer.features(_keep_head(batches, head, defaults.FID_CHECK_SAMPLES
                                           if checks else 0))
    columns = scorer.score(generated, real_features)
    n_floor = None if real.test is None else real.test.images.shape[0]
    out = columns | {
        "num_samples": num_samples, "num_real_samples": real_features.n,
        "real_floor_fid": real.floor, "real_floor_num_samples": n_floor,
        "fid_at_floor_count": scorer.fid_at(generated, real_features, n_floor)
        if n_floor and "fid" in scorer.metrics else math.nan,
        "extractor": ext.name, "extractor_hash": ext.hash, "float64": float64,
        "batch_size": batch_size, "checks": [], "nearest_real": None}
    if checks:
        out |= _checks(scorer, generated, torch.cat(head), real_features, real, out, name,
                       real_in.label)
    return out


def save_reference(reference: Reference, path: str | Path, *, extractor="auto",
                   inception_weights: str | Path | None = None, num_samples: int | None = None,
                   batch_size: int = defaults.FID_BATCH_SIZE, float64: bool = False,
                   device: str = "auto", cache_dir: str | Path | None = None) -> ReferenceStats:
    """Compute `reference`'s FID statistics (all its train images, or a fixed random
    `num_samples` of them) and write them to `path`, for `fid(..., reference=path)`."""
    cache = Path(cache_dir or defaults.RESULTS_DIR / defaults.CACHE_SUBDIR).resolve()
    device = _device(device)
    real_in = real_input(reference)
    if real_in.stats is not None:
        raise ValueError("reference is already statistics")
    ext = resolve_extractor(extractor, inception_weights, real_in, device, cache)
    scorer = fidelity.Scorer(ext, ["fid"], device, cache, batch_size=batch_size,
                             float64=float64)
    n = real_in.count if num_samples is None else num_samples
    ref = fidelity.real_reference(real_in.images(n), real_in.dataset, "train", n, ext)
    full = scorer.real(ref)
    stats = ReferenceStats(fidelity.RealFeatures(None, full.fid_stats, full.n, full.shape),
                           ext, float64, real_in.label)
    save_reference_stats(path, stats)
    return stats


def domain_extractor(dataset: str | dict | DatasetSpec, *, device: str = "auto",
                     cache_dir: str | Path | None = None) -> fidelity.Extractor:
    """bench's domain extractor for `dataset`: trained on its train split by the extractor
    cell's recipe (bench.cells.extractor), or read from the cache where it already is."""
    from bench.cells import RunEnv
    from bench.cells.extractor import run_extractor_cell
    from bench.store import schema as S
    from bench.suite.cell_configs import ExtractorCellConfig

    spec = dataset if isinstance(dataset, DatasetSpec) else _dataset(dataset)
    cache = Path(cache_dir or defaults.RESULTS_DIR / defaults.CACHE_SUBDIR).resolve()
    env = RunEnv(device=_device(device), cache_dir=cache, artifacts_dir=cache, progress=False)
    result = run_extractor_cell(ExtractorCellConfig(dataset=spec), {}, env)
    (row,) = result.records[S.EXTRACTORS]
    return fidelity.domain_extractor(row["name"], row["hash"], result.artifacts["weights"])


inception_extractor = fidelity.inception_extractor


# -- resolving the arguments ---------------------------------------------------------------


@dataclass(frozen=True)
class RealInput:
    """The reference as given, loaded: images (and held-out ones), or statistics."""

    label: str  # the dataset's name, "images", or the statistics' source
    dataset: DatasetSpec | None = None
    train: torch.Tensor | Dataset | None = None  # reference images (a user's: unchecked yet)
    heldout: torch.Tensor | None = None  # real images not in `train`, for the floor
    stats: ReferenceStats | None = None

    @property
    def count(self) -> int:
        return len(self.train)

    def images(self, n: int) -> torch.Tensor:
        """The reference images `real_reference` keeps of `n` (all of a dataset's split: it
        draws the subset itself); a user's are checked, and only the subset is loaded."""
        if self.dataset is not None:
            return self.train
        index = (seeded_indices(len(self.train), n, fidelity.REFERENCE_SUBSET_SEED)
                 if n < len(self.train) else None)
        try:
            return gather(self.train, index)
        except SampleError as exc:
            raise SampleError(f"reference: {exc}") from None


def real_input(reference: Reference) -> RealInput:
    from bench.data import load_dataset

    if isinstance(reference, ReferenceStats):
        return RealInput(reference.source, stats=reference)
    if isinstance(reference, Path) or (isinstance(reference, str) and Path(reference).is_file()):
        if not Path(reference).is_file():
            raise FileNotFoundError(f"reference statistics file not found: {reference}")
        stats = load_reference_stats(reference)
        return RealInput(stats.source, stats=stats)
    if isinstance(reference, str) and reference.endswith(".pt"):
        raise FileNotFoundError(f"reference statistics file not found: {reference} (a "
                                "dataset is named by its kind, e.g. \"digits\")")
    if isinstance(reference, (str, dict, DatasetSpec)):
        spec = reference if isinstance(reference, DatasetSpec) else _dataset(reference)
        return RealInput(spec.name, spec, load_dataset(spec, "train").x,
                         load_dataset(spec, "test").x)
    if isinstance(reference, (Dataset, torch.Tensor)):
        return RealInput("images", train=reference)
    raise TypeError(f"reference: cannot use a {type(reference).__name__}; pass a dataset kind "
                    "(\"digits\"), a [datasets.X] table as a dict, real images (a Dataset or "
                    "tensor) or reference statistics (bench.api.save_reference)")


def _dataset(reference: str | dict) -> DatasetSpec:
    """A dataset kind or a `[datasets.X]` table, validated as a suite's (roots resolved
    against the working directory); one line on error."""
    from pydantic import ValidationError

    from bench.suite.plan import resolve_dataset
    from bench.suite.schema import DatasetConfig

    table = {"kind": reference} if isinstance(reference, str) else dict(reference)
    name = str(table.pop("name", table.get("kind")))
    try:
        cfg = DatasetConfig(**table)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "kind"
        raise ValueError(f"reference {reference!r}: {where}: {err['msg']}") from None
    return resolve_dataset(cfg, name, Path.cwd())


def resolve_extractor(extractor, inception_weights, real_in: RealInput, device: str,
                      cache: Path) -> fidelity.Extractor:
    if isinstance(extractor, fidelity.Extractor):
        chosen = extractor
    elif extractor not in ("auto", "domain", "inception"):
        raise ValueError(f"extractor: {extractor!r}; expected \"auto\", \"domain\", "
                         "\"inception\" or an extractor from bench.api")
    elif extractor == "inception" or (extractor == "auto" and inception_weights):
        if not inception_weights:
            raise ValueError("extractor \"inception\" needs inception_weights: a local "
                             "torch-fidelity Inception weights file (nothing is downloaded)")
        chosen = fidelity.inception_extractor(inception_weights)
    elif real_in.stats is not None:
        chosen = real_in.stats.extractor  # "auto"/"domain": the one the statistics used
    elif real_in.dataset is None:
        raise ValueError("extractor \"domain\" trains on a bench dataset's labelled train "
                         "split; with real images as the reference, pass "
                         "bench.api.domain_extractor(dataset) or an Inception extractor")
    else:
        chosen = domain_extractor(real_in.dataset, device=device, cache_dir=cache)
    if real_in.stats is not None and chosen.hash != real_in.stats.extractor.hash:
        raise ValueError(f"the reference statistics were computed with extractor "
                         f"{real_in.stats.extractor.name} ({real_in.stats.extractor.hash}), "
                         f"not {chosen.name} ({chosen.hash}): FIDs compare only under one")
    return chosen


def resolve_metrics(metrics: list[str] | None, real_in: RealInput) -> list[str]:
    if metrics is None:
        wanted = list(defaults.GAN_METRICS)
        return [m for m in wanted if m in ("fid", "isc")] if real_in.stats else wanted
    unknown = sorted(set(metrics) - set(fidelity.METRIC_FLAGS))
    if unknown or not metrics:
        raise ValueError(f"metrics: {metrics!r}; expected some of {list(fidelity.METRIC_FLAGS)}")
    if real_in.stats is not None and {"kid", "prc"} & set(metrics):
        raise ValueError("metrics kid and prc need the reference's images; reference "
                         "statistics hold only FID's mean and covariance")
    return list(metrics)


def real_side(real_in: RealInput, scorer: fidelity.Scorer, num_samples: int,
              num_real_samples: int | None) -> tuple[fidelity.RealSide, fidelity.RealFeatures]:
    """The reference (up to `num_real_samples`, default `num_samples`, images: the GAN cells'
    rule) and its floor at the generated count, or the statistics as they are."""
    if real_in.stats is not None:
        if real_in.stats.float64 != scorer.float64:
            raise ValueError(f"the reference statistics hold float{64 if real_in.stats.float64 else 32} "
                             f"features; call fid with float64={real_in.stats.float64}")
        none = fidelity.Reference(torch.empty(0, dtype=torch.uint8), "")
        return fidelity.RealSide(none, None, math.nan), real_in.stats.real
    n_ref = num_samples if num_real_samples is None else num_real_samples
    _positive("num_real_samples", n_ref, 2)
    real = fidelity.real_side(real_in.dataset, real_in.images(n_ref), real_in.heldout, scorer,
                              n_reference=n_ref, n_floor=num_samples)
    return real, scorer.real(real.reference)


# -- helpers --------------------------------------------------------------------------------


def _checks(scorer, generated, head, real_features, real, out, name, label) -> dict:
    found = fid_checks(scorer, generated, head, real_features, fid=out["fid"],
                       floor=real.floor, n_floor=out["real_floor_num_samples"])
    setting = f"extractor={scorer.extractor.name}" + (", float64" if scorer.float64 else "")
    rows = fid_check_rows(found, model=name, seed=None, dataset=label, split="train",
                          setting=setting)
    for row in rows:
        if not row["passed"]:
            warnings.warn(f"bench.api.fid: check {row['check']} failed: {row['detail']}",
                          stacklevel=3)
    nearest = found.memorisation
    return {"checks": rows, "nearest_real": None if nearest is None else {
        "index": nearest.nearest, "ratio": nearest.ratio, "spacing": nearest.spacing}}


def _keep_head(batches: Iterable[torch.Tensor], head: list, k: int) -> Iterator[torch.Tensor]:
    """`batches` as they come, appending their first `k` images to `head` on the way."""
    kept = 0
    for batch in batches:
        if kept < k:
            head.append(batch[:k - kept])
            kept += head[-1].shape[0]
        yield batch


def _positive(key: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{key}: {value!r}; expected an integer >= {least}")


def _device(device: str) -> str:
    from bench.provenance import resolve_device

    return resolve_device(device)
