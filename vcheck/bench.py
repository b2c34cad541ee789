"""Benchmark: vcheck's `lmer` against lme4's, side by side in one process (`nox -s bench`).

    python -m vcheck.bench --out reports/bench.md [--repeats N] [--only CASE ...] [--blas-threads K]

For each case the data are made once, in R for lme4 and as a pandas DataFrame for vcheck; then each side
fits the model `repeats` times (lme4 through rpy2, timed around one R call that runs `lme4::lmer` on the
data already in R) and the median wall time is reported, with the ratio vcheck / lme4, both evaluation
counts, and the agreement of the two optima (criterion and theta).  Peak memory comes from one extra,
untimed fit per side: Python's tracemalloc peak for vcheck (numpy buffers and Python objects, not the
C-level scratch of LAPACK/SuperLU), R's `gc()` "max used" for lme4 (R's heap, not CHOLMOD's C-level
allocations).  lFormula is timed on its own for the design targets of issue 3.

lme4 runs with its defaults (lmerControl(): calc.derivs = TRUE, so its time includes the
finite-difference derivatives of its convergence check, which vcheck does not compute) and R's
reference BLAS (single-threaded); vcheck runs with OpenBLAS pinned to `--blas-threads` (default 1, the
same footing; the process re-executes itself to set OPENBLAS_NUM_THREADS before numpy loads).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: the benchmark cases: name -> (formula, data maker, repeats)
FORMULAS = {
    "sleepstudy": "Reaction ~ Days + (Days|Subject)",
    "star_kindergarten": "read ~ cltype + sx + (sx|sch/tch)",
    "InstEval": "y ~ service + (1|s) + (1|d) + (1|dept:service)",
    "sim_200k": "y ~ x + (x|g)",
}
#: the issue's goals for the time ratio vcheck / lme4
GOALS = {"sleepstudy": 1.0, "star_kindergarten": 1.0, "InstEval": 0.25, "sim_200k": 0.25}
#: repeats per case (medians); InstEval's lme4 fit alone takes ~20 s
REPEATS = {"sleepstudy": 21, "star_kindergarten": 7, "InstEval": 3, "sim_200k": 3}
#: issue 3's targets for vcheck.lFormula alone (seconds)
DESIGN_TARGETS = {"sim_200k": 1.0, "InstEval": 2.0}


# --- data -------------------------------------------------------------------------------------------
def r_eval(code: str) -> Any:
    """Evaluate R code in vcheck's embedded R session (rbridge) and return the R object."""
    from vcheck.reference import rbridge

    s = rbridge.session()
    return s.ri.baseenv.find("eval")(s.ri.parse(code), envir=s.ri.globalenv)


def r_data(code: str, numeric: Sequence[str] = ()) -> pd.DataFrame:
    """An R data.frame (from R code) as pandas, factors as Categoricals in R's level order."""
    from vcheck.reference import rbridge

    df = rbridge.frame_from_r(r_eval(code))
    for name in numeric:
        df[name] = pd.to_numeric(df[name]).astype(float)
    return df


def star_kindergarten() -> pd.DataFrame:
    """mlmRev's star, kindergarten rows (gr == "K"), every row (lmer drops those with NA)."""
    r_eval(
        'suppressPackageStartupMessages(library(mlmRev)); .vcheck_bench_star <- subset(star, gr == "K")'
        '[, c("read", "cltype", "sx", "sch", "tch")]'
    )
    return r_data(".vcheck_bench_star", numeric=["read"])


