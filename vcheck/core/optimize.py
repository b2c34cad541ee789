"""lme4 1.1-31's optimization of the profiled criterion: `optimizeLmer` with the default `nloptwrap`.

- Start: `vcheck.core.design.start_theta` (mkLmerDevfun's variance-ratio start for scalar intercept terms).
- Optimizer (`nloptwrap`): nlopt's LN_BOBYQA with lower bounds `lower`, no upper bounds, xtol_abs =
  ftol_abs = 1e-8, xtol_rel = 1e-4 (nloptr's default, which lme4 does not override), maxeval = 1e5 and
  nlopt's own initial step.  `feval` is the optimizer's evaluation count; lme4 reports conv = status
  when status < 0 or status == 5 (maxeval), else 0.
- Restart at the edge (`optimizeLmer`, restart_edge = TRUE): if any theta sits exactly on its lower
  bound, the one-sided slope (f(theta + 1e-5 e_i) - f(theta)) / 1e-5 is taken for each; if any is
  negative, BOBYQA runs again from the optimum (its feval replaces the first one's).
- Boundary snap (`check.boundary`, boundary.tol = 1e-5): each theta within (0, 1e-5) of its bound is
  moved onto it, in order and cumulatively, when that trial (earlier snaps included) is below the
  criterion of the unsnapped optimum.
- Singular (`isSingular`): any theta whose lower bound is 0 is below `tolerances.SINGULAR_TOL` (1e-4).

lme4's default `calc.derivs = TRUE` then evaluates finite-difference derivatives for its convergence
checks; they do not move theta and are not counted in feval, and vcheck does not compute them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import nlopt
import numpy as np

from vcheck.core import tolerances

#: nloptwrap's settings in lme4 1.1-31 (`environment(nloptwrap)$defaultControl`) plus nloptr's xtol_rel
NLOPTWRAP = {"xtol_abs": 1e-8, "ftol_abs": 1e-8, "xtol_rel": 1e-4, "maxeval": 100_000}
#: `optimizeLmer`'s step for the one-sided boundary slope
RESTART_STEP = 1e-5
#: `lmerControl()$boundary.tol`
BOUNDARY_TOL = 1e-5

#: nloptr's status messages, as lme4 stores them in optinfo$message
NLOPTR_MESSAGES = {
    1: "NLOPT_SUCCESS: Generic success return value.",
    2: "NLOPT_STOPVAL_REACHED: Optimization stopped because stopval (above) was reached.",
    3: "NLOPT_FTOL_REACHED: Optimization stopped because ftol_rel or ftol_abs (above) was reached.",
    4: "NLOPT_XTOL_REACHED: Optimization stopped because xtol_rel or xtol_abs (above) was reached.",
    5: "NLOPT_MAXEVAL_REACHED: Optimization stopped because maxeval (above) was reached.",
    6: "NLOPT_MAXTIME_REACHED: Optimization stopped because maxtime (above) was reached.",
    -1: "NLOPT_FAILURE: Generic failure code.",
    -2: "NLOPT_INVALID_ARGS: Invalid arguments (e.g. lower bounds are bigger than upper bounds, an unknown "
    "algorithm was specified, etcetera).",
    -3: "NLOPT_OUT_OF_MEMORY: Ran out of memory.",
    -4: "NLOPT_ROUNDOFF_LIMITED: Roundoff errors led to a breakdown of the optimization algorithm. In this "
    "case, the returned minimum may still be useful. (e.g. this error occurs in NEWUOA if one tries to "
    "achieve a tolerance too close to machine precision.)",
    -5: "NLOPT_FORCED_STOP: Halted because of a forced termination.",
}


@dataclass
class OptResult:
    """What `optimizeLmer` returns, plus vcheck's bookkeeping.

    feval: evaluations of the last BOBYQA run (lme4's optinfo$feval); evaluations: every call of the
    criterion, the restart's slopes and the boundary checks included.
    """

    theta: np.ndarray
    fval: float
    feval: int
    status: int
    message: str
    conv: int
    restarted: bool = False
    snapped: list[int] = field(default_factory=list)
    evaluations: int = 0
    start: np.ndarray | None = None


def bobyqa(fn: Callable[[np.ndarray], float], x0: np.ndarray, lower: np.ndarray) -> OptResult:
    """lme4's `nloptwrap`: nlopt LN_BOBYQA from x0 with lower bounds and the settings in NLOPTWRAP."""
    x0 = np.asarray(x0, dtype=float)
    k = len(x0)
    best_f, best_x = np.inf, x0.copy()

    def objective(x: np.ndarray, grad: np.ndarray) -> float:
        nonlocal best_f, best_x
        f = float(fn(x))
        # nlopt returns the best point seen; keep it here too, for when nlopt raises instead of returning
        if f < best_f:
            best_f, best_x = f, np.array(x, copy=True)
        return f

    opt = nlopt.opt(nlopt.LN_BOBYQA, k)
    opt.set_lower_bounds(np.asarray(lower, dtype=float))
    opt.set_upper_bounds(np.full(k, np.inf))
    opt.set_xtol_abs(NLOPTWRAP["xtol_abs"])
    opt.set_ftol_abs(NLOPTWRAP["ftol_abs"])
    opt.set_xtol_rel(NLOPTWRAP["xtol_rel"])
    opt.set_maxeval(int(NLOPTWRAP["maxeval"]))
    opt.set_min_objective(objective)
    try:
        x = np.array(opt.optimize(x0), dtype=float)
        fval = float(opt.last_optimum_value())
        status = int(opt.last_optimize_result())
    except nlopt.RoundoffLimited:
        # nlopt signals this by an exception; lme4 (through nloptr) keeps the best point and warns
        x, fval, status = best_x, float(best_f), -4
    except RuntimeError as exc:
        if type(exc) is not RuntimeError:  # an error raised by the criterion itself: not nlopt's failure
            raise
        x, fval, status = best_x, float(best_f), -1
    conv = status if (status < 0 or status == 5) else 0
    return OptResult(
        theta=x,
        fval=fval,
        feval=int(opt.get_numevals()),
        status=int(status),
        message=NLOPTR_MESSAGES.get(int(status), f"nlopt status {status}"),
        conv=int(conv),
        start=x0,
    )


def optimize_lmer(
    fn: Callable[[np.ndarray], float],
    theta0: np.ndarray,
    lower: np.ndarray,
    restart_edge: bool = True,
    boundary_tol: float = BOUNDARY_TOL,
) -> OptResult:
    """lme4's `optimizeLmer`: BOBYQA, the restart at the edge, and the boundary snap (module docstring)."""
    lower = np.asarray(lower, dtype=float)
    calls = 0

    def counted(theta: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        return fn(theta)

    opt = bobyqa(counted, theta0, lower)
    restarted = False
    if restart_edge:
        on_bound = np.flatnonzero(opt.theta == lower)
        if len(on_bound):
            d0 = counted(opt.theta)
            slopes = []
            for i in on_bound:
                theta = opt.theta.copy()
                theta[i] = lower[i] + RESTART_STEP
                slopes.append((counted(theta) - d0) / RESTART_STEP)
            if any(s < 0 for s in slopes):
                opt = bobyqa(counted, opt.theta, lower)
                restarted = True
    opt.start = np.asarray(theta0, dtype=float)
    opt.restarted = restarted
    if boundary_tol > 0:
        _snap_to_boundary(opt, counted, lower, boundary_tol)
    opt.evaluations = calls
    return opt


def _snap_to_boundary(
    opt: OptResult, fn: Callable[[np.ndarray], float], lower: np.ndarray, tol: float
) -> None:
    """lme4's `check.boundary`: put near-boundary theta on the bound where that lowers the criterion."""
    gap = opt.theta - lower
    near = np.flatnonzero((gap > 0) & (gap < tol))
    if not len(near):
        return
    theta = opt.theta.copy()
    for i in near:
        trial = theta.copy()
        trial[i] = lower[i]
        if fn(trial) < opt.fval:
            theta[i] = lower[i]
            opt.snapped.append(int(i))
    opt.theta = theta
    opt.fval = fn(theta)


def is_singular(theta: np.ndarray, lower: np.ndarray, tol: float = tolerances.SINGULAR_TOL) -> bool:
    """lme4's `isSingular`: any theta with lower bound 0 below tol."""
    theta, lower = np.asarray(theta), np.asarray(lower)
    return bool(np.any(theta[lower == 0] < tol))
