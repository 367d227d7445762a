"""One process pool for every command that runs many simulations: compare, sweep, validate and
sensitivity.

:func:`run_tasks` runs a function over tasks in this process (one worker), on any
``concurrent.futures.Executor`` (a Dask cluster's), or in a local pool of ``forkserver`` worker
processes, and yields each :class:`Outcome` as it finishes. The local pool:

* forks workers from a clean server process that has imported the model once (forking this
  process could copy a lock held by one of its threads: BLAS, a progress bar);
* keeps at most two tasks per worker in flight, so that a worker that dies costs no more than the
  tasks it may have held: the pool is started afresh and those tasks are retried, each up to
  :data:`MAX_ATTEMPTS` times before it is reported as failed;
* kills its workers at once on any way out — an error, Ctrl-C, SIGTERM — rather than waiting for
  their runs to finish (a signal that arrives while a worker is being started waits until it has
  started, so none is orphaned). Workers ignore Ctrl-C from birth (this process handles it) and
  end themselves when this process ends, even by SIGKILL; the fork server and the resource
  tracker end once no worker holds them, so a killed command leaves no process behind.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing import forkserver, resource_tracker
from typing import Any

from nplsim.experiments.interrupt import deferred, sigint_ignored
from nplsim.market.errors import ConfigError

log = logging.getLogger(__name__)

# A task whose worker died this often is the cause (out of memory, a crash), not a bystander.
MAX_ATTEMPTS = 3
IN_FLIGHT_PER_WORKER = 2  # keeps each worker busy while the next task is on its way
# Modules the fork server imports once, so that each worker starts without importing them.
PRELOAD = ["nplsim.experiments.run", "nplsim.experiments.validate"]
PARENT_POLL_S = 1.0  # where no pidfd tells a worker at once that the command ended


@dataclass(frozen=True)
class Outcome:
    """What one task gave: its index among the tasks, and its value or the exception it raised."""

    index: int
    value: Any = None
    error: BaseException | None = None


class WorkerDiedError(RuntimeError):
    """A task's worker process died (killed, out of memory) :data:`MAX_ATTEMPTS` times."""


def resolve_workers(workers: object, source: str = "--workers") -> int:
    """The number of worker processes: ``None`` means one per available CPU."""
    if workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(source, str(workers), "must be a positive integer", "1, 2, ...")
    return workers


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    *,
    workers: int | None = None,
    executor: Executor | None = None,
) -> Iterator[Outcome]:
    """Run ``fn(task)`` for every task and yield each outcome as it finishes.

    With one worker (and no executor) the tasks run here, in order. An ``executor`` is used as it
    is and not shut down. Otherwise a local pool of ``min(workers, len(tasks))`` processes runs
    them, as described in the module docstring; ``fn`` must be a picklable top-level function.
    """
    if executor is not None:
        yield from _on_executor(executor, fn, tasks)
        return
    count = min(resolve_workers(workers), len(tasks))
    if count <= 1:
        for index, task in enumerate(tasks):
            try:
                yield Outcome(index, fn(task))
            except Exception as exc:  # the caller decides what a failed task means
                yield Outcome(index, error=exc)
        return
    yield from _in_pool(fn, tasks, count)


def _on_executor(executor: Executor, fn: Callable, tasks: Sequence[Any]) -> Iterator[Outcome]:
    futures = {executor.submit(fn, task): index for index, task in enumerate(tasks)}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield _outcome(futures[future], future)
    finally:
        for future in futures:
            future.cancel()


def _in_pool(fn: Callable, tasks: Sequence[Any], workers: int) -> Iterator[Outcome]:
    queue = list(range(len(tasks)))[::-1]  # popped from the end: task order
    attempts = [0] * len(tasks)
    limit = workers * IN_FLIGHT_PER_WORKER
    with deferred():
        pool = _new_pool(workers)
    in_flight: dict[Future, int] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                index = queue.pop()
                try:
                    with deferred():  # a signal here could orphan a worker being started
                        in_flight[pool.submit(fn, tasks[index])] = index
                except BrokenProcessPool:
                    queue.append(index)
                    break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = [f for f in done if isinstance(f.exception(), BrokenProcessPool)]
            for future in done:
                if future not in broken:
                    yield _outcome(in_flight.pop(future), future)
            if broken or _is_broken(pool):
                lost = list(in_flight.values())
                in_flight.clear()
                _kill(pool)
                for index in lost:
                    attempts[index] += 1
                    if attempts[index] >= MAX_ATTEMPTS:
                        died = WorkerDiedError(f"its worker process died {attempts[index]} times")
                        yield Outcome(index, error=died)
                    else:
                        queue.append(index)
                log.warning("a worker process died; %d run(s) it may have held are retried",
                            sum(attempts[i] < MAX_ATTEMPTS for i in lost))  # fmt: skip
                with deferred():
                    pool = _new_pool(workers)
    finally:
        for future in in_flight:
            future.cancel()
        _kill(pool)


@contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """The local pool as an executor, for a library that submits its own work (pyabc's
    sampler): the same clean workers as :func:`run_tasks`, killed on any way out."""
    with deferred():
        pool = _new_pool(workers)
    try:
        yield pool
    finally:
        _kill(pool)


def _outcome(index: int, future: Future) -> Outcome:
    error = future.exception()
    return Outcome(index, error=error) if error is not None else Outcome(index, future.result())


def _new_pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    # The resource tracker first, outside the block: starting it unblocks SIGINT, which would
    # discard a Ctrl-C held back by the block (it protects itself from Ctrl-C).
    resource_tracker.ensure_running()
    with sigint_ignored():  # the fork server, and every worker it forks, ignore Ctrl-C
        forkserver.ensure_running()
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_started, initargs=(os.getpid(),)
    )


def _is_broken(pool: ProcessPoolExecutor) -> bool:
    return bool(getattr(pool, "_broken", False))


def _kill(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers now (their runs are abandoned) and shut the pool down."""
    kill_workers = getattr(pool, "kill_workers", None)  # Python 3.14
    if kill_workers is not None:
        with suppress(Exception):
            kill_workers()
    else:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            with suppress(OSError, ValueError, AttributeError):
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _worker_started(command_pid: int) -> None:
    """In each worker: leave Ctrl-C to the command, and end when the command's process ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(command_pid,), daemon=True).start()


def _end_with(pid: int) -> None:
    """Wait for process ``pid`` to end (a pidfd where Linux has one, else polling), then end this
    one at once: its run's results would have nowhere to go."""
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        select.select([handle], [], [])
    else:
        with suppress(OSError):
            while True:
                os.kill(pid, 0)
                time.sleep(PARENT_POLL_S)
    os._exit(1)
