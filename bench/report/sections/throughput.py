"""Throughput: images/s per configuration (median, IQR whiskers, MFU labels) and the table.

Reads the `throughput` table only.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.report.blocks import Figure, Section, Table, Text, figure_png, subplots
from bench.store import schema as S

PANEL_KEYS = ["workload", "target"]
CONFIG_KEYS = ["batch_size", "precision", "channels_last", "compile", "seed"]


def sections(run, baseline) -> list[Section]:
    df = run.table(S.THROUGHPUT)
    if df.empty:
        return []
    skipped = df["skipped"].astype(bool)
    ran, skip = df[~skipped], df[skipped]
    blocks = [Text(_intro(df))]
    if not ran.empty:
        blocks.append(Figure("throughput_images_per_s", images_per_s_png(ran),
                             "Images/s at the median repeat; whiskers span the IQR"))
        blocks.append(Table(display_table(ran), "Throughput per configuration", digits=3))
    if not skip.empty:
        cols = PANEL_KEYS + CONFIG_KEYS + ["skip_reason"]
        blocks.append(Table(skip[[c for c in cols if c in skip.columns]].reset_index(drop=True),
                            "Skipped configurations"))
    return [Section("Throughput", blocks)]


def _intro(df: pd.DataFrame) -> str:
    first = df.iloc[0]
    devices = ", ".join(sorted(set(df["device_name"].dropna().astype(str))))
    lines = [
        f"Timed on {devices} (torch {first['torch_version']}, CUDA {first['cuda_version'] or '-'}, "
        f"{first['threads']} threads) with `{first['timing_method']}`: "
        f"{first['warmup']} warm-up steps, then {first['repeats']} timed repeats per "
        "configuration, batches already on the device.",
        "Achieved FLOP/s counts matmuls and convolutions (FlopCounterMode) at the median time. "
        "MFU is achieved / peak: a vendor table for GPUs (dense, per precision), and on the CPU "
        "the best matmul rate of the same precision measured in the same process "
        "(`peak_source`). On the CPU a convolution kernel can outrun the matmul, and a step can "
        "run in a quieter moment than the matmul did, so a CPU MFU can exceed 100%.",
    ]
    return "\n\n".join(lines)


def config_label(row: dict, with_seed: bool = False) -> str:
    parts = [f"bs={int(row['batch_size'])}", str(row["precision"])]
    if bool(row["channels_last"]):
        parts.append("channels_last")
    if bool(row["compile"]):
        parts.append("compiled")
    if with_seed:
        parts.append(f"seed {int(row['seed'])}")
    return " ".join(parts)


def images_per_s_png(df: pd.DataFrame) -> bytes:
    with_seed = df["seed"].nunique() > 1
    panels = list(df.groupby(PANEL_KEYS, sort=True))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    heights = [len(g) for _, g in panels]
    height = 0.9 + (0.32 * max(heights) + 0.8) * nrows
    from matplotlib import ticker  # with matplotlib, at the first figure

    fig, axes = subplots(nrows, ncols, figsize=(5.2 * ncols, height))
    for ax, ((workload, target), g) in zip(axes.flat, panels):
        g = g.sort_values(CONFIG_KEYS)
        labels = [config_label(r, with_seed) for r in g.to_dict("records")]
        ips = g["images_per_s"].to_numpy(float)
        images = g["images_per_step"].to_numpy(float)
        lo = images / g["q3_s"].to_numpy(float)  # slower quartile -> fewer images/s
        hi = images / g["q1_s"].to_numpy(float)
        colors = ["C1" if p != "fp32" else "C0" for p in g["precision"]]
        y = np.arange(len(g))
        ax.barh(y, ips, color=colors, alpha=0.85,
                xerr=np.vstack([np.clip(ips - lo, 0, None), np.clip(hi - ips, 0, None)]),
                error_kw={"elinewidth": 1, "capsize": 2})
        for yi, right, mfu in zip(y, np.maximum(ips, hi), g["mfu"].to_numpy(float)):
            if np.isfinite(mfu):
                ax.text(right, yi, f"  MFU {mfu:.0%}", va="center", fontsize=7)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{workload} — {target}", fontsize=10)
        ax.set_xlabel("images/s")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(5))
        ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(0, max(hi.max(), ips.max()) * 1.4)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return figure_png(fig)


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """Unit-converted copy for reading (ms, GFLOP/s, MiB); the stored table keeps SI units."""
    out = df[PANEL_KEYS + CONFIG_KEYS].copy()
    out["images_per_s"] = df["images_per_s"]
    out["median_ms"] = df["median_s"] * 1e3
    out["iqr_ms"] = df["iqr_s"] * 1e3
    out["rel_iqr"] = df["iqr_s"] / df["median_s"]
    out["gflops_per_step"] = df["flops_per_step"].astype(float) / 1e9
    out["achieved_gflop_s"] = df["achieved_tflops"] * 1e3
    out["mfu"] = df["mfu"]
    out["peak_mem_mib"] = df["peak_memory_bytes"].astype(float) / 2**20
    out["memory_kind"] = df["memory_kind"]
    return out.sort_values(PANEL_KEYS + CONFIG_KEYS).reset_index(drop=True)
