"""`fid_batch_size_invariance`: the FID of the same samples, extracted at two batch sizes.

An image's features should not depend on the batch around it, but they do: kernels pick other
algorithms and reduction orders for other batch shapes (cuDNN and oneDNN; TF32 convolutions
on recent GPUs round at 10 mantissa bits), and an extractor that normalises with batch
statistics (BatchNorm left in training mode) depends on its batch outright. torch-fidelity
#43 reports an Inception FID of 1.9 at batch 1000 and 10 at batch 2 on a GPU, float64 fixing
it. The check extracts the first samples a second time at a much smaller batch size and
compares the FIDs of those very samples; `fid(..., float64=True)` (bench.metrics.fidelity.
Scorer) is the remedy when it fires.
"""

from __future__ import annotations

from bench import defaults
from bench.checks.verdict import Outcome

CHECK = "fid_batch_size_invariance"


def other_batch_size(batch_size: int, n: int) -> int:
    """The second batch size: an eighth of the batches the samples really went through, less
    one, so that it is odd (kernels are tuned for powers of two; an odd batch shape takes
    other code paths), and at least 1; 2 when the samples went through one at a time."""
    main = min(batch_size, n)
    return 2 if main == 1 else max(1, main // 8 - 1)


def tolerance(fid: float, rtol: float = defaults.FID_BATCH_RTOL,
              atol: float = defaults.FID_BATCH_ATOL) -> float:
    return max(rtol * abs(fid), atol)


def batch_size_outcome(fid_main: float, fid_other: float, batch_main: int, batch_other: int,
                       n: int, float64: bool) -> Outcome:
    """`fid_main`: the FID of the first `n` samples as extracted for the result (batches of
    `batch_main`); `fid_other`: the same samples at `batch_other`."""
    diff = abs(fid_main - fid_other)
    tol = tolerance(fid_main)
    dtype = "float64" if float64 else "float32"
    seen = (f"FID of the first {n} samples: {fid_main:.6g} at batch size {batch_main}, "
            f"{fid_other:.6g} at {batch_other} ({dtype} features); difference {diff:.3g}, "
            f"tolerance {tol:.3g}")
    if diff <= tol:
        return Outcome(CHECK, True, diff, seen)
    return Outcome(CHECK, False, diff, (
        f"{seen}: the features depend on the batch around each image (kernel choice, TF32, or "
        "batch statistics in the extractor), so the FID depends on the batch size; compute it "
        "with float64=True, or fix the extractor"))
