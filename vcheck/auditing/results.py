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
