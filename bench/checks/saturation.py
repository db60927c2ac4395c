"""Per-sample gradient saturation: the share of examples whose input gradient is exactly 0.

FGSM, PGD and APGD step along the gradient's sign; where it is zero everywhere, they do not
move the example at all, and it counts as robust without having been attacked. A model whose
logit margins exceed float32's range of exp (about 104) has a softmax of exactly one-hot and
a cross-entropy gradient of exactly zero on those examples: logit scaling, a known source of
gradient masking. The old `zero_gradients` flag counted zero entries over the whole gradient
tensor against 0.5, so a model masking 30% of its examples (and so 30% of its entries)
passed; here the unit is the example. A gradient-free attack (Square, or AutoAttack with its
Square stage) tests the examples gradients cannot.
"""

from __future__ import annotations

import torch
from torch import nn

from bench import defaults
from bench.attacks import attack_mode, input_gradient, iter_batches
from bench.checks.verdict import Outcome

CHECK = "gradient_saturation"


def zero_gradient_mask(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       device: str | torch.device, *, batch_size: int) -> torch.Tensor:
    """bool (N,) on the CPU: the cross-entropy input gradient of example i is all zeros.
    The gradient is the one FGSM and PGD use (bench.attacks.input_gradient); in eval mode the
    examples of a batch do not interact, so its rows are the examples' own gradients."""
    masks = []
    with attack_mode(model, device):
        for xb, yb in iter_batches(x, y, max(1, batch_size), device):
            grad = input_gradient(model, xb, yb)
            masks.append((grad.flatten(1) == 0).all(1).cpu())
    return torch.cat(masks) if masks else torch.zeros(0, dtype=torch.bool)


def saturation_outcome(zero_mask: torch.Tensor,
                       max_share: float = defaults.SATURATION_MAX_SHARE) -> Outcome:
    zero_mask = torch.as_tensor(zero_mask).bool().reshape(-1)
    n, zeros = len(zero_mask), int(zero_mask.sum())
    share = zeros / n if n else 0.0
    seen = (f"{zeros} of {n} examples ({share:.1%}) have an input gradient that is exactly "
            "zero")
    if share <= max_share:
        return Outcome(CHECK, True, share, f"{seen} (at most {max_share:.0%} allowed)")
    return Outcome(CHECK, False, share, (
        f"{seen}: FGSM, PGD and APGD cannot move them, so they count as robust untested "
        "(gradient masking, e.g. saturated logits). Evaluate with a gradient-free attack: "
        "attack = \"square\" or \"autoattack\""))


def gradient_saturation_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                              device: str | torch.device, *, batch_size: int) -> Outcome:
    return saturation_outcome(zero_gradient_mask(model, x, y, device, batch_size=batch_size))
