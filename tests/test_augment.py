"""Training augmentation (random crop, flip) and the recipe defaults that switch it on."""

import pytest
import torch
import torch.nn.functional as F

from bench.cells import train as train_cell
from bench.data import load_dataset
from bench.errors import SuiteError
from bench.models.build import build_classifier
from bench.suite.load import load_suite
from bench.suite.schema import Suite, TrainConfig
from bench.training.augment import augment, random_crop, random_flip
from bench.training.loop import train_classifier
from tests.helpers.configs import digits_config


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_random_crop_takes_a_window_of_the_zero_padded_image_per_sample():
    x = torch.rand(64, 3, 32, 32)
    out = random_crop(x, 4, gen())
    assert out.shape == x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    offsets = set()
    for i in range(len(x)):
        found = [(t, s) for t in range(9) for s in range(9)
                 if torch.equal(out[i], padded[i, :, t:t + 32, s:s + 32])]
        assert found, f"sample {i} is no 32×32 window of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 20  # offsets are drawn per sample, all over the 9×9 grid


def test_random_flip_mirrors_about_half_of_the_samples():
    x = torch.rand(200, 1, 8, 8)
    out = random_flip(x, gen())
    mirrored = torch.tensor([torch.equal(o, s.flip(-1)) for o, s in zip(out, x)])
    kept = torch.tensor([torch.equal(o, s) for o, s in zip(out, x)])
    assert (mirrored | kept).all()
    assert 60 < mirrored.sum() < 140


def test_augmentation_is_seeded_and_off_without_settings():
    x = torch.rand(16, 3, 32, 32)
    assert torch.equal(augment(x, 4, True, gen(1)), augment(x, 4, True, gen(1)))
    assert not torch.equal(augment(x, 4, True, gen(1)), augment(x, 4, True, gen(2)))
    assert torch.equal(augment(x, 0, False, gen(1)), x)


def test_training_with_augmentation_is_reproducible_and_differs_without_it():
    data = load_dataset(digits_config(limit_train=300), "train")
    train, heldout = train_cell.split_heldout(data, seed=0)

    def weights(**overrides):
        torch.manual_seed(0)
        model = build_classifier("small-cnn", None, (1, 8, 8), 10)
        cfg = TrainConfig(epochs=1, batch_size=64, **overrides)
        train_classifier(model, train, heldout, cfg, seed=0, device="cpu")
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    augmented = weights(crop_padding=1, flip=True)
    assert torch.equal(augmented, weights(crop_padding=1, flip=True))
    assert not torch.equal(augmented, weights())


def suite(arch: str, kind: str, train: dict | None = None) -> TrainConfig:
    dataset = {"kind": kind} | ({} if kind == "digits" else {"root": "data"})
    model = {"arch": arch, "dataset": "d"} | ({"train": train} if train is not None else {})
    parsed = Suite.model_validate({"suite": {"name": "s"}, "datasets": {"d": dataset},
                                   "models": {"m": model}})
    return parsed.models["m"].train or TrainConfig()


def settings(cfg: TrainConfig) -> tuple:
    return (cfg.optimizer, cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay,
            cfg.crop_padding, cfg.flip)


def test_resnet18_on_cifar10_defaults_to_the_standard_recipe():
    assert settings(suite("resnet18", "cifar10")) == ("sgd", 0.1, 0.9, False, 5e-4, 4, True)
    assert settings(suite("resnet18", "cifar10", {"recipe": "pgd", "epsilon": "8/255"})) == (
        "sgd", 0.1, 0.9, False, 5e-4, 4, True)


@pytest.mark.parametrize("arch, kind", [("small-cnn", "digits"), ("resnet18", "digits"),
                                        ("lenet", "cifar10"), ("resnet18", "svhn")])
def test_no_augmentation_unless_resnet18_on_cifar10(arch, kind):
    cfg = suite(arch, kind)
    assert (cfg.crop_padding, cfg.flip) == (0, False)


def test_what_a_suite_sets_wins_over_the_arch_defaults():
    assert settings(suite("resnet18", "cifar10", {"flip": False, "lr": 0.05})) == (
        "sgd", 0.05, 0.9, False, 5e-4, 4, False)
    # Another optimiser: none of the SGD recipe's settings.
    assert settings(suite("resnet18", "cifar10", {"optimizer": "adam"})) == (
        "adam", 1e-3, 0.9, True, 0.0, 4, True)
    assert settings(suite("small-cnn", "digits", {"flip": True})) == (
        "adam", 1e-3, 0.9, True, 0.0, 0, True)
    assert suite("small-cnn", "digits") == TrainConfig()  # unchanged defaults elsewhere


def test_sgd_settings_with_adam_are_a_suite_error(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[suite]\nname = "s"\n[datasets.d]\nkind = "digits"\n[models.m]\n'
                    'arch = "small-cnn"\ndataset = "d"\ntrain = { momentum = 0.5 }\n')
    with pytest.raises(SuiteError, match=r"models\.m\.train\.momentum.*not used with optimizer"):
        load_suite(path)
