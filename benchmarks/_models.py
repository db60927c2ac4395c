"""The real architectures the attack benchmarks run on, besides bench's own (bench.models).

`TutorialLeNet` is the network of the PyTorch FGSM tutorial
(pytorch.org/tutorials/beginner/fgsm_tutorial.html): two 5×5 convolutions without padding on
28×28 inputs, Dropout2d, a 320→50→10 head with dropout, and log_softmax on the output. It is
bench's own zoo entry (`bench.models.zoo`, what `suites/mnist-fgsm-tutorial.toml` loads), so
the benchmarks time the network a user's suite runs. Attacks run it in eval mode, so its
dropout does nothing.
"""

from bench.models.zoo import FGSMTutorialLeNet as TutorialLeNet

__all__ = ["TutorialLeNet"]
