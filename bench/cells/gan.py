"""The "gan" cell: train one reference GAN on one dataset with one seed, evaluating as it goes.

Rows (table "gan") are one per evaluation, step 0 included, with FID/KID/IS/PRC from
torch-fidelity under the cell's feature extractor, computed on `num_samples` generated images
(fixed noise, so the curve is not blurred by resampling; from the generator-weight EMA when
the recipe keeps one) against up to `num_samples` real train images (`num_real_samples`).
`real_floor_fid` is the real test split (up to `num_samples` images, count in
`real_floor_num_samples`) against that same reference: what real data scores;
`fid_at_floor_count` is the generated side's FID on as many samples as the floor had (the
same as `fid` unless the test split is smaller than `num_samples`). `seconds` is the
training time so far (evaluations excluded); `train_images_per_s` counts the real images the
discriminator consumed since the previous evaluation.

A cell that fails (non-finite loss, collapse, or an FID that stays above
GAN_DIVERGENCE_RISE × its best for `divergence_patience` evaluations) keeps the rows it
measured: they travel with the CellFailed, each with the reason in `failure` ("" otherwise).
The final evaluation's samples go through the FID checks (bench.checks.fid: batch-size
invariance, sample counts, memorisation), whose verdicts are the cell's `checks` rows.
Artefacts live in `env.artifacts_dir/gans/<gan>-seed<k>/`: a checkpoint (state_dicts), a PNG
grid per evaluation and one of real test images.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from bench import defaults
from bench.cells import CellResult, RunEnv
from bench.cells.common import build_gan
from bench.checks.fid import fid_check_rows, fid_checks
from bench.data import load_dataset
from bench.errors import CellFailed
from bench.gans.base import GAN
from bench.gans.train import train_gan
from bench.metrics import fidelity
from bench.store import schema as S
from bench.store.atomic import atomic_torch_save, atomic_write_bytes
from bench.suite.cell_configs import GanCellConfig

EVAL_SEED_OFFSET = 1_000_003  # the evaluation noise is its own stream, fixed for the whole run
COLLAPSE_DISTINCT = 0.1  # fewer distinct 8-bit samples than this fraction = collapse
GRID_SAMPLES = 64


def run_gan_cell(config: GanCellConfig, inputs: dict, env: RunEnv) -> CellResult:
    train = load_dataset(config.dataset, "train")
    extractor = resolve_extractor(config, inputs)
    gan = build_gan(config.arch, train, z_dim=config.z_dim, lr=config.lr, seed=config.seed,
                    lr_d=config.lr_d, betas=config.betas, n_critic=config.n_critic,
                    ema=config.ema).to(env.device, amp=config.amp)
    scorer = fidelity.Scorer(extractor, config.metrics, env.device, env.cache_dir, config.seed,
                             float64=bool(config.fid_float64))
    real = fidelity.real_side(config.dataset, train.x, load_dataset(config.dataset, "test").x,
                              scorer, n_reference=config.num_samples, n_floor=config.num_samples)
    base = base_row(config, gan, real, extractor)
    out_dir = Path(env.artifacts_dir) / "gans" / f"{config.gan}-seed{config.seed}"
    z_eval = torch.randn(config.num_samples, gan.z_dim,
                         generator=torch.Generator().manual_seed(config.seed + EVAL_SEED_OFFSET))
    atomic_write_bytes(out_dir / "real.png", png_grid(real.test.images[:GRID_SAMPLES].float() / 255))
    rows: list[dict] = []
    last: list[Measured] = []

    def evaluate(step: int, seconds: float, images_per_s: float) -> None:
        t0 = time.perf_counter()
        measured = measure(gan, z_eval, real, scorer, step)
        write_samples(out_dir, step, measured.images)
        rows.append(eval_row(base, measured.columns, step, seconds, images_per_s,
                             time.perf_counter() - t0, gan.skipped_steps))
        last[:] = [measured]
        check_collapse(measured.images, step)
        check_fid_rise([r["fid"] for r in rows], config.divergence_patience, step)

    try:
        train_gan(gan, train.x, steps=config.steps, batch_size=config.batch_size, seed=config.seed,
                  eval_every=config.eval_every, evaluate=evaluate, progress=env.progress)
    except CellFailed as exc:
        raise CellFailed(str(exc), records={S.GAN: with_failure(rows, str(exc))}) from None
    checkpoint = out_dir / "checkpoint.pt"
    atomic_torch_save(gan.state_dict(), checkpoint)
    checks = final_checks(config, scorer, real, last[0], rows[-1])
    return CellResult(records={S.GAN: rows} | ({S.CHECKS: checks} if checks else {}), artifacts={
        "checkpoint": str(checkpoint), "samples": str(grid_path(out_dir, rows[-1]["step"])),
        "samples_step0": str(grid_path(out_dir, 0)), "real_samples": str(out_dir / "real.png")})


def base_row(config: GanCellConfig, gan: GAN, real: fidelity.RealSide,
             extractor: fidelity.Extractor) -> dict:
    """The columns every evaluation row of this cell shares."""
    notes = []
    if config.amp and not gan.amp:
        notes.append("amp ignored: mixed precision runs on CUDA only")
    n_real = real.reference.images.shape[0]
    small = fidelity.sample_count_warning(extractor, min(config.num_samples, n_real))
    if small:
        warnings.warn(small, stacklevel=2)
        notes.append(small)
    return {"gan": config.gan, "arch": config.arch, "dataset": config.dataset.name,
            "seed": config.seed, "num_samples": config.num_samples, "num_real_samples": n_real,
            "extractor": extractor.name, "extractor_hash": extractor.hash,
            "real_floor_fid": real.floor, "real_floor_num_samples": real.test.images.shape[0],
            "amp": gan.amp, "note": "; ".join(notes), "failure": ""}


@dataclass(frozen=True)
class Measured:
    """One evaluation: the samples, their features and metric columns."""

    images: torch.Tensor  # float N×C×H×W in [0, 1]
    features: dict  # torch-fidelity featuresdict of the samples
    columns: dict  # the metric columns, fid_at_floor_count included


def measure(gan: GAN, z: torch.Tensor, real: fidelity.RealSide, scorer: fidelity.Scorer,
            step: int) -> Measured:
    """Samples for the fixed noise `z`, their features and metric columns."""
    images = gan.sample(z)
    check_finite_samples(images, step)
    features = scorer.features(fidelity.images_to_uint8(images, scorer.extractor.rgb))
    real_features = scorer.real(real.reference)
    columns = scorer.score(features, real_features)
    at_floor = (scorer.fid_at(features, real_features, real.test.images.shape[0])
                if "fid" in scorer.metrics else math.nan)
    return Measured(images, features, columns | {"fid_at_floor_count": at_floor})


def final_checks(config: GanCellConfig, scorer: fidelity.Scorer, real: fidelity.RealSide,
                 last: Measured, row: dict) -> list[dict]:
    """The FID checks (bench.checks.fid) of the final evaluation's samples."""
    head = fidelity.images_to_uint8(last.images[:defaults.FID_CHECK_SAMPLES],
                                    scorer.extractor.rgb)
    checks = fid_checks(scorer, last.features, head, scorer.real(real.reference),
                        fid=row["fid"], floor=real.floor,
                        n_floor=real.test.images.shape[0])
    setting = f"step={row['step']}, extractor={scorer.extractor.name}" + (
        ", float64" if scorer.float64 else "")
    return fid_check_rows(checks, model=config.gan, seed=config.seed,
                          dataset=config.dataset.name, split="train", setting=setting)


