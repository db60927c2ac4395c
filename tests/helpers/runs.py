"""Run folders for compare and report tests: synthetic runs in the real on-disk layout, and
helpers to copy a run and edit its tables or manifest.

Synthetic runs are written with the real `RunStore` (journal, tables as Parquet + CSV,
manifest), with the `cells` table made by the real `cells_table`, so they follow the
current schema; the golden runs under tests/data/golden/ were made by `bench run`.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from bench.analysis.tables import build_tables
from bench.identity import cell_id
from bench.store import schema as S
from bench.store.atomic import atomic_write_bytes, atomic_write_text
from bench.store.run_store import CellRecord, RunStore

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"
DEVICE_NAME = "Synthetic CPU @ 3.0GHz"

SUITE_TEXT = """[suite]
name = "synthetic"
seeds = [0, 1, 2]
"""


def make_manifest(run_id: str, cells: Iterable[CellRecord], *, suite_text: str = SUITE_TEXT,
                  device: str = "cpu", device_name: str = DEVICE_NAME, torch: str = "2.5.0",
                  cpu_count: int = 2, schema_version: int = S.SCHEMA_VERSION) -> dict:
    cells = list(cells)
    return {
        "schema_version": schema_version, "bench_version": "0.1.0", "run_id": run_id,
        "suite": {"name": "synthetic", "path": "synthetic.toml", "sha256": "0" * 64,
                  "text": suite_text},
        "status": "complete", "started_utc": "2025-01-01T00:00:00+00:00",
        "finished_utc": "2025-01-01T00:01:00+00:00",
        "sessions": [{"started_utc": "2025-01-01T00:00:00+00:00",
                      "finished_utc": "2025-01-01T00:01:00+00:00", "executor": "local",
                      "status": "complete"}],
        "seeds": sorted({c.config.get("seed", 0) for c in cells}), "executor": "local",
        "counts": {"ok": sum(c.ok for c in cells), "failed": sum(not c.ok for c in cells),
                   "total": len(cells)},
        "provenance": {
            "versions": {"python": "3.11.2", "torch": torch, "torchvision": "0.20.0",
                         "torchattacks": "3.5.1", "torch-fidelity": "0.3.0"},
            "device": {"device": device, "device_name": device_name, "torch_threads": cpu_count,
                       "cuda_available": device.startswith("cuda")},
            "machine": {"hostname": "test", "cpu_count": cpu_count, "platform": "Linux"},
            "git": {"commit": "0" * 40, "dirty": False},
        },
        "cells": {c.id: {"kind": c.kind, "label": c.label, "deps": c.deps, "status": c.status,
                         "reason": c.reason} for c in cells},
    }


def make_cell(kind: str, config: dict, records: dict[str, list[dict]], label: str,
              status: str = "ok", reason: str | None = None) -> CellRecord:
    return CellRecord(id=cell_id(kind, config, {}), kind=kind, label=label, config=config, deps={},
                      status=status, reason=reason, records=records if status == "ok" else {},
                      seconds=1.0)


def robustness_cells(models: dict[str, tuple[float, list[float]]] | None = None,
                     seeds: Iterable[int] = (0, 1, 2), epsilons: Iterable[float] = (0.05, 0.1),
                     attack: str = "fgsm", seed_spread: float = 0.03,
                     rng_seed: int = 0) -> list[CellRecord]:
    """One robustness cell per (model, seed); accuracies vary a little from seed to seed."""
    models = models or {"cnn": (0.95, [0.70, 0.40]), "cnn-pgd": (0.90, [0.80, 0.65])}
    rng = np.random.default_rng(rng_seed)
    epsilons = list(epsilons)
    out = []
    for model, (clean, robust) in models.items():
        for seed in seeds:
            jitter = float(rng.uniform(-seed_spread, seed_spread))
            seconds = 0.5 + float(rng.uniform(0, 0.05))  # per cell, repeated on each row
            rows = []
            for eps, acc in zip(epsilons, robust):
                c, r = clean + jitter / 3, acc + jitter
                rows.append({"model": model, "dataset": "digits", "split": "test", "attack": attack,
                             "attack_repr": f"{attack.upper()}(eps={eps})", "epsilon": eps,
                             "seed": seed, "n": 400, "clean_acc": c, "robust_acc": r,
                             "acc_drop": c - r, "relative_drop": (c - r) / c,
                             "attack_success_rate": (c - r) / c, "linf_mean": eps, "linf_max": eps,
                             "zero_grad_frac": 0.0, "eval_mode": True,
                             "seconds": seconds, "images_per_s": 400 / seconds})
            config = {"model": model, "attack": attack, "epsilons": epsilons, "seed": seed,
                      "dataset": {"name": "digits", "seed": 0}}
            out.append(make_cell("robustness", config, {S.ROBUSTNESS: rows},
                                 f"{attack} {model} seed={seed}"))
    return out


def throughput_cells(times_by_seed: dict[int, Iterable[float]], *, batch_size: int = 64,
                     workload: str = "inference", model: str = "cnn",
                     device_name: str = DEVICE_NAME) -> list[CellRecord]:
    """One throughput cell per seed with the given per-repeat seconds."""
    out = []
    for seed, times in times_by_seed.items():
        times = [float(t) for t in times]
        median = float(np.median(times))
        q75, q25 = np.percentile(times, [75, 25])
        row = {"workload": workload, "target": model, "arch": "small-cnn", "dataset": "digits",
               "batch_size": batch_size, "precision": "fp32", "channels_last": False,
               "compile": False, "seed": seed, "device": "cpu", "device_name": device_name,
               "torch_version": "2.5.0", "cuda_version": None, "threads": 2,
               "timing_method": "perf-counter", "warmup": 1, "repeats": len(times),
               "times_s": times, "median_s": median, "iqr_s": float(q75 - q25),
               "q1_s": float(q25), "q3_s": float(q75), "images_per_step": batch_size,
               "images_per_s": batch_size / median, "flops_per_step": 1e8,
               "achieved_tflops": 1e-4 / median, "peak_tflops": 0.05,
               "mfu": 1e-4 / median / 0.05, "peak_memory_bytes": 50_000_000,
               "memory_kind": "peak_rss", "peak_source": "synthetic", "skipped": False,
               "skip_reason": None}
        config = {"workload": workload, "target": {"model": model}, "batch_size": batch_size,
                  "precision": "fp32", "channels_last": False, "compile": False,
                  "repeats": len(times), "seed": seed}
        out.append(make_cell("throughput", config, {S.THROUGHPUT: [row]},
                             f"{workload} {model} bs={batch_size} fp32 seed={seed}"))
    return out


def synthetic_times(rng: np.random.Generator, repeats: int, median_s: float = 0.02,
                    noise: float = 0.05) -> np.ndarray:
    """Per-repeat seconds: a median and multiplicative log-normal noise."""
    return median_s * np.exp(rng.normal(0.0, noise, repeats))


def tables_from_cells(cells: Iterable[CellRecord]) -> dict[str, pd.DataFrame]:
    """The tables `bench run` would write for these journal entries."""
    return build_tables({c.id: c for c in cells})


def make_run(run_dir: Path, cells: Iterable[CellRecord], **manifest_kw) -> Path:
    cells = list(cells)
    store = RunStore(run_dir)
    for rec in cells:
        store.write_cell(rec)
    store.write_tables(tables_from_cells(cells))
    store.write_manifest(make_manifest(Path(run_dir).name, cells, **manifest_kw))
    return Path(run_dir)


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("run.lock", "report.*", "plots"))
    return dst


def edit_table(run_dir: Path, table: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Rewrite tables/<table>.parquet (+ .csv) with edit(df)."""
    path = Path(run_dir) / "tables" / f"{table}.parquet"
    df = edit(pd.read_parquet(path))
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(path.with_suffix(".csv"), df.to_csv(index=False))


def edit_manifest(run_dir: Path, edit: Callable[[dict], None]) -> None:
    path = Path(run_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    atomic_write_text(path, json.dumps(manifest, indent=1, sort_keys=True))


def golden_run(name: str) -> Path:
    """The one run folder under tests/data/golden/<name>/ (e.g. name="v1")."""
    matches = sorted(GOLDEN.glob(f"{name}-*/*/*/manifest.json")) + sorted(
        GOLDEN.glob(f"{name}-*/manifest.json"))
    if not matches:
        raise FileNotFoundError(f"no golden run {name!r} under {GOLDEN}")
    return matches[0].parent
