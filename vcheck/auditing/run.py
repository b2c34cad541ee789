"""Audit an implementation against live lme4: built-in examples plus drawn cases, every finding classified.

    result = vcheck.audit(impl, examples=100, seed=0)
    print(result.summary())                    # counts by kind and quantity, cases per second
    for f in result.findings: f.case, f.quantity, f.kind, f.rel_diff, f.explanation

`impl(formula, data, REML)` follows the plug-in protocol (`vcheck.auditing.plugin`).  For each case the
audit calls impl on a copy of the data, fits lme4 live (`vcheck.reference.lmer`, through
`vcheck.auditing.oracle.LmeOracle`) and `compare`s, with lme4's own deviance function
(`vcheck.reference.devfun`) for the criterion at the implementation's theta and lme4's fit with the
other REML flag to recognise ML-for-REML (both made only when a finding needs them; an agreement is
confirmed by vcheck.core.deviance on lme4's own design, which the property suite holds to lme4's
devfun).  `vcheck.Unsupported` (or a NotImplementedError) from impl is no finding: the implementation
says it does not fit this model, and the case is recorded as unsupported with its message (the report
lists these once, outside its capabilities).  Any other exception, from impl or from lme4, is that
case's `error`; the sweep goes on.

Where lme4 runs: by default in two processes of its own (`vcheck.reference.server`), each asked for the
fit of its next cases before the implementation reaches them, so lme4 (35-45 ms of R per small case here)
and the implementation work at the same time; `reference="inline"` runs lme4 in this process's R.  Either
way the reference is `vcheck.reference.lmer`'s record and the findings are the same.

The summary gives cases per second of wall time, the same once lme4 runs (the wait for R and lme4 to
start left out), without the implementation's own time, and per CPU second of all the processes.
`python -m vcheck.auditing` runs one audit from the command line (default: vcheck's own lmer).

Cases are independent: `audit_cases(seed, examples)` lists them (built-in examples, then
`draw_case(seed, 0 .. N-1)`), `audit_case(impl, case)` runs one, and `AuditResult`
(`vcheck.auditing.results`) collects any set of `CaseResult`s.  Everything here pickles and `to_dict()`
is plain JSON, so a sweep can be split across processes or a Dask cluster and merged.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from vcheck.auditing.cases import Case
from vcheck.auditing.comparison import Comparison, compare
from vcheck.auditing.kinds import Kind
from vcheck.auditing.large import V_rows, root_kind
from vcheck.auditing.oracle import LmeOracle
from vcheck.auditing.plugin import Impl, PluginError, bind_arguments, submission
from vcheck.auditing.results import AuditResult, CaseResult, Finding, one_line
from vcheck.core import tolerances
from vcheck.core.errors import ArgumentError
from vcheck.core.record import LmerFit
from vcheck.core.threads import blas_threads

if TYPE_CHECKING:
    from vcheck.reference.server import ReferenceServer


def builtin_cases() -> list[Case]:
    """Every built-in example as a case (data loaded from r_reference/frozen when first needed)."""
    from vcheck.reference import examples as builtin

    out = []
    for name in builtin.names():
        ex = builtin.load(name)
        out.append(Case(formula=ex.formula, REML=ex.REML, origin="example", name=name, features=("example",)))
    return out


def audit_cases(seed: int, examples: int, *, builtin: bool = True) -> list[Case]:
    """The audit's cases, in order: the built-in examples (if `builtin`), then drawn cases 0 .. examples-1."""
    from vcheck.auditing.strategies import draw_case

    cases = builtin_cases() if builtin else []
    return cases + [draw_case(seed, i) for i in range(examples)]


#: seconds an implementation may take on one case before its process is stopped and the case is an error
DEFAULT_TIMEOUT = 300.0


