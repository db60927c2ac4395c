"""GANs: FID over training steps with the real-data floor, final metrics, sample grids."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from bench.report.blocks import Figure, Section, Table, Text, figure_png
from bench.store import schema as S


def sections(run, baseline) -> list[Section]:
    agg = run.table(S.GAN_AGG)
    if agg.empty:
        return []
    extractors = ", ".join(sorted(agg["extractor"].astype(str).unique()))
    blocks = [Text(f"FID of generated samples against the real train split, measured with the "
                   f"`{extractors}` feature extractor (FIDs are comparable only for the same "
                   "extractor and sample count). Mean over seeds with a 95% band; the dotted line "
                   "is the real-data floor: the FID of the real test split against the same "
                   "reference, the best a generator can be expected to reach.")]
    blocks.append(Figure("gan_fid_over_steps", fid_over_steps_png(agg), "FID over training steps"))
    final = agg.sort_values("step").groupby(["gan", "dataset"], sort=True).tail(1)
    cols = ["gan", "arch", "dataset", "step", "n_seeds", "fid_mean", "fid_ci_low", "fid_ci_high",
            "real_floor_fid_mean", "kid_mean_mean", "isc_mean_mean", "precision_mean", "recall_mean",
            "train_images_per_s_mean"]
    blocks.append(Table(final[[c for c in cols if c in final.columns]], "Final evaluation, over seeds"))
    for name, png in sample_grids(run):
        blocks.append(Figure(f"gan_samples_{name}", png, f"Samples: {name}"))
    return [Section("GANs", blocks)]


def fid_over_steps_png(agg: pd.DataFrame) -> bytes:
    panels = list(agg.groupby("dataset", sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (dataset, df) in zip(axes[0], panels):
        for i, (gan, g) in enumerate(df.groupby("gan", sort=True)):
            g = g.sort_values("step")
            ax.plot(g["step"], g["fid_mean"], marker="o", ms=3, color=f"C{i}", label=gan)
            if g["fid_ci_low"].notna().any():
                ax.fill_between(g["step"], g["fid_ci_low"].clip(lower=0), g["fid_ci_high"],
                                color=f"C{i}", alpha=0.15)
        floor = df["real_floor_fid_mean"].dropna()
        if not floor.empty:
            ax.axhline(floor.mean(), color="k", ls=":", label="real-data floor")
        ax.set(title=dataset, xlabel="generator step", ylabel="FID (lower is better)", yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return figure_png(fig)


def sample_grids(run) -> list[tuple[str, bytes]]:
    """The final sample grid of the first seed of each GAN (the journal knows where it is)."""
    out: dict[str, bytes] = {}
    for rec in sorted(run.journal.values(), key=lambda r: r.config.get("seed", 0)):
        path = rec.artifacts.get("samples") if rec.kind == "gan" and rec.ok else None
        name = rec.config.get("gan")
        if path and name not in out and Path(path).exists():
            out[name] = enlarged_png(Path(path).read_bytes())
    return sorted(out.items())


def enlarged_png(png: bytes, min_width: int = 320) -> bytes:
    """8x8 digits make a 72-pixel grid: scale small grids up (nearest, so pixels stay crisp)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    factor = -(-min_width // image.width)
    if factor <= 1:
        return png
    buf = io.BytesIO()
    image.resize((image.width * factor, image.height * factor), Image.NEAREST).save(buf, "PNG")
    return buf.getvalue()
