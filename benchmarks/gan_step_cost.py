"""What a generator step of each reference GAN costs, as suites/gan-digits.toml trains them,
against a DCGAN step: the basis of that suite's step budget (about equal CPU time per cell).

    python benchmarks/gan_step_cost.py [--rounds 15] [--steps 20] [--threads 1]

Contenders, each `--steps` generator steps per round on the 8×8 digits, batch 64, z_dim 32,
timed side by side in one process, alternating, on wall time and on this process's CPU time:

  dcgan            the suite's DCGAN (BatchNorm D, BCE, one D update, EMA)      -- the baseline
  sngan            the suite's SNGAN (spectral norm, hinge, one D update, EMA)
  wgan-gp          the suite's WGAN-GP (gradient penalty's double backward, one critic update)
  wgan-gp-paper    WGAN-GP with the paper's five critic updates per generator step
  dcgan-no-ema     DCGAN without the generator EMA: what the average costs
  dcgan-2x-width   DCGAN with twice the channels (G 128 -> 64, D 64 -> 128)
  dcgan-batch-128  DCGAN at batch 128

Ratios are per round (contender / dcgan), median with IQR.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks._common import (  # noqa: E402
    alternate_clocks,
    describe_times,
    machine_lines,
    ratio_summary,
)

SUITE = Path(__file__).resolve().parents[1] / "suites" / "gan-digits.toml"


def suite_recipes() -> dict[str, dict]:
    """{gan: constructor keywords} from the shipped suite, as its cells build them."""
    from bench.suite.load import load_suite

    loaded = load_suite(SUITE)
    return {name: {"arch": g.arch, "z_dim": g.z_dim, "lr": g.lr, "lr_d": g.lr_d,
                   "betas": tuple(g.betas) if g.betas else None, "n_critic": g.n_critic,
                   "ema": g.ema, "batch_size": g.batch_size}
            for name, g in loaded.suite.gans.items()}


def contender(recipe: dict, steps: int, width: int | None = None, **over):
    """A closure running `steps` generator steps of a GAN built from `recipe` (+ `over`)."""
    import bench.gans.layers as layers
    from bench.data import load_dataset
    from bench.gans import GANS
    from bench.suite.cell_configs import DatasetSpec

    r = recipe | over
    original = layers.base_width
    if width is not None:
        layers.base_width = lambda size: width
    try:
        gan = GANS.get(r["arch"])(1, (8, 8), z_dim=r["z_dim"], lr=r["lr"], init_seed=0,
                                  lr_d=r["lr_d"], betas=r["betas"], n_critic=r["n_critic"],
                                  ema=r["ema"])
    finally:
        layers.base_width = original
    x = load_dataset(DatasetSpec(name="digits", kind="digits"), "train").x * 2 - 1
    gen = torch.Generator().manual_seed(0)
    bs = r["batch_size"]

    def run():
        for _ in range(steps):
            for _ in range(gan.n_critic):
                gan.d_step(x[torch.randint(len(x), (bs,), generator=gen)], gen)
            gan.g_step(bs, gen)
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipes = suite_recipes()
    dc = recipes["dcgan"]
    contenders = {
        "dcgan": contender(dc, args.steps),
        "sngan": contender(recipes["sngan"], args.steps),
        "wgan-gp": contender(recipes["wgan-gp"], args.steps),
        "wgan-gp-paper": contender(recipes["wgan-gp"], args.steps, n_critic=5),
        "dcgan-no-ema": contender(dc, args.steps, ema=0.0),
        "dcgan-2x-width": contender(dc, args.steps, width=64),
        "dcgan-batch-128": contender(dc, args.steps, batch_size=128),
    }
    print("\n".join(machine_lines()))
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    times = alternate_clocks(contenders, args.rounds, clocks=clocks, progress=False)
    for clock in clocks:
        print(f"\n{clock} time per generator step:")
        for name, t in times[clock].items():
            print(describe_times(name, [s / args.steps for s in t], 1e3, "ms"))
        print(f"{clock} ratio to dcgan (median of per-round ratios, IQR):")
        for name, t in times[clock].items():
            if name != "dcgan":
                r = ratio_summary(t, times[clock]["dcgan"])
                print(f"  {name:<18s} {r['median_ratio']:.2f}  [{r['ratio_q1']:.2f}, "
                      f"{r['ratio_q3']:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
