"""Audit an implementation against live lme4: built-in examples plus drawn cases, every finding classified.

    result = vcheck.audit(impl, examples=100, seed=0)
    print(result.summary())                    # counts by kind and quantity, cases per second
    for f in result.findings: f.case, f.quantity, f.kind, f.rel_diff, f.explanation

`impl(formula, data, REML)` follows the plug-in protocol (`vcheck.auditing.plugin`).  For each case the
audit calls
impl on a copy of the data, fits lme4 live (`vcheck.reference.lmer`) and `compare`s, with lme4's own
deviance function (`vcheck.reference.devfun`) for the criterion at the implementation's theta and lme4's
fit with the other REML flag to recognise ML-for-REML (both made only when a finding needs them; an
agreement is confirmed by vcheck.core.deviance on lme4's own design, which the property suite holds to lme4's
devfun).  A NotImplementedError from impl is a "model" finding ("model not expressible"): the
implementation cannot fit lme4's model, a difference of model rather than a crash.  Any other exception,
from impl or from lme4, is that case's `error`; the sweep goes on.

Where lme4 runs: by default in two processes of its own (`vcheck.reference.server`), each asked for the
fit of its next cases before the implementation reaches them, so lme4 (35-45 ms of R per small case here)
and the implementation work at the same time; `reference="inline"` runs lme4 in this process's R.  Either
way the reference is `vcheck.reference.lmer`'s record and the findings are the same.

The summary gives cases per second of wall time, the same once lme4 runs (the wait for R and lme4 to
start left out), without the implementation's own time, and per CPU second of all the processes.
`python -m vcheck.auditing.run` runs one audit from the command line (default: vcheck's own lmer).

Cases are independent: `audit_cases(seed, examples)` lists them (built-in examples, then
`draw_case(seed, 0 .. N-1)`), `audit_case(impl, case)` runs one, and `AuditResult` collects any set of
`CaseResult`s.  Everything here pickles and `to_dict()` is plain JSON, so a sweep can be split across
processes or a Dask cluster and merged.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vcheck.auditing.cases import Case
from vcheck.auditing.comparison import KINDS, Comparison, compare
from vcheck.auditing.plugin import Impl, PluginError, submission
from vcheck.core import tolerances
from vcheck.core.record import LmerFit
from vcheck.core.threads import blas_threads

if TYPE_CHECKING:
    from vcheck.auditing.comparison import OnLmeDesign
    from vcheck.reference.server import ReferenceServer


@dataclass
class Finding:
    """One disagreement (or missing quantity) on one case."""

    case: Case
    quantity: str
    kind: str  # "construction", "optimization", "model" or "not available"
    rel_diff: float | None
    explanation: str
    check: str = ""  # "layout", "at its parameters", "at optimum", "model", "-"

    def to_dict(self) -> dict[str, Any]:
        rel = self.rel_diff
        return {
            "case": self.case.to_dict(),
            "quantity": self.quantity,
            "kind": self.kind,
            "check": self.check,
            "rel_diff": rel if rel is None or math.isfinite(rel) else str(rel),
            "explanation": self.explanation,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        rel = d.get("rel_diff")
        return cls(
            case=Case.from_dict(d["case"]),
            quantity=d["quantity"],
            kind=d["kind"],
            rel_diff=float(rel) if rel is not None else None,
            explanation=d["explanation"],
            check=d.get("check", ""),
        )


@dataclass
class CaseResult:
    """One case's outcome: its findings, or the error that stopped it, and where the time went."""

    case: Case
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    impl_seconds: float = 0.0
    reference_seconds: float = 0.0
    comparison: dict[str, Any] | None = None  # Comparison.to_dict(): the full per-quantity table

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "error": self.error,
            "seconds": self.seconds,
            "impl_seconds": self.impl_seconds,
            "reference_seconds": self.reference_seconds,
            "comparison": self.comparison,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseResult:
        return cls(
            case=Case.from_dict(d["case"]),
            findings=[Finding.from_dict(f) for f in d["findings"]],
            error=d.get("error"),
            seconds=d.get("seconds", 0.0),
            impl_seconds=d.get("impl_seconds", 0.0),
            reference_seconds=d.get("reference_seconds", 0.0),
            comparison=d.get("comparison"),
        )


