"""The builders every cell shares: a classifier (fresh or trained), a user's model, a GAN.

One way each, so the cells cannot drift apart. Lower layers use the rest directly:
a seeded subset is `bench.data.seeded_subset`, a seeded RNG scope is `bench.seeding.seeded`,
an optimiser is `bench.training.optim.make_optimizer`.
"""

from __future__ import annotations

from torch import nn

from bench.data import ImageData
from bench.models.build import (
    build_classifier,
    load_state_dict_file,
    load_strict,
    load_user_model,
    load_user_model_and_notes,
)
from bench.seeding import seeded
from bench.suite.cell_configs import (
    RobustBenchSource,
    TrainedSource,
    TrainedTarget,
    UserSource,
    UserTarget,
)


def fresh_classifier(source: TrainedSource | TrainedTarget, data: ImageData, seed: int) -> nn.Module:
    """A built-in architecture sized for `data`, initialised from `seed`."""
    with seeded(seed):
        return build_classifier(source.arch, source.normalize, (data.channels, *data.image_size),
                                data.num_classes)


def trained_classifier(source: TrainedSource, weights: str, data: ImageData,
                       name: str) -> nn.Module:
    """A built-in architecture with the weights its train cell produced, in eval mode."""
    model = fresh_classifier(source, data, seed=0)  # the initial weights are overwritten
    key = f"models.{name} (trained weights)"
    load_strict(model, load_state_dict_file(weights, key), key, f"architecture {source.arch!r}")
    return model.eval()


def user_classifier(source: UserSource | UserTarget, name: str) -> nn.Module:
    """A user's model from its factory and checkpoint, in eval mode."""
    return load_user_model(source, name)


def user_classifier_and_notes(source: UserSource, name: str) -> tuple[nn.Module, tuple[str, ...]]:
    """`user_classifier`, and what was done to its checkpoint to load it (unwrapped, prefix
    stripped), for the rows and the manifest."""
    return load_user_model_and_notes(source, name)


def zoo_classifier_and_notes(source: RobustBenchSource, name: str
                             ) -> tuple[nn.Module, tuple[str, ...]]:
    """A RobustBench zoo model from the local model folder (the reference extra), eval mode."""
    from bench.models.robustbench_zoo import load_zoo_model

    return load_zoo_model(source, name)


def build_gan(arch: str, data: ImageData, *, z_dim: int | None, lr: float | None, seed: int,
              **recipe):
    """A registered GAN sized for `data`, initialised from `seed`; `lr` and `recipe` (lr_d,
    betas, n_critic, ema) override its paper's optimisation settings where not None."""
    from bench.gans import GANS

    return GANS.get(arch)(data.channels, data.image_size, z_dim=z_dim, lr=lr, init_seed=seed,
                          **recipe)
