"""The loop that trains a GAN: `n_critic` discriminator updates per generator update, with an
evaluation call-back that is told the training time so far (evaluations are not counted)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from bench.errors import CellFailed
from bench.gans.base import GAN

# Under AMP a GradScaler skips an overflowing update and halves its scale. A few skips are
# normal (it probes larger scales now and then); this many in a row takes a 2^16 scale below
# 2^-14, so the gradients themselves are not finite: that is divergence.
MAX_OVERFLOW_STREAK = 30


@dataclass
class TrainClock:
    """Training seconds and discriminator images so far, and the rate since the last look."""

    seconds: float = 0.0
    images: int = 0
    _last: tuple[float, int] = (0.0, 0)

    def add(self, seconds: float, images: int) -> None:
        self.seconds += seconds
        self.images += images

    def rate_since_last(self) -> float:
        dt, di = self.seconds - self._last[0], self.images - self._last[1]
        self._last = (self.seconds, self.images)
        return di / dt if dt > 0 else math.nan


Evaluate = Callable[[int, float, float], None]  # (step, train seconds, images/s since last)


def train_gan(gan: GAN, real: torch.Tensor, *, steps: int, batch_size: int, seed: int,
              eval_every: int, evaluate: Evaluate, progress: bool = False) -> None:
    """Train `gan` on `real` (N×C×H×W in [0, 1]) for `steps` generator updates.

    `evaluate(step, seconds, images_per_s)` runs at step 0, every `eval_every` steps and after
    the last one; `seconds` is the training time so far and `images_per_s` counts the real
    images the discriminator consumed since the previous evaluation. Batches and noise come
    from a generator seeded with `seed`. Raises CellFailed on a non-finite loss (an update the
    AMP loss scaler skipped is not one, unless MAX_OVERFLOW_STREAK of them come in a row).
    """
    gen = torch.Generator().manual_seed(seed)
    data = real.to(gan.device)  # no copy on the CPU; batches are scaled as they are drawn
    clock = TrainClock()
    evaluate(0, 0.0, math.nan)
    bar = _progress(steps, gan.name, progress)
    try:
        for step in range(1, steps + 1):
            t0 = time.perf_counter()
            d_loss = critic_updates(gan, data, batch_size, gen, step)
            g_loss = gan.g_step(batch_size, gen)
            check_step(gan, "G", g_loss, step)
            if gan.device.type == "cuda":
                torch.cuda.synchronize(gan.device)  # honest timing; .item() mostly did it already
            clock.add(time.perf_counter() - t0, gan.n_critic * batch_size)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(d=f"{d_loss:.3g}", g=f"{g_loss:.3g}", refresh=False)
            if step % eval_every == 0 or step == steps:
                evaluate(step, clock.seconds, clock.rate_since_last())
    finally:
        if bar is not None:
            bar.close()


def critic_updates(gan: GAN, data: torch.Tensor, batch_size: int, gen: torch.Generator,
                   step: int) -> float:
    """`gan.n_critic` discriminator updates on fresh real batches; the last loss."""
    loss = math.nan
    for _ in range(gan.n_critic):
        idx = torch.randint(data.shape[0], (batch_size,), generator=gen).to(gan.device)
        loss = gan.d_step(data[idx] * 2 - 1, gen)  # the generator's tanh range
        check_step(gan, "D", loss, step)
    return loss


def check_step(gan: GAN, net: str, loss: float, step: int) -> None:
    """CellFailed for a non-finite loss, unless the loss scaler skipped that update."""
    if gan.overflow_streak[net] >= MAX_OVERFLOW_STREAK:
        raise CellFailed(f"diverged: {net} gradients overflowed in {gan.overflow_streak[net]} "
                         f"updates in a row at step {step}")
    if not math.isfinite(loss) and not gan.last_step_skipped(net):
        raise CellFailed(f"diverged: {net} loss is {loss} at step {step}")


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)
