"""Classifier architectures (registry) and loading of users' own models."""

from bench.registry import Registry

# name -> builder(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module
MODELS: Registry = Registry("model architecture")
MODELS.register("small-cnn", "bench.models.small_cnn:build_small_cnn")
MODELS.register("lenet", "bench.models.lenet:build_lenet")
MODELS.register("resnet18", "bench.models.resnet:build_resnet18")
