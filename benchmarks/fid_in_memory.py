"""FID from an in-memory sampler (bench.api.fid) against the same samples written to disk as
PNGs and read back through torch-fidelity's own folder input.

    python benchmarks/fid_in_memory.py [--rounds 5] [--threads 1] [--setups digits,rgb32]
    python benchmarks/fid_in_memory.py --metrics fid     # FID alone (KID's 100 subsets dominate
                                                         # both paths at the default metrics)
    python benchmarks/fid_in_memory.py --sampler stored  # samples drawn beforehand: the
                                                         # generator's cost left out of both
    python benchmarks/fid_in_memory.py --setups inception --samples 256   # slow on a CPU

Contenders, alternating in one process (round r starts with the r-th), each from the sampler
to the metrics, with the reference side already cached (as it is after a first evaluation):

  in-memory          bench.api.fid(sampler, reference, ...) with its defaults (FID, KID, IS,
                     precision/recall, and the FID checks: one more extraction of the first
                     1,000 samples at another batch size, the memorisation search, the floor)
  in-memory-nochecks the same with checks=False: the pipeline alone
  disk               the simplest hand-written contender: the same sampler's batches quantised
                     as bench does (x·255 rounded), one PNG per image (PIL), then
                     torch_fidelity.calculate_metrics(input1=<folder>, input2=<reference,
                     cached by name>, same extractor, metrics, batch size, seed), then the
                     folder removed

The metric values must be identical: the disk path reads back exactly the uint8 images the
in-memory path scores, in the same order and batches (gray PNGs come back as three equal
planes, which bench's domain extractor takes back to one).

Setups (generated images: an untrained DCGAN's samples, drawn batch by batch, or with
--sampler stored drawn beforehand and handed out batch by batch; the timing does not depend
on how good they are. On a CPU the 32×32 DCGAN's sampling costs more than everything else
together, and both paths pay it):
  digits     8×8 gray digits, bench's domain extractor (the extractor cell's recipe, trained
             once into the cache folder), reference "digits" (1,347 train images), the API's
             default 2,000 samples
  rgb32      3×32×32 (the digits upsampled, CIFAR's shape), a domain extractor trained one
             epoch, 10,000 real images as the reference tensor, 2,000 samples
  inception  3×32×32 under torch-fidelity's Inception-v3 (random weights in a local file: no
             download is possible here; the cost does not depend on the weights), resized
             to 299×299 inside it as torch-fidelity does; --samples images (CPU: slow)
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks._common import (  # noqa: E402
    describe_times,
    fmt_load,
    machine_lines,
    ratio_summary,
    upsampled_digits,
)

METRICS = ["fid", "kid", "isc", "prc"]  # bench.api.fid's default; --metrics changes it


class DcganSampler:
    """sampler(n): the next n samples of an untrained DCGAN, fixed noise stream."""

    def __init__(self, channels: int, size: int, seed: int = 1):
        from bench.gans import GANS

        self.gan = GANS.get("dcgan")(channels, (size, size), z_dim=64, init_seed=0)
        self.seed = seed
        self.reset()

    def reset(self):
        self.gen = torch.Generator().manual_seed(self.seed)

    def __call__(self, n: int) -> torch.Tensor:
        return self.gan.sample(torch.randn(n, 64, generator=self.gen))


class StoredSampler:
    """sampler(n): the next n of a DCGAN's samples drawn beforehand, so that the generator's
    cost (common to both paths; on a CPU it can dominate) is out of the timing."""

    def __init__(self, source: DcganSampler, n: int):
        self.images = torch.cat([source(min(256, n - i)) for i in range(0, n, 256)])
        self.reset()

    def reset(self):
        self.at = 0

    def __call__(self, n: int) -> torch.Tensor:
        self.at += n
        return self.images[self.at - n:self.at]


def inception_weights(folder: Path) -> str:
    """torch-fidelity's Inception-v3 with random weights, saved as a local weights file."""
    import torch_fidelity.feature_extractor_inceptionv3 as inc

    real_url, real_load = inc.load_state_dict_from_url, inc.FeatureExtractorInceptionV3.load_state_dict
    inc.load_state_dict_from_url = lambda *a, **k: None
    inc.FeatureExtractorInceptionV3.load_state_dict = lambda self, sd: None
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = inc.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        inc.load_state_dict_from_url = real_url
        inc.FeatureExtractorInceptionV3.load_state_dict = real_load
    path = folder / "inception-random.pth"
    torch.save(module.state_dict(), path)
    return str(path)


def make_setup(name: str, folder: Path, samples: int) -> dict:
    """{sampler, reference (as fid() takes it), extractor, num_samples}."""
    import bench
    from bench.metrics import feature_extractor as fe
    from bench.metrics.fidelity import domain_extractor, inception_extractor

    if name == "digits":
        ext = bench.domain_extractor("digits", device="cpu", cache_dir=folder / "cache")
        return dict(sampler=DcganSampler(1, 8), reference="digits", extractor=ext,
                    num_samples=samples or 2000)
    x, y = upsampled_digits(10_000, size=32, split="train", seed=3)
    x = x.repeat(1, 3, 1, 1)
    if name == "rgb32":
        net = fe.train_extractor(x, y, 10, epochs=1, lr=1e-3, batch_size=64, seed=0)
        payload = fe.weights_payload(net, 3, 10, fe.accuracy(net, x, y))
        path = folder / "rgb32.pt"
        torch.save(payload, path)
        ext = domain_extractor(fe.extractor_name(payload["hash"]), payload["hash"], str(path))
        return dict(sampler=DcganSampler(3, 32), reference=x, extractor=ext,
                    num_samples=samples or 2000)
    ext = inception_extractor(inception_weights(folder))
    n = samples or 256
    return dict(sampler=DcganSampler(3, 32), reference=x[:n], extractor=ext, num_samples=n)


