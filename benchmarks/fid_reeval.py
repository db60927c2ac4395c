"""FID re-evaluation with cached reference statistics: the first evaluation against a real
reference computes both sides, every later one only the generated side.

    python benchmarks/fid_reeval.py [--rounds 5] [--threads 1]

Each round starts from an empty cache folder and calls bench.metrics.fidelity.compute_metrics
twice with the same generated images: "first" (cold: torch-fidelity extracts the real
reference's features, computes its statistics and caches them under the reference's name) and
"second" (warm: only the generated side is extracted). Rounds alternate the two setups below,
so the machine's load hits both alike. The FID values must be identical.

  digits-8x8   the GAN suites' setting: 1,000 real 8×8 digits (train split) vs 1,000 generated
  mnist-size   10,000 real 28×28 images (upsampled digits, MNIST's test-set size; no download
               is possible here) vs 2,000 generated

Feature extractor: bench's domain extractor (DomainNet, trained one epoch here; the timing does
not depend on how well it is trained). Inception is not used: its weights need a download.
Generated images: samples of an untrained DCGAN (bench.gans), so the FID values are large;
the point is the cost of re-evaluation, not the score.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench.suite.cell_configs import DatasetSpec  # noqa: E402
from benchmarks._common import describe_times, fmt_load, machine_lines, quartiles, upsampled_digits  # noqa: E402

DIGITS = DatasetSpec(name="digits", kind="digits")
# 10,000 digits upsampled to 28×28 and shifted (_common.upsampled_digits): a label for the cache.
UPSAMPLED = DatasetSpec(name="upsampled-digits", kind="digits", image_size=[28, 28])


def make_extractor(x: torch.Tensor, y: torch.Tensor, tag: str, folder: Path):
    from bench.metrics import feature_extractor as fe
    from bench.metrics.fidelity import domain_extractor

    net = fe.train_extractor(x, y, 10, epochs=1, lr=1e-3, batch_size=64, seed=0)
    payload = fe.weights_payload(net, x.shape[1], 10, fe.accuracy(net, x, y))
    path = folder / f"{tag}-{payload['hash']}.pt"
    torch.save(payload, path)
    return domain_extractor(fe.extractor_name(payload["hash"]), payload["hash"], str(path))


def generated_images(n: int, size: tuple[int, int]) -> torch.Tensor:
    from bench.gans import GANS

    gan = GANS.get("dcgan")(1, size, z_dim=64, init_seed=0)
    return gan.sample(torch.randn(n, 64, generator=torch.Generator().manual_seed(1)))


def setups(folder: Path) -> dict:
    from bench.data import load_dataset
    from bench.metrics.fidelity import real_reference

    train = load_dataset(DIGITS, "train")
    small_ext = make_extractor(train.x, train.y, "d8", folder)
    x28, y28 = upsampled_digits(10_000, split="train", seed=3)
    big_ext = make_extractor(x28, y28, "m28", folder)
    return {
        "digits-8x8": (generated_images(1000, (8, 8)),
                       real_reference(train.x, DIGITS, "train", 1000, small_ext), small_ext),
        "mnist-size": (generated_images(2000, (28, 28)),
                       real_reference(x28, UPSAMPLED, "train", 10_000, big_ext), big_ext),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as bench runs CPU cells by default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from bench.metrics.fidelity import compute_metrics

    print("FID re-evaluation with cached reference statistics (first / second evaluation)")
    for line in machine_lines():
        print(line)
    with tempfile.TemporaryDirectory(prefix="bench-fid-") as tmp:
        tmp = Path(tmp)
        cases = setups(tmp)
        for name, (fake, ref, _) in cases.items():
            print(f"{name}: {ref.images.shape[0]} real vs {fake.shape[0]} generated images of "
                  f"{tuple(fake.shape[1:])}")
        times = {name: {"first": [], "second": []} for name in cases}
        fids = {name: set() for name in cases}
        print(f"\n{args.rounds} rounds (plus one warm-up round), alternating; load {fmt_load()}")
        for r in range(-1, args.rounds):
            order = list(cases) if r % 2 == 0 else list(reversed(cases))
            for name in order:
                fake, ref, ext = cases[name]
                cache = tmp / f"cache-{name}-{r + 1}"  # empty: the first evaluation is cold
                for which in ("first", "second"):
                    t0 = time.perf_counter()
                    fid = compute_metrics(fake, ref, ext, ["fid"], "cpu", cache)["fid"]
                    if r >= 0:
                        times[name][which].append(time.perf_counter() - t0)
                    fids[name].add(fid)

    print()
    for name in cases:
        first, second = times[name]["first"], times[name]["second"]
        print(describe_times(f"{name} first (cold cache)", first))
        print(describe_times(f"{name} second (cached real statistics)", second))
        per_round = [a / b for a, b in zip(first, second)]
        q1, med, q3 = quartiles(per_round)
        real_n, fake_n = cases[name][1].images.shape[0], cases[name][0].shape[0]
        print(f"  first / second: {med:.2f}× [{q1:.2f}, {q3:.2f}] (median of per-round ratios [IQR]); "
              f"if cost were proportional to images: {(real_n + fake_n) / fake_n:.2f}×")
        print(f"  FID values seen: {sorted(fids[name])} ({'identical' if len(fids[name]) == 1 else 'DIFFER'})")
    print(f"\nload average after: {fmt_load()}")
    return 0 if all(len(v) == 1 for v in fids.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
