"""SIGTERM stops bench as Ctrl-C does: a KeyboardInterrupt, so the same clean-up runs.

`kill PID` (or a CI runner, or a scheduler's time limit) then leaves what Ctrl-C leaves: the
finished cells journaled, the run marked interrupted, no worker behind, exit 130.
"""

from __future__ import annotations

import importlib
import signal
import threading
from contextlib import contextmanager
from types import ModuleType
from typing import Iterator

from bench.import_hook import find_and_load_wrapped


def raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block; the previous handler comes back after.

    Outside the main thread (where Python cannot set handlers) the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wrapped_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt that `exc` was raised from or while handling, if any.

    Some libraries turn an exception from a Python callback into one of their own: a Ctrl-C
    that lands inside a pydantic serializer comes out of `model_dump` as a
    `PydanticSerializationError` raised from the KeyboardInterrupt (found by the signal tests,
    Ctrl-C just after the manifest: a traceback and exit 1 instead of exit 130).
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@contextmanager
def interrupts_unwrapped() -> Iterator[None]:
    """An exception that escapes the block because of a KeyboardInterrupt (wrapped_interrupt)
    comes out as that KeyboardInterrupt, so an interrupt stops bench as an interrupt (exit
    130, the run marked interrupted) wherever it landed. Other exceptions pass unchanged."""
    try:
        yield
    except Exception as exc:
        interrupt = wrapped_interrupt(exc)
        if interrupt is None:
            raise
        raise interrupt from None


INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


class _HeldBack:
    """The handler of Ctrl-C and SIGTERM inside `held_back`: records the first, raises nothing;
    a second one while the first waits acts at once (the user insists: an import that hangs).

    After the block (`holding` off) it passes a signal on to the handler that was there
    before, should it still be called (an outer block's handler underneath, say): never lost.
    """

    def __init__(self, previous: dict[int, object]):
        self.previous, self.pending, self.holding = previous, None, True

    def __call__(self, signum, frame) -> None:
        if not self.holding:
            pass_on(self.previous[signum], signum, frame)
        elif self.pending is None:
            self.pending = (signum, frame)
        else:
            self.insist(signum, frame)

    def insist(self, signum, frame) -> None:
        """Act now, through every held_back block this one is nested in (their pending
        signal is this one: it is not raised again at their end)."""
        handler = self
        while isinstance(handler, _HeldBack):
            handler.pending = None
            handler = handler.previous[signum]
        pass_on(handler, signum, frame)


def pass_on(handler, signum: int, frame) -> None:
    """Do what `handler` (a previous handler, as signal.signal returned it) does with the signal."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:  # the default action (e.g. terminate): send it again
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


@contextmanager
def held_back() -> Iterator[None]:
    """Ctrl-C and SIGTERM that land inside the block take effect at its end, never lost; a
    second one before the end takes effect at once.

    For code that must not be cut in half, such as starting a worker process and recording
    it (a process started but not recorded could not be stopped). The old handlers stay
    installed underneath: only Python's part is deferred, and no signal is ever set to
    SIG_IGN, which would discard a pending one. Outside the main thread: no effect.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = _HeldBack({})
    try:  # a signal between the two installs: the first is put back, the signal raised
        for signum in INTERRUPTS:
            previous = signal.getsignal(signum)
            # Left be: an ignored signal (a worker's SIGINT), a handler set outside Python.
            if previous is not None and previous != signal.SIG_IGN:
                held.previous[signum] = previous  # kept before the swap, which may be cut short
                signal.signal(signum, held)
        yield
    finally:
        # Still holding while the old handlers go back: a signal that lands now waits in
        # `pending` (or, once its handler is back, the old handler takes it). Holding off first
        # let a signal whose Python handler ran late (delivered to another thread while this
        # one blocked SIGINT) raise before anything was put back: the handlers stayed ours.
        _put_back(held)
        held.holding = False
        if held.pending is not None:
            signum, frame = held.pending
            pass_on(held.previous[signum], signum, frame)


def _put_back(held: _HeldBack) -> None:
    """The old handlers back where `held` still stands in for them (a handler installed inside
    the block, by a module on import say, stays), all of them even when one fires (and
    raises) meanwhile."""
    interrupt = None
    while True:
        try:
            for signum, handler in held.previous.items():
                if signal.getsignal(signum) is held:
                    signal.signal(signum, handler)
            break
        except KeyboardInterrupt as exc:  # an old handler ran: finish, then raise it
            interrupt = exc
    if interrupt is not None:
        raise interrupt


def import_held_back(name: str) -> ModuleType:
    """importlib.import_module(name), with Ctrl-C and SIGTERM held back until it is done.

    Some extensions are not safe to interrupt while they initialise: a KeyboardInterrupt
    raised by a signal handler inside torch's C++ set-up (`torch._C._c10d_init`) reaches a
    C++ frame that cannot pass it on, and the process aborts ("terminate called after
    throwing an instance of 'pybind11::error_already_set'"). Held back, the interrupt comes
    a moment later, once the import is over.
    """
    with held_back():
        return importlib.import_module(name)


@contextmanager
def imports_held_back() -> Iterator[None]:
    """Inside the block, a Ctrl-C or SIGTERM that lands while a module is being imported takes
    effect once that import is over.

    Module initialisers are not written for an exception that may come at any bytecode, and
    `bench run` imports for seconds at start-up and lazily later (pandas, pyarrow, scipy,
    torchvision...). Found by the slow signal tests: numpy.random's initialiser swallows a
    KeyboardInterrupt (the Ctrl-C is lost and the run goes on to the end), pydantic-core
    turns one into a SchemaError (a traceback), and torch's C++ set-up aborts the process.

    The hook is importlib's `_find_and_load` (bench.import_hook), which only imports of
    modules not yet loaded reach. Only the outermost import holds (the ones inside it are
    covered), only in the main thread (where handlers run). A second Ctrl-C during the same
    import interrupts it at once (an import that hangs stays stoppable). The previous function
    comes back after the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    main, importing = threading.get_ident(), False

    def wrap(real):
        def find_and_load(name, import_):
            nonlocal importing
            if importing or threading.get_ident() != main:
                return real(name, import_)
            importing = True
            try:
                with held_back():
                    return real(name, import_)
            finally:
                importing = False
        return find_and_load

    with find_and_load_wrapped(wrap):
        yield