def call_impl(
    impl: Impl,
    case: Case,
    data: pd.DataFrame,
    name: str,
    result: CaseResult,
    start: float,
    timeout: float | None = None,
) -> Any:
    """impl's answer on a copy of the data, or None with the outcome recorded in `result`.

    Unsupported or NotImplementedError is no finding: `result.unsupported` holds its message (an
    implementation that says it does not fit a model is not wrong about it).  With `timeout`, impl runs
    in a process of its own (`vcheck.auditing.isolate`) that is stopped after that many seconds; an
    exception, a timeout or a process that died is this case's `error` finding, so the sweep goes on.
    The Python warnings impl issued are kept in `result.warnings`.  impl_seconds and, on failure,
    seconds are filled in.
    """
    from vcheck.auditing import isolate

    t = time.perf_counter()
    try:
        # a case's lmer arguments (weights, offset, ...) bound by name; Unsupported when impl takes none
        bound = bind_arguments(impl, case.args, name)
        output, caught = isolate.call(bound, (case.formula, data.copy(), case.REML), timeout)
    except NotImplementedError as exc:  # vcheck.Unsupported is one
        result.impl_seconds = time.perf_counter() - t
        text = one_line(exc)
        result.unsupported = text or f"{name} raised {type(exc).__name__} without a message"
        result.seconds = time.perf_counter() - start
        return None
    except isolate.Timeout as exc:
        _error(result, case, "timeout", f"{name} timed out: {exc}")
    except isolate.Died as exc:
        _error(result, case, "process", f"{name} died: {exc}")
    except isolate.Raised as exc:
        _error(result, case, "raised", f"{name} raised {exc.type_name}: {exc.message[:300]}")
    except Exception as exc:
        _error(result, case, "raised", f"{name} raised {type(exc).__name__}: {one_line(exc)}")
    else:
        result.impl_seconds = time.perf_counter() - t
        result.warnings = list(dict.fromkeys([*result.warnings, *caught]))
        return output
    result.impl_seconds = time.perf_counter() - t
    result.seconds = time.perf_counter() - start
    return None


def _error(result: CaseResult, case: Case, what: str, text: str) -> None:
    """The case's error: `result.error` and one `error` finding (quantity: what went wrong)."""
    text = " ".join(text.split())
    result.error = text
    result.findings.append(
        Finding(
            case, what, Kind.ERROR, None, text, check="run", implementation_warnings=list(result.warnings)
        )
    )


def audit_case(
    impl: Impl,
    case: Case,
    *,
    tol_at_theta: float = tolerances.AT_THETA,
    tol_optimum: float = tolerances.AT_OPTIMUM,
    criterion: str = "lme4",
    flat_optimum: bool = True,
    source: str | None = None,
    server: ReferenceServer | None = None,
    key: str | None = None,
    timeout: float | None = None,
) -> CaseResult:
    """Run impl and lme4 on one case and compare; never raises for a failing case (see `.error` and its
    `error` finding).  timeout: seconds impl may take, in a process of its own (None: in this one).

    With `server` (a `vcheck.reference.server.ReferenceServer`), lme4 runs in its process, under `key`
    (the audit may already have asked for the fit there); the fit is asked for before impl runs, so the
    two overlap.

    A large case (origin "large", `vcheck.auditing.large`) runs lme4 in this process's R without its
    extras (vcov, ranef, condVar), and for a full record V is also compared by its diagonal and its
    cluster blocks (`vcheck.auditing.large.V_rows`)."""
    start = time.perf_counter()
    result = CaseResult(case=case)
    name = source or _impl_name(impl)
    large = case.origin == "large"
    try:
        data = case.data
    except Exception as exc:  # a case that cannot be rebuilt is this case's error, not the sweep's
        if large:  # R missing for InstEval, ...
            text = f"cannot build the large model's data: {type(exc).__name__}: {one_line(exc)}"
        else:
            text = f"cannot rebuild the case's data: {type(exc).__name__}: {exc}"
        _error(result, case, "data", text)
        return result
    if large:
        server = None
    key = key or f"case-{next(_KEYS)}"
    if server is not None:
        server.prefetch(key, case.formula, data, case.REML)
    oracle = LmeOracle(case, criterion=criterion, server=server, key=key)
    try:
        _compare_case(
            impl, case, data, name, result, start, oracle, tol_at_theta, tol_optimum, flat_optimum, timeout
        )
    finally:
        oracle.done()
        result.reference_seconds = oracle.seconds
        result.seconds = time.perf_counter() - start
    return result


