"""Reference statistics in a file: FID's mean and covariance of a reference, computed once.

A notebook that scores samples every few epochs against a large dataset needs only the
reference's FID statistics, not its images. The file holds them with everything needed to
refuse a mismatch: the extractor (name, weights hash, layers), the dtype of the features,
the image shape and the count. Written atomically; read with `torch.load(weights_only=True)`.
Without the reference's features, KID, precision/recall and the memorisation check cannot be
computed from it (bench.api.fid says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bench.metrics.fidelity import Extractor, RealFeatures
from bench.store.atomic import atomic_torch_save

FORMAT = 1
KIND = "bench-reference-stats"  # tells the file from other torch files (a weights file...)


@dataclass(frozen=True)
class ReferenceStats:
    real: RealFeatures  # features None: statistics only
    extractor: Extractor
    float64: bool
    source: str  # what the statistics were computed from (a dataset name, "images")


def save_reference_stats(path: str | Path, stats: ReferenceStats) -> Path:
    ext, real = stats.extractor, stats.real
    payload = {
        "kind": KIND, "format": FORMAT, "source": stats.source, "float64": stats.float64,
        "n": int(real.n), "shape": [int(s) for s in real.shape],
        "mu": torch.from_numpy(real.fid_stats["mu"]),
        "sigma": torch.from_numpy(real.fid_stats["sigma"]),
        "extractor": {"name": ext.name, "hash": ext.hash, "weights_path": ext.weights_path,
                      "layers": dict(ext.layers), "rgb": ext.rgb},
    }
    atomic_torch_save(payload, path)
    return Path(path)


def load_reference_stats(path: str | Path) -> ReferenceStats:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or (payload.get("kind"), payload.get("format")) != (KIND, FORMAT):
        raise ValueError(f"{path}: not a bench reference-statistics file (format {FORMAT}); "
                         "write one with bench.api.save_reference")
    e = payload["extractor"]
    extractor = Extractor(e["name"], e["hash"], e["weights_path"], dict(e["layers"]), e["rgb"])
    stats = {"mu": payload["mu"].numpy(), "sigma": payload["sigma"].numpy()}
    real = RealFeatures(None, stats, int(payload["n"]), tuple(payload["shape"]))
    return ReferenceStats(real, extractor, bool(payload["float64"]), str(payload["source"]))