def simulated(n: int = 200_000, groups: int = 2_000, seed: int = 2024) -> pd.DataFrame:
    """y = 1 + 0.5 x + b0_g + b1_g x + e with (b0, b1) ~ N(0, [[1, .3], [.3, .25]]), e ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    b = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.3], [0.3, 0.25]], size=groups)
    y = 1.0 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(size=n)
    labels = np.array([f"g{i:04d}" for i in range(groups)], dtype=object)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(labels[g], categories=labels)})


def make_data(name: str) -> tuple[pd.DataFrame, str]:
    """(pandas data for vcheck, name of the same data as an R object for lme4)."""
    from vcheck.reference import rbridge

    if name == "sleepstudy":
        r_eval(".vcheck_bench_sleepstudy <- lme4::sleepstudy")
        return r_data(".vcheck_bench_sleepstudy"), ".vcheck_bench_sleepstudy"
    if name == "star_kindergarten":
        return star_kindergarten(), ".vcheck_bench_star"
    if name == "InstEval":
        r_eval('.vcheck_bench_insteval <- lme4::InstEval[, c("y", "service", "s", "d", "dept")]')
        return r_data(".vcheck_bench_insteval", numeric=["y"]), ".vcheck_bench_insteval"
    if name == "sim_200k":
        data = simulated()
        s = rbridge.session()
        s.ri.globalenv[".vcheck_bench_sim"] = rbridge.frame_to_r(data)
        return data, ".vcheck_bench_sim"
    raise KeyError(name)


# --- timing -----------------------------------------------------------------------------------------
R_CODE = """
.vcheck_bench_lmer <- function(formula, data, REML) {
  m <- suppressMessages(lme4::lmer(as.formula(formula), data = get(data, envir = globalenv()), REML = REML))
  c(m@optinfo$feval, if (REML) m@devcomp$cmp[["REML"]] else m@devcomp$cmp[["dev"]], getME(m, "theta"))
}
.vcheck_bench_lformula <- function(formula, data) {
  lf <- lme4::lFormula(as.formula(formula), data = get(data, envir = globalenv()))
  ncol(lf$X)
}
.vcheck_bench_memory <- function(formula, data, REML) {
  invisible(gc(reset = TRUE))
  base <- sum(gc()[, 2])
  m <- suppressMessages(lme4::lmer(as.formula(formula), data = get(data, envir = globalenv()), REML = REML))
  sum(gc()[, 6]) - base
}
"""


def r_call(fn: str, *args: Any) -> np.ndarray:
    from vcheck.reference import rbridge

    s = rbridge.session()
    conv = [s.ri.StrSexpVector([a]) if isinstance(a, str) else s.ri.BoolSexpVector([a]) for a in args]
    return np.array(s.ri.globalenv.find(fn)(*conv), dtype=float, copy=True)


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time over `repeats` calls, and the last result.  A first call that takes under a
    second is a warm-up and not counted; a slower one is counted (nothing left to warm)."""
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    times = [first] if first >= 1.0 else []
    while len(times) < repeats:
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def python_peak_mb(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


@dataclass
class Row:
    name: str
    formula: str
    n: int
    vcheck_s: float
    lme4_s: float
    vcheck_feval: int
    lme4_feval: int
    crit_diff: float
    theta_rel: float
    vcheck_mb: float
    lme4_mb: float
    lformula_s: float = float("nan")
    lme4_lformula_s: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.vcheck_s / self.lme4_s


def run_case(name: str, repeats: int) -> Row:
    import vcheck

    formula = FORMULAS[name]
    data, r_name = make_data(name)
    r_eval(R_CODE)

    def fit_vcheck() -> vcheck.LmerFit:
        return vcheck.lmer(formula, data, REML=True)

    t_v, fit = median_time(fit_vcheck, repeats)
    t_r, r_out = median_time(lambda: r_call(".vcheck_bench_lmer", formula, r_name, True), repeats)
    lme4_feval, lme4_crit, lme4_theta = int(r_out[0]), float(r_out[1]), r_out[2:]
    theta = np.asarray(fit.theta)
    row = Row(
        name=name,
        formula=formula,
        n=int(fit.n or 0),
        vcheck_s=t_v,
        lme4_s=t_r,
        vcheck_feval=int(fit.optinfo["feval"]),
        lme4_feval=lme4_feval,
        crit_diff=float(fit.criterion or np.nan) - lme4_crit,
        theta_rel=float(np.max(np.abs(theta - lme4_theta)) / max(float(np.max(np.abs(lme4_theta))), 1e-12)),
        vcheck_mb=python_peak_mb(fit_vcheck),
        lme4_mb=float(r_call(".vcheck_bench_memory", formula, r_name, True)[0]),
    )
    lf_repeats = max(1, min(repeats, 5))
    row.lformula_s, _ = median_time(lambda: vcheck.lFormula(formula, data), lf_repeats)
    row.lme4_lformula_s, _ = median_time(
        lambda: r_call(".vcheck_bench_lformula", formula, r_name), lf_repeats
    )
    return row


# --- report -----------------------------------------------------------------------------------------
def _fmt_time(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def render(rows: list[Row], repeats: dict[str, int], threads: str, load: tuple[float, float]) -> str:
    import vcheck

    versions: dict[str, str] = {}
    try:
        from vcheck import reference

        versions = reference.versions()
    except Exception as exc:  # the report still says what ran
        versions = {"R": f"unavailable ({exc})"}
    lines = [
        "# vcheck versus lme4: fitting time",
        "",
        "Written by `nox -s bench` (`python -m vcheck.bench --out reports/bench.md`).  Median wall time",
        "of `vcheck.lmer(formula, data)` (formula parsing and design included) against",
        "`lme4::lmer(formula, data)` called through rpy2 on the same data already in R, in the same",
        "process, both REML; ratio = vcheck / lme4.",
        "",
        "| case | n | vcheck | lme4 | ratio | goal | feval vcheck / lme4 | criterion diff | theta rel. diff "
        "| peak MB vcheck / lme4 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        goal = GOALS[r.name]
        mark = "yes" if r.ratio <= goal else "**no**"
        lines.append(
            f"| {r.name} | {r.n:,} | {_fmt_time(r.vcheck_s)} | {_fmt_time(r.lme4_s)} | {r.ratio:.3f} "
            f"| <= {goal} ({mark}) | {r.vcheck_feval} / {r.lme4_feval} | {r.crit_diff:.1e} "
            f"| {r.theta_rel:.1e} | {r.vcheck_mb:.1f} / {r.lme4_mb:.1f} |"
        )
    lines += [
        "",
        "Formulas: " + "; ".join(f"{r.name}: `{r.formula}`" for r in rows) + ".",
        "",
        "## Design construction alone (lFormula)",
        "",
        "| case | vcheck.lFormula | lme4::lFormula | target (issue 3) |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        target = DESIGN_TARGETS.get(r.name)
        t = f"< {target:.0f} s ({'yes' if r.lformula_s < target else '**no**'})" if target else ""
        lines.append(f"| {r.name} | {_fmt_time(r.lformula_s)} | {_fmt_time(r.lme4_lformula_s)} | {t} |")
    lines += [
        "",
        "## How measured",
        "",
        f"- repeats (median of; a first call under 1 s is a warm-up): "
        f"{', '.join(f'{k} {v}' for k, v in repeats.items())}.",
        "- lme4 runs with its defaults: `calc.derivs = TRUE`, so its time includes the finite-difference",
        "  derivatives of its convergence check (not part of feval); vcheck computes no derivatives.",
        "  vcheck's time includes the conditional variances (ranef condVar), which lme4's lmer does not",
        "  compute.",
        f"- BLAS: R uses its reference BLAS (single-threaded); vcheck's OpenBLAS runs with {threads} "
        "thread(s).",
        "- Peak memory: vcheck by tracemalloc (numpy buffers and Python objects; LAPACK/SuperLU scratch",
        "  not counted), lme4 by R's `gc()` max used (R heap; CHOLMOD's C allocations not counted):",
        "  indicative only.",
        "- criterion diff = vcheck's REML criterion - lme4's; theta rel. diff = max |dtheta| / max |theta|.",
        "",
        "## Environment",
        "",
        f"- vcheck {vcheck.__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; 1-minute load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end (other work on the machine slows both sides alike; compare ratios)",
    ]
    lines += [f"- {k}: {v}" for k, v in versions.items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vcheck.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="reports/bench.md", help="Markdown report to write")
    parser.add_argument("--only", nargs="+", choices=sorted(FORMULAS), help="run only these cases")
    parser.add_argument("--repeats", type=int, help="repeats for every case (default: per case)")
    parser.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads for vcheck (default 1)")
    args = parser.parse_args(argv)
    threads = str(args.blas_threads)
    if os.environ.get("OPENBLAS_NUM_THREADS") != threads and not os.environ.get("VCHECK_BENCH_CHILD"):
        # numpy is already loaded (vcheck imports it); the thread count only takes effect in a new process
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "VCHECK_BENCH_CHILD": "1"}
        args_out = list(sys.argv[1:] if argv is None else argv)
        os.execve(sys.executable, [sys.executable, "-m", "vcheck.bench", *args_out], env)
    load_start = os.getloadavg()[0]
    names = args.only or list(FORMULAS)
    repeats = {n: args.repeats or REPEATS[n] for n in names}
    rows = []
    for name in names:
        print(f"bench: {name} ({repeats[name]} repeats) ...", flush=True)
        row = run_case(name, repeats[name])
        print(
            f"  vcheck {_fmt_time(row.vcheck_s)}  lme4 {_fmt_time(row.lme4_s)}  ratio {row.ratio:.3f}  "
            f"feval {row.vcheck_feval}/{row.lme4_feval}",
            flush=True,
        )
        rows.append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(rows, repeats, threads, (load_start, os.getloadavg()[0]))
    if not args.only:  # the audit's rate, sweep throughput and the large-model audit (vcheck.auditing.sweep)
        from vcheck.bench_throughput import bench_sections

        text += audit_rate_section()
        text += bench_sections()
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


#: issue 5's goal: drawn cases audited per second with lme4 live
AUDIT_RATE_GOAL = 20.0


def audit_rate_section(cases: int = 100, log: Callable[[str], None] = print) -> str:
    """Issue 5's rate: `vcheck.audit(vcheck's lmer, examples=cases, builtin=False)` with lme4 live, as
    Markdown.  Three runs on different seeds: lme4 in two processes of its own, started cold (the wait
    for R included) and then running; and lme4 in this process's R (`reference="inline"`)."""
    from vcheck import audit
    from vcheck.adapters.own import fit
    from vcheck.reference import server as reference_server

    reference_server._close_shared()  # a cold start: the first run waits for R and lme4 to start
    runs = [
        ("lme4 in 2 processes of its own, cold start", {"reference": "process"}, 100),
        ("lme4 in 2 processes of its own, running", {"reference": "process"}, 101),
        ('lme4 in this process (`reference="inline"`)', {"reference": "inline"}, 102),
    ]
    rows = []
    for label, kwargs, seed in runs:
        log(f"bench: audit rate, {label} ({cases} drawn cases, seed {seed}) ...")
        res = audit(fit, examples=cases, seed=seed, builtin=False, **kwargs)
        n = len(res.cases)
        rows.append(
            f"| {label} | {seed} | {n} | {res.seconds:.1f} s | {res.startup_wait:.1f} s | {res.rate:.1f} "
            f"| {res.running_rate:.1f} | {res.audit_rate:.1f} | {1e3 * res.cpu_seconds / max(n, 1):.0f} ms "
            f"| {len(res.errors)} |"
        )
        log(f"  {res.rate:.1f} cases/s ({res.running_rate:.1f} once lme4 runs)")
    sizes = [len(c.data) for c in _drawn(cases, 101)]
    return "\n".join(
        [
            "",
            "## Audit rate with lme4 live (issue 5)",
            "",
            f"`vcheck.audit(vcheck.adapters.own.fit, examples={cases}, seed=S, builtin=False)`: vcheck's",
            "lmer as the implementation under test (its own fit included in the time), lme4 live for every",
            f"case, {min(sizes)} to {max(sizes)} rows (median {int(np.median(sizes))}).  Goal: at least "
            f"{AUDIT_RATE_GOAL:.0f} cases per second.",
            "",
            "| lme4 | seed | cases | wall | waited for R to start | cases/s | cases/s once running "
            "| cases/s without the implementation | CPU per case (all processes) | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "lme4's fit of one such case takes about 35-45 ms of R time here (`lmer` alone, with its",
            "defaults), vcheck's about 17 ms and the comparison about 10 ms: in one process the audit",
            "cannot reach the goal.  With lme4 in processes of their own, asked for each case's fit",
            "before the implementation reaches it (`vcheck.reference.server`), the two overlap on the",
            f"machine's {os.cpu_count()} CPUs.",
            "",
        ]
    )


def _drawn(cases: int, seed: int) -> list[Any]:
    from vcheck.auditing.strategies import draw_case

    return [draw_case(seed, i) for i in range(cases)]


if __name__ == "__main__":
    sys.exit(main())
