"""Ending a command on Ctrl-C or SIGTERM: one line, exit status 130 or 143, nothing half-written.

:func:`signals_as_exceptions` turns the first SIGINT into ``KeyboardInterrupt`` and the first
SIGTERM into :class:`Terminated`, raised in the main thread wherever it is. Both unwind through
the same ``finally`` blocks as an error: staging directories are removed, locks released, worker
processes killed. Further signals are ignored while that cleanup runs, so a second Ctrl-C cannot
cut it short. Within :func:`deferred` (starting a worker process, renaming results into place) a
signal waits until the block ends, so that it never lands between two steps that belong together.
"""

from __future__ import annotations

import functools
import inspect
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, what a shell reports for Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Terminated(BaseException):  # noqa: N818 — named like KeyboardInterrupt, its sibling
    """SIGTERM arrived; raised like ``KeyboardInterrupt`` (not an ``Exception``)."""


class _Deferral:
    """How deep in :func:`deferred` blocks the main thread is, and the signal that waits."""

    depth = 0
    pending: type[BaseException] | None = None


def _first_only(signum: int, frame: FrameType | None) -> None:
    for caught in (signal.SIGINT, signal.SIGTERM):
        signal.signal(caught, signal.SIG_IGN)
    error = KeyboardInterrupt if signum == signal.SIGINT else Terminated
    if _Deferral.depth:
        _Deferral.pending = error
        return
    raise error


@contextmanager
def deferred() -> Iterator[None]:
    """Hold back Ctrl-C and SIGTERM until the block ends (then raise them), in the main thread;
    in another thread, where no handler runs, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Deferral.depth += 1
    try:
        yield
    finally:
        _Deferral.depth -= 1
        if not _Deferral.depth and _Deferral.pending is not None:
            error, _Deferral.pending = _Deferral.pending, None
            raise error


def deferred_in_methods(cls: type) -> None:
    """Hold back Ctrl-C and SIGTERM while any method or property of ``cls`` runs (see
    :func:`deferred`), once per class: for a library whose methods must not be cut off half-way,
    such as a database session's (a signal raised inside a transaction leaves the connection
    unusable, so the library's own clean-up fails or waits for ever on the lock it holds)."""
    if getattr(cls, "_nplsim_deferred", False):
        return

    def guard(method):
        @functools.wraps(method)
        def guarded(*args, **kwargs):
            with deferred():
                return method(*args, **kwargs)

        return guarded

    for name, attribute in list(vars(cls).items()):
        if name.startswith("__"):
            continue
        if isinstance(attribute, property):
            setattr(cls, name, property(guard(attribute.fget), attribute.fset, attribute.fdel,
                                        attribute.__doc__))  # fmt: skip
        elif inspect.isfunction(attribute):
            setattr(cls, name, guard(attribute))
    cls._nplsim_deferred = True


@contextmanager
def ctrl_c_held_for_children() -> Iterator[None]:
    """Start processes within the block that are born with Ctrl-C held back (in the main thread).

    This thread blocks SIGINT for the block, and a process started in it inherits the blocked
    signal (the mask survives ``fork`` and ``exec``): Ctrl-C in a terminal waits in it, never
    interrupting its start, until it ignores the signal itself (the fork server does once it
    has started, each worker as its first act) and is then discarded. Only the children ignore
    it: this process keeps its own handler, so a Ctrl-C sent to it meanwhile waits until the
    block ends and then reaches the handler (one taken by another thread runs it too)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextmanager
def signals_as_exceptions(*, ignore_after: bool = False) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise (once); the previous handlers are restored
    after, or with ``ignore_after`` both signals are ignored from then on (for a process whose
    work is done and which only has to exit). Outside the main thread (where handlers cannot be
    set) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for caught in previous:
        signal.signal(caught, _first_only)
    try:
        yield
    finally:
        for caught, handler in previous.items():
            signal.signal(caught, signal.SIG_IGN if ignore_after else handler)
