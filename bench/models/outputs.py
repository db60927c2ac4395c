"""Checks on what a user's model returns, before it is attacked."""

from __future__ import annotations

import torch

PROBABILITY_ATOL = 1e-4  # float32 softmax rows sum to 1 within ~1e-6


def probability_output_warning(outputs: torch.Tensor, name: str = "the model",
                               atol: float = PROBABILITY_ATOL) -> str | None:
    """The warning text when every row of a batch of outputs is a probability vector
    (entries in [0, 1], summing to 1), else None.

    Attacks apply cross-entropy to the outputs as if they were logits. On probabilities,
    log-softmax of values in [0, 1] barely moves, so the loss and its gradient nearly vanish
    and every gradient attack looks weaker than it is. Log-probabilities (log_softmax, as the
    PyTorch MNIST and FGSM-tutorial nets return) are fine: cross-entropy on them equals
    cross-entropy on the logits.
    """
    out = outputs.detach().float()
    if out.dim() != 2 or out.shape[0] == 0 or out.shape[1] < 2:
        return None
    in_range = bool(((out >= -atol) & (out <= 1 + atol)).all())
    sums_to_one = bool(torch.allclose(out.sum(1), torch.ones_like(out[:, 0]), atol=atol))
    if not (in_range and sums_to_one):
        return None
    return (f"{name}: its outputs are probabilities (each row is in [0, 1] and sums to 1); "
            "attacks take them for logits, and cross-entropy on probabilities weakens every "
            "gradient attack, overstating robustness. Return logits (drop the final softmax) "
            "or log-probabilities")