def _compare_case(
    impl: Impl,
    case: Case,
    data: pd.DataFrame,
    name: str,
    result: CaseResult,
    start: float,
    oracle: LmeOracle,
    tol_at_theta: float,
    tol_optimum: float,
    flat_optimum: bool,
    timeout: float | None = None,
) -> None:
    output = call_impl(impl, case, data, name, result, start, timeout)
    if output is None:
        return
    large = case.origin == "large"
    try:
        sub = submission(output, data_index=data.index, source=name)
        given = output.get("criterion") if isinstance(output, Mapping) else None
        if isinstance(given, int | float) and math.isinf(given):  # protocol reads it as absent
            sub.extra["criterion_given"] = float(given)
        b = oracle.fit(case.REML, extras=False) if large else oracle.fit(case.REML)
        cmp = compare(
            sub,
            b,
            criterion=oracle.criterion,
            screen=oracle.on_design().criterion,
            refit=oracle.refit,
            tol_at_theta=tol_at_theta,
            tol_optimum=tol_optimum,
            flat_optimum=flat_optimum,
        )
        if large and isinstance(output, LmerFit):
            extra = V_rows(output, b, tol_optimum)
            root_kind(cmp, extra)
            cmp.rows.extend(extra)
    except PluginError as exc:
        _error(result, case, "output", f"{name} returned what the protocol cannot read: {one_line(exc)}")
    except Exception as exc:  # lme4 refusing the case, or R failing: this case did not run
        _error(
            result,
            case,
            "lme4",
            f"the case did not run (lme4 or R failed): {type(exc).__name__}: {one_line(exc)}",
        )
    else:
        result.warnings = list(dict.fromkeys([*result.warnings, *cmp.warnings]))
        result.versions = dict(cmp.versions) or _module_version(impl)
        result.findings = findings_of(cmp, case, result.warnings)
        result.comparison = cmp.to_dict()


_KEYS = itertools.count()


def findings_of(cmp: Comparison, case: Case, warned: Sequence[str] | None = None) -> list[Finding]:
    """A comparison's root causes as findings on `case`: one per root kind, the root quantity with the
    other differing quantities as its consequences, and what the implementation warned (`warned`, else
    the comparison's own record of it)."""
    words = list(cmp.warnings if warned is None else warned)
    return [
        Finding(
            case,
            c.quantity,
            c.kind,
            c.rel_diff,
            c.explanation,
            check=c.check,
            consequences=list(c.consequences),
            implementation_warnings=words,
        )
        for c in cmp.causes
    ]


