"""Built-in architectures, the Normalized wrapper, loading users' models (weights_only) as
checkpoints come in the wild, and the check on probability outputs."""

import functools
import textwrap

import pytest
import torch
from torch import nn

from bench.errors import UserError
from bench.models import MODELS
from bench.models.build import (
    build_classifier,
    load_user_model,
    load_user_model_and_notes,
    unwrap_checkpoint,
)
from bench.models.normalize import Normalized
from bench.models.outputs import probability_output_warning
from bench.suite.cell_configs import UserSource
from bench.suite.schema import Normalization

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


@functools.lru_cache(maxsize=None)
def built(arch: str, channels: int, image_size: tuple[int, int]) -> nn.Module:
    torch.manual_seed(0)
    return MODELS.get(arch)(channels, 7, image_size).eval()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("arch", MODELS.names())
def test_every_architecture_gives_logits_for_every_input_size(arch, shape):
    # Builders that ignore image_size are built once per channel count (resnet18 is slow to init).
    model = built(arch, shape[0], shape[1:] if arch == "lenet" else (0, 0))
    with torch.no_grad():
        out = model(torch.rand(2, *shape))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_resnet18_has_the_cifar_stem():
    model = MODELS.get("resnet18")(3, 10, (32, 32))
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)


def test_normalized_applies_mean_and_std_per_channel_inside_the_model():
    model = Normalized(nn.Identity(), mean=[0.5, 0.25, 0.0], std=[0.5, 0.25, 2.0])
    x = torch.rand(4, 3, 5, 5)
    expected = torch.stack([(x[:, 0] - 0.5) / 0.5, (x[:, 1] - 0.25) / 0.25, x[:, 2] / 2.0], 1)
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)
    assert set(model.state_dict()) == {"mean", "std"}  # buffers: saved and moved with the model
    one = Normalized(nn.Identity(), mean=[0.1307], std=[0.3081])  # one value broadcasts
    torch.testing.assert_close(one(x), (x - 0.1307) / 0.3081)


def test_build_classifier_wraps_only_when_normalize_is_given():
    plain = build_classifier("small-cnn", None, (1, 8, 8), 10)
    wrapped = build_classifier("small-cnn", Normalization(mean=[0.5], std=[0.2]), (1, 8, 8), 10)
    assert not isinstance(plain, Normalized)
    assert isinstance(wrapped, Normalized)


# -- users' models -------------------------------------------------------------------------


@pytest.fixture
def user_pkg(tmp_path, monkeypatch):
    """An importable package `user_nets` with a factory, plus a trained-looking checkpoint."""
    pkg = tmp_path / "user_nets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from torch import nn

        def Net():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

        def Wider():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 20))

        def not_a_model():
            return 42
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    from user_nets import Net

    net = Net()
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    return net, path


def source(path, factory="user_nets:Net", normalize=None, checkpoint_sha256=None):
    return UserSource(factory=factory, checkpoint=str(path), checkpoint_sha256=checkpoint_sha256,
                      normalize=normalize)


def test_user_model_round_trip_in_eval_mode(user_pkg):
    net, path = user_pkg
    x = torch.rand(3, 1, 8, 8)
    loaded = load_user_model(source(path), "mine")
    assert not loaded.training
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    norm = load_user_model(source(path, normalize={"mean": [0.5], "std": [0.25]}), "mine")
    torch.testing.assert_close(norm(x), net((x - 0.5) / 0.25))


def test_missing_checkpoint_is_a_one_line_user_error(user_pkg, tmp_path):
    with pytest.raises(UserError, match=r"models\.mine\.checkpoint: no such file") as err:
        load_user_model(source(tmp_path / "nope.pt"), "mine")
    assert "\n" not in str(err.value)