@dataclass
class AuditResult:
    """All cases of one audit.  `rate` is cases per second of wall time over the whole sweep."""

    impl: str
    seed: int
    examples: int
    cases: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time: this process's (embedded R included) plus lme4's in its server
    reference: str = "inline"  # where lme4 ran: "inline" (this process) or "process" (its own)
    startup_wait: float = 0.0  # seconds the audit waited for lme4's process to start R and lme4
    reference_restarts: int = 0  # times lme4's process died and was started again

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.cases for f in c.findings]

    @property
    def errors(self) -> list[CaseResult]:
        return [c for c in self.cases if c.error is not None]

    @property
    def rate(self) -> float:
        """Cases per second of wall time, the implementation's own time included."""
        return len(self.cases) / self.seconds if self.seconds > 0 else math.nan

    @property
    def running_rate(self) -> float:
        """Cases per second of wall time once lme4 is running (the wait for its start-up left out)."""
        running = self.seconds - self.startup_wait
        return len(self.cases) / running if running > 0 else math.nan

    @property
    def audit_rate(self) -> float:
        """Cases per second of the audit itself (drawing, lme4 live, comparing): the implementation's
        time left out, so it measures vcheck, not the implementation under test."""
        own = self.seconds - sum(c.impl_seconds for c in self.cases)
        return len(self.cases) / own if own > 0 else math.nan

    def by_kind(self) -> Counter[str]:
        return Counter(f.kind for f in self.findings)

    def by_kind_and_quantity(self) -> Counter[tuple[str, str]]:
        return Counter((f.kind, f.quantity) for f in self.findings)

    def cases_with(self, kind: str) -> list[CaseResult]:
        return [c for c in self.cases if any(f.kind == kind for f in c.findings)]

    def ok(self, kinds: Iterable[str] = ("construction", "optimization", "model")) -> bool:
        """No finding of these kinds and no case error."""
        bad = set(kinds)
        return not self.errors and not any(f.kind in bad for f in self.findings)

    def summary(self) -> str:
        n = len(self.cases)
        impl_time = sum(c.impl_seconds for c in self.cases)
        ref_time = sum(c.reference_seconds for c in self.cases)
        lines = [
            f"audit of {self.impl}: {n} cases ({n - self.examples} built-in examples, {self.examples} drawn "
            f"with seed {self.seed}) in {self.seconds:.1f} s = {self.rate:.1f} cases/s "
            f"(implementation {impl_time:.1f} s, lme4 {ref_time:.1f} s; "
            f"without the implementation's time {self.audit_rate:.1f} cases/s)",
        ]
        if self.reference == "process":
            lines.append(
                "  lme4 in processes of its own, overlapping the implementation: "
                f"{self.running_rate:.1f} cases/s "
                f"once running (the audit waited {self.startup_wait:.1f} s for R and lme4 to start"
                + (
                    f"; lme4's process was restarted {self.reference_restarts} times"
                    if self.reference_restarts
                    else ""
                )
                + ")"
            )
        if self.cpu_seconds > 0:
            lines.append(
                f"  CPU time {self.cpu_seconds:.1f} s = {n / self.cpu_seconds:.1f} cases per CPU second"
            )
        kinds = self.by_kind()
        for kind in KINDS:
            cases = len(self.cases_with(kind))
            lines.append(f"  {kind:<13} {kinds.get(kind, 0):5d} findings in {cases} cases")
        for (kind, quantity), count in sorted(self.by_kind_and_quantity().items()):
            lines.append(f"    {kind:<13} {quantity:<10} {count}")
        if self.errors:
            lines.append(f"  {len(self.errors)} cases did not run:")
            lines.extend(f"    {c.case.label}: {c.error}" for c in self.errors[:10])
        first: dict[tuple[str, str], Finding] = {}
        for f in self.findings:
            if f.kind != "not available":
                first.setdefault((f.kind, f.quantity), f)
        if first:
            lines.append("  first finding of each kind and quantity:")
            for (kind, quantity), f in sorted(first.items()):
                lines.append(f"    [{kind}] {quantity} on {f.case.label} {f.case.formula}: {f.explanation}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "impl": self.impl,
            "seed": self.seed,
            "examples": self.examples,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "reference": self.reference,
            "startup_wait": self.startup_wait,
            "reference_restarts": self.reference_restarts,
            "rate": self.rate if math.isfinite(self.rate) else None,
            "running_rate": self.running_rate if math.isfinite(self.running_rate) else None,
            "audit_rate": self.audit_rate if math.isfinite(self.audit_rate) else None,
            "by_kind": dict(self.by_kind()),
            "cases": [c.to_dict() for c in self.cases],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditResult:
        return cls(
            impl=d["impl"],
            seed=d["seed"],
            examples=d["examples"],
            cases=[CaseResult.from_dict(c) for c in d["cases"]],
            seconds=d.get("seconds", 0.0),
            cpu_seconds=d.get("cpu_seconds", 0.0),
            reference=d.get("reference", "inline"),
            startup_wait=d.get("startup_wait", 0.0),
            reference_restarts=d.get("reference_restarts", 0),
        )


# --- the cases -----------------------------------------------------------------------------------------
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


# --- one case ------------------------------------------------------------------------------------------
class LmeOracle:
    """lme4 on one case, each answer computed at most once: the fit per REML flag, and lme4's deviance
    function per REML flag (`vcheck.reference.devfun`, built only when a finding needs its numbers).

    In this process's R (`vcheck.reference`), or from a `ReferenceServer` (lme4 in a process of its own,
    which the audit asks for the fit before it runs the implementation) under the case's `key`.  The fit
    of the case's own REML flag carries the conditional modes (extras "modes"); `seconds` is lme4's time.

    `screen` is vcheck.core.deviance on lme4's own design (X, y, Zt, Lind from lme4's fit): no R round trip.
    compare() accepts an agreement it finds and takes every number in a finding from lme4's devfun; the
    property suite checks the two agree to AT_THETA.  `criterion="vcheck"` uses the screen throughout."""

    def __init__(
        self, case: Case, criterion: str = "lme4", server: ReferenceServer | None = None, key: str = ""
    ) -> None:
        if criterion not in ("lme4", "vcheck"):
            raise ValueError(f"criterion must be 'lme4' or 'vcheck', not {criterion!r}")
        self.case = case
        self.how = criterion
        self.server, self.key = server, key
        self._fits: dict[bool, LmerFit] = {}
        self._devfuns: dict[bool, Callable[[np.ndarray], float]] = {}
        self._on_design: OnLmeDesign | None = None
        self.seconds = 0.0

    def fit(self, REML: bool, extras: bool | str | None = None) -> LmerFit:
        """lme4's fit with this REML flag; extras default: "modes" for the case's own flag, else none."""
        from vcheck import reference

        if extras is None:
            extras = "modes" if REML == self.case.REML else False
        cached = self._fits.get(REML)
        if cached is None or (extras and cached.ranef is None):
            if self.server is not None:
                cached = self.server.fit(self.key, REML, extras)
            else:
                t = time.perf_counter()
                cached = reference.lmer(self.case.formula, self.case.data, REML, extras=extras)
                self.seconds += time.perf_counter() - t
            self._fits[REML] = cached
        return cached

    def refit(self, REML: bool) -> LmerFit:
        return self.fit(REML)

    def criterion(self, theta: np.ndarray, REML: bool) -> float:
        """lme4's criterion at theta: lme4's deviance function in R (or the screen, for "vcheck")."""
        if self.how == "vcheck":
            return self.screen(theta, REML)
        if self.server is not None:
            return self.server.criterion(self.key, theta, REML)
        t = time.perf_counter()
        if REML not in self._devfuns:
            from vcheck import reference

            self._devfuns[REML] = reference.devfun(self.case.formula, self.case.data, REML)
        value = float(self._devfuns[REML](np.asarray(theta, dtype=float)))
        self.seconds += time.perf_counter() - t
        return value

    def done(self) -> None:
        """The case is finished: lme4's time on it (CPU time in the server) is added, its data dropped
        there."""
        if self.server is not None:
            self.seconds += self.server.forget(self.key)

    def screen(self, theta: np.ndarray, REML: bool) -> float:
        """vcheck.core.deviance on lme4's own design (X, y, Zt, Lambdat, Lind of lme4's fit): no R call."""
        return self.on_design().criterion(theta, REML)

    def on_design(self) -> OnLmeDesign:
        """vcheck.core.deviance on lme4's design of this case (made once): the screen and profiled sigma."""
        from vcheck.auditing.comparison import OnLmeDesign

        if self._on_design is None:
            self._on_design = OnLmeDesign(self.fit(self.case.REML))
        return self._on_design


def call_impl(impl: Impl, case: Case, data: pd.DataFrame, name: str, result: CaseResult, start: float) -> Any:
    """impl's answer on a copy of the data, or None with the outcome recorded in `result`.

    NotImplementedError is a "model" finding (the model is not expressible there); any other exception
    is this case's error, so the sweep goes on.  impl_seconds and, on failure, seconds are filled in.
    """
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rank drops, convergence notes: the comparison judges the fit
            output = impl(case.formula, data.copy(), case.REML)
    except NotImplementedError as exc:
        result.impl_seconds = time.perf_counter() - t
        text = str(exc)
        if not text.startswith("model not expressible"):  # adapters already say it in their own words
            text = f"model not expressible in {name}" + (f": {text}" if text else "")
        result.findings.append(Finding(case, "model", "model", None, text, check="model"))
        result.seconds = time.perf_counter() - start
        return None
    except Exception as exc:
        result.error = f"{name} raised {type(exc).__name__}: {_one_line(exc)}"
        result.seconds = time.perf_counter() - start
        return None
    result.impl_seconds = time.perf_counter() - t
    return output


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
) -> CaseResult:
    """Run impl and lme4 on one case and compare; never raises for a failing case (see `.error`).

    With `server` (a `vcheck.reference.server.ReferenceServer`), lme4 runs in its process, under `key`
    (the audit may already have asked for the fit there); the fit is asked for before impl runs, so the
    two overlap."""
    start = time.perf_counter()
    result = CaseResult(case=case)
    name = source or _impl_name(impl)
    try:
        data = case.data
    except Exception as exc:  # a case that cannot be rebuilt is this case's error, not the sweep's
        result.error = f"cannot rebuild the case's data: {type(exc).__name__}: {exc}"
        return result
    key = key or f"case-{next(_KEYS)}"
    if server is not None:
        server.prefetch(key, case.formula, data, case.REML)
    oracle = LmeOracle(case, criterion=criterion, server=server, key=key)
    try:
        _compare_case(impl, case, data, name, result, start, oracle, tol_at_theta, tol_optimum, flat_optimum)
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
) -> None:
    output = call_impl(impl, case, data, name, result, start)
    if output is None:
        return
    try:
        sub = submission(output, data_index=data.index, source=name)
        b = oracle.fit(case.REML)
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
    except PluginError as exc:
        result.error = f"{name} broke the plug-in protocol: {_one_line(exc)}"
    except Exception as exc:  # lme4 refusing the case, or R failing: this case did not run
        result.error = f"{type(exc).__name__}: {_one_line(exc)}"
    else:
        result.findings = findings_of(cmp, case)
        result.comparison = cmp.to_dict()


