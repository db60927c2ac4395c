"""The suites users copy (cifar10-linf, mnist-fgsm-tutorial) validate through `bench
validate` against fixtures in the real on-disk formats, laid out where their comments say,
and the checkpoints they name load into their factories."""

import shutil
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.models.build import load_user_model
from bench.models.zoo import cifar10_resnet18, fgsm_tutorial_net
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.formats import write_cifar10, write_mnist

SUITES = Path(__file__).resolve().parent.parent / "suites"


def copy_suite(tmp_path: Path, name: str) -> Path:
    """The shipped file, unchanged, in a `suites/` folder of a scratch repository root."""
    (tmp_path / "suites").mkdir()
    return Path(shutil.copy(SUITES / name, tmp_path / "suites" / name))


def robustness_cells(path: Path):
    return [c for c in plan(load_suite(path)) if c.kind == "robustness"]


def test_cifar10_linf_suite(tmp_path, capsys):
    path = copy_suite(tmp_path, "cifar10-linf.toml")
    assert main(["validate", str(path)]) == 2  # nothing downloaded yet: a one-line error
    assert "datasets.cifar10.root" in capsys.readouterr().err
    write_cifar10(tmp_path / "data" / "cifar10")
    (tmp_path / "weights").mkdir()
    net = cifar10_resnet18()
    torch.save({"state_dict": net.state_dict(), "epoch": 200}, tmp_path / "weights" / "cifar10-model.pt")
    assert main(["validate", str(path)]) == 0
    (cell,) = robustness_cells(path)
    rob = load_suite(path).suite.robustness[0]
    assert (rob.attack, rob.version, rob.norm, rob.epsilons, rob.steps) == (
        "autoattack", "standard", "linf", [8 / 255], 100)
    model = load_user_model(cell.config.source, "mine")
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model(x), net.eval()(x))


def test_mnist_fgsm_tutorial_suite(tmp_path, capsys):
    path = copy_suite(tmp_path, "mnist-fgsm-tutorial.toml")
    write_mnist(tmp_path / "data")
    assert main(["validate", str(path)]) == 2  # the checkpoint is still missing
    assert "models.lenet.checkpoint" in capsys.readouterr().err
    net = fgsm_tutorial_net()
    torch.save(net.state_dict(), tmp_path / "data" / "lenet_mnist_model.pth")
    assert main(["validate", str(path)]) == 0
    (cell,) = robustness_cells(path)
    assert cell.config.attack == "fgsm"
    assert cell.config.epsilons == pytest.approx([0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3])
    model = load_user_model(cell.config.source, "lenet")
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(model(x), net.eval()((x - 0.1307) / 0.3081))


@pytest.mark.parametrize("factory,shape", [("fgsm_tutorial_net", (1, 28, 28)),
                                           ("fgsm_tutorial_lenet_classic", (1, 28, 28)),
                                           ("cifar10_resnet18", (3, 32, 32))])
def test_zoo_factories_build_ten_class_models(factory, shape):
    from bench.models import zoo
    from bench.models.outputs import probability_output_warning

    model = getattr(zoo, factory)().eval()
    with torch.no_grad():
        out = model(torch.rand(4, *shape))
    assert out.shape == (4, 10)
    assert probability_output_warning(out) is None  # logits or log-probabilities