def audit(
    impl: Impl,
    examples: int = 100,
    seed: int = 0,
    *,
    builtin: bool = True,
    tol_at_theta: float = tolerances.AT_THETA,
    tol_optimum: float = tolerances.AT_OPTIMUM,
    criterion: str = "lme4",
    flat_optimum: bool = True,
    name: str | None = None,
    progress: Callable[[CaseResult], None] | None = None,
    cases: Sequence[Case] | None = None,
    reference: str = "process",
    lme4_processes: int = 2,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> AuditResult:
    """Audit `impl` on the built-in examples plus `examples` cases drawn with `seed` (the same cases for
    the same seed), against live lme4.

    criterion: "lme4" evaluates lme4's own deviance function in R at the implementation's theta;
    "vcheck" uses vcheck.core.deviance on lme4's design (no extra R round trip).  `cases` replaces the case
    list (e.g. a corpus); `progress` is called after each case.
    reference: "process" runs lme4 in `lme4_processes` processes of their own
    (`vcheck.reference.server.shared`), the cases dealt to them in turn, each AHEAD cases ahead of the
    implementation, so lme4 and the implementation overlap on the machine's cores; "inline" runs lme4
    in this process's R, one case after the other.  The findings are the same.
    timeout: seconds impl may take on one case, in a process of its own that is then stopped (the case
    is an `error`); None runs impl in this process, unguarded.  Ctrl-C stops the audit: the result keeps
    the cases that finished and says it was interrupted.
    """
    if reference not in ("process", "inline"):
        raise ArgumentError(f"reference must be 'process' or 'inline', not {reference!r}")
    label = name or _impl_name(impl)
    start, cpu = time.perf_counter(), time.process_time()
    servers: list[ReferenceServer] = []
    if reference == "process":
        from vcheck.reference import server as reference_server

        servers = reference_server.shared(max(1, lme4_processes))  # R starts there while cases are drawn
        startup_before = sum(s.startup_waited for s in servers)
        restarts_before = sum(s.restarts for s in servers)
    todo = list(cases) if cases is not None else audit_cases(seed, examples, builtin=builtin)
    result = AuditResult(impl=label, seed=seed, examples=examples if cases is None else len(todo))
    result.reference = reference
    result.planned = len(todo)
    options = {
        "timeout": timeout,
        "tol_at_theta": tol_at_theta,
        "tol_optimum": tol_optimum,
        "criterion": criterion,
        "flat_optimum": flat_optimum,
        "source": label,
    }
    with blas_threads(1):  # R shares the cores: OpenBLAS threads would spin against it
        try:
            _run_cases(impl, todo, result, progress, servers, **options)
        except KeyboardInterrupt:
            result.interrupted = True
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = time.process_time() - cpu
    if servers:  # lme4's CPU ran in its processes: its time counts too
        result.cpu_seconds += sum(c.reference_seconds for c in result.cases)
        result.startup_wait = sum(s.startup_waited for s in servers) - startup_before
        result.reference_restarts = sum(s.restarts for s in servers) - restarts_before
    return result


#: cases the audit asks lme4's server for ahead of the one the implementation is fitting
AHEAD = 2


def _run_cases(
    impl: Impl,
    todo: Sequence[Case],
    result: AuditResult,
    progress: Callable[[CaseResult], None] | None,
    servers: Sequence[ReferenceServer] = (),
    **options: Any,
) -> None:
    for one in run_cases(impl, todo, servers, **options):
        result.cases.append(one)
        if progress is not None:
            progress(one)


def run_cases(
    impl: Impl, todo: Sequence[Case], servers: Sequence[ReferenceServer] = (), **options: Any
) -> Iterator[CaseResult]:
    """`audit_case` on each case in turn.  With lme4 `servers`, case i goes to server i mod len(servers),
    which is asked for lme4's fit AHEAD cases (per server) before the implementation reaches it."""
    keys = [f"case-{next(_KEYS)}" for _ in todo]
    asked = 0
    for i, case in enumerate(todo):
        if servers:
            for j in range(asked, min(i + 1 + AHEAD * len(servers), len(todo))):
                with contextlib.suppress(Exception):  # a case whose data cannot be built says so itself
                    servers[j % len(servers)].prefetch(keys[j], todo[j].formula, todo[j].data, todo[j].REML)
                asked = j + 1
        server = servers[i % len(servers)] if servers else None
        yield audit_case(impl, case, server=server, key=keys[i], **options)


def _module_version(impl: Any) -> dict[str, str]:
    """A plug-in module's `__version__` (its top-level package's), when it has one."""
    module = getattr(impl, "__module__", None) or type(impl).__module__
    for name in (module, module.split(".")[0]) if module else ():
        version = getattr(sys.modules.get(name), "__version__", None)
        if version is not None:
            return {name: str(version)}
    return {}


def _impl_name(impl: Any) -> str:
    name = getattr(impl, "name", None) or getattr(impl, "__name__", None) or type(impl).__name__
    module = getattr(impl, "__module__", None)
    return f"{module}:{name}" if module and module not in ("__main__", "builtins") else str(name)
