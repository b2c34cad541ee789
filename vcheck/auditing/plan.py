"""What a sweep runs and what it returns: `SweepPlan` (one audit's cases, in a fixed order) and
`SweepResult` (an `AuditResult` and how the sweep ran).  See `vcheck.auditing.sweep`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcheck.auditing import large
from vcheck.auditing.cases import Case
from vcheck.auditing.results import AuditResult
from vcheck.auditing.run import audit_cases
from vcheck.core.errors import VcheckError

#: lme4's processes serving the cases of a sweep run in this process (`vcheck.reference.server`)
INLINE_LME4_PROCESSES = 2


class SweepError(VcheckError):
    """A sweep that cannot run: a checkpoint of another sweep, workers that cannot start, a bad scheduler."""


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
    lme4_processes: int = INLINE_LME4_PROCESSES  # lme4's processes serving the cases run in this process

    @property
    def not_run(self) -> int:
        """Cases of the plan with no result (an interrupted sweep)."""
        return self.planned - len(self.cases)

    def summary(self) -> str:
        """AuditResult's summary, with the cases counted by origin, how it ran, and any large models
        (`vcheck.report.text.sweep_summary`)."""
        from vcheck.report.text import sweep_summary

        return sweep_summary(self)