def write_samples(out_dir: Path, step: int, images: torch.Tensor) -> None:
    atomic_write_bytes(grid_path(out_dir, step), png_grid(images[:GRID_SAMPLES]))


def eval_row(base: dict, metrics: dict, step: int, seconds: float, images_per_s: float,
             eval_seconds: float, skipped_steps: int) -> dict:
    return S.row(S.GAN, **base, **metrics, step=step, seconds=seconds,
                 train_images_per_s=images_per_s, eval_seconds=eval_seconds,
                 amp_skipped_steps=skipped_steps)


def with_failure(rows: list[dict], reason: str) -> list[dict]:
    """The rows measured before a failure, each marked with it."""
    return [row | {"failure": reason} for row in rows]


def grid_path(out_dir: Path, step: int) -> Path:
    return out_dir / f"samples-step{step:06d}.png"


def resolve_extractor(config: GanCellConfig, inputs: dict) -> fidelity.Extractor:
    if config.feature_extractor == "domain":
        if "extractor" not in inputs:
            raise CellFailed("feature_extractor 'domain' needs the extractor cell's result as input")
        result = inputs["extractor"]
        (ext,) = result.records[S.EXTRACTORS]
        return fidelity.domain_extractor(ext["name"], ext["hash"], result.artifacts["weights"])
    if not config.inception_weights:
        raise CellFailed("feature_extractor 'inception' needs [suite] inception_weights "
                         "(a local torch-fidelity Inception weights file; nothing is downloaded)")
    try:
        return fidelity.inception_extractor(config.inception_weights)
    except FileNotFoundError as exc:
        raise CellFailed(str(exc)) from None


def check_finite_samples(images: torch.Tensor, step: int) -> None:
    if not torch.isfinite(images).all():
        raise CellFailed(f"diverged: generator produced non-finite samples at step {step}")


def check_collapse(images: torch.Tensor, step: int) -> None:
    """CellFailed if, once training began, the samples are (nearly) all the same.

    Collapse: under a tenth of the samples are distinct as 8-bit images (all equal: one; a
    diverged DCGAN saturates to a handful of binary images). A per-pixel std threshold alone
    would also flag the flat but varied output of a DCGAN a few steps after its N(0, 0.02) init.
    """
    if step == 0:
        return  # an untrained generator may output near-constant images; that is no collapse
    n = images.shape[0]
    spread = images.std(dim=0).mean().item()
    distinct = torch.unique(fidelity.images_to_uint8(images).flatten(1), dim=0).shape[0]
    if distinct < COLLAPSE_DISTINCT * n:
        raise CellFailed(f"collapsed: {distinct} distinct samples out of {n} at step {step} "
                         f"(mean per-pixel std {spread:.2g})")


def check_fid_rise(fids: list[float], patience: int, step: int,
                   rise: float = defaults.GAN_DIVERGENCE_RISE) -> None:
    """CellFailed once the last `patience` FIDs all exceed `rise` × the best FID before them.

    One bad evaluation is noise; a run of them, well above what the GAN already reached, is
    divergence. `patience` 0 turns the check off; NaN FIDs (FID not requested) never count.
    """
    if patience <= 0 or len(fids) <= patience:
        return
    earlier = [f for f in fids[:-patience] if math.isfinite(f)]
    if not earlier:
        return
    best = min(earlier)
    recent = fids[-patience:]
    if all(math.isfinite(f) and f > rise * best for f in recent):
        raise CellFailed(f"diverged: FID above {rise:g}× its best ({best:.3g}) for {patience} "
                         f"evaluations in a row ({', '.join(f'{f:.3g}' for f in recent)}) "
                         f"at step {step}")


def png_grid(images: torch.Tensor) -> bytes:
    from torchvision.utils import save_image

    buf = io.BytesIO()
    save_image(images, buf, format="png", nrow=int(math.ceil(math.sqrt(images.shape[0]))), padding=1)
    return buf.getvalue()
