"""Keep what imports build out of Python's cyclic garbage collector, for `bench` as a program.

A full (generation 2) collection walks every object the GC tracks, and torch, pandas and the
modules a run loads later (torchvision, pyarrow, matplotlib...) build hundreds of thousands
that live until the process ends. `bench run` on one small cell paid seven full collections,
~1 s in all, the later ones 0.1-0.3 s each as the heap grew; none found anything of the
modules to free. `gc.freeze()` moves every object the GC tracks into a permanent generation
that collections skip; refcounting still frees them, only cycles among them stay.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

from bench.import_hook import find_and_load_wrapped


@contextmanager
def imports_frozen() -> Iterator[None]:
    """Inside the block, each outermost import that finishes in the main thread freezes the
    GC's objects: the new modules' objects leave the collections that follow.

    The young generations are collected first (cheap: only objects made since the last
    collection), so cyclic garbage the import or the code before it has just made is freed,
    not kept for good. What can stay is a cycle that became garbage after reaching the old
    generation: a bounded, one-off cost, as imports come once, mostly at start-up.

    For a process that ends with its command (`bench.cli.command`), not for code called
    in-process: a notebook's garbage is not ours to freeze. The hook (bench.import_hook) comes
    off after the block.
    """
    main, depth = threading.main_thread().ident, 0

    def wrap(real):
        def find_and_load(name, import_):
            nonlocal depth
            if threading.get_ident() != main:
                return real(name, import_)
            depth += 1
            try:
                return real(name, import_)
            finally:
                depth -= 1
                if depth == 0:
                    gc.collect(1)
                    gc.freeze()
        return find_and_load

    with find_and_load_wrapped(wrap):
        yield
