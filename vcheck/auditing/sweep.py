"""Audit sweeps at scale: the cases of one audit in this process, in N worker processes, or on Dask.

    plan = SweepPlan(target="statsmodels", seed=0, examples=200, large=("instEval",))
    result = run_sweep(plan, workers=2, out_dir=Path("reports/audit-statsmodels"))
    result = run_sweep(plan, scheduler="local")            # a LocalCluster started here
    result = run_sweep(plan, scheduler="tcp://host:8786")  # an existing Dask cluster
    result = run_sweep(plan, out_dir=..., resume=True)     # continue an interrupted sweep

The cases are `vcheck.auditing.run.audit_cases(seed, examples)` plus the large models
(`vcheck.auditing.large`), each audited on its own by `vcheck.auditing.run.audit_case`.  The
implementation travels as its spec string (`statsmodels`, `MODULE:CALLABLE`, ...) and each process
resolves it itself (`vcheck.auditing.worker`); results come back as plain JSON (`CaseResult.to_dict()`,
each finding's rel_diff to 6 significant digits: the digits beyond are floating-point noise that differs
between processes, see `canonical`) and are sorted by the case's position, so the findings, and the
report made of them, are the same whatever ran them.  Worker processes run BLAS single-threaded, as
Dask's workers do.

The plan and result are in `vcheck.auditing.plan`, the executors in `vcheck.auditing.processes` and
`vcheck.auditing.dask_executor`, the checkpoint in `vcheck.auditing.checkpoint`; this module runs them.

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

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from vcheck.auditing.cases import Case
from vcheck.auditing.checkpoint import CHECKPOINT, Checkpoint
from vcheck.auditing.dask_executor import dask_results
from vcheck.auditing.plan import INLINE_LME4_PROCESSES, SweepPlan, SweepResult
from vcheck.auditing.processes import process_results
from vcheck.auditing.results import AuditResult, CaseResult
from vcheck.auditing.run import run_cases
from vcheck.auditing.worker import canonical, prepare_process, resolve, run_case
from vcheck.reference import server as reference_server

Progress = Callable[[CaseResult], None]


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
        stream = dask_results(plan.target, todo, scheduler, workers, options, result)
    elif executor == "processes":
        stream = process_results(plan.target, todo, int(workers or 1), options, result, start_method)
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
