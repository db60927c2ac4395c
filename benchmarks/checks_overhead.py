"""What the sanity checks add to a robustness cell: the model-level checks against the FGSM
cell's own work, the PGD convergence check against the PGD-10 cell's, timed side by side in
one process, alternating.

    python benchmarks/checks_overhead.py [--rounds 7] [--epochs 3]

On the quickstart's set-up: small-cnn trained briefly on the 8×8 digits, the 450 test images,
batch 512, the quickstart's FGSM ε list and PGD-10 at ε = 0.1 and 0.2.

  fgsm cell     the clean pass and the 7-ε FGSM sweep
  model checks  bench.checks.model.model_check_rows: determinism (5 passes), per-example
                gradient saturation and PGD-10 at the unbounded ε, on 256 examples
  pgd cell      the clean pass and the PGD-10 sweep
  convergence   bench.checks.model.convergence_rows: PGD with 5× the steps and restarts on a
                seeded 256 of the examples
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks._common import alternate, fmt_load, machine_lines, ratio_summary  # noqa: E402

FGSM_EPSILONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
PGD_EPSILONS = [0.1, 0.2]


def configs():
    from bench.suite.cell_configs import (
        DatasetSpec,
        FgsmParams,
        PgdParams,
        RobustnessCellConfig,
        TrainedSource,
    )

    common = dict(model="cnn", source=TrainedSource.model_construct(), split="test",
                  dataset=DatasetSpec(name="digits", kind="digits"), batch_size=512,
                  limit=None, seed=0)
    fgsm = RobustnessCellConfig.model_construct(
        attack="fgsm", attack_params=FgsmParams(norm="linf"), epsilons=FGSM_EPSILONS,
        model_checks=True, **common)
    pgd = RobustnessCellConfig.model_construct(
        attack="pgd", attack_params=PgdParams(norm="linf", steps=10, alpha=None,
                                              random_start=True, restarts=1, loss="ce"),
        epsilons=PGD_EPSILONS, convergence=True, **common)
    return fgsm, pgd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from bench.attacks import ATTACKS, predict
    from bench.checks.model import convergence_rows, model_check_rows
    from bench.data import load_dataset
    from bench.models.build import build_classifier
    from bench.suite.schema import TrainConfig
    from bench.training.loop import train_classifier

    fgsm, pgd = configs()
    train, test = load_dataset(fgsm.dataset, "train"), load_dataset(fgsm.dataset, "test")
    torch.manual_seed(0)
    model = build_classifier("small-cnn", None, (1, 8, 8), 10)
    train_classifier(model, train, test, TrainConfig(recipe="standard", epochs=args.epochs,
                                                     lr=2e-3, batch_size=128),
                     seed=0, device="cpu")
    model.eval()

    def cell(config):
        predict(model, test.x, 512, "cpu")
        return ATTACKS.get(config.attack)(model, test.x, test.y, config.epsilons, 512, "cpu",
                                          seed=0, **config.attack_params.model_dump())

    pgd_results = cell(pgd)
    clean = predict(model, test.x, 512, "cpu") == test.y
    for line in machine_lines():
        print(line)
    times = alternate({
        "fgsm cell": lambda: cell(fgsm),
        "model checks": lambda: model_check_rows(model, test, fgsm, "cpu"),
        "pgd cell": lambda: cell(pgd),
        "convergence": lambda: convergence_rows(model, test, clean, pgd_results, pgd, "cpu"),
    }, args.rounds)
    for check, base in (("model checks", "fgsm cell"), ("convergence", "pgd cell")):
        r = ratio_summary(times[check], times[base])
        print(f"{check} / {base}: median of per-round ratios {r['median_ratio']:.2f} "
              f"IQR [{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}]; ratio of medians "
              f"{r['ratio_of_medians']:.2f}")
    print(f"load average after: {fmt_load()}")


if __name__ == "__main__":
    main()
