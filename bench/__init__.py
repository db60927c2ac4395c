"""bench: benchmark and robustness evaluation suite for PyTorch."""

__version__ = "0.1.0"