_KEYS = itertools.count()


def findings_of(cmp: Comparison, case: Case) -> list[Finding]:
    """A comparison's non-agreeing rows as findings on `case`."""
    return [
        Finding(case, r.quantity, r.kind or "", r.rel_diff, r.explanation, check=r.check)
        for r in cmp.findings
        if r.kind is not None
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
    """
    if reference not in ("process", "inline"):
        raise ValueError(f"reference must be 'process' or 'inline', not {reference!r}")
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
    options = {
        "tol_at_theta": tol_at_theta,
        "tol_optimum": tol_optimum,
        "criterion": criterion,
        "flat_optimum": flat_optimum,
        "source": label,
    }
    with blas_threads(1):  # R shares the cores: OpenBLAS threads would spin against it
        _run_cases(impl, todo, result, progress, servers, **options)
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


def _impl_name(impl: Any) -> str:
    name = getattr(impl, "name", None) or getattr(impl, "__name__", None) or type(impl).__name__
    module = getattr(impl, "__module__", None)
    return f"{module}:{name}" if module and module not in ("__main__", "builtins") else str(name)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m vcheck.auditing.run [--impl MODULE:CALLABLE] [--examples N] [--seed S]`: one audit, its
    summary.

    Without --impl it audits vcheck's own lmer (which must agree with lme4); the summary's rates are the
    audit's speed (the benchmark of issue 5: cases per second with lme4 live).
    """
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog="python -m vcheck.auditing.run", description=main.__doc__)
    parser.add_argument(
        "--impl",
        default="vcheck.adapters.own:fit",
        help="MODULE:CALLABLE (default vcheck.adapters.own:fit: vcheck's lmer)",
    )
    parser.add_argument("--examples", type=int, default=100, help="drawn cases (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-builtin", action="store_true", help="drawn cases only")
    parser.add_argument("--criterion", choices=("lme4", "vcheck"), default="lme4")
    parser.add_argument("--json", metavar="FILE", help="write the result as JSON")
    args = parser.parse_args(argv)
    module_name, _, attr = args.impl.partition(":")
    impl = getattr(importlib.import_module(module_name), attr or "lmer")
    if isinstance(impl, type):  # a plug-in class: its instance is the callable
        impl = impl()
    result = audit(
        impl, examples=args.examples, seed=args.seed, builtin=not args.no_builtin, criterion=args.criterion
    )
    print(result.summary())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(result.to_json(indent=1))
    return 0
