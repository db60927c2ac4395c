"""The "gan" cell: train one reference GAN on one dataset with one seed, evaluating as it goes.

Rows (table "gan") are one per evaluation, step 0 included, with FID/KID/IS/PRC from
torch-fidelity under the cell's feature extractor, computed on `num_samples` generated images
(fixed noise, so the curve is not blurred by resampling) against up to `num_samples` real train
images. `real_floor_fid` is the real test split (up to `num_samples`, count in
`real_floor_num_samples`) against that same reference: what real data scores. `seconds` is the
training time so far (evaluations excluded); `train_images_per_s` counts the real images the
discriminator consumed since the previous evaluation. Artefacts live in
`env.artifacts_dir/gans/<gan>-seed<k>/`: a checkpoint (state_dicts) and a PNG grid per evaluation.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import torch

from bench.cells import CellResult, RunEnv
from bench.cells.common import build_gan
from bench.data import load_dataset
from bench.errors import CellFailed
from bench.gans.train import GAN, train_gan
from bench.metrics import fidelity
from bench.store import schema as S
from bench.store.atomic import atomic_torch_save, atomic_write_bytes
from bench.store.schema import row
from bench.suite.cell_configs import GanCellConfig

EVAL_SEED_OFFSET = 1_000_003  # the evaluation noise is its own stream, fixed for the whole run
COLLAPSE_DISTINCT = 0.1  # fewer distinct 8-bit samples than this fraction = collapse
GRID_SAMPLES = 64


def run_gan_cell(config: GanCellConfig, inputs: dict, env: RunEnv) -> CellResult:
    dataset, seed = config.dataset, config.seed
    train = load_dataset(dataset, "train")
    extractor = resolve_extractor(config, inputs)

    gan: GAN = build_gan(config.arch, train, z_dim=config.z_dim, lr=config.lr, seed=seed)
    gan.to(env.device, amp=config.amp)
    note = "amp ignored: mixed precision runs on CUDA only" if config.amp and not gan.amp else ""

    n = config.num_samples
    reference = fidelity.real_reference(train.x, dataset, "train", n, extractor)
    test_ref = fidelity.real_reference(load_dataset(dataset, "test").x, dataset, "test", n, extractor)
    floor = fidelity.real_floor_fid(reference, test_ref, extractor, env.device, env.cache_dir)

    out_dir = Path(env.artifacts_dir) / "gans" / f"{config.gan}-seed{seed}"
    z_eval = torch.randn(n, gan.z_dim, generator=torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET))
    evaluations: dict[int, dict] = {}  # step -> metrics and evaluation time

    def evaluate(step: int) -> None:
        t0 = time.perf_counter()
        images = gan.sample(z_eval)
        check_samples(images, step)
        metrics = fidelity.compute_metrics(images, reference, extractor, config.metrics,
                                           env.device, env.cache_dir, seed)
        atomic_write_bytes(out_dir / f"samples-step{step:06d}.png", png_grid(images[:GRID_SAMPLES]))
        evaluations[step] = {**metrics, "eval_seconds": time.perf_counter() - t0}

    timing = train_gan(gan, train.x, steps=config.steps, batch_size=config.batch_size, seed=seed,
                       eval_every=config.eval_every, evaluate=evaluate, progress=env.progress)
    rows = [row(S.GAN, gan=config.gan, arch=config.arch, dataset=dataset.name, seed=seed,
                step=step, **ev, num_samples=n, num_real_samples=reference.images.shape[0],
                extractor=extractor.name, extractor_hash=extractor.hash, real_floor_fid=floor,
                real_floor_num_samples=test_ref.images.shape[0],
                seconds=timing[step][0], train_images_per_s=timing[step][1], amp=gan.amp,
                note=note)
            for step, ev in evaluations.items()]

    checkpoint = out_dir / "checkpoint.pt"
    atomic_torch_save(gan.state_dict(), checkpoint)
    samples = out_dir / f"samples-step{rows[-1]['step']:06d}.png"
    return CellResult(records={S.GAN: rows},
                      artifacts={"checkpoint": str(checkpoint), "samples": str(samples)})


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


def check_samples(images: torch.Tensor, step: int) -> None:
    """CellFailed if samples are not finite or, once training began, (nearly) all the same.

    Collapse: under a tenth of the samples are distinct as 8-bit images (all equal: one; a
    diverged DCGAN saturates to a handful of binary images). A per-pixel std threshold alone
    would also flag the flat but varied output of a DCGAN a few steps after its N(0, 0.02) init.
    """
    if not torch.isfinite(images).all():
        raise CellFailed(f"diverged: generator produced non-finite samples at step {step}")
    if step == 0:
        return  # an untrained generator may output near-constant images; that is no collapse
    n = images.shape[0]
    spread = images.std(dim=0).mean().item()
    distinct = torch.unique(fidelity.images_to_uint8(images).flatten(1), dim=0).shape[0]
    if distinct < COLLAPSE_DISTINCT * n:
        raise CellFailed(f"collapsed: {distinct} distinct samples out of {n} at step {step} "
                         f"(mean per-pixel std {spread:.2g})")


def png_grid(images: torch.Tensor) -> bytes:
    from torchvision.utils import save_image

    buf = io.BytesIO()
    save_image(images, buf, format="png", nrow=int(math.ceil(math.sqrt(images.shape[0]))), padding=1)
    return buf.getvalue()
