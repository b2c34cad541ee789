"""Audit sweeps at scale: the cases of one audit in this process, in N worker processes, or on Dask.

    plan = SweepPlan(target="statsmodels", seed=0, examples=200, large=("instEval",))
    result = run_sweep(plan, workers=2, out_dir=Path("reports/audit-statsmodels"))
    result = run_sweep(plan, scheduler="local")            # a LocalCluster started here
    result = run_sweep(plan, scheduler="tcp://host:8786")  # an existing Dask cluster
    result = run_sweep(plan, out_dir=..., resume=True)     # continue an interrupted sweep

The cases are `vcheck.auditing.audit_cases(seed, examples)` plus the large models
(`vcheck.auditing.large`), each
audited on its own by `vcheck.auditing.run.audit_case` (`vcheck.auditing.large.audit_large_case` for a
large one).  The
implementation travels as its spec string (`statsmodels`, `MODULE:CALLABLE`, ...) and each process
resolves it itself; results come back as plain JSON (`CaseResult.to_dict()`, each finding's rel_diff
to 6 significant digits: the digits beyond are floating-point noise that differs between processes,
see `canonical`) and are sorted by the case's position, so the findings, and the report made of them,
are the same whatever ran them.  Worker processes run BLAS single-threaded, as Dask's workers do.

- Processes (`workers=N`): N spawned worker processes (never forked: a fork of a process with an
  embedded R is unsafe), each with its own R started once, each holding one case at a time.  A worker
  that dies (R crashing, `os._exit`, the OOM killer) costs only the case it held: that case's result is
  an error saying so, a new worker takes its place, and the sweep goes on.
- Dask (`scheduler="local"` or an address): one task per case.  Tasks run on a worker thread, where
  rpy2's conversion rules (a context variable) are missing: each task runs inside
  `localconverter(default_converter)`.  R is started once per worker by a worker plugin, on the
  worker's main thread when the plugin runs there (else the warning that R started from another
  thread cannot be interrupted with Ctrl-C is silenced: Dask stops its workers itself).  A case whose
  worker dies is a `KilledWorker`, reported as that case's error: a LocalCluster started here gives up
  on a task the first time its worker dies (`allowed-failures` 0), and the sweep hands the cluster one
  case per worker thread at a time, so no queued case shares the fate of the one that killed it.
- Checkpoint (`out_dir`): every finished case is appended at once to `out_dir/checkpoint.jsonl`, after a
  header naming the target, seed and cases.  Ctrl-C stops the sweep and returns what finished
  (`SweepResult.interrupted`; worker processes ignore SIGINT and are stopped by this process);
  `resume=True` reads the checkpoint, refuses one written for another target, seed or set of cases,
  and runs only the cases it does not hold.  `vcheck audit` removes the checkpoint once the report of
  a complete sweep is written (`discard_checkpoint`).
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import signal
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcheck.auditing.cases import Case
from vcheck.auditing.run import AuditResult, CaseResult
from vcheck.core.errors import VcheckError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from vcheck.auditing.plugin import Impl

#: the checkpoint's file name inside the audit's output directory
CHECKPOINT = "checkpoint.jsonl"
#: version of the checkpoint format
CHECKPOINT_FORMAT = 1
#: consecutive worker start-up failures after which a process sweep gives up
MAX_START_FAILURES = 3
#: seconds a worker gets to exit after the sweep before it is terminated
WORKER_EXIT_SECONDS = 5.0
#: the environment of a worker process: one BLAS thread, as Dask gives its workers
#: (`distributed.nanny.pre-spawn-environ`), so that every executor computes the same bits and N workers
#: do not fight over the cores
WORKER_ENVIRON = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: lme4's processes serving the cases of a sweep run in this process (`vcheck.reference.server`)
INLINE_LME4_PROCESSES = 2

#: significant digits of a finding's relative difference (see `canonical`)
DIGITS = 6

Progress = Callable[[CaseResult], None]


class SweepError(VcheckError):
    """A sweep that cannot run: a checkpoint of another sweep, workers that cannot start, a bad scheduler."""


# --- what a sweep runs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPlan:
    """One audit's cases: built-in examples (if `builtin`), `examples` cases drawn with `seed`, then the
    large models named in `large`, audited against lme4 as `target` (a spec string, resolved by
    `vcheck.adapters.resolve` in whichever process runs a case)."""

    target: str
    seed: int = 0
    examples: int = 20
    builtin: bool = True
    large: tuple[str, ...] = ()

    def cases(self) -> list[Case]:
        """The cases in their fixed order (a case's position is its identity in the checkpoint)."""
        from vcheck.auditing import large
        from vcheck.auditing.run import audit_cases

        return audit_cases(self.seed, self.examples, builtin=self.builtin) + [
            large.case(n) for n in self.large
        ]

    def header(self) -> dict[str, Any]:
        """What the checkpoint records to refuse a resume of another sweep."""
        return {
            "target": self.target,
            "seed": self.seed,
            "cases": self.examples,
            "builtin": self.builtin,
            "large": list(self.large),
        }


@dataclass
class SweepResult(AuditResult):
    """An `AuditResult` (cases sorted by position) and how the sweep ran.

    executor: "inline", "processes" or "dask"; `planned` cases in the plan, `resumed` of them read from
    the checkpoint; `interrupted` when Ctrl-C stopped it (then `len(cases) < planned`);
    `startup_seconds`: until the first worker was ready.
    """

    executor: str = "inline"
    workers: int = 0
    planned: int = 0
    resumed: int = 0
    interrupted: bool = False
    startup_seconds: float = 0.0
    checkpoint: Path | None = None
    workers_lost: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def not_run(self) -> int:
        """Cases of the plan with no result (an interrupted sweep)."""
        return self.planned - len(self.cases)

    def summary(self) -> str:
        """AuditResult's summary, with the cases counted by origin, how it ran, and any large models."""
        from vcheck.auditing import large

        lines = super().summary().split("\n")
        origins = {o: sum(c.case.origin == o for c in self.cases) for o in ("example", "drawn", "large")}
        parts = [f"{origins['example']} built-in examples", f"{origins['drawn']} drawn with seed {self.seed}"]
        if origins["large"]:
            parts.append(f"{origins['large']} large models")
        plural = "" if self.workers == 1 else "es"
        how = {
            "inline": "in this process"
            + (
                f" (lme4 in {INLINE_LME4_PROCESSES} processes of its own)"
                if origins["example"] + origins["drawn"]
                else ""
            ),
            "processes": f"{self.workers} worker process{plural}",
        }.get(self.executor, f"on Dask ({self.workers or '?'} workers)")
        lines[0] = (
            f"audit of {self.impl}: {len(self.cases)} cases ({', '.join(parts)}) {how} in "
            f"{self.seconds:.1f} s ({self.startup_seconds:.1f} s starting) = {self.rate:.1f} cases/s"
            + (f", {self.resumed} resumed from the checkpoint" if self.resumed else "")
        )
        lines.extend(f"  {note}" for note in self.notes)
        if self.workers_lost:
            lines.append(f"  {self.workers_lost} worker(s) died; their cases are reported as errors above")
        table = large.large_table(self)
        if table:
            lines.append(table)
        if self.interrupted:
            lines.append(
                f"  interrupted: {self.not_run} of {self.planned} cases did not run; the report covers the "
                f"{len(self.cases)} that finished (continue with --resume)"
            )
        return "\n".join(lines)


# --- one case, in whatever process runs it -------------------------------------------------------------
_IMPLS: dict[str, Impl] = {}


def resolve(target: str) -> Impl:
    """The implementation named by `target` (cached per process): `vcheck.adapters.resolve`."""
    if target not in _IMPLS:
        from vcheck import adapters

        _IMPLS[target] = adapters.resolve(target)
    return _IMPLS[target]


def run_case(target: str, case: Case, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Audit one case against lme4 in this process; its `CaseResult.to_dict()` (never raises)."""
    from vcheck.auditing.large import audit_large_case
    from vcheck.auditing.run import audit_case

    opts = dict(options or {})
    try:
        impl = resolve(target)
    except Exception as exc:  # an unloadable plug-in fails every case, each saying why
        return CaseResult(case=case, error=f"cannot load {target}: {_one_line(exc)}").to_dict()
    run = audit_large_case if case.origin == "large" else audit_case
    try:
        return canonical(run(impl, case, source=target, **opts).to_dict())
    except Exception as exc:  # audit_case catches the case's own failures; this is anything else
        return CaseResult(case=case, error=f"{type(exc).__name__}: {_one_line(exc)}").to_dict()


def canonical(payload: dict[str, Any]) -> dict[str, Any]:
    """A case result with each finding's rel_diff to `DIGITS` significant digits.

    The digits beyond are floating-point noise that is not the same in every process: SIMD kernels (in
    numpy's BLAS and lme4's Eigen) sum in an order that depends on where an array lands in memory, so
    the same fit differs by a few ulps from one process to the next.  Rounded, a finding (and the report
    made of them) is the same whatever ran it.  The full comparison table keeps every digit.
    """
    for f in payload.get("findings", []):
        rel = f.get("rel_diff")
        if isinstance(rel, float) and math.isfinite(rel) and rel != 0.0:
            f["rel_diff"] = float(f"{rel:.{DIGITS - 1}e}")
    return payload


def prepare_process(target: str) -> None:
    """Make this process ready to run cases: resolve the target, start R once (if it can be started:
    a sweep whose target needs no R reports lme4's absence per case), import the audit's modules."""
    import vcheck.auditing.comparison
    import vcheck.auditing.run
    import vcheck.auditing.strategies  # noqa: F401  (imported once here rather than in the first case)

    with contextlib.suppress(Exception):
        resolve(target)
    with warnings.catch_warnings():
        # R started from a thread other than the main one warns it cannot be interrupted with Ctrl-C;
        # sweep workers are stopped by the sweep (or Dask's nanny), not by Ctrl-C.
        warnings.filterwarnings("ignore", message=r"(?s).*R is not initialized by the main thread")
        with contextlib.suppress(Exception):
            from vcheck.reference import rbridge

            rbridge.session()
            # rpy2.robjects (the R adapters' interface) re-runs rpy2's post-start set-up on import
            # (SIGINT handler, the thread warning): import it here, once, not inside a case
            import rpy2.robjects  # noqa: F401


def _crash_result(case: Case, what: str) -> dict[str, Any]:
    return CaseResult(case=case, error=f"{what}; the sweep went on without this case").to_dict()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# --- the sweep -----------------------------------------------------------------------------------------
def run_sweep(
    plan: SweepPlan,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    options: dict[str, Any] | None = None,
    start_method: str = "spawn",
) -> SweepResult:
    """Run the plan's cases and collect them into a `SweepResult` (cases sorted by position).

    workers: None or 0 runs the cases in this process; N > 0 in N worker processes.  scheduler: "local"
    (a LocalCluster of `workers or 2` single-threaded worker processes) or a Dask scheduler address; it
    takes precedence over `workers`.  out_dir: where the checkpoint goes (no checkpoint without it);
    resume: continue from it.  progress: called with each finished case (resumed ones first).  options:
    keyword arguments of `vcheck.auditing.run.audit_case` (tolerances, criterion).  Ctrl-C (KeyboardInterrupt)
    ends the sweep early with `interrupted` set, never with an exception.
    """
    cases = plan.cases()
    executor = "dask" if scheduler else ("processes" if workers else "inline")
    result = SweepResult(
        impl=plan.target,
        seed=plan.seed,
        examples=plan.examples,
        executor=executor,
        workers=int(workers or (2 if scheduler == "local" else 0)),
        planned=len(cases),
    )
    done: dict[int, CaseResult] = {}
    checkpoint: Checkpoint | None = None
    if out_dir is not None:
        checkpoint = Checkpoint(Path(out_dir) / CHECKPOINT)
        result.checkpoint = checkpoint.path
        if resume and checkpoint.path.exists():
            done = checkpoint.read(plan, cases)
            result.resumed = len(done)
        elif resume:
            result.notes.append(
                f"nothing to resume in {checkpoint.path.parent}: the sweep ran from the start"
            )
        checkpoint.start(plan, len(cases), keep=resume and bool(done))
    if progress is not None:
        for position in sorted(done):
            progress(done[position])
    todo = [(i, c) for i, c in enumerate(cases) if i not in done]
    start = time.perf_counter()
    stream: Iterator[tuple[int, dict[str, Any]]]
    if executor == "dask":
        assert scheduler is not None
        stream = _dask_results(plan.target, todo, scheduler, workers, options, result)
    elif executor == "processes":
        stream = _process_results(plan.target, todo, int(workers or 1), options, result, start_method)
    else:
        stream = _inline_results(plan.target, todo, options, result)
    try:
        for position, payload in stream:
            one = CaseResult.from_dict(payload)
            one.case = cases[position]  # the plan's own Case object (its data cached where built)
            for f in one.findings:
                f.case = one.case
            done[position] = one
            if checkpoint is not None:
                checkpoint.append(position, payload)
            if progress is not None:
                progress(one)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    result.seconds = time.perf_counter() - start
    result.cases = [done[i] for i in sorted(done)]
    return result


def _inline_results(
    target: str, todo: Sequence[tuple[int, Case]], options: dict[str, Any] | None, result: SweepResult
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The cases one after the other in this process, lme4 in INLINE_LME4_PROCESSES processes of its own
    (`vcheck.reference.server`) working ahead of them; large models with lme4 in this process's R."""
    from vcheck.auditing.run import run_cases
    from vcheck.reference import server as reference_server

    t = time.perf_counter()
    prepare_process(target)
    opts = dict(options or {})
    small = [(i, c) for i, c in todo if c.origin != "large"]
    try:
        impl = resolve(target)
    except Exception:
        impl = None
    if impl is not None and small:
        servers = reference_server.shared(INLINE_LME4_PROCESSES)  # they start R while the cases begin
        waited = sum(s.startup_waited for s in servers)
        result.startup_seconds = time.perf_counter() - t
        source = opts.pop("source", target)
        stream = run_cases(impl, [c for _, c in small], servers, source=source, **opts)
        for (position, _), one in zip(small, stream, strict=True):
            # the wait for lme4's processes to start R counts as start-up, not as the cases' time
            now = sum(s.startup_waited for s in servers)
            result.startup_seconds += now - waited
            waited = now
            yield position, canonical(one.to_dict())
    else:
        result.startup_seconds = time.perf_counter() - t
        for position, case in small:
            yield position, run_case(target, case, options)
    for position, case in todo:
        if case.origin == "large":
            yield position, run_case(target, case, options)


# --- worker processes ----------------------------------------------------------------------------------
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
            payload = CaseResult(case=case, error=f"{type(exc).__name__}: {_one_line(exc)}").to_dict()
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
    with _children_ignore_sigint(), _environ(WORKER_ENVIRON):
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
def _children_ignore_sigint() -> Iterator[None]:
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


def _process_results(
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
                    yield job[0], _crash_result(job[1], f"its worker process died ({_exit_text(code)})")
                elif not w.ready:
                    start_failures += 1
                    if start_failures >= MAX_START_FAILURES:
                        raise SweepError(
                            f"sweep worker processes cannot start ({_exit_text(code)}, "
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


# --- Dask ----------------------------------------------------------------------------------------------
def dask_task(target: str, case: Case, options: dict[str, Any] | None) -> dict[str, Any]:
    """One case as a Dask task, on a worker thread: R ready once per worker (normally by the worker
    plugin), every R call inside rpy2's default conversion rules."""
    prepare_once(target)
    with _r_conversion():
        return run_case(target, case, options)


_PREPARED: set[str] = set()


def prepare_worker(target: str) -> None:
    """`prepare_once(target)` in a worker, which leaves Ctrl-C to the process that started the sweep:
    SIGINT ignored afterwards, and blocked meanwhile (starting R, rpy2 installs Python's SIGINT handler,
    and a Ctrl-C then would interrupt R's start-up with a traceback)."""
    if not _main_thread():
        prepare_once(target)
        return
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        prepare_once(target)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # also discards a Ctrl-C that came meanwhile
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def prepare_once(target: str) -> None:
    """`prepare_process(target)` the first time in this process (module-level cache)."""
    if target not in _PREPARED:
        prepare_process(target)
        _PREPARED.add(target)


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


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _dask_results(
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
                with _children_ignore_sigint():  # the cluster's worker processes leave Ctrl-C to us
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
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler!r}: {_one_line(exc)}") from exc
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
                payload = _crash_result(case, f"its Dask worker died running it ({_one_line(exc)})")
            except Exception as exc:
                payload = _crash_result(
                    case, f"Dask failed to run it: {type(exc).__name__}: {_one_line(exc)}"
                )
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


# --- the checkpoint ------------------------------------------------------------------------------------
class Checkpoint:
    """`checkpoint.jsonl`: a header line (the plan), then one line per finished case, appended and
    flushed as each finishes: {"position": i, "result": CaseResult.to_dict()}."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, plan: SweepPlan, total: int, keep: bool) -> None:
        """A new checkpoint for `plan` (or, with `keep`, go on appending to the one that is there)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep:
            return
        header = {"vcheck_checkpoint": CHECKPOINT_FORMAT, **plan.header(), "total": total}
        self.path.write_text(json.dumps(header) + "\n", encoding="utf-8")

    def append(self, position: int, payload: dict[str, Any]) -> None:
        line = json.dumps({"position": position, "result": payload})
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self, plan: SweepPlan, cases: Sequence[Case]) -> dict[int, CaseResult]:
        """The finished cases of the same plan; SweepError for a checkpoint of another sweep.

        A line that cannot be read (the last one, cut by a crash) is skipped: that case runs again.
        """
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("vcheck_checkpoint") != CHECKPOINT_FORMAT:
            raise SweepError(f"cannot resume: {self.path} is not a vcheck sweep checkpoint")
        mine = plan.header()
        theirs = {k: header.get(k) for k in mine}
        if theirs != mine:
            diffs = ", ".join(
                f"{k} {theirs[k]!r} there, {mine[k]!r} here" for k in mine if theirs[k] != mine[k]
            )
            raise SweepError(
                f"cannot resume: {self.path} belongs to another sweep ({diffs}); rerun with the same "
                "target, --seed, --cases and --large, or without --resume to start afresh"
            )
        done: dict[int, CaseResult] = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                position = int(entry["position"])
                one = CaseResult.from_dict(entry["result"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            if not 0 <= position < len(cases):
                raise SweepError(
                    f"cannot resume: {self.path} holds case {position}, this sweep has {len(cases)}"
                )
            if one.case.to_dict(with_data=False) != cases[position].to_dict(with_data=False):
                raise SweepError(
                    f"cannot resume: case {position} in {self.path} is {one.case.label} "
                    f"{one.case.formula!r}, this sweep's is {cases[position].label} "
                    f"{cases[position].formula!r} (vcheck's cases changed); rerun without --resume"
                )
            one.case = cases[position]
            for f in one.findings:
                f.case = one.case
            done[position] = one
        return done


def discard_checkpoint(result: SweepResult) -> None:
    """Remove a complete sweep's checkpoint (once its report is written): nothing is left to resume."""
    if result.checkpoint is not None and not result.interrupted and result.not_run == 0:
        with contextlib.suppress(FileNotFoundError):
            result.checkpoint.unlink()


# --- throughput (nox -s bench) -------------------------------------------------------------------------
def comparable(result: AuditResult) -> list[dict[str, Any]]:
    """What must be the same whatever ran the sweep: per case, its address, findings and error, and its
    comparison table's verdicts; no timings, and no differences of quantities that agree (those are
    floating-point noise, see `canonical`)."""
    out = []
    for c in result.cases:
        d = c.to_dict()
        table = d.pop("comparison", None) or {}
        for key in ("seconds", "impl_seconds", "reference_seconds"):
            d.pop(key, None)
        d["verdicts"] = [(r["quantity"], r["check"], r["verdict"], r["kind"]) for r in table.get("rows", [])]
        out.append(d)
    return out


def bench_throughput(
    target: str = "vcheck", cases: int = 40, seed: int = 0, dask: bool = True
) -> list[dict[str, Any]]:
    """Cases per second of one sweep (`cases` drawn cases, no built-in examples) run inline, in 1 and
    2 worker processes and on a 2-worker LocalCluster; each row also says whether its findings equal
    the inline run's.  Wall time includes starting the workers (R included), given apart."""
    plan = SweepPlan(target=target, seed=seed, examples=cases, builtin=False)
    runs: list[tuple[str, dict[str, Any]]] = [
        (f"in this process, lme4 in {INLINE_LME4_PROCESSES} processes", {}),
        ("1 worker process", {"workers": 1}),
        ("2 worker processes", {"workers": 2}),
    ]
    if dask:
        runs.append(("Dask LocalCluster, 2 workers", {"scheduler": "local", "workers": 2}))
    rows: list[dict[str, Any]] = []
    reference: list[dict[str, Any]] | None = None
    for label, kwargs in runs:
        res = run_sweep(plan, **kwargs)
        same = comparable(res)
        if reference is None:
            reference = same
        rows.append(
            {
                "executor": label,
                "cases": len(res.cases),
                "seconds": res.seconds,
                "startup_seconds": res.startup_seconds,
                "cases_per_second": res.rate,
                "cases_per_second_after_startup": len(res.cases)
                / max(res.seconds - res.startup_seconds, 1e-9),
                "errors": len(res.errors),
                "same_findings": same == reference,
            }
        )
    return rows


def throughput_markdown(rows: Sequence[dict[str, Any]], target: str = "vcheck", seed: int = 0) -> str:
    """The throughput rows as a Markdown section for reports/bench.md."""
    n = rows[0]["cases"] if rows else 0
    lines = [
        "## Audit sweep throughput",
        "",
        f"`vcheck audit {target}` on {n} drawn cases (seed {seed}, no built-in examples): the same sweep",
        "run in this process (`--workers 0`: lme4 in processes of its own, working ahead), in worker",
        "processes (`--workers N`, each with lme4 in its own R) and on a local Dask cluster",
        "(`--scheduler local`).  Wall time includes starting the workers and their R (start-up, given",
        "apart).",
        "",
        "| executor | cases | wall | start-up | cases/s | cases/s after start-up | errors | same findings |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rate = r["cases_per_second"]
        lines.append(
            f"| {r['executor']} | {r['cases']} | {r['seconds']:.1f} s | {r['startup_seconds']:.1f} s "
            f"| {rate:.1f} | {r['cases_per_second_after_startup']:.1f} | {r['errors']} "
            f"| {'yes' if r['same_findings'] else '**no**'} |"
            if math.isfinite(rate)
            else f"| {r['executor']} | 0 | - | - | - | - | - | - |"
        )
    lines.append("")
    lines.append(f"{os.cpu_count()} CPUs, shared with other work while measured: indicative only.")
    return "\n".join(lines) + "\n"


def bench_sections(
    cases: int = 30,
    seed: int = 0,
    large_models: Sequence[str] = ("instEval", "slope200k"),
    log: Callable[[str], None] = print,
) -> str:
    """The Markdown `nox -s bench` appends to reports/bench.md: sweep throughput (`bench_throughput`) and
    the full-size large-model audit of vcheck against lme4 (`vcheck audit vcheck --cases 0 --large ...
    --workers 2` without the built-in examples)."""
    from vcheck.auditing import large

    log(f"bench: audit sweep throughput ({cases} cases, inline, 1 and 2 workers, Dask) ...")
    rows = bench_throughput(cases=cases, seed=seed)
    for r in rows:
        log(f"  {r['executor']}: {r['cases_per_second']:.2f} cases/s ({r['seconds']:.1f} s)")
    text = "\n" + throughput_markdown(rows, seed=seed)
    if large_models:
        names = ",".join(large_models)
        log(f"bench: large-model audit ({names}) in 2 worker processes ...")
        res = run_sweep(
            SweepPlan(target="vcheck", examples=0, builtin=False, large=tuple(large_models)), workers=2
        )
        text += "\n".join(
            [
                "",
                "## Large-model audit: vcheck against lme4",
                "",
                f"`vcheck audit vcheck --cases 0 --large {names} --workers 2` (here without the built-in",
                f"examples), {res.seconds:.0f} s in all.  V is compared without an n x n matrix: by",
                "`V_operator` probes (||V_a P - V_b P|| / ||V_b P||, 8 Gaussian columns), its diagonal, and",
                'its cluster blocks where the clusters are small; "own theta" rows are lme4\'s',
                'construction at vcheck\'s parameters (construction, tolerance 1e-10), "optimum" rows',
                "vcheck's fit against lme4's (tolerance 1e-6).  Fit times are per process, both running",
                "side by side.",
                "",
                large.large_markdown(res),
            ]
        )
    return text


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
