"""The real architectures the attack benchmarks run on, besides bench's own (bench.models).

`TutorialLeNet` is the network of the PyTorch FGSM tutorial
(pytorch.org/tutorials/beginner/fgsm_tutorial.html): two 5×5 convolutions without padding on
28×28 inputs, Dropout2d, a 320→50→10 head with dropout, and log_softmax on the output. It is
bench's own zoo entry (`bench.models.zoo`, what `suites/mnist-fgsm-tutorial.toml` loads), so
the benchmarks time the network a user's suite runs. Attacks run it in eval mode, so its
dropout does nothing.

The zero-argument factories below build each benchmark shape's model exactly as
`_shapes.build_shape` does, so that a suite can name it (`factory = "benchmarks._models:..."`)
and load the shape's weights as a user's checkpoint.
"""

from torch import nn

from bench.models.zoo import FGSMTutorialLeNet as TutorialLeNet

__all__ = ["TutorialLeNet", "tutorial_lenet", "small_cnn_8x8", "resnet18_32x32"]


def tutorial_lenet() -> nn.Module:
    return TutorialLeNet()


def small_cnn_8x8() -> nn.Module:
    from bench.models.build import build_classifier

    return build_classifier("small-cnn", None, (1, 8, 8), 10)


def resnet18_32x32() -> nn.Module:
    from bench.models.build import build_classifier

    return build_classifier("resnet18", None, (3, 32, 32), 10)
