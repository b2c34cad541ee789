"""The sweep's process pool: N spawned worker processes (never forked: a fork of a process with an
embedded R is unsafe), each with its own R started once, each holding one case at a time.

A worker that dies (R crashing, `os._exit`, the OOM killer) costs only the case it held: that case's
result is an error saying so, a new worker takes its place, and the sweep goes on.  Workers ignore
SIGINT (the process that started the sweep stops them) and run BLAS single-threaded (`WORKER_ENVIRON`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vcheck.auditing.cases import Case
from vcheck.auditing.plan import SweepError, SweepResult
from vcheck.auditing.results import CaseResult, one_line
from vcheck.auditing.worker import crash_result, prepare_worker, run_case
from vcheck.reference.server import exit_text

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

#: consecutive worker start-up failures after which a process sweep gives up
MAX_START_FAILURES = 3
#: seconds a worker gets to exit after the sweep before it is terminated
WORKER_EXIT_SECONDS = 5.0
#: the environment of a worker process: one BLAS thread, as Dask gives its workers
#: (`distributed.nanny.pre-spawn-environ`), so that every executor computes the same bits and N workers
#: do not fight over the cores
WORKER_ENVIRON = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _worker_main(conn: Connection, target: str, options: dict[str, Any] | None) -> None:
    """A worker process: get ready, then audit one case per message until told to stop (None)."""
    warnings.simplefilter("ignore")  # the report holds the results; N workers' warnings are noise
    prepare_worker(target)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        position, case = message
        try:
            payload = run_case(target, case, options)
        except BaseException as exc:  # run_case never raises; this keeps the protocol even if it does
            payload = CaseResult(case=case, error=f"{type(exc).__name__}: {one_line(exc)}").to_dict()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        conn.send(("result", position, payload))


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    job: tuple[int, Case] | None = None
    started: float = field(default_factory=time.perf_counter)


def _start_worker(ctx: Any, target: str, options: dict[str, Any] | None) -> _Worker:
    """Spawn one worker process: SIGINT blocked while it starts (a Ctrl-C reaches only this process,
    which stops the workers), BLAS single-threaded in it (`WORKER_ENVIRON`)."""
    parent, child = ctx.Pipe(duplex=True)
    process = ctx.Process(
        target=_worker_main, args=(child, target, options), daemon=True, name="vcheck-sweep"
    )
    with children_ignore_sigint(), _environ(WORKER_ENVIRON):
        process.start()
    child.close()
    return _Worker(process=process, conn=parent)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set (for a child started meanwhile), restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Start child processes that ignore SIGINT (an ignored signal stays ignored across exec), so a
    Ctrl-C reaches only this process, which then stops them.

    SIGINT is blocked meanwhile in this thread: a Ctrl-C that arrives is delivered once the handler is
    back, not lost.  Outside the main thread (or off POSIX) nothing changes.
    """
    try:
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (AttributeError, OSError, ValueError):  # not POSIX
        yield
        return
    try:
        old_handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: the handler is not ours to change
        old_handler = None
    try:
        yield
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def process_results(
    target: str,
    todo: Sequence[tuple[int, Case]],
    workers: int,
    options: dict[str, Any] | None,
    result: SweepResult,
    start_method: str = "spawn",
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The cases in `workers` spawned processes, one case per worker at a time.

    A worker that dies while holding a case is replaced, and the case's result says it died.
    """
    from multiprocessing.connection import wait

    if start_method == "fork":
        raise SweepError("worker processes cannot be forked: R embedded in the parent is not fork-safe")
    ctx = multiprocessing.get_context(start_method)
    pending = deque(todo)
    start = time.perf_counter()
    pool: list[_Worker | None] = [_start_worker(ctx, target, options) for _ in range(min(workers, len(todo)))]
    start_failures = 0
    first_ready = False
    try:
        while pending or any(w is not None and w.job is not None for w in pool):
            live = [w for w in pool if w is not None]
            for idle in live:
                if idle.ready and idle.job is None and pending:
                    idle.job = pending.popleft()
                    idle.conn.send(idle.job)
            ready = set(wait([x.conn for x in live] + [x.process.sentinel for x in live]))
            for i, w in enumerate(pool):
                if w is None:
                    continue
                message: Any = None
                dead = False
                if w.conn in ready:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        dead = True
                elif w.process.sentinel in ready:
                    dead = True
                if message is not None:
                    if message[0] == "ready":
                        w.ready = True
                        start_failures = 0
                        if not first_ready:
                            first_ready = True
                            result.startup_seconds = time.perf_counter() - start
                    elif message[0] == "result" and w.job is not None:
                        w.job = None
                        yield int(message[1]), message[2]
                if not dead:
                    continue
                w.process.join(1.0)
                code = w.process.exitcode
                w.conn.close()
                job, w.job = w.job, None
                pool[i] = _start_worker(ctx, target, options) if pending else None
                if job is not None:
                    result.workers_lost += 1
                    yield job[0], crash_result(job[1], f"its worker process died ({exit_text(code)})")
                elif not w.ready:
                    start_failures += 1
                    if start_failures >= MAX_START_FAILURES:
                        raise SweepError(
                            f"sweep worker processes cannot start ({exit_text(code)}, "
                            f"{start_failures} times in a row)"
                        )
            pool = [w for w in pool if w is not None]
            if pending and not pool:  # every worker died while idle: start them again
                pool = [_start_worker(ctx, target, options) for _ in range(min(workers, len(pending)))]
    finally:
        _stop_workers([w for w in pool if w is not None])


def _stop_workers(pool: Sequence[_Worker]) -> None:
    """Tell idle workers to stop, terminate busy ones, and make sure every one has exited."""
    for w in pool:
        try:
            if w.job is None:
                w.conn.send(None)
            else:
                w.process.terminate()
        except (OSError, ValueError):
            w.process.terminate()
    deadline = time.perf_counter() + WORKER_EXIT_SECONDS
    for w in pool:
        w.process.join(max(0.0, deadline - time.perf_counter()))
        if w.process.is_alive():
            w.process.kill()
            w.process.join(1.0)
        with contextlib.suppress(OSError):
            w.conn.close()
