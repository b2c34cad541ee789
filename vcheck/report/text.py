"""The audit's results as text: `AuditResult.summary()` and `SweepResult.summary()` print these, and the
large models' tables (text for the summary, Markdown for reports/bench.md).

Plain functions of a result, importing nothing of the audit at run time but its vocabulary of kinds, so
the result types can call them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vcheck.auditing.kinds import KINDS
from vcheck.auditing.large_models import MODELS

if TYPE_CHECKING:
    from vcheck.auditing.plan import SweepResult
    from vcheck.auditing.results import AuditResult, Finding


def audit_summary(result: AuditResult) -> str:
    """`AuditResult.summary()`: counts by kind and quantity, the rates, the cases that did not run, and
    the first finding of each kind and quantity."""
    n = len(result.cases)
    impl_time = sum(c.impl_seconds for c in result.cases)
    ref_time = sum(c.reference_seconds for c in result.cases)
    lines = [
        f"audit of {result.impl}: {n} cases ({n - result.examples} built-in examples, "
        f"{result.examples} drawn with seed {result.seed}) in {result.seconds:.1f} s "
        f"= {result.rate:.1f} cases/s "
        f"(implementation {impl_time:.1f} s, lme4 {ref_time:.1f} s; "
        f"without the implementation's time {result.audit_rate:.1f} cases/s)",
    ]
    if result.reference == "process":
        lines.append(
            "  lme4 in processes of its own, overlapping the implementation: "
            f"{result.running_rate:.1f} cases/s "
            f"once running (the audit waited {result.startup_wait:.1f} s for R and lme4 to start"
            + (
                f"; lme4's process was restarted {result.reference_restarts} times"
                if result.reference_restarts
                else ""
            )
            + ")"
        )
    if result.cpu_seconds > 0:
        lines.append(
            f"  CPU time {result.cpu_seconds:.1f} s = {n / result.cpu_seconds:.1f} cases per CPU second"
        )
    lines.insert(1, f"  {result.headline()}")
    roots = result.by_root_kind()
    lines.append("  cases by root kind (silent: the implementation warned nothing / warned):")
    for listed in [*KINDS, "agrees"]:
        if listed in roots:
            r = roots[listed]
            lines.append(
                f"    {listed:<13} {r['silent'] + r['warned']:5d} cases "
                f"({r['silent']} silent, {r['warned']} warned)"
            )
    if result.versions:
        lines.append("  audited implementation: " + ", ".join(f"{k} {v}" for k, v in result.versions.items()))
    if result.interrupted:
        lines.append(f"  INTERRUPTED: {result.not_run} of {result.planned} cases did not run")
    kinds = result.by_kind()
    for listed in KINDS:
        cases = len(result.cases_with(listed))
        lines.append(f"  {listed:<13} {kinds.get(listed, 0):5d} findings in {cases} cases")
    for (kind, quantity), count in sorted(result.by_kind_and_quantity().items()):
        lines.append(f"    {kind:<13} {quantity:<10} {count}")
    if result.errors:
        lines.append(f"  {len(result.errors)} cases did not run:")
        lines.extend(f"    {c.case.label}: {c.error}" for c in result.errors[:10])
    first: dict[tuple[str, str], Finding] = {}
    for f in result.findings:
        if f.kind != "not available":
            first.setdefault((f.kind, f.quantity), f)
    if first:
        lines.append("  first finding of each kind and quantity:")
        for (kind, quantity), f in sorted(first.items()):
            lines.append(f"    [{kind}] {quantity} on {f.case.label} {f.case.formula}: {f.explanation}")
    return "\n".join(lines)


def sweep_summary(result: SweepResult) -> str:
    """`SweepResult.summary()`: `audit_summary`, with the cases counted by origin, how the sweep ran, and
    any large models."""
    lines = audit_summary(result).split("\n")
    origins = {o: sum(c.case.origin == o for c in result.cases) for o in ("example", "drawn", "large")}
    parts = [f"{origins['example']} built-in examples", f"{origins['drawn']} drawn with seed {result.seed}"]
    if origins["large"]:
        parts.append(f"{origins['large']} large models")
    plural = "" if result.workers == 1 else "es"
    how = {
        "inline": "in this process"
        + (
            f" (lme4 in {result.lme4_processes} processes of its own)"
            if origins["example"] + origins["drawn"]
            else ""
        ),
        "processes": f"{result.workers} worker process{plural}",
    }.get(result.executor, f"on Dask ({result.workers or '?'} workers)")
    lines[0] = (
        f"audit of {result.impl}: {len(result.cases)} cases ({', '.join(parts)}) {how} in "
        f"{result.seconds:.1f} s ({result.startup_seconds:.1f} s starting) = {result.rate:.1f} cases/s"
        + (f", {result.resumed} resumed from the checkpoint" if result.resumed else "")
    )
    lines.extend(f"  {note}" for note in result.notes)
    if result.workers_lost:
        lines.append(f"  {result.workers_lost} worker(s) died; their cases are reported as errors above")
    table = large_table(result)
    if table:
        lines.append(table)
    if result.interrupted:
        lines.append(
            f"  interrupted: {result.not_run} of {result.planned} cases did not run; the report covers the "
            f"{len(result.cases)} that finished (continue with --resume)"
        )
    return "\n".join(lines)


def large_table(result: Any) -> str:
    """A text table of an audit's large cases: rows, fit times and each quantity's relative difference."""
    lines: list[str] = []
    for one in getattr(result, "cases", []):
        if one.case.origin != "large":
            continue
        model = MODELS.get(one.case.name or "")
        head = f"large model {one.case.name}: {one.case.formula}"
        if model is not None:
            head += f" ({model.description})"
        lines.append(head)
        if one.error is not None:
            lines.append(f"  did not run: {one.error}")
            continue
        lines.append(f"  fits: implementation {one.impl_seconds:.1f} s, lme4 {one.reference_seconds:.1f} s")
        for row in (one.comparison or {}).get("rows", []):
            rel = row.get("rel_diff")
            rel_text = f"{float(rel):9.2e}" if rel is not None else "        -"
            kind = row.get("kind") or ""
            lines.append(
                f"  {row['quantity']:<10} {row['check']:<18} {rel_text}  {row['verdict']:<13} {kind}"
            )
    return "\n".join(lines)


#: the rows of a large case's comparison shown in its Markdown table: (quantity, check)
MARKDOWN_ROWS = [
    ("V", "at its parameters"),
    ("criterion", "at its parameters"),
    ("theta", "at optimum"),
    ("beta", "at optimum"),
    ("sigma", "at optimum"),
    ("criterion", "at optimum"),
    ("V", "at optimum"),
    ("V diagonal", "at optimum"),
    ("V blocks", "at optimum"),
]


def large_markdown(result: Any) -> str:
    """The large cases of an audit as a Markdown table: rows, fit times, relative differences."""
    heads = [f"{q} ({'own theta' if c == 'at its parameters' else 'optimum'})" for q, c in MARKDOWN_ROWS]
    lines = [
        "| model | n | lme4 | implementation | " + " | ".join(heads) + " | findings |",
        "|---|---:|---:|---:|" + "---:|" * len(heads) + "---|",
    ]
    for one in getattr(result, "cases", []):
        if one.case.origin != "large":
            continue
        if one.error is not None:
            lines.append(
                f"| {one.case.name} | | | | {' | '.join('' for _ in heads)} | did not run: {one.error} |"
            )
            continue
        rows = {(r["quantity"], r["check"]): r for r in (one.comparison or {}).get("rows", [])}
        cells = []
        for key in MARKDOWN_ROWS:
            r = rows.get(key)
            rel = None if r is None else r.get("rel_diff")
            cells.append(
                "-"
                if rel is None
                else f"{float(rel):.1e}" + ("" if r and r["verdict"] == "agrees" else " **x**")
            )
        real = sorted({f"{f.kind}: {f.quantity}" for f in one.findings if f.kind != "not available"})
        n = (one.case.spec or {}).get("rows", "")
        lines.append(
            f"| {one.case.name} | {n:,} | {one.reference_seconds:.1f} s | {one.impl_seconds:.1f} s | "
            + " | ".join(cells)
            + f" | {', '.join(real) or 'none'} |"
        )
    return "\n".join(lines) + "\n"
