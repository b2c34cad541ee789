"""The three optimizers of lme4 1.1-31's `lmerControl(optimizer=)`, called as lme4's `optwrap` calls them.

Each takes (fn, par, lower, upper, optCtrl) and returns an `OptimizerRun` (par, fval, feval, conv,
message, warnings).  optCtrl names each one reads, and their defaults:

- "nloptwrap" (lme4's wrapper of `nloptr`): nlopt's algorithm (default "NLOPT_LN_BOBYQA"; any derivative-
  free NLOPT_LN_* name), xtol_abs = 1e-8, ftol_abs = 1e-8, maxeval = 1e5 (lme4's defaultControl) and
  nloptr's xtol_rel = 1e-4, ftol_rel = 0, stopval = -Inf, maxtime = none; nlopt's own initial step.
  Other names (maxfun, ...) are ignored silently, as nloptr ignores them.  conv = status when status < 0
  or status == 5 (maxeval), else 0.
- "bobyqa" (minqa 1.2.5's `bobyqa`, Powell's Fortran BOBYQA): npt = max(n + 2, min(npt, (n+1)(n+2)/2))
  with npt = min(n + 2, 2n) by default; rhobeg = min(0.95, 0.2 max|par|); rhoend = 1e-6 rhobeg;
  maxfun = 10000; iprint, obstop, force.start.  optwrap moves an all-zero start to 0.001.  minqa
  evaluates fn(par) once before BOBYQA (not counted in feval).  Powell's Fortran here is pdfo's
  "classical" build, his original code; conv is minqa's ierr (0 normal, 1 maxfun, 2 npt, 3 trust-region
  step failed, 4 box too small, 5 cancellation in the denominator).
- "Nelder_Mead": `vcheck.core.nelder_mead` (lme4's C++), xst = 0.02, xt = xst * 5e-4, maxfun = 10000,
  FtolAbs, FtolRel, XtolRel, MinfMax, warnOnly, iprint; conv = 4 when it ran out of evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vcheck.core.errors import VcheckError
from vcheck.core.nelder_mead import nelder_mead

Fn = Callable[[np.ndarray], float]

#: `environment(nloptwrap)$defaultControl` in lme4 1.1-31, then nloptr 2.0.3's own defaults
NLOPTWRAP_DEFAULTS: dict[str, Any] = {
    "algorithm": "NLOPT_LN_BOBYQA",
    "xtol_abs": 1e-8,
    "ftol_abs": 1e-8,
    "maxeval": 100_000,
}
NLOPTR_DEFAULTS: dict[str, Any] = {"xtol_rel": 1e-4, "ftol_rel": 0.0, "stopval": -math.inf, "maxtime": -1.0}

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

#: Powell's Fortran exit codes (pdfo's numbering) -> minqa's ierr and message
_POWELL_TO_MINQA = {
    0: (0, "Normal exit from bobyqa"),
    3: (1, "bobyqa -- maximum number of function evaluations exceeded"),
    5: (2, "bobyqa -- NPT is not in the required interval"),
    2: (3, "bobyqa -- a trust region step failed to reduce q"),
    6: (4, "bobyqa -- one of the box constraint ranges is too small (< 2*RHOBEG)"),
    4: (5, "bobyqa detected too much cancellation in denominator"),
}
MINQA_KEYS = ("npt", "rhobeg", "rhoend", "iprint", "maxfun", "obstop", "force.start")


class OptimizerError(VcheckError, RuntimeError):
    """An optimizer refused its input or stopped with an error, as lme4's would (message says which)."""


def _num(ctrl: Mapping[str, Any], key: str, default: Any = None, kind: type = float) -> Any:
    """optCtrl[key] as a number (kind), or default; a value that is no number is a clear error."""
    value = ctrl.get(key, default)
    if value is None:
        return None
    try:
        out = kind(float(value)) if kind is int else float(value)
    except (TypeError, ValueError):
        raise OptimizerError(f"optCtrl {key} = {value!r} is not a number") from None
    return out


@dataclass
class OptimizerRun:
    """One optimizer call as optwrap sees it: getConv(opt) is `conv`, getMsg(opt) is `message`."""

    optimizer: str
    par: np.ndarray
    fval: float
    feval: int
    conv: int
    message: str
    status: int = 0
    warnings: list[str] = field(default_factory=list)
    control: dict[str, Any] = field(default_factory=dict)