def test_mismatched_state_dict_names_the_key_and_the_mismatch(user_pkg):
    _, path = user_pkg
    with pytest.raises(UserError, match=r"models\.mine\.checkpoint: the state_dict does not match"
                                        r".*shape mismatches") as err:
        load_user_model(source(path, factory="user_nets:Wider"), "mine")
    assert "\n" not in str(err.value)
    state = torch.load(path, weights_only=True)
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(UserError, match=r"unexpected keys: extra\.weight"):
        load_user_model(source(path), "mine")


def test_factory_must_return_a_module(user_pkg):
    _, path = user_pkg
    with pytest.raises(UserError, match=r"models\.mine\.factory: .*returned int, expected a torch"):
        load_user_model(source(path, factory="user_nets:not_a_model"), "mine")
    with pytest.raises(UserError, match="cannot import module"):
        load_user_model(source(path, factory="no_such_pkg_xyz:Net"), "mine")


class Payload:
    """Anything that is not tensors and plain containers."""


def test_checkpoints_are_loaded_with_weights_only(user_pkg, tmp_path):
    net, _ = user_pkg
    for name, obj in [("pickled_model.pt", net), ("payload.pt", {"0.weight": Payload()})]:
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(UserError, match=r"models\.mine\.checkpoint: cannot load .*weights"):
            load_user_model(source(path), "mine")


def test_a_checkpoint_changed_after_planning_is_refused(user_pkg):
    _, path = user_pkg
    src = source(path, checkpoint_sha256="0" * 64)
    with pytest.raises(UserError, match="changed after the suite was planned"):
        load_user_model(src, "mine")


# -- checkpoints as they come in the wild --------------------------------------------------


def test_unwrap_checkpoint_leaves_a_plain_state_dict_alone():
    state = nn.Linear(2, 2).state_dict()
    out, notes = unwrap_checkpoint(state)
    assert out.keys() == state.keys() and notes == ()
    partly = {"module.weight": torch.zeros(1), "bias": torch.zeros(1)}  # not all prefixed
    assert unwrap_checkpoint(partly) == (partly, ())


@pytest.mark.parametrize("wrap,expected_notes", [
    (lambda s: {"state_dict": s, "epoch": 7, "best_acc": 0.5},
     ["unwrapped the checkpoint's 'state_dict' entry (beside best_acc, epoch)"]),
    (lambda s: {"model_state_dict": s, "optimizer_state_dict": {"state": {}}},
     ["unwrapped the checkpoint's 'model_state_dict' entry (beside optimizer_state_dict)"]),
    (lambda s: {"model": s}, ["unwrapped the checkpoint's 'model' entry"]),
    (lambda s: {f"module.{k}": v for k, v in s.items()},
     ["stripped DataParallel's 'module.' prefix from 2 keys"]),
    (lambda s: {"model": {"state_dict": {f"module.{k}": v for k, v in s.items()}}},
     ["unwrapped the checkpoint's 'model' entry", "unwrapped the checkpoint's 'state_dict' "
      "entry", "stripped DataParallel's 'module.' prefix from 2 keys"]),
])
def test_wrapped_and_prefixed_checkpoints_load(user_pkg, tmp_path, wrap, expected_notes):
    """Saved to disk as training scripts save them, loaded with weights_only=True."""
    net, _ = user_pkg
    path = tmp_path / "wrapped.pt"
    torch.save(wrap(net.state_dict()), path)
    loaded, notes = load_user_model_and_notes(source(path), "mine")
    assert list(notes) == expected_notes
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    assert load_user_model(source(path), "mine") is not None  # the plain entry point too


def test_a_probability_output_model_is_warned_about():
    logits = torch.randn(16, 10) * 3
    warning = probability_output_warning(logits.softmax(1), "models.mine")
    assert warning.startswith("models.mine: its outputs are probabilities")
    assert "\n" not in warning
    # Silent on what attacks handle correctly: logits and log-probabilities.
    assert probability_output_warning(logits) is None
    assert probability_output_warning(logits.log_softmax(1)) is None
    assert probability_output_warning(torch.sigmoid(logits)) is None  # in [0, 1], not summing to 1
    assert probability_output_warning(torch.ones(4, 1)) is None  # one output: not a distribution
