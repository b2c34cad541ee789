"""The benchmark's report: Markdown tables, summary ratios and the scaling plot (`vcheck.bench`).

Ratio = vcheck's time / lme4's time on the same case in the same process.  A criterion counts as
"as good" when vcheck's is at most lme4's plus max(CRITERION_ABS, CRITERION_REL |criterion|)
(`vcheck.core.tolerances`: two optimizers stopping within xtol of one flat optimum).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from pathlib import Path

from vcheck.bench_cases import HEADLINE_GOALS
from vcheck.bench_timing import Timing
from vcheck.core import tolerances

#: issue 15's goals on lme4's test models
CORPUS_MEDIAN_GOAL = 0.5
CORPUS_WORST_GOAL = 1.0


def _t(s: float) -> str:
    if math.isnan(s):
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _f(x: float, fmt: str = ".2f") -> str:
    return "-" if math.isnan(x) else format(x, fmt)


def criterion_ok(t: Timing) -> bool:
    slack = max(tolerances.CRITERION_ABS, tolerances.CRITERION_REL * abs(t.criterion))
    return t.criterion_diff <= slack


def _table(rows: list[Timing], goals: dict[str, float] | None = None) -> list[str]:
    head = "| case | n | vcheck | vcheck, 1 thread | lme4 | ratio | ratio, 1 thread |"
    head += " goal |" if goals else ""
    head += " feval vcheck / lme4 | criterion diff | as good | peak MB vcheck / lme4 |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for t in rows:
        name = t.case.name.replace("|", "\\|")  # a formula's bar would end the table cell
        if t.error:
            out.append(f"| {name} | {t.n or '-'} | error: {t.error} |")
            continue
        goal = ""
        if goals:
            g = goals.get(t.case.name)
            goal = f" <= {g} ({'yes' if t.ratio <= g else '**no**'}) |" if g else " |"
        out.append(
            f"| {name} | {t.n:,} | {_t(t.vcheck_s)} | {_t(t.vcheck_1t_s)} | {_t(t.lme4_s)} "
            f"| {_f(t.ratio, '.3f')} | {_f(t.ratio_1t, '.3f')} |{goal} {t.vcheck_feval} / {t.lme4_feval} "
            f"| {t.criterion_diff:.1e} | {'yes' if criterion_ok(t) else '**no**'} "
            f"| {_f(t.vcheck_mb, '.1f')} / {_f(t.lme4_mb, '.1f')} |"
        )
    return out


def _summary(label: str, rows: list[Timing]) -> str:
    ok = [t for t in rows if not t.error]
    if not ok:
        return f"- {label}: no case ran"
    ratios = [t.ratio for t in ok]
    worst = max(ok, key=lambda t: t.ratio)
    bad = [t.case.name for t in ok if not criterion_ok(t)]
    return (
        f"- {label}: {len(ok)} of {len(rows)} cases ran; median ratio {statistics.median(ratios):.3f}, "
        f"worst {worst.ratio:.3f} ({worst.case.name}); median ratio with one BLAS thread "
        f"{statistics.median(t.ratio_1t for t in ok):.3f}; criterion as good as lme4's on "
        f"{len(ok) - len(bad)} of {len(ok)}" + (f" (not: {', '.join(bad)})" if bad else "")
    )


def plot_scaling(rows: list[Timing], path: Path) -> None:
    """Time against rows (log-log), one panel per model, vcheck and lme4, the rows series only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({t.case.model for t in rows})
    fig, axes = plt.subplots(1, max(len(models), 1), figsize=(4.2 * max(len(models), 1), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models, strict=False):
        series = sorted(
            (t for t in rows if t.case.model == model and t.case.series == "rows" and not t.error),
            key=lambda t: t.case.size,
        )
        n = [t.case.size for t in series]
        ax.loglog(n, [t.vcheck_s for t in series], "o-", label="vcheck")
        ax.loglog(n, [t.lme4_s for t in series], "s--", label="lme4")
        ax.set_title(f"y ~ x + {model}" if model != "crossed" else "y ~ x + (1|g) + (1|h)")
        ax.set_xlabel("rows (levels of g = rows / 10)")
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(
    timings: list[Timing],
    plot: Path | None,
    load: tuple[float, float],
    versions: dict[str, str],
    seconds: float,
) -> str:
    import numpy as np

    import vcheck

    by = {g: [t for t in timings if t.case.group == g] for g in ("corpus", "headline", "scaling")}
    lines = [
        "# vcheck versus lme4: fitting time",
        "",
        "Written by `nox -s bench` (`python -m vcheck.bench --out reports/bench.md`).  Every case of a",
        "fixed list (`vcheck.bench_cases`) is fitted by `vcheck.lmer(formula, data, REML, condVar=False)`",
        "and by `lme4::lmer(formula, data, REML)` in the same process; ratio = vcheck / lme4 (median of",
        "repeats).  BLAS threads as the process found them (nothing set), and again with one BLAS thread.",
        "",
        "## Summary",
        "",
        _summary("lme4's test models", by["corpus"]),
        _summary("headline models", by["headline"]),
        _summary("scaling series", by["scaling"]),
        "",
        f"Goals (issue 15): on lme4's test models median ratio <= {CORPUS_MEDIAN_GOAL} and every ratio <= "
        f"{CORPUS_WORST_GOAL}; headline goals in their table; every criterion at least as good as lme4's.",
        "",
        "## lme4's test models",
        "",
        *_table(by["corpus"]),
        "",
        "## Headline models",
        "",
        *_table(by["headline"], HEADLINE_GOALS),
        "",
        "## Scaling series",
        "",
    ]
    if plot is not None:
        lines += [f"![time against rows]({plot.name})", ""]
    lines += [*_table(by["scaling"]), ""]
    notes = [f"- {t.case.name}: {n}" for t in timings for n in t.notes]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    lines += [
        "## How measured",
        "",
        "- vcheck: wall time of `vcheck.lmer` (formula parsing and design included, conditional",
        "  variances not computed, as lme4's lmer does not); peak memory by tracemalloc in one more fit",
        "  (numpy buffers and Python objects; LAPACK/CHOLMOD scratch not counted).",
        "- lme4: `proc.time()` around `lme4::lmer` alone inside R (data already in R), its defaults",
        "  (`calc.derivs = TRUE`: its time includes the convergence check's derivatives); peak memory",
        "  from R's `gc()` max used (R heap; CHOLMOD's C allocations not counted).  R's reference BLAS.",
        "- criterion diff = vcheck's criterion - lme4's; 'as good' allows max(CRITERION_ABS,",
        "  CRITERION_REL |criterion|) (vcheck.core.tolerances).",
        "",
        "## Environment",
        "",
        f"- vcheck {vcheck.__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, VCHECK_BLAS_THREADS="
        f"{os.environ.get('VCHECK_BLAS_THREADS', '(unset)')}",
        f"- 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end; the whole run took "
        f"{seconds / 60:.1f} min",
        *[f"- {k}: {v}" for k, v in versions.items()],
    ]
    return "\n".join(lines) + "\n"