def nloptwrap(
    fn: Fn, par: np.ndarray, lower: np.ndarray, upper: np.ndarray, ctrl: Mapping[str, Any]
) -> OptimizerRun:
    """lme4's `nloptwrap`: nloptr(x0 = par, eval_f = fn, lb = lower, ub = upper, opts = control)."""
    import nlopt

    opts = {**NLOPTR_DEFAULTS, **NLOPTWRAP_DEFAULTS, **dict(ctrl)}
    x0 = np.array(par, dtype=float)
    n = len(x0)
    if np.any(x0 < np.asarray(lower)):
        raise OptimizerError("at least one element in x0 < lb")
    name = str(opts["algorithm"])
    alg = getattr(nlopt, name.removeprefix("NLOPT_"), None) if name.startswith("NLOPT_LN_") else None
    if alg is None:
        raise OptimizerError(
            f"nloptwrap algorithm {name!r}: vcheck runs nlopt's derivative-free NLOPT_LN_* algorithms "
            "(lme4's deviance has no gradient function)"
        )
    best_f, best_x = [math.inf], [x0.copy()]

    def objective(x: np.ndarray, grad: np.ndarray) -> float:
        f = float(fn(np.array(x, dtype=float)))
        if f < best_f[0]:
            best_f[0], best_x[0] = f, np.array(x, dtype=float)
        return f

    opt = nlopt.opt(alg, n)
    opt.set_lower_bounds(np.asarray(lower, dtype=float))
    opt.set_upper_bounds(np.asarray(upper, dtype=float))
    try:
        xtol_abs = np.broadcast_to(np.asarray(opts["xtol_abs"], dtype=float), (n,)).copy()
    except (TypeError, ValueError):
        raise OptimizerError(f"optCtrl xtol_abs = {opts['xtol_abs']!r}: a number or one per theta") from None
    opt.set_xtol_abs(xtol_abs)
    opt.set_ftol_abs(_num(opts, "ftol_abs"))
    opt.set_xtol_rel(_num(opts, "xtol_rel"))
    opt.set_ftol_rel(_num(opts, "ftol_rel"))
    opt.set_stopval(_num(opts, "stopval"))
    opt.set_maxeval(_num(opts, "maxeval", kind=int))
    if _num(opts, "maxtime") > 0:
        opt.set_maxtime(_num(opts, "maxtime"))
    opt.set_min_objective(objective)
    try:
        x = np.array(opt.optimize(x0), dtype=float)
        fval = float(opt.last_optimum_value())
        status = int(opt.last_optimize_result())
    except nlopt.RoundoffLimited:  # nloptr keeps the best point and reports -4
        x, fval, status = best_x[0], best_f[0], -4
    except nlopt.ForcedStop:
        x, fval, status = best_x[0], best_f[0], -5
    except RuntimeError as exc:
        if type(exc) is not RuntimeError:  # raised by the criterion itself: not nlopt's failure
            raise
        x, fval, status = best_x[0], best_f[0], -1
    conv = status if (status < 0 or status == 5) else 0
    return OptimizerRun(
        optimizer="nloptwrap",
        par=x,
        fval=fval,
        feval=int(opt.get_numevals()),
        conv=conv,
        message=NLOPTR_MESSAGES.get(status, f"nlopt status {status}"),
        status=status,
        control=opts,
    )


