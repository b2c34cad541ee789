"""An audit over an implementation's configurations, on cases within its capabilities.

    result = audit_configurations("statsmodels", seed=0, examples=60)        # every configuration
    result = audit_configurations("statsmodels[method=lbfgs]", examples=60)  # one
    result = audit_configurations("mypkg:fit", families={"intercept", "REML", "ML"})

Each configuration is one sweep (`vcheck.auditing.sweep.run_sweep`) of the same cases, its target the
configured spec string `TARGET[CONFIG]`, which every process resolves itself.  The cases are a
`CapablePlan`: the built-in examples and the first N drawn cases whose needs lie within the
implementation's declared capabilities (narrowed by `families`); the rest are counted as left out.
The sweeps are merged into one `SweepResult`, every case result and finding tagged with its
configuration, a line per configuration in its notes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcheck.auditing import capabilities as caps
from vcheck.auditing import configurations as confs
from vcheck.auditing.cases import Case
from vcheck.auditing.plan import SweepPlan, SweepResult
from vcheck.auditing.strategies import drawn_within

__all__ = ["CapablePlan", "audit_configurations", "plan_configurations"]


@dataclass(frozen=True)
class CapablePlan(SweepPlan):
    """A SweepPlan whose cases lie within `capabilities` (empty: no restriction, the plain plan)."""

    capabilities: tuple[str, ...] = ()

    def restricted(self) -> bool:
        return bool(self.capabilities) and not set(caps.FAMILIES) <= set(self.capabilities)

    def cases(self) -> list[Case]:
        if not self.restricted():
            return super().cases()
        from vcheck.auditing import large
        from vcheck.auditing.run import builtin_cases

        have = frozenset(self.capabilities)
        builtins = [c for c in (builtin_cases() if self.builtin else []) if not caps.missing(_needs(c), have)]
        larges = [c for c in (large.case(n) for n in self.large) if not caps.missing(_needs(c), have)]
        return builtins + drawn_within(self.seed, self.examples, have) + larges

    def left_out(self) -> dict[str, int]:
        """Cases not audited for lacking a capability: {first capability lacking: number of cases}
        (built-in examples, large models, and drawn cases skipped over)."""
        if not self.restricted():
            return {}
        from vcheck.auditing import large
        from vcheck.auditing.run import builtin_cases
        from vcheck.auditing.specs import draw_spec

        have = frozenset(self.capabilities)
        counts: Counter[str] = Counter()
        fixed = (builtin_cases() if self.builtin else []) + [large.case(n) for n in self.large]
        for c in fixed:
            lacking = caps.missing(_needs(c), have)
            if lacking:
                counts[lacking[0]] += 1
        last = max((c.index or 0 for c in self.cases() if c.origin == "drawn"), default=-1)
        for i in range(last + 1):
            lacking = caps.missing(caps.spec_needs(draw_spec(self.seed, i)), have)
            if lacking:
                counts[lacking[0]] += 1
        return dict(counts)

    def header(self) -> dict[str, Any]:
        if not self.restricted():
            return super().header()
        return {**super().header(), "capabilities": sorted(self.capabilities)}


def _needs(case: Case) -> frozenset[str]:
    if case.spec is not None and case.origin in ("drawn", "spec"):
        from vcheck.auditing.specs import CaseSpec

        return caps.spec_needs(CaseSpec.from_dict(case.spec))
    return caps.needs_of(case.formula, case.data, case.REML)


def plan_configurations(
    target: str, config: str | None = None
) -> tuple[str, Any, list[confs.Configuration | None]]:
    """(base target, its implementation, the configurations to audit): the one in a bracket or
    `config`, else every declared one, else [None] (the implementation as it is)."""
    from vcheck.auditing.worker import resolve  # loads the target by its name, as every process does

    base, bracket = confs.split_target(target)
    impl = resolve(base)
    chosen = bracket if bracket is not None else config
    if chosen is not None:
        return base, impl, [confs.parse(chosen, impl)]
    declared = list(confs.declared(impl).values())
    return base, impl, list(declared) or [None]


def audit_configurations(
    target: str,
    *,
    config: str | None = None,
    seed: int = 0,
    examples: int = 20,
    builtin: bool = True,
    large: Iterable[str] = (),
    families: Iterable[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: Callable[[Any], None] | None = None,
    options: dict[str, Any] | None = None,
) -> SweepResult:
    """Audit every configuration of `target` (or the one named) on the same cases; one merged result."""
    from vcheck.auditing.sweep import run_sweep

    base, impl, configurations = plan_configurations(target, config)
    declared = caps.declared(impl)
    have = declared & frozenset(families) if families is not None else declared
    several = len(configurations) > 1
    results: list[SweepResult] = []
    plan: CapablePlan | None = None
    for conf in configurations:
        plan = CapablePlan(
            target=confs.with_config(base, conf) if conf is not None else base,
            seed=seed,
            examples=examples,
            builtin=builtin,
            large=tuple(large),
            capabilities=tuple(sorted(have)),
        )
        where = out_dir
        if out_dir is not None and several:
            where = Path(out_dir) / "checkpoints" / _safe(str(conf))
            where.mkdir(parents=True, exist_ok=True)
        one = run_sweep(
            plan,
            workers=workers,
            scheduler=scheduler,
            out_dir=where,
            resume=resume,
            progress=progress,
            options=options,
        )
        name = None if conf is None else conf.name
        for c in one.cases:
            c.configuration = name
            for f in c.findings:
                f.configuration = name
        results.append(one)
        if one.interrupted:
            break
    assert plan is not None
    merged = _merge(base, results)
    if plan.restricted():  # the capabilities limit what is audited: the report says what and how much
        merged.capabilities = [c for c in caps.ALL if c in have]
        merged.outside = plan.left_out()
    merged.notes.extend(_notes(merged, several))
    return merged


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "default"


def _merge(base: str, results: list[SweepResult]) -> SweepResult:
    first = results[0]
    if len(results) == 1:
        return first
    merged = SweepResult(
        impl=base,
        seed=first.seed,
        examples=first.examples,
        executor=first.executor,
        workers=first.workers,
        reference=first.reference,
        lme4_processes=first.lme4_processes,
    )
    for r in results:
        merged.cases.extend(r.cases)
        merged.seconds += r.seconds
        merged.cpu_seconds += r.cpu_seconds
        merged.startup_wait += r.startup_wait
        merged.startup_seconds += r.startup_seconds
        merged.planned += r.planned
        merged.resumed += r.resumed
        merged.workers_lost += r.workers_lost
        merged.reference_restarts += r.reference_restarts
        merged.interrupted = merged.interrupted or r.interrupted
        merged.notes.extend(n for n in r.notes if n not in merged.notes)
    merged.checkpoint = first.checkpoint
    return merged


def _notes(result: SweepResult, several: bool) -> list[str]:
    """A line per configuration (cases with findings by kind) and the unsupported cases, for summaries."""
    lines = []
    if several or any(c.configuration for c in result.cases):
        by: dict[str, list[Any]] = {}
        for c in result.cases:
            by.setdefault(c.configuration or "default", []).append(c)
        for name, cases in by.items():
            kinds = Counter(
                k for c in cases for k in {f.kind for f in c.findings if f.kind != "not available"}
            )
            found = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
            unsupported = sum(c.unsupported is not None for c in cases)
            lines.append(
                f"configuration {name}: {len(cases)} cases; cases with findings: {found}"
                + (f"; {unsupported} unsupported" if unsupported else "")
            )
    messages = Counter(c.unsupported for c in result.cases if c.unsupported)
    if messages:
        lines.append(f"unsupported (not findings, not counted against it): {sum(messages.values())} cases")
        lines.extend(f"  {n} x {m}" for m, n in messages.most_common(5))
    if result.outside:
        text = ", ".join(f"{k} {n}" for k, n in result.outside.items())
        lines.append(
            f"not audited, outside the declared capabilities ({', '.join(result.capabilities)}): {text}"
        )
    return lines
