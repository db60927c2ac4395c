"""Determinism and batch independence: the same inputs give the same predictions twice in a
row, in a differently composed batch, alone, and stacked with other inputs in one forward
pass (as the FGSM sweep stacks every ε of a batch).

This replaces reading back `eval()` flags, which `attack_mode` has just set and which
therefore cannot fail. It catches what those flags miss: dropout called as
`F.dropout(training=True)` (changes on a repeat), BatchNorm with `track_running_stats=False`
(normalises with the statistics of whatever batch it is in), and randomized defenses (input
noise, random resizing: changes on a repeat). A few flips are excused as kernel rounding
(`allowed_flips`): cuDNN and oneDNN pick kernels by batch shape, and an example at a near-tie
of two logits can then change its argmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bench.attacks import attack_mode
from bench.checks.verdict import Outcome, allowed_flips
from bench.seeding import seeded

CHECK = "deterministic_predictions"


@dataclass(frozen=True)
class Change:
    """How one re-arrangement of the batches changed the predictions."""

    arrangement: str  # "repeated", "alone", "shuffled (batch 43)", "stacked with 128 noise"
    changed: int  # predictions that differ from the reference pass
    max_logit_change: float  # largest |Δ logit| (nan when the pass failed)
    error: str = ""  # why the model could not run this way (e.g. BatchNorm1d on one input)


def prediction_changes(model: nn.Module, x: torch.Tensor, device: str | torch.device, *,
                       batch_size: int, seed: int = 0) -> list[Change]:
    """Predict `x` in batches of `batch_size` (the reference), then again four ways; one
    `Change` per way. Runs in eval mode under a seeded RNG (a randomized model's draws are
    reproducible and the caller's RNG is untouched)."""
    n = len(x)
    if n == 0:
        raise ValueError("the determinism check needs at least one input")
    batch_size = max(1, min(batch_size, n))
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    noise = torch.rand(x.shape, generator=gen, dtype=x.dtype)
    other = max(1, math.ceil(batch_size / 3))  # a batch size the reference did not use
    with attack_mode(model, device), seeded(seed, device), torch.inference_mode():
        ref = _logits(model, x, batch_size, device)
        ways = {
            "repeated": lambda: _logits(model, x, batch_size, device),
            "alone": lambda: _logits(model, x, 1, device),
            f"shuffled (batch {other})":
                lambda: _logits(model, x[perm], other, device)[torch.argsort(perm)],
            f"stacked with {n} noise images":
                lambda: _stacked_logits(model, x, noise, batch_size, device),
        }
        return [_compare(name, ref, run) for name, run in ways.items()]


def determinism_check(model: nn.Module, x: torch.Tensor, device: str | torch.device, *,
                      batch_size: int, seed: int = 0) -> Outcome:
    """Fails when any arrangement changes more predictions than kernel rounding explains."""
    changes = prediction_changes(model, x, device, batch_size=batch_size, seed=seed)
    return determinism_outcome(changes, len(x))


def determinism_outcome(changes: list[Change], n: int) -> Outcome:
    allowed = allowed_flips(n)
    bad = [c for c in changes if c.error or c.changed > allowed]
    worst = max((c.changed for c in changes), default=0)
    seen = "; ".join(_describe(c, n) for c in changes)
    if not bad:
        detail = (f"predictions of {n} inputs: {seen} (up to {allowed} flips excused as "
                  "kernel rounding)")
    else:
        detail = (f"predictions of {n} inputs change: {seen}. The model is not a fixed "
                  "function of its input (dropout on, BatchNorm without running statistics, "
                  "or randomness), so attacks and accuracies on it mean little")
    return Outcome(CHECK, not bad, worst, detail)


def _describe(c: Change, n: int) -> str:
    if c.error:
        return f"{c.arrangement}: fails ({c.error})"
    return f"{c.arrangement} {c.changed} of {n} changed (max |Δ logit| {c.max_logit_change:.2g})"


def _compare(name: str, ref: torch.Tensor, run) -> Change:
    try:
        out = run()
    except ValueError as err:  # BatchNorm without running stats refuses a lone input
        return Change(name, len(ref), math.nan, str(err).splitlines()[0])
    changed = int((out.argmax(1) != ref.argmax(1)).sum())
    return Change(name, changed, float((out - ref).abs().max()) if len(ref) else 0.0)


def _logits(model: nn.Module, x: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    return torch.cat([model(xb.to(device)).float().cpu() for xb in x.split(batch_size)])


def _stacked_logits(model: nn.Module, x: torch.Tensor, noise: torch.Tensor, batch_size: int,
                    device) -> torch.Tensor:
    """Each batch in one forward pass with as many noise images after it."""
    out = []
    for xb, nb in zip(x.split(batch_size), noise.split(batch_size)):
        out.append(model(torch.cat([xb, nb]).to(device))[:len(xb)].float().cpu())
    return torch.cat(out)


