"""The GAN interface every registered architecture implements.

A `GAN` owns a generator, a discriminator (critic), their optimisers and, when its recipe asks
for one, an exponential moving average of the generator weights, which is what `sample` draws
from. A subclass says how to build the discriminator and what the two losses are, and gives its
paper's optimiser settings as `paper`; a suite may override each of them (`Recipe`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Iterator

import torch
from torch import nn

from bench import defaults
from bench.gans.ema import GeneratorEMA
from bench.gans.layers import build_generator
from bench.seeding import seeded
from bench.transfer import to_device


@dataclass(frozen=True)
class Recipe:
    """How a GAN is optimised: Adam for each net, critic updates per generator update, EMA."""

    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    n_critic: int = 1  # discriminator updates per generator update
    ema: float = 0.0  # decay of the generator-weight EMA that `sample` uses; 0: no EMA

    def overridden(self, lr: float | None = None, lr_d: float | None = None,
                   betas: tuple[float, float] | None = None, n_critic: int | None = None,
                   ema: float | None = None) -> "Recipe":
        """This recipe with the given values; `lr` sets both nets' rates unless `lr_d` is given."""
        changes: dict = {"n_critic": n_critic, "ema": ema,
                         "betas": tuple(float(b) for b in betas) if betas is not None else None}
        if lr is not None:
            changes |= {"lr_g": float(lr), "lr_d": float(lr)}
        if lr_d is not None:
            changes["lr_d"] = float(lr_d)
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


class GAN:
    """Generator + discriminator + optimisers. Subclasses set `name`, `paper` and the losses.

    `channels`/`image_size` come from the dataset; `z_dim` defaults to defaults.GAN_Z_DIM and
    every other setting to the architecture's `paper` recipe. Weight initialisation draws from
    `init_seed` without touching the global RNG.
    """

    name: ClassVar[str]
    paper: ClassVar[Recipe]  # the paper's settings
    # CPU cost of a generator step with one critic update, relative to DCGAN's (measured with
    # benchmarks/gan_step_cost.py); only the parallel executor's ordering of cells reads it.
    step_cost: ClassVar[float] = 1.0

    def __init__(self, channels: int, image_size: int | tuple[int, int], z_dim: int | None = None,
                 lr: float | None = None, init_seed: int = 0, *, lr_d: float | None = None,
                 betas: tuple[float, float] | None = None, n_critic: int | None = None,
                 ema: float | None = None):
        self.channels = int(channels)
        self.image_size = _pair(image_size)
        self.z_dim = int(z_dim or defaults.GAN_Z_DIM)
        self.recipe = self.paper.overridden(lr, lr_d, betas, n_critic, ema)
        # Default initialisers (and spectral norm's u vector) draw from the global RNG.
        with seeded(init_seed):
            self.generator: nn.Module = self.build_generator()
            self.discriminator: nn.Module = self.build_discriminator()
        r = self.recipe
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=r.lr_g, betas=r.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=r.lr_d, betas=r.betas)
        self.ema = GeneratorEMA(self.generator, r.ema) if r.ema > 0 else None
        self.device = torch.device("cpu")
        self.amp = False
        self.scaler_g: torch.amp.GradScaler | None = None
        self.scaler_d: torch.amp.GradScaler | None = None
        self.skipped_steps = 0  # updates the loss scalers skipped (overflowing gradients)
        self.overflow_streak = {"D": 0, "G": 0}  # skipped updates in a row, per net, up to now

    # -- what subclasses provide -------------------------------------------------------------
    def build_generator(self) -> nn.Module:
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
    @property
    def n_critic(self) -> int:
        return self.recipe.n_critic

    def to(self, device: str | torch.device, amp: bool = False) -> "GAN":
        """Move to `device`; `amp` enables autocast + GradScaler (honoured on CUDA only)."""
        self.device = torch.device(device)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        if self.ema is not None:
            self.ema.model.to(self.device)
        if amp and self.device.type == "cuda":
            self.use_amp(torch.amp.GradScaler("cuda"), torch.amp.GradScaler("cuda"))
        return self

    def use_amp(self, scaler_g, scaler_d) -> None:
        """Mixed precision with these loss scalers (GradScaler-like). `to(amp=True)` calls it on
        CUDA; on the CPU (bfloat16 autocast) it serves to test the loss-scaling code paths."""
        self.amp, self.scaler_g, self.scaler_d = True, scaler_g, scaler_d

    def noise(self, n: int, gen: torch.Generator) -> torch.Tensor:
        # Drawn on the CPU generator so a seed gives the same noise on every device.
        return to_device(torch.randn(n, self.z_dim, generator=gen), self.device)

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def full_precision(self):
        """Leave autocast for a block (a penalty that needs float32 gradients)."""
        return torch.autocast(device_type=self.device.type, enabled=False)

    def d_step(self, real: torch.Tensor, gen: torch.Generator) -> float:
        """One discriminator update on `real` (in [-1, 1]) against fresh fakes; returns the loss."""
        return self.d_update(real, gen).item()

    def g_step(self, batch_size: int, gen: torch.Generator) -> float:
        """One generator update (the discriminator frozen meanwhile), then the EMA follows."""
        return self.g_update(batch_size, gen).item()

    # The updates themselves leave the loss on the device: reading it is a host-device sync,
    # which a timed step (bench.throughput.workloads' gan-step) must not contain.
    def d_update(self, real: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        with torch.no_grad(), self.autocast():
            fake = self.generator(self.noise(real.shape[0], gen))
        with self.autocast():
            loss = self.d_loss(real, fake.float(), gen)
        self._backward_step(loss, "D")
        return loss.detach()

    def g_update(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        with frozen(self.discriminator):
            with self.autocast():
                loss = self.g_loss(self.generator(self.noise(batch_size, gen)))
            self._backward_step(loss, "G")
        if self.ema is not None:
            self.ema.update(self.generator)
        return loss.detach()

    def _backward_step(self, loss: torch.Tensor, net: str) -> None:
        opt, scaler = (self.opt_d, self.scaler_d) if net == "D" else (self.opt_g, self.scaler_g)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scale = scaler.get_scale()
            scaler.step(opt)  # skips the update if any gradient is inf/NaN...
            scaler.update()  # ...and then lowers the scale: that is how a skip shows
            skipped = scaler.get_scale() < scale
            self.skipped_steps += skipped
            self.overflow_streak[net] = self.overflow_streak[net] + 1 if skipped else 0
        # Gradients are not needed between steps; dropping them keeps the other net's step clean.
        opt.zero_grad(set_to_none=True)

    def last_step_skipped(self, net: str) -> bool:
        """Whether the loss scaler skipped the last update of `net` ("D" or "G")."""
        return self.overflow_streak[net] > 0

    @torch.no_grad()
    def sample(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Images in [0, 1] (float32, on the CPU) for the noise `z`, from the EMA generator if
        there is one, in eval mode."""
        net = self.ema.model if self.ema is not None else self.generator
        was_training = net.training
        net.eval()
        try:
            out = [net(chunk.to(self.device)).float().cpu() for chunk in z.split(batch_size)]
        finally:
            net.train(was_training)
        return ((torch.cat(out) + 1) / 2).clamp(0, 1)

    def state_dict(self) -> dict:
        state = {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "meta": {"arch": self.name, "channels": self.channels,
                     "image_size": list(self.image_size), "z_dim": self.z_dim,
                     "recipe": dataclasses.asdict(self.recipe)},
        }
        if self.ema is not None:
            state["generator_ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["generator_ema"])


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


def _pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))