def in_memory(setup: dict, cache: Path, checks: bool) -> dict:
    import bench

    setup["sampler"].reset()
    return bench.fid(setup["sampler"], setup["reference"], num_samples=setup["num_samples"],
                     extractor=setup["extractor"], metrics=METRICS, checks=checks,
                     device="cpu", cache_dir=cache)


def disk(setup: dict, cache: Path, folder: Path, reference) -> dict:
    """Write the samples as PNGs, score the folder with torch-fidelity, remove the folder."""
    import torch_fidelity
    from PIL import Image

    from bench import defaults
    from bench.metrics import fidelity

    setup["sampler"].reset()
    out = Path(tempfile.mkdtemp(prefix="samples-", dir=folder))
    n, bs, ext = setup["num_samples"], defaults.FID_BATCH_SIZE, setup["extractor"]
    for start in range(0, n, bs):
        batch = fidelity.images_to_uint8(setup["sampler"](min(bs, n - start)))
        for i, img in enumerate(batch.permute(0, 2, 3, 1).numpy()):
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(
                out / f"{start + i:06d}.png")
    kwargs = fidelity.fidelity_kwargs(ext, METRICS, "cpu", cache, 0)
    kwargs |= {"kid_subset_size": max(2, min(fidelity.KID_SUBSET_SIZE, n // 2,
                                             reference.images.shape[0] // 2)),
               "isc_splits": min(fidelity.ISC_SPLITS, n)}
    raw = torch_fidelity.calculate_metrics(
        **kwargs, input1=str(out), input2=fidelity.UInt8Images(reference.images),
        input2_cache_name=reference.cache_name)
    shutil.rmtree(out)
    return fidelity.metrics_to_columns(raw)


def reference_of(setup: dict):
    """The reference fid() builds (same images, same cache name), for the disk contender."""
    from bench.api_fid import real_input
    from bench.metrics import fidelity

    real = real_input(setup["reference"])
    n = setup["num_samples"]
    return fidelity.real_reference(real.train, real.dataset, "train", n, setup["extractor"])


def run_setup(name: str, rounds: int, folder: Path, samples: int, stored: bool) -> None:
    setup = make_setup(name, folder, samples)
    if stored:
        setup["sampler"] = StoredSampler(setup["sampler"], setup["num_samples"])
    cache = folder / "cache"
    reference = reference_of(setup)
    contenders = {"in-memory": lambda: in_memory(setup, cache, True),
                  "in-memory-nochecks": lambda: in_memory(setup, cache, False),
                  "disk": lambda: disk(setup, cache, folder, reference)}
    values = {k: f() for k, f in contenders.items()}  # warm-up: fills the reference cache
    times = {k: [] for k in contenders}
    print(f"\n{name}: {setup['num_samples']} samples of "
          f"{tuple(setup['sampler'](1).shape[1:])}, reference {reference.images.shape[0]} "
          f"images, extractor {setup['extractor'].name}; {rounds} rounds, load {fmt_load()}")
    names = list(contenders)
    for r in range(rounds):
        for k in names[r % 3:] + names[:r % 3]:
            t0 = time.perf_counter()
            got = contenders[k]()
            times[k].append(time.perf_counter() - t0)
            assert _same(got, values[k]), (k, got, values[k])
        print(f"  round {r + 1}: " + ", ".join(f"{k} {times[k][-1]:.3f}s" for k in names),
              flush=True)
    for k in names:
        print(describe_times(f"  {k}", times[k]))
    for k in ("in-memory", "in-memory-nochecks"):
        s = ratio_summary(times[k], times["disk"])
        print(f"  {k} / disk: median of per-round ratios {s['median_ratio']:.3f} "
              f"[IQR {s['ratio_q1']:.3f}, {s['ratio_q3']:.3f}], ratio of medians "
              f"{s['ratio_of_medians']:.3f}  (goal <= 0.7)")
    cols = [c for c in values["disk"]]
    same = all(_same({c: values["in-memory"][c]}, {c: values["disk"][c]}) for c in cols)
    print(f"  metrics in-memory vs disk: {'IDENTICAL' if same else 'DIFFER'}: "
          + ", ".join(f"{c} {values['in-memory'][c]:.6g}/{values['disk'][c]:.6g}" for c in cols))
    failed = [r["check"] for r in values["in-memory"]["checks"] if not r["passed"]]
    print(f"  checks that failed (in-memory defaults): {failed or 'none'}")


def _same(a: dict, b: dict) -> bool:
    keys = [k for k in b if isinstance(b[k], float)]
    return all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in keys)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--setups", default="digits,rgb32")
    parser.add_argument("--samples", type=int, default=0, help="0: each setup's default")
    parser.add_argument("--metrics", default=",".join(METRICS))
    parser.add_argument("--sampler", choices=["dcgan", "stored"], default="dcgan",
                        help="stored: samples drawn beforehand (the generator's cost left out)")
    args = parser.parse_args(argv)
    METRICS[:] = args.metrics.split(",")
    torch.set_num_threads(args.threads)
    np.seterr(all="ignore")
    print("FID in memory (bench.api.fid) vs PNGs on disk read back by torch-fidelity; "
          f"metrics {METRICS}; sampler {args.sampler}")
    for line in machine_lines():
        print(line)
    with tempfile.TemporaryDirectory(prefix="bench-fid-mem-") as tmp:
        for name in args.setups.split(","):
            run_setup(name, args.rounds, Path(tmp), args.samples, args.sampler == "stored")
    print(f"\nload average at the end {fmt_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
