"""The GAN interface every registered architecture implements, and the loop that trains it.

A `GAN` owns a generator, a discriminator (critic) and their optimisers; a subclass only says
how to build the discriminator and what the two losses are. `train_gan` alternates updates,
discriminator first (`n_critic` of them per generator update), and calls back for evaluation.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, ClassVar, Iterator

import torch
from torch import nn

from bench.errors import CellFailed

DEFAULT_Z_DIM = 64


class GAN:
    """Generator + discriminator + optimisers. Subclasses set the class attributes and losses.

    `channels`/`image_size` come from the dataset; `z_dim` and `lr` default per architecture.
    Weight initialisation draws from `init_seed` without touching the global RNG.
    """

    name: ClassVar[str]
    lr: ClassVar[float]
    betas: ClassVar[tuple[float, float]]
    n_critic: ClassVar[int] = 1  # discriminator updates per generator update

    def __init__(self, channels: int, image_size: int | tuple[int, int], z_dim: int | None = None,
                 lr: float | None = None, init_seed: int = 0):
        self.channels = int(channels)
        self.image_size = _pair(image_size)
        self.z_dim = int(z_dim or DEFAULT_Z_DIM)
        self.lr_used = float(lr if lr is not None else self.lr)
        # fork_rng: default initialisers (and spectral norm's u vector) use the global RNG;
        # seeding a forked copy makes the weights reproducible and leaves callers' RNG alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.generator: nn.Module = self.build_generator()
            self.discriminator: nn.Module = self.build_discriminator()
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr_used, betas=self.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_used,
                                      betas=self.betas)
        self.device = torch.device("cpu")
        self.amp = False
        self.scaler_g: torch.amp.GradScaler | None = None
        self.scaler_d: torch.amp.GradScaler | None = None

    # -- what subclasses provide -------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        from bench.gans.dcgan import build_generator

        return build_generator(self.channels, self.image_size, self.z_dim)

    def build_discriminator(self) -> nn.Module:
        raise NotImplementedError

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Discriminator loss on a real batch and a (detached) fake batch, both in [-1, 1].

        `gen` is the training RNG, for losses that draw random numbers (WGAN-GP's mixing).
        """
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- the common machinery ----------------------------------------------------------------
    def to(self, device: str | torch.device, amp: bool = False) -> "GAN":
        """Move to `device`; `amp` enables autocast + GradScaler (honoured on CUDA only)."""
        self.device = torch.device(device)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        self.amp = bool(amp) and self.device.type == "cuda"
        if self.amp:
            self.scaler_g = torch.amp.GradScaler("cuda")
            self.scaler_d = torch.amp.GradScaler("cuda")
        return self

    def noise(self, n: int, gen: torch.Generator) -> torch.Tensor:
        # Drawn on the CPU generator so a seed gives the same noise on every device.
        return torch.randn(n, self.z_dim, generator=gen).to(self.device)

    def autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def d_step(self, real: torch.Tensor, gen: torch.Generator) -> float:
        """One discriminator update on `real` (in [-1, 1]) against fresh fakes; returns the loss."""
        with torch.no_grad(), self.autocast():
            fake = self.generator(self.noise(real.shape[0], gen))
        with self.autocast():
            loss = self.d_loss(real, fake.float(), gen)
        self._backward_step(loss, self.opt_d, self.scaler_d)
        return loss.item()

    def g_step(self, batch_size: int, gen: torch.Generator) -> float:
        """One generator update; the discriminator is frozen (no weight gradients) meanwhile."""
        with frozen(self.discriminator):
            with self.autocast():
                loss = self.g_loss(self.generator(self.noise(batch_size, gen)))
            self._backward_step(loss, self.opt_g, self.scaler_g)
        return loss.item()

    def _backward_step(self, loss, opt, scaler) -> None:
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        # Gradients are not needed between steps; dropping them keeps the other net's step clean.
        opt.zero_grad(set_to_none=True)

    def input_gradients(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """d(sum outputs)/d inputs with a graph for a penalty term, unscaled under AMP."""
        scale = self.scaler_d.get_scale() if self.scaler_d is not None else 1.0
        (grad,) = torch.autograd.grad(outputs.float().sum() * scale, inputs, create_graph=True)
        return grad / scale

    @torch.no_grad()
    def sample(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Images in [0, 1] (float32, on the CPU) for the noise `z`, generator in eval mode."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            out = [self.generator(chunk.to(self.device)).float().cpu() for chunk in z.split(batch_size)]
        finally:
            self.generator.train(was_training)
        return ((torch.cat(out) + 1) / 2).clamp(0, 1)

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "meta": {"arch": self.name, "channels": self.channels,
                     "image_size": list(self.image_size), "z_dim": self.z_dim, "lr": self.lr_used},
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """requires_grad=False on every parameter inside the block, restored afterwards."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def train_gan(
    gan: GAN,
    real: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    seed: int,
    eval_every: int,
    evaluate: Callable[[int], None],
    progress: bool = False,
) -> dict:
    """Train `gan` on `real` (N×C×H×W in [0, 1]) for `steps` generator updates.

    `evaluate(step)` runs at step 0, every `eval_every` steps and after the last one; the time
    it takes is not counted as training time. Batches and noise come from a generator seeded
    with `seed`. Raises CellFailed on a non-finite loss. Returns timing per evaluated step:
    {step: (train_seconds_so_far, images_per_s_since_previous_eval)}.
    """
    gen = torch.Generator().manual_seed(seed)
    data = real.to(gan.device)  # no copy on the CPU; batches are scaled as they are drawn
    n = data.shape[0]
    timing = {0: (0.0, math.nan)}
    evaluate(0)
    train_seconds, images, last_eval = 0.0, 0, (0.0, 0)
    bar = _progress(steps, gan.name, progress)
    try:
        for step in range(1, steps + 1):
            t0 = time.perf_counter()
            for _ in range(gan.n_critic):
                idx = torch.randint(n, (batch_size,), generator=gen).to(gan.device)
                d_loss = gan.d_step(data[idx] * 2 - 1, gen)  # the generator's tanh range
                _check_finite("D", d_loss, step)
            g_loss = gan.g_step(batch_size, gen)
            _check_finite("G", g_loss, step)
            if gan.device.type == "cuda":
                torch.cuda.synchronize(gan.device)  # honest timing; .item() mostly did it already
            train_seconds += time.perf_counter() - t0
            images += gan.n_critic * batch_size
            if bar is not None:
                bar.update(1)
                bar.set_postfix(d=f"{d_loss:.3g}", g=f"{g_loss:.3g}", refresh=False)
            if step % eval_every == 0 or step == steps:
                dt, di = train_seconds - last_eval[0], images - last_eval[1]
                timing[step] = (train_seconds, di / dt if dt > 0 else math.nan)
                last_eval = (train_seconds, images)
                evaluate(step)
    finally:
        if bar is not None:
            bar.close()
    return timing


def _check_finite(net: str, loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise CellFailed(f"diverged: {net} loss is {loss} at step {step}")


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)


def _pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))
