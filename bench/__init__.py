"""bench: benchmark and robustness evaluation suite for PyTorch.

The Python API (docs/api.md) lives in `bench.api`; `bench.fid`, `bench.evaluate_robustness`,
`bench.run_suite` and `bench.api` are loaded on first use, so that `import bench` (and
`bench validate`) does not import torch.
"""

__version__ = "0.1.0"

_API = ("fid", "save_reference", "domain_extractor", "inception_extractor",
        "evaluate_robustness", "run_suite", "Run")


def __getattr__(name: str):
    if name == "api" or name in _API:
        import importlib

        api = importlib.import_module("bench.api")
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
