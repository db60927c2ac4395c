"""The measurements behind the FID checks' thresholds (bench/defaults.py, FID_*).

    python benchmarks/fid_checks_calibration.py batch      # ~1-3 min; --inception adds ~5 min
    python benchmarks/fid_checks_calibration.py copies     # ~1 min
    python benchmarks/fid_checks_calibration.py gan --train-images 16 --steps 1000 --every 100
    python benchmarks/fid_checks_calibration.py gan --train-images 64 --steps 8000 --every 1000

Not a timing benchmark (except the float64 cost in `batch`): it prints what the checks look
at, so that the thresholds can be read off and re-checked.

batch   The FID of the same samples extracted at the default batch size (256) and at the
        check's second one (bench.checks.fid_batch.other_batch_size), float32 and float64
        features: the absolute and relative differences, against FID_BATCH_RTOL/ATOL; and
        the extraction time float64 / float32 (alternating rounds, median), the switch's cost.
        Domain extractor on digits (the extractor cell's recipe); --inception adds
        torch-fidelity's Inception-v3 (random weights from a local file) on 3×32×32 images.
copies  The memorisation check's ratio (nearest reference image / the reference's spacing)
        for held-out real images (digits test split against train subsets of 16, 64, 450 and
        1,347 images) and for 'generators' that copy training images with Gaussian pixel
        noise: quantiles, and the share below FID_COPY_RATIO.
gan     A DCGAN trained on `--train-images` digits (the seeded subset `limit_train` picks; no
        EMA, learning rate 2e-3, z_dim 8, batch = the image count, at most 64): the share of
        near-copies among 200 samples and the median ratio every `--every` steps. A GAN that
        memorises drives the share up; on all 1,347 train images it stays near zero.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench import defaults  # noqa: E402
from bench.suite.cell_configs import DatasetSpec  # noqa: E402
from benchmarks._common import machine_lines, quartiles, upsampled_digits  # noqa: E402

DIGITS = DatasetSpec(name="digits", kind="digits")


def digits_extractor(cache: Path):
    import bench

    return bench.domain_extractor("digits", device="cpu", cache_dir=cache)


def batch_report(ext, images: torch.Tensor, reference, cache: Path, label: str,
                 rounds: int) -> None:
    from bench.checks.fid_batch import other_batch_size, tolerance
    from bench.metrics.fidelity import Scorer, images_to_uint8

    u8 = images_to_uint8(images, ext.rgb)
    n = u8.shape[0]
    other = other_batch_size(defaults.FID_BATCH_SIZE, n)
    times = {}
    for float64 in (False, True):
        scorer = Scorer(ext, ["fid"], "cpu", cache, float64=float64)
        real = scorer.real(reference)
        main = scorer.fid(scorer.features(u8)[scorer.fid_layer], real)
        second = scorer.fid(scorer.features(u8, batch_size=other)[scorer.fid_layer], real)
        diff = abs(main - second)
        print(f"  {label} {'float64' if float64 else 'float32'}: FID {main:.8g} at batch "
              f"{min(defaults.FID_BATCH_SIZE, n)}, {second:.8g} at {other}: |diff| {diff:.3g} "
              f"(relative {diff / abs(main):.3g}; tolerance {tolerance(main):.3g})")
        times[float64] = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            scorer.features(u8)
            times[float64].append(time.perf_counter() - t0)
    per = [b / a for a, b in zip(times[False], times[True])]
    q1, med, q3 = quartiles(per)
    print(f"  {label}: float64 / float32 extraction time {med:.2f}× [IQR {q1:.2f}, {q3:.2f}] "
          f"({rounds} rounds; float32 median {quartiles(times[False])[1]:.3f} s for {n} images)")


def run_batch(args, cache: Path) -> None:
    from bench.data import load_dataset
    from bench.metrics.fidelity import inception_extractor, real_reference

    ext = digits_extractor(cache)
    train, test = load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")
    ref = real_reference(train.x, DIGITS, "train", 1000, ext)
    for what, images in (("digits test", test.x), ("digits train", train.x[-1000:])):
        batch_report(ext, images, ref, cache, f"domain, {what} ({len(images)})", args.rounds)
    if args.inception:
        from benchmarks.fid_in_memory import inception_weights

        inc = inception_extractor(inception_weights(cache))
        x, _ = upsampled_digits(2 * args.inception_samples, size=32, split="train", seed=3)
        x = x.repeat(1, 3, 1, 1)
        ref = real_reference(x[:args.inception_samples], None, "train", args.inception_samples, inc)
        batch_report(inc, x[args.inception_samples:], ref, cache,
                     f"inception 3×32×32 ({args.inception_samples})", max(1, args.rounds // 2))


def ratio_line(label: str, ratio: torch.Tensor) -> None:
    qs = torch.quantile(ratio.double(), torch.tensor([0.01, 0.05, 0.25, 0.5], dtype=torch.float64))
    below = float((ratio < defaults.FID_COPY_RATIO).float().mean())
    print(f"  {label:<44s} quantiles 1/5/25/50%: " + " ".join(f"{q:.3f}" for q in qs.tolist())
          + f"   below {defaults.FID_COPY_RATIO:.3g}: {below:.1%}")


def run_copies(args, cache: Path) -> None:
    from bench.checks.memorisation import memorisation
    from bench.data import load_dataset
    from bench.metrics.fidelity import Scorer, images_to_uint8

    ext = digits_extractor(cache)
    scorer = Scorer(ext, ["fid"], "cpu", cache)
    train, test = load_dataset(DIGITS, "train").x, load_dataset(DIGITS, "test").x

    def feats(x):
        return scorer.features(images_to_uint8(x))[scorer.fid_layer]

    f_train, f_test = feats(train), feats(test)
    for n in (16, 64, 450, 1347):
        m = memorisation(f_test, f_train[:n], sample=10_000)
        ratio_line(f"held-out test vs {n} train (spacing {m.spacing:.3g})", m.ratio)
    gen = torch.Generator().manual_seed(0)
    for sigma in (0.0, 0.005, 0.01, 0.02, 0.03, 0.05):
        copies = (train[:450] + sigma * torch.randn(train[:450].shape, generator=gen)).clamp(0, 1)
        ratio_line(f"train copies + N(0, {sigma:g}) vs 1347 train",
                   memorisation(feats(copies), f_train, sample=10_000).ratio)


def run_gan(args, cache: Path) -> None:
    from bench.cells.common import build_gan
    from bench.checks.memorisation import memorisation
    from bench.data import load_dataset
    from bench.gans.train import train_gan
    from bench.metrics.fidelity import Scorer, images_to_uint8

    ext = digits_extractor(cache)
    scorer = Scorer(ext, ["fid"], "cpu", cache)
    spec = DIGITS.model_copy(update={"limit_train": args.train_images})
    train = load_dataset(spec, "train")
    f_train = scorer.features(images_to_uint8(train.x))[scorer.fid_layer]
    gan = build_gan("dcgan", train, z_dim=8, lr=2e-3, seed=0, ema=0.0)
    z = torch.randn(200, 8, generator=torch.Generator().manual_seed(5))
    start = time.perf_counter()

    def evaluate(step, seconds, rate):
        if step == 0:
            return
        m = memorisation(scorer.features(images_to_uint8(gan.sample(z)))[scorer.fid_layer],
                         f_train)
        print(f"  step {step:6d} ({time.perf_counter() - start:5.0f} s): near-copies "
              f"{m.copy_share():.1%}, median ratio {float(m.ratio.median()):.3f}", flush=True)

    print(f"DCGAN on {len(train)} digits, batch {min(64, len(train))}")
    train_gan(gan, train.x, steps=args.steps, batch_size=min(64, len(train)), seed=0,
              eval_every=args.every, evaluate=evaluate)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["batch", "copies", "gan"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inception", action="store_true")
    parser.add_argument("--inception-samples", type=int, default=300)
    parser.add_argument("--train-images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--cache-dir", default=None,
                        help="keep the trained extractor here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for line in machine_lines():
        print(line)
    with tempfile.TemporaryDirectory(prefix="bench-fid-cal-") as tmp:
        cache = Path(args.cache_dir or tmp).resolve()
        {"batch": run_batch, "copies": run_copies, "gan": run_gan}[args.what](args, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
