"""Timing one benchmark case on both sides, in one process (`vcheck.bench`).

- vcheck: `vcheck.lmer(formula, data, REML, condVar=False)` timed with `time.perf_counter` (formula
  parsing and design included), BLAS threads as the process has them ("default") and again under
  threadpoolctl's limit of one thread ("one thread"); peak memory from one more, untimed fit under
  tracemalloc (numpy buffers and Python objects; LAPACK/CHOLMOD scratch is not counted).
- lme4: `lme4::lmer(formula, data, REML)` on the data already in R, timed inside R with `proc.time()`
  around `lmer` alone (no conversion, no rpy2); R's `gc()` "max used" gives its peak heap in the same
  call (CHOLMOD's C allocations are not counted).  R runs its reference BLAS, single-threaded.

Each side's time is the median of `repeats` fits (at least SHORT_FIT_REPEATS for fits under SHORT_FIT_S);
a first fit under a second is a warm-up, not counted.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vcheck.bench_cases import Case, r_eval

R_CODE = """
.vcheck_bench_time <- function(formula, data, REML, args_json = "", memory = FALSE) {
  d <- get(data, envir = globalenv())
  f <- vcheck_formula(formula)
  args <- vcheck_call_args(args_json)
  base <- NA_real_
  if (memory) {
    invisible(gc(reset = TRUE))
    base <- sum(gc()[, 2])
  }
  t0 <- proc.time()[["elapsed"]]
  m <- tryCatch(suppressWarnings(suppressMessages(
    if (length(args)) do.call(lme4::lmer, c(list(f, data = d, REML = REML), args))
    else lme4::lmer(f, data = d, REML = REML))), error = function(e) NULL)
  el <- proc.time()[["elapsed"]] - t0
  if (is.null(m)) return(c(NA_real_, NA_real_, NA_real_, NA_real_))
  mb <- if (memory) sum(gc()[, 6]) - base else NA_real_
  c(el, mb, m@optinfo$feval, if (REML) m@devcomp$cmp[["REML"]] else m@devcomp$cmp[["dev"]])
}
"""


#: a case whose vcheck fit takes under SHORT_FIT_S seconds is fitted at least SHORT_FIT_REPEATS times a
#: side (the median of a few 10-ms fits on a busy machine is mostly noise)
SHORT_FIT_S = 0.05
SHORT_FIT_REPEATS = 7


@dataclass
class Timing:
    """Both sides' measurements for one case; criterion_diff = vcheck's criterion - lme4's."""

    case: Case
    n: int = 0
    vcheck_s: float = math.nan
    vcheck_1t_s: float = math.nan
    lme4_s: float = math.nan
    vcheck_mb: float = math.nan
    lme4_mb: float = math.nan
    vcheck_feval: int = 0
    lme4_feval: int = 0
    criterion_diff: float = math.nan
    criterion: float = math.nan
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.vcheck_s / self.lme4_s

    @property
    def ratio_1t(self) -> float:
        return self.vcheck_1t_s / self.lme4_s


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of `repeats` calls, and the last result (a first call under 1 s is a warm-up).
    Python's garbage is collected once before, not between the calls (a collection costs more than a
    small fit)."""
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    times = [first] if first >= 1.0 else []
    while len(times) < repeats:
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def python_peak_mb(fn: Callable[[], Any]) -> float:
    """Peak traced allocation of one call, in MiB."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def _lme4(case: Case, memory: bool) -> tuple[float, float, int, float]:
    """(seconds, MB, feval, criterion) of one lme4 fit, timed in R; R's peak heap only with `memory`
    (its gc() calls cost more than a small fit)."""
    from vcheck.reference import rbridge

    s = rbridge.session()
    out = s.env.find(".vcheck_bench_time")(
        s.ri.StrSexpVector([case.formula]),
        s.ri.StrSexpVector([case.r_name]),
        s.ri.BoolSexpVector([case.REML]),
        s.ri.StrSexpVector([case.r_args]),
        s.ri.BoolSexpVector([memory]),
    )
    v = np.array(out, dtype=float)
    if np.isnan(v[0]):
        raise RuntimeError("lme4's lmer failed on this case")
    return float(v[0]), float(v[1]), int(v[2]), float(v[3])


def _install_r_code() -> None:
    """Define R_CODE's function beside bridge.R's (it uses vcheck_formula and vcheck_call_args)."""
    from vcheck.reference import rbridge

    s = rbridge.session()
    s.ri.baseenv.find("eval")(s.ri.parse(R_CODE), envir=s.env)


def time_case(case: Case, one_thread: bool = True, memory: bool = True) -> Timing:
    """Fit `case` on both sides (module docstring); an error on either side is recorded, not raised."""
    import vcheck

    _install_r_code()
    t = Timing(case, notes=list(case.notes))
    if case.skip:
        t.error = f"not run: {case.skip}"
        return t
    try:
        data = case.make(case.r_name)

        def fit() -> Any:
            return vcheck.lmer(case.formula, data, REML=case.REML, condVar=False, **case.args)

        repeats = case.repeats
        t0 = time.perf_counter()
        fit()  # also the warm-up of this case's data
        if time.perf_counter() - t0 < SHORT_FIT_S:  # short fits: more repeats on both sides, same cost
            repeats = max(repeats, SHORT_FIT_REPEATS)
        t.vcheck_s, vfit = median_time(fit, repeats)
        t.n = int(vfit.n or 0)
        t.vcheck_feval = int(vfit.optinfo["feval"])
        if one_thread:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):
                t.vcheck_1t_s, _ = median_time(fit, repeats)
        if memory:
            t.vcheck_mb = python_peak_mb(fit)
        r_times, r_out = [], None
        for i in range(repeats):
            r_out = _lme4(case, memory=i == repeats - 1)
            r_times.append(r_out[0])
        assert r_out is not None
        t.lme4_s = statistics.median(r_times)
        _, t.lme4_mb, t.lme4_feval, lme4_crit = r_out
        t.criterion = float(vfit.criterion)
        t.criterion_diff = t.criterion - lme4_crit
    except Exception as exc:  # the report lists every case, failed ones with their error
        t.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
    finally:
        r_eval(f"if (exists('{case.r_name}')) rm('{case.r_name}')")
    return t
