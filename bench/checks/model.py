"""The checks the robustness cell runs on its model: `checks` rows beside its results.

`model_check_rows` runs the checks that need the model but not one attack (determinism and
batch independence, per-example gradient saturation, unbounded ε) on the first
`defaults.CHECK_SAMPLE` examples of the evaluated data; the plan asks one cell per model,
seed, split, norm and batch size to run them (`model_checks`). `convergence_rows` runs PGD's
convergence check in a PGD cell whose suite section sets `convergence = true`, paired with
that cell's own results.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from bench import defaults
from bench.attacks import EpsilonResult
from bench.checks.convergence import convergence_outcome, convergence_subset, stronger_pgd
from bench.checks.determinism import determinism_check
from bench.checks.saturation import gradient_saturation_check
from bench.checks.unbounded import unbounded_accuracy, unbounded_outcome
from bench.checks.verdict import check_row
from bench.data import ImageData
from bench.suite.cell_configs import RobustnessCellConfig


def model_check_rows(model: nn.Module, data: ImageData, config: RobustnessCellConfig,
                     device: str, sample: int = defaults.CHECK_SAMPLE) -> list[dict]:
    """Determinism, gradient saturation and unbounded ε on the first `sample` examples."""
    x, y = data.x[:sample], data.y[:sample]
    norm, bs, seed = config.attack_params.norm, config.batch_size, config.seed
    where = {"model": config.model, "seed": seed, "dataset": config.dataset.name,
             "split": config.split}
    eps, acc = unbounded_accuracy(model, x, y, device, batch_size=bs, norm=norm, seed=seed)
    return [
        check_row(determinism_check(model, x, device, batch_size=bs, seed=seed), **where),
        check_row(gradient_saturation_check(model, x, y, device, batch_size=bs), **where),
        check_row(unbounded_outcome(acc, eps, len(y), norm=norm), **where, attack="pgd",
                  setting=f"steps={defaults.PGD_STEPS}, random_start=True", epsilon=eps),
    ]


def convergence_rows(model: nn.Module, data: ImageData, clean_correct: torch.Tensor,
                     results: Sequence[EpsilonResult], config: RobustnessCellConfig,
                     device: str, sample: int = defaults.CONVERGENCE_SAMPLE,
                     factor: int = defaults.CONVERGENCE_FACTOR) -> list[dict]:
    """PGD with `factor`× the steps and restarts on a seeded subset, paired per ε > 0 with
    the cell's PGD (`results`) on the same examples."""
    params = config.attack_params
    index = convergence_subset(len(data), sample, seed=config.seed)
    evaluated = [res for res in results if res.epsilon > 0]
    stronger = stronger_pgd(model, data.x[index], data.y[index],
                            [res.epsilon for res in evaluated], config.batch_size, device,
                            steps=params.steps, alpha=params.alpha, restarts=params.restarts,
                            loss=params.loss, norm=params.norm, seed=config.seed,
                            factor=factor)
    setting = (f"steps={params.steps}, restarts={params.restarts}; {factor}× both on "
               f"{len(index)} examples")
    return [check_row(convergence_outcome(clean_correct[index], res.adv_correct[index],
                                          strong.adv_correct, epsilon=res.epsilon,
                                          factor=factor),
                      model=config.model, seed=config.seed, dataset=config.dataset.name,
                      split=config.split, attack="pgd", setting=setting, epsilon=res.epsilon)
            for res, strong in zip(evaluated, stronger)]
