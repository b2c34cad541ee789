"""Throughput of audit sweeps for `nox -s bench` (reports/bench.md): the same sweep inline, in worker
processes and on Dask (`bench_throughput`, `throughput_markdown`), and the full-size large-model audit
(`bench_sections`)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from vcheck.auditing.plan import SweepPlan
from vcheck.auditing.sweep import INLINE_LME4_PROCESSES, comparable, run_sweep


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
    from vcheck.report.text import large_markdown

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
                large_markdown(res),
            ]
        )
    return text
