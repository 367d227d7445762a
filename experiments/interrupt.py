"""Ending a command on Ctrl-C or SIGTERM: one line, exit status 130 or 143, nothing half-written.

:func:`signals_as_exceptions` turns the first SIGINT into ``KeyboardInterrupt`` and the first
SIGTERM into :class:`Terminated`, raised in the main thread wherever it is. Both unwind through
the same ``finally`` blocks as an error: staging directories are removed, locks released, worker
processes killed. Further signals are ignored while that cleanup runs, so a second Ctrl-C cannot
cut it short. Within :func:`deferred` (starting a worker process, renaming results into place) a
signal waits until the block ends, so that it never lands between two steps that belong together.
"""

from __future__ import annotations

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


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Start processes within the block that ignore Ctrl-C, without losing one sent to this
    process meanwhile (in the main thread).

    A started process inherits the ignoring (it survives ``exec``), so that Ctrl-C in a terminal
    reaches only the command, which stops the rest. This process blocks SIGINT for the block as
    well: a blocked signal is never discarded, even while ignored, so one that arrives in the
    block stays pending and reaches this process's own handler once the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
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
