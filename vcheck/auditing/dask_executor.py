"""The sweep on Dask (`scheduler="local"` or an address): one task per case.

Tasks run on a worker thread, where rpy2's conversion rules (a context variable) are missing: each task
runs inside `localconverter(default_converter)`.  R is started once per worker by a worker plugin, on the
worker's main thread when the plugin runs there (else the warning that R started from another thread
cannot be interrupted with Ctrl-C is silenced: Dask stops its workers itself).  A case whose worker dies
is a `KilledWorker`, reported as that case's error: a LocalCluster started here gives up on a task the
first time its worker dies (`allowed-failures` 0), and the sweep hands the cluster one case per worker
thread at a time, so no queued case shares the fate of the one that killed it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from vcheck.auditing.cases import Case
from vcheck.auditing.plan import SweepError, SweepResult
from vcheck.auditing.processes import children_ignore_sigint
from vcheck.auditing.results import one_line
from vcheck.auditing.worker import crash_result, prepare_once, prepare_worker, run_case


def dask_task(target: str, case: Case, options: dict[str, Any] | None) -> dict[str, Any]:
    """One case as a Dask task, on a worker thread: R ready once per worker (normally by the worker
    plugin), every R call inside rpy2's default conversion rules."""
    prepare_once(target)
    with _r_conversion():
        return run_case(target, case, options)


def _r_conversion() -> contextlib.AbstractContextManager[Any]:
    """rpy2's default conversion rules for this thread (a context variable a new thread lacks)."""
    try:
        from rpy2.robjects import default_converter
        from rpy2.robjects.conversion import localconverter
    except Exception:  # no rpy2 or no R: the cases say so themselves
        return contextlib.nullcontext()
    return localconverter(default_converter)


def worker_plugin(target: str) -> Any:
    """A Dask WorkerPlugin that readies each worker (and each restarted one) for `target` when it
    joins: R started on the worker's event-loop thread (its main thread), SIGINT ignored (the client
    that started the sweep stops it)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class VcheckWorker(WorkerPlugin):
        name = f"vcheck-sweep-{target}"

        def __init__(self, target: str) -> None:
            self.target = target

        def setup(self, worker: Any) -> None:
            warnings.simplefilter("ignore")  # as in worker processes: the report holds the results
            prepare_worker(self.target)

    return VcheckWorker(target)


def dask_results(
    target: str,
    todo: Sequence[tuple[int, Case]],
    scheduler: str,
    workers: int | None,
    options: dict[str, Any] | None,
    result: SweepResult,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The cases as Dask tasks on a LocalCluster started here ("local") or the cluster at `scheduler`."""
    import logging

    try:
        import dask
        from distributed import Client, LocalCluster, as_completed
        from distributed.scheduler import KilledWorker
    except ImportError as exc:
        raise SweepError(f"--scheduler needs dask[distributed] (pip install 'vcheck[audit]'): {exc}") from exc
    if not todo:
        return
    start = time.perf_counter()
    cluster: Any = None
    config = {"distributed.scheduler.allowed-failures": 0}
    with dask.config.set(config), contextlib.ExitStack() as stack:
        # a cluster closed while the scheduler still talks to it (Ctrl-C during start-up) makes asyncio
        # log "Future exception was never retrieved" with a traceback: the sweep reports the interrupt
        quiet = logging.getLogger("asyncio")
        stack.callback(quiet.setLevel, quiet.level)
        quiet.setLevel(logging.CRITICAL)
        try:
            if scheduler == "local":
                with children_ignore_sigint():  # the cluster's worker processes leave Ctrl-C to us
                    cluster = LocalCluster(
                        n_workers=workers or 2,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",  # any free port (8787 may be another cluster's)
                        silence_logs=logging.CRITICAL,  # a dead worker is the case's error
                    )
                stack.callback(cluster.close)
                client = Client(cluster)
            else:
                client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler!r}: {one_line(exc)}") from exc
        stack.callback(client.close)
        client.register_plugin(worker_plugin(target))
        result.startup_seconds = time.perf_counter() - start
        if scheduler != "local":
            result.workers = len(client.scheduler_info().get("workers", {}))
        token = uuid.uuid4().hex[:8]
        pending = deque(todo)
        running: dict[Any, tuple[int, Case]] = {}
        stack.callback(lambda: client.cancel(list(running)))

        def submit() -> Any:
            position, case = pending.popleft()
            future = client.submit(
                dask_task, target, case, options, key=f"vcheck-case-{position}-{token}", pure=False
            )
            running[future] = (position, case)
            return future

        # one case per worker thread at a time: a worker that dies then held only the case it was
        # running, and only that case is reported as killed (queued ones would share its fate)
        for _ in range(min(_threads(client), len(pending))):
            submit()
        finished = as_completed(list(running))
        for future in finished:
            position, case = running.pop(future)
            try:
                payload = future.result()
            except KilledWorker as exc:
                result.workers_lost += 1
                payload = crash_result(case, f"its Dask worker died running it ({one_line(exc)})")
            except Exception as exc:
                payload = crash_result(case, f"Dask failed to run it: {type(exc).__name__}: {one_line(exc)}")
            future.release()
            while pending and len(running) < _threads(client):
                finished.add(submit())
            yield position, payload


def _threads(client: Any) -> int:
    """Worker threads in the cluster now (at least 1: tasks wait for a worker to join)."""
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # the scheduler is going away: one at a time
        return 1
