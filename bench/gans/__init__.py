"""Reference GANs (registry)."""

from bench.registry import Registry

GANS: Registry = Registry("GAN architecture", base="bench.gans.base:GAN")
GANS.register("dcgan", "bench.gans.dcgan:DCGAN")
GANS.register("wgan-gp", "bench.gans.wgan_gp:WGANGP")
GANS.register("sngan", "bench.gans.sngan:SNGAN")
