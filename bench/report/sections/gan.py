"""GANs: FID over training steps with the real-data floor, final metrics, sample grids."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from bench.report.blocks import Figure, Section, Table, Text, Warning_, figure_png, subplots
from bench.store import schema as S

FINAL_COLUMNS = ["gan", "arch", "dataset", "step", "n_seeds", "fid_mean", "fid_std", "fid_ci_low",
                 "fid_ci_high", "real_floor_fid_mean", "fid_at_floor_count_mean", "fid_x_floor",
                 "kid_mean_mean", "isc_mean_mean", "precision_mean", "recall_mean",
                 "train_images_per_s_mean"]
GRID_PANELS = [("real_samples", "real (test split)"), ("samples_step0", "step 0"),
               ("samples", "final step")]
PANEL_INCHES = 4.2  # per grid: an 8×8 grid of 8×8 digits comes out ~4.3× enlarged at 110 dpi


def sections(run, baseline) -> list[Section]:
    agg = run.table(S.GAN_AGG)
    rows = run.table(S.GAN)
    if agg.empty and rows.empty:
        return []
    extractors = ", ".join(sorted(rows["extractor"].astype(str).unique())) if not rows.empty else ""
    blocks: list = [Text(
        f"FID of generated samples against the real train split, measured with the "
        f"`{extractors}` feature extractor (FIDs are comparable only for the same extractor and "
        "sample count). Mean over seeds with a 95% band; the dotted line is the real-data floor: "
        "the FID of the real test split against the same reference, the best a generator can "
        "be expected to reach. Dashed lines are seeds that failed, up to their failure.")]
    blocks += [Warning_(m) for m in sample_count_notes(rows) + failure_notes(rows)]
    blocks.append(Figure("gan_fid_over_steps", fid_over_steps_png(agg, rows),
                         "FID over training steps, all GANs"))
    if not agg.empty:
        final = agg.sort_values("step").groupby(["gan", "dataset"], sort=True).tail(1).copy()
        # The floor's own count: FID at as many samples as the floor had (older runs: FID).
        same_count = final.get("fid_at_floor_count_mean", final["fid_mean"])
        final["fid_x_floor"] = same_count.fillna(final["fid_mean"]) / final["real_floor_fid_mean"]
        blocks.append(Table(final[[c for c in FINAL_COLUMNS if c in final.columns]],
                            "Final evaluation, over seeds (fid_x_floor: mean FID at the "
                            "floor's sample count / floor)"))
    for name, png in sample_grids(run):
        blocks.append(Figure(f"gan_samples_{name}", png,
                             f"Samples of {name} (first seed): real data, step 0, final step"))
    return [Section("GANs", blocks)]


def sample_count_notes(rows: pd.DataFrame) -> list[str]:
    """Where the floor or the reference used fewer images than the generated side, say so."""
    if rows.empty or "real_floor_num_samples" not in rows:
        return []
    out = []
    cols = ["gan", "num_samples", "num_real_samples", "real_floor_num_samples"]
    for r in rows[cols].drop_duplicates().itertuples():
        if r.real_floor_num_samples != r.num_samples or r.num_real_samples != r.num_samples:
            out.append(f"`{r.gan}`: {r.num_samples} generated samples, but the reference has "
                       f"{r.num_real_samples} real train images and the floor was measured on "
                       f"{r.real_floor_num_samples} real test images (the splits are smaller): "
                       "FID shrinks as N grows, so the floor and the GAN's FID are not at the same N.")
    notes = rows["note"].dropna().astype(str) if "note" in rows else pd.Series(dtype=str)
    out += sorted({n for n in notes if "Inception FID" in n})
    return out


def failure_notes(rows: pd.DataFrame) -> list[str]:
    if rows.empty or "failure" not in rows:
        return []
    failed = rows[rows["failure"].fillna("").astype(str) != ""]
    return [f"`{gan}` seed {seed} failed: {reason}. Its {len(g)} evaluation(s) up to step "
            f"{int(g['step'].max())} are kept in the `gan` table (column `failure`), out of the means."
            for (gan, seed, reason), g in failed.groupby(["gan", "seed", "failure"], sort=True)]


def fid_over_steps_png(agg: pd.DataFrame, rows: pd.DataFrame) -> bytes:
    datasets = sorted(set(agg.get("dataset", [])) | set(rows.get("dataset", [])))
    fig, axes = subplots(1, len(datasets), figsize=(6 * len(datasets), 4))
    gans = sorted(set(agg.get("gan", [])) | set(rows.get("gan", [])))
    colour = {gan: f"C{i}" for i, gan in enumerate(gans)}
    for ax, dataset in zip(axes[0], datasets):
        df = agg[agg["dataset"] == dataset] if not agg.empty else agg
        for gan, g in (df.groupby("gan", sort=True) if not df.empty else []):
            g = g.sort_values("step")
            ax.plot(g["step"], g["fid_mean"], marker="o", ms=3, color=colour[gan], label=gan)
            if g["fid_ci_low"].notna().any():
                # A band reaching 0 would stretch the log axis: cut it at half the mean.
                low = g["fid_ci_low"].where(g["fid_ci_low"] > 0, g["fid_mean"] / 2)
                ax.fill_between(g["step"], low, g["fid_ci_high"], color=colour[gan], alpha=0.15)
        _failed_curves(ax, rows[rows["dataset"] == dataset] if not rows.empty else rows, colour)
        floor = df["real_floor_fid_mean"].dropna() if not df.empty else pd.Series(dtype=float)
        if not floor.empty:
            ax.axhline(floor.mean(), color="k", ls=":", label="real-data floor")
        ax.set(title=dataset, xlabel="generator step", ylabel="FID (lower is better)", yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return figure_png(fig)


def _failed_curves(ax, rows: pd.DataFrame, colour: dict) -> None:
    if rows.empty or "failure" not in rows:
        return
    failed = rows[rows["failure"].fillna("").astype(str) != ""]
    for (gan, seed), g in failed.groupby(["gan", "seed"], sort=True):
        g = g.sort_values("step")
        ax.plot(g["step"], g["fid"], ls="--", marker="x", ms=4, color=colour[gan],
                label=f"{gan} seed {seed} (failed)")


def sample_grids(run) -> list[tuple[str, bytes]]:
    """Per GAN, its first finished seed's grids: real data, step 0 and the final step."""
    out: dict[str, bytes] = {}
    for rec in sorted(run.journal.values(), key=lambda r: r.config.get("seed", 0)):
        name = rec.config.get("gan")
        if rec.kind != "gan" or not rec.ok or name in out:
            continue
        panels = [(title, Path(rec.artifacts[key]).read_bytes()) for key, title in GRID_PANELS
                  if key in rec.artifacts and Path(rec.artifacts[key]).exists()]
        if panels:
            out[name] = side_by_side_png(panels)
    return sorted(out.items())


def side_by_side_png(panels: list[tuple[str, bytes]]) -> bytes:
    """PNG grids next to each other, each titled, enlarged without smoothing (crisp pixels)."""
    from PIL import Image

    fig, axes = subplots(1, len(panels), figsize=(PANEL_INCHES * len(panels), PANEL_INCHES + 0.4))
    for ax, (title, png) in zip(axes[0], panels):
        image = Image.open(io.BytesIO(png)).convert("L")
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=11)
        ax.axis("off")
    return figure_png(fig)
