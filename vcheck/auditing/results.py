"""What an audit finds: `Finding` (one disagreement on one case), `CaseResult` (one case's findings,
error and timings) and `AuditResult` (every case of one audit, with its rates).

All three pickle, and `to_dict()` / `from_dict()` round-trip them through plain JSON, so the cases of
one audit can run in other processes or on a Dask cluster and be merged here.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vcheck.auditing.cases import Case
from vcheck.auditing.kinds import FAIL_ON_ALL, KINDS, Check, Kind


@dataclass
class Finding:
    """One root cause of disagreement on one case (or the quantities it does not give, or its error).

    quantity: the root quantity; consequences: the other quantities that differ because of it, each
    {"quantity", "check", "rel_diff"}; implementation_warnings: the convergence flags and warnings the
    implementation itself gave on this case; silent: it gave none (the dangerous findings)."""

    case: Case
    quantity: str
    kind: Kind | str  # a vcheck.auditing.kinds.Kind
    rel_diff: float | None
    explanation: str
    check: Check | str = ""  # "layout", "at its parameters", "at optimum", "model", "-", "run"
    consequences: list[dict[str, Any]] = field(default_factory=list)
    implementation_warnings: list[str] = field(default_factory=list)

    @property
    def silent(self) -> bool:
        """True when the implementation gave no warning or convergence flag on this case."""
        return not self.implementation_warnings

    configuration: str | None = None  # the implementation's configuration (vcheck.auditing.configurations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case.to_dict(),
            "quantity": self.quantity,
            "kind": str(self.kind),
            "check": self.check,
            "rel_diff": _json_float(self.rel_diff),
            "explanation": self.explanation,
            "consequences": [{**c, "rel_diff": _json_float(c.get("rel_diff"))} for c in self.consequences],
            "implementation_warnings": list(self.implementation_warnings),
            "silent": self.silent,
            "configuration": self.configuration,
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
            consequences=[
                {**c, "rel_diff": None if c.get("rel_diff") is None else float(c["rel_diff"])}
                for c in d.get("consequences", [])
            ],
            implementation_warnings=list(d.get("implementation_warnings", [])),
            configuration=d.get("configuration"),
        )


def _json_float(x: Any) -> Any:
    """JSON has no inf/nan: those become strings."""
    return x if x is None or math.isfinite(x) else str(x)


def root_kind(findings: Iterable[Finding]) -> str | None:
    """A case's root kind: the first of KINDS among its findings (error first, not available last)."""
    present = {str(f.kind) for f in findings}
    return next((str(k) for k in KINDS if k in present), None)


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
    warnings: list[str] = field(default_factory=list)  # what the implementation warned on this case
    versions: dict[str, str] = field(default_factory=dict)  # the implementation's versions, as it gave them

    @property
    def root_kind(self) -> str | None:
        """The case's root kind (`root_kind`; error when it did not run); None when everything agrees."""
        if self.error is not None:
            return str(Kind.ERROR)
        found = root_kind(self.findings)
        return "unsupported" if found is None and self.unsupported is not None else found

    configuration: str | None = None  # the implementation's configuration the case ran in
    unsupported: str | None = None  # why the implementation does not fit it (vcheck.Unsupported): no finding

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "root_kind": self.root_kind,
            "warnings": list(self.warnings),
            "versions": dict(self.versions),
            "error": self.error,
            "configuration": self.configuration,
            "unsupported": self.unsupported,
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
            warnings=list(d.get("warnings", [])),
            versions=dict(d.get("versions", {})),
            configuration=d.get("configuration"),
            unsupported=d.get("unsupported"),
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
    planned: int = 0  # cases the audit set out to run (0: unknown, taken as len(cases))
    interrupted: bool = False  # Ctrl-C stopped it: `not_run` cases have no result

    @property
    def not_run(self) -> int:
        """Cases of the plan with no result (an interrupted audit)."""
        return max(self.planned - len(self.cases), 0)

    @property
    def versions(self) -> dict[str, str]:
        """The audited implementation's versions, as its answers gave them (first seen wins)."""
        out: dict[str, str] = {}
        for c in self.cases:
            for k, v in c.versions.items():
                out.setdefault(k, v)
        return out

    def by_root_kind(self) -> dict[str, dict[str, int]]:
        """Cases by root kind, each split into "silent" (the implementation warned nothing) and "warned";
        "agrees" for cases with no finding at all."""
        out: dict[str, dict[str, int]] = {}
        for c in self.cases:
            kind = c.root_kind or "agrees"
            how = "warned" if c.warnings else "silent"
            entry = out.setdefault(kind, {"silent": 0, "warned": 0})
            entry[how] += 1
        return out

    def failing(self, kinds: Iterable[str] = FAIL_ON_ALL) -> list[str]:
        """Which of `kinds` the audit found (an error, a case that did not run, counts as error)."""
        found = {str(f.kind) for f in self.findings}
        if self.errors:
            found.add(str(Kind.ERROR))
        return [str(k) for k in kinds if str(k) in found]

    def headline(self) -> str:
        """One honest line: never agreement when a case errored, timed out, did not run or was cut off."""
        n = len(self.cases)
        roots = self.by_root_kind()
        bad = [k for k in KINDS if k != Kind.NOT_AVAILABLE and k in roots]
        parts = [f"{sum(roots[k].values())} {k}" for k in bad]
        tail = ""
        if self.interrupted:
            tail = f"; INTERRUPTED: {self.not_run} of {self.planned} cases did not run"
        if n == 0:
            return f"{self.impl}: no case ran{tail}"
        if Kind.ERROR in roots and roots[Kind.ERROR]["silent"] + roots[Kind.ERROR]["warned"] == n:
            return f"{self.impl}: every case failed to run or could not be read ({n} errors){tail}"
        skipped = sum(roots.get("unsupported", {}).values())
        if skipped:
            tail = f"; {skipped} cases it does not support were not fitted{tail}"
        if not bad:
            na = " (some quantities not available)" if Kind.NOT_AVAILABLE in roots else ""
            if skipped == n:
                return f"{self.impl}: no case was fitted{tail}"
            ran = n - skipped
            return (
                f"{self.impl} agrees with lme4 on every quantity it gives in all {ran} cases it "
                f"fitted{na}{tail}"
            )
        flagged = sum(sum(roots[k].values()) for k in bad)
        silent = sum(roots[k]["silent"] for k in bad)
        return (
            f"{self.impl}: findings in {flagged} of {n} cases ({silent} of them silent: no warning from "
            f"{self.impl}); by root kind {', '.join(parts)}{tail}"
        )

    capabilities: list[str] = field(default_factory=list)  # what the implementation declares
    outside: dict[str, int] = field(default_factory=dict)  # capability -> cases left out for lacking it
    reproducers: list[dict[str, Any]] = field(default_factory=list)  # folders written for the findings

    @property
    def unsupported(self) -> list[CaseResult]:
        """Cases the implementation said it does not fit (not findings)."""
        return [c for c in self.cases if c.unsupported is not None]

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

    def ok(self, kinds: Iterable[str] = FAIL_ON_ALL) -> bool:
        """No finding of these kinds, no case that did not run, and not interrupted."""
        return not self.errors and not self.failing(kinds) and not self.interrupted

    def summary(self) -> str:
        """Counts by kind and quantity, rates, errors and the first finding of each kind
        (`vcheck.report.text.audit_summary`)."""
        from vcheck.report.text import audit_summary

        return audit_summary(self)

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
            "by_root_kind": self.by_root_kind(),
            "headline": self.headline(),
            "versions": self.versions,
            "planned": self.planned,
            "interrupted": self.interrupted,
            "cases": [c.to_dict() for c in self.cases],
            "capabilities": list(self.capabilities),
            "outside": dict(self.outside),
            "reproducers": list(self.reproducers),
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
            planned=d.get("planned", 0),
            interrupted=d.get("interrupted", False),
            capabilities=list(d.get("capabilities", [])),
            outside=dict(d.get("outside", {})),
            reproducers=list(d.get("reproducers", [])),
        )


def one_line(exc: BaseException) -> str:
    """An exception's message as one line of at most 300 characters (for a case's error)."""
    return " ".join(str(exc).split())[:300]
