"""One way to run code around every import of a module not yet loaded.

importlib's `_find_and_load` is what the import statement, `importlib.import_module` and
from-imports of submodules all go through when a module is not in sys.modules yet; an import
of a loaded module does not reach it and costs nothing more. The import statement calls it
as an attribute of CPython's `_frozen_importlib` (importlib._bootstrap), looked up on each
import, so replacing that attribute hooks every import. Used by bench.interrupts (signals
held back during imports) and bench.gc_freeze (imports frozen out of the GC).
"""

from __future__ import annotations

import importlib
import importlib._bootstrap
from contextlib import contextmanager
from typing import Callable, Iterator

FindAndLoad = Callable[[str, Callable], object]


@contextmanager
def find_and_load_wrapped(wrap: Callable[[FindAndLoad], FindAndLoad]) -> Iterator[None]:
    """Inside the block, imports go through `wrap(real)` instead of `real`, the function in
    place before; it comes back after the block, unless someone replaced it since."""
    bootstrap = importlib._bootstrap
    real = bootstrap._find_and_load
    wrapped = wrap(real)
    bootstrap._find_and_load = wrapped
    try:
        yield
    finally:
        if bootstrap._find_and_load is wrapped:
            bootstrap._find_and_load = real