def minqa_bobyqa(
    fn: Fn, par: np.ndarray, lower: np.ndarray, upper: np.ndarray, ctrl: Mapping[str, Any]
) -> OptimizerRun:
    """optwrap's call of `minqa::bobyqa(par, fn, lower, upper, control)` (module docstring)."""
    fortran = _powell_bobyqa()
    x0 = np.array(par, dtype=float)
    if np.all(x0 == 0):  # optwrap
        x0[:] = 0.001
    n = len(x0)
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    warns: list[str] = []
    if any(k not in MINQA_KEYS for k in ctrl):
        warns.append("unused control arguments ignored")
    if not np.all(np.isfinite(x0)):
        raise OptimizerError("bobyqa: all(is.finite(par)) is not TRUE")
    npt = _num(ctrl, "npt", min(n + 2, 2 * n), kind=int)
    npt = max(n + 2, min(npt, (n + 1) * (n + 2) // 2))
    if npt > 2 * n + 1:
        warns.append("Setting npt > 2 * length(par) + 1 is not recommended.")
    rhobeg = _num(ctrl, "rhobeg")
    rhobeg = min(0.95, 0.2 * float(np.max(np.abs(x0)))) if rhobeg is None else rhobeg
    rhoend = _num(ctrl, "rhoend")
    rhoend = 1e-6 * rhobeg if rhoend is None else rhoend
    if not (0 < rhoend <= rhobeg):
        raise OptimizerError("bobyqa: 0 < ctrl$rhoend && ctrl$rhoend <= ctrl$rhobeg is not TRUE")
    maxfun = _num(ctrl, "maxfun", 10000, kind=int)
    if maxfun < 10 * n**2:
        warns.append("maxfun < 10 * length(par)^2 is not recommended.")
    checkobj = fn(x0.copy())  # minqa's check of the objective, before BOBYQA
    if not isinstance(checkobj, float | int | np.floating):
        raise OptimizerError("Objective function must return a single numeric value.")
    if not np.all(lower < upper):
        raise OptimizerError("bobyqa: all(lower < upper) is not TRUE")
    if np.any((x0 < lower) | (x0 > upper)):
        if ctrl.get("obstop", True):
            raise OptimizerError("Starting values violate bounds")
        x0 = np.maximum(lower, np.maximum(x0, upper))  # minqa's own (odd) adjustment, kept
        warns.append("Some parameters adjusted to nearest bound")
    rng = upper - lower
    if np.any(rng < 2 * rhobeg):
        warns.append("All upper - lower must be >= 2*rhobeg. Changing rhobeg")
        rhobeg = 0.2 * float(np.min(rng))
    if np.all(np.isfinite(upper)) and np.all(np.isfinite(lower)) and not ctrl.get("force.start", False):
        small = rng < rhobeg
        if np.any(small):
            x0[small] = lower[small] + rhobeg
            warns.append("Some parameters adjusted away from lower bound")
            x0[small] = upper[small] - rhobeg
            warns.append("Some parameters adjusted away from upper bound")
    x, f, info, *_ = fortran.mbobyqa(
        npt,
        x0.copy(),
        lower.copy(),
        upper.copy(),
        rhobeg,
        rhoend,
        0,
        maxfun,
        -math.inf,
        lambda x, *_: float(fn(np.array(x, dtype=float))),
    )
    feval = int(fortran.fbobyqa.nf)
    ierr, msg = _POWELL_TO_MINQA.get(int(info), (int(info), f"bobyqa: Powell's exit code {int(info)}"))
    return OptimizerRun(
        optimizer="bobyqa",
        par=np.array(x, dtype=float),
        fval=float(f),
        feval=feval,
        conv=ierr,
        message=msg,
        status=int(info),
        warnings=warns,
        control={"npt": npt, "rhobeg": rhobeg, "rhoend": rhoend, "iprint": 0, "maxfun": maxfun},
    )


def _powell_bobyqa() -> Any:
    try:
        from pdfo import fbobyqa_classical  # type: ignore[import-untyped]
    except ImportError as exc:  # missing, or a wheel built for numpy 1 under numpy 2
        raise OptimizerError(
            "optimizer='bobyqa' runs Powell's Fortran BOBYQA from the pdfo package, which could not be "
            f"imported ({exc}). Install it: pip install 'vcheck[bobyqa]'; under numpy >= 2 build it from "
            "source: pip install --no-binary pdfo pdfo"
        ) from exc
    return fbobyqa_classical


def nelder_mead_run(
    fn: Fn, par: np.ndarray, lower: np.ndarray, upper: np.ndarray, ctrl: Mapping[str, Any]
) -> OptimizerRun:
    """lme4's `Nelder_Mead` through optwrap (verbose = 0); NM.result 4 (out of evaluations) is conv 4."""
    if np.any(np.asarray(par) < np.asarray(lower)):
        raise OptimizerError("all(x0 >= lower) is not TRUE")
    numeric = {
        k: _num(ctrl, k, kind=int if k == "maxfun" else float)
        for k in ("maxfun", "FtolAbs", "FtolRel", "XtolRel", "MinfMax")
        if k in ctrl
    }
    res = nelder_mead(fn, par, lower, upper, {**dict(ctrl), **numeric, "verbose": 0})
    return OptimizerRun(
        optimizer="Nelder_Mead",
        par=res.par,
        fval=res.fval,
        feval=res.feval,
        conv=4 if res.NM_result == 4 else res.convergence,
        message=res.message,
        status=res.NM_result,
        warnings=list(res.warnings),
        control=res.control,
    )


OPTIMIZERS: dict[str, Callable[..., OptimizerRun]] = {
    "nloptwrap": nloptwrap,
    "bobyqa": minqa_bobyqa,
    "Nelder_Mead": nelder_mead_run,
}
