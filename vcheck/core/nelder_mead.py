"""lme4 1.1-31's own Nelder-Mead (`lme4::Nelder_Mead`, C++ class `optimizer::Nelder_Mead`), ported step
for step so that it evaluates the same points in the same order as lme4.

lme4's C++ (src/optimizer.cpp, unchanged since 2020) is NLopt 2.2.4's nldrmd.c turned into a reverse-
communication state machine: the caller asks `xeval()` for the next point, evaluates f there and hands
the value to `newf(f)`, which answers a status (ACTIVE: keep going).

- Simplex: x0 and x0 + xst_i e_i (a step that crosses a bound is pinned to it, or turned around when the
  bound is nearer than 0.1 |xst_i|).  Vertices are evaluated in column order.
- Each iteration: the best (l) and worst (h) vertices (first index on ties, as Eigen's minCoeff and
  maxCoeff), the centroid c of the others, c = (sum_j p_j - p_h) / n (summed left to right, as Eigen's
  rowwise sum of a column-major matrix), and the reflection x_r = c + alpha (c - p_h), alpha = 1.
  f_r < f_l: expand to x_e = c + gamma (c - p_h), gamma = 2, and keep x_e if f_e < f_h, else x_r.
  f_l <= f_r < f_h: keep x_r.  f_r >= f_h: contract inside (c - beta (c - p_h)), else (f_r < f_h is
  impossible here) outside, beta = 1/2; keep it if f_c < f_r and f_c < f_h, else shrink every vertex
  but the best half-way towards it (p_i = p_l - delta (p_l - p_i), delta = 1/2) and evaluate the whole
  simplex again, the best vertex included.  Every new point is clamped into [lower, upper] and the step
  is refused (X-converged) when it coincides with c or with the point it came from (|a - b| <= 1e-13
  (|a| + |b|) in every coordinate).
- Stopping: X-converged when max_j |p_ij - c_i| < xt_i for every coordinate i (lme4's nl_stop::x with
  xtol_rel = 1e-7, which R's `Nelder_Mead` never changes: its XtolRel is accepted and ignored); the value
  falls below MinfMax; or more than maxfun evaluations (the (maxfun + 1)-th evaluation stops it).  lme4's
  FtolAbs and FtolRel are stored but never tested (no ftol test exists in the C++), so they change nothing.
- The answer is the best point evaluated (d_x, d_minf), and feval counts every evaluation.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vcheck.core.errors import VcheckError

ALPHA, BETA, GAMMA, DELTA = 1.0, 0.5, 2.0, 0.5
#: nl_stop's constructor sets xtol_rel = 1e-7; R's Nelder_Mead has no setter for it
XTOL_REL = 1e-7
#: R's `Nelder_Mead` defaults (control list)
DEFAULTS: dict[str, Any] = {
    "iprint": 0,
    "maxfun": 10000,
    "FtolAbs": 1e-5,
    "FtolRel": 1e-15,
    "XtolRel": 1e-7,
    "MinfMax": -sys.float_info.max,
    "warnOnly": False,
}
#: the control names R's Nelder_Mead knows besides DEFAULTS (xst, xt: steps; verbose: optwrap's)
EXTRA_KEYS = ("xst", "xt", "verbose")


class NelderMeadError(VcheckError, RuntimeError):
    """lme4's Nelder-Mead refused to start or stopped with a negative code (R raises an error there)."""


class Status(enum.IntEnum):
    """R's codes (`NelderMead_newf`): negative = failure, 0 = keep going, positive = stopped."""

    EVALS = -4
    FORCED = -3
    NO_FEASIBLE = -2
    X0_NOT_FEASIBLE = -1
    ACTIVE = 0
    MINF_MAX = 1
    FCVG = 2
    XCVG = 3


#: R's msgvec, by code (code 4 is R's re-labelling of EVALS, with its own message)
MESSAGES = {
    -3: "nm_forced",
    -2: "cannot generate a feasible simplex",
    -1: "initial x is not feasible",
    0: "active",
    1: "objective function went below allowed minimum",
    2: "objective function values converged to within tolerance",
    3: "parameter values converged to within tolerance",
}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-13 * (abs(a) + abs(b))


def _relstop(vold: float, vnew: float, reltol: float, abstol: float) -> bool:
    """nl_stop::relstop."""
    if abs(vold) == math.inf:
        return False
    d = abs(vnew - vold)
    return d < abstol or d < reltol * (abs(vnew) + abs(vold)) * 0.5 or (reltol > 0 and vnew == vold)


class NelderMead:
    """The reverse-communication state machine (`optimizer::Nelder_Mead`); points are columns of pts."""

    def __init__(
        self,
        lower: np.ndarray,
        upper: np.ndarray,
        xst: np.ndarray,
        x0: np.ndarray,
        xt: np.ndarray,
        *,
        maxeval: int = 300,
        minf_max: float = sys.float_info.min,
    ) -> None:
        self.lb = np.array(lower, dtype=float)
        self.ub = np.array(upper, dtype=float)
        self.xstep = np.array(xst, dtype=float)
        self.x = np.array(x0, dtype=float)  # the best point so far (d_x)
        self.xtol_abs = np.array(xt, dtype=float)
        n = self.n = len(self.x)
        if not n or len(self.lb) != n or len(self.ub) != n or len(self.xstep) != n:
            raise NelderMeadError("dimension mismatch")
        if np.any(self.x - self.lb < 0) or np.any(self.ub - self.x < 0):
            raise NelderMeadError("initial x is not a feasible point")
        self.maxeval = int(maxeval)
        self.minf_max = float(minf_max)
        self.nevals = 0
        self.minf = math.inf
        self.vals = np.full(n + 1, sys.float_info.min)
        self.pts = np.repeat(self.x[:, None], n + 1, axis=1)
        self.c = np.zeros(n)
        self.xcur = np.zeros(n)
        self.xeval = self.x.copy()
        self.init_pos = 0
        self.stage = "restart"
        self.f_old = math.nan
        self.fl = self.fh = math.nan
        self.il = self.ih = 0
        x, lb, ub, st = self.x, self.lb, self.ub, self.xstep
        for i in range(n):
            j = i + 1
            p = self.pts[i, j] + st[i]
            if p > ub[i]:
                p = ub[i] if ub[i] - x[i] > abs(st[i]) * 0.1 else x[i] - abs(st[i])
            if p < lb[i]:
                if x[i] - lb[i] > abs(st[i]) * 0.1:
                    p = lb[i]
                else:
                    p = x[i] + abs(st[i])
                    if p > ub[i]:
                        p = 0.5 * ((ub[i] if ub[i] - x[i] > x[i] - lb[i] else lb[i]) + x[i])
            self.pts[i, j] = p
            if _close(p, x[i]):
                raise NelderMeadError("cannot generate feasible simplex")

    # ---- the C++ methods -------------------------------------------------------------------------
    def newf(self, f: float) -> Status:
        """Install f = fn(xeval) and move to the next point (Nelder_Mead::newf)."""
        self.nevals += 1
        if f < self.minf:
            self.minf = f
            self.x = self.xeval.copy()
            if self.minf < self.minf_max:
                return Status.MINF_MAX
        if self.maxeval > 0 and self.nevals > self.maxeval:
            return Status.EVALS
        if self.init_pos <= self.n:
            return self._init(f)
        if self.stage == "restart":
            return self._restart()
        if self.stage == "postreflect":
            return self._postreflect(f)
        if self.stage == "postexpand":
            return self._postexpand(f)
        return self._postcontract(f)

    def _init(self, f: float) -> Status:
        self.vals[self.init_pos] = f
        self.init_pos += 1
        if self.init_pos > self.n:
            return self._restart()
        self.xeval = self.pts[:, self.init_pos].copy()
        return Status.ACTIVE

    def _restart(self) -> Status:
        vals = self.vals
        il = ih = 0
        for k in range(1, self.n + 1):  # Eigen's visitors: strict comparisons, first index wins
            if vals[k] < vals[il]:
                il = k
            if vals[k] > vals[ih]:
                ih = k
        self.il, self.ih = il, ih
        self.fl, self.fh = float(vals[il]), float(vals[ih])
        total = self.pts[:, 0].copy()
        for k in range(1, self.n + 1):
            total = total + self.pts[:, k]
        self.c = (total - self.pts[:, ih]) / self.n
        spread = np.max(np.abs(self.pts - self.c[:, None]), axis=1)
        if all(_relstop(float(spread[i]), 0.0, XTOL_REL, float(self.xtol_abs[i])) for i in range(self.n)):
            return Status.XCVG
        ok, self.xcur = self._reflectpt(self.c, ALPHA, self.pts[:, ih])
        if not ok:
            return Status.XCVG
        self.xeval = self.xcur.copy()
        self.stage = "postreflect"
        return Status.ACTIVE

    def _postreflect(self, f: float) -> Status:
        ih = self.ih
        if f < self.fl:  # new best point: try to expand
            ok, self.xeval = self._reflectpt(self.c, GAMMA, self.pts[:, ih])
            if not ok:
                return Status.XCVG
            self.stage = "postexpand"
            self.f_old = f
            return Status.ACTIVE
        if f < self.fh:  # accept the reflection
            self.vals[ih] = f
            self.pts[:, ih] = self.xeval
            return self._restart()
        ok, self.xcur = self._reflectpt(self.c, -BETA if self.fh <= f else BETA, self.pts[:, ih])
        if not ok:
            return Status.XCVG
        self.f_old = f
        self.xeval = self.xcur.copy()
        self.stage = "postcontract"
        return Status.ACTIVE

    def _postexpand(self, f: float) -> Status:
        ih = self.ih
        if f < self.vals[ih]:
            self.pts[:, ih] = self.xeval
            self.vals[ih] = f
        else:
            self.pts[:, ih] = self.xcur
            self.vals[ih] = self.f_old
        return self._restart()

    def _postcontract(self, f: float) -> Status:
        if f < self.f_old and f < self.fh:
            self.pts[:, self.ih] = self.xeval
            self.vals[self.ih] = f
            return self._restart()
        il = self.il
        for i in range(self.n + 1):  # shrink towards the best vertex, then evaluate all again
            if i != il:
                ok, self.xeval = self._reflectpt(self.pts[:, il], -DELTA, self.pts[:, i])
                if not ok:
                    return Status.XCVG
                self.pts[:, i] = self.xeval
        self.init_pos = 0
        self.xeval = self.pts[:, 0].copy()
        return Status.ACTIVE

    def _reflectpt(self, c: np.ndarray, scale: float, xold: np.ndarray) -> tuple[bool, np.ndarray]:
        """xnew = c + scale (c - xold), clamped into the bounds; False when it coincides with c or xold."""
        xnew = c + scale * (c - xold)
        equalc = equalold = True
        for i in range(self.n):
            v = min(max(float(xnew[i]), self.lb[i]), self.ub[i])
            equalc = equalc and _close(v, float(c[i]))
            equalold = equalold and _close(v, float(xold[i]))
            xnew[i] = v
        return not (equalc or equalold), xnew


@dataclass
class NelderMeadResult:
    """R's `Nelder_Mead` value: fval, par, convergence (min(0, code)), NM.result, message, feval."""

    fval: float
    par: np.ndarray
    convergence: int
    NM_result: int
    message: str
    feval: int
    control: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def nelder_mead(
    fn: Callable[[np.ndarray], float],
    par: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    control: Mapping[str, Any] | None = None,
) -> NelderMeadResult:
    """R's `lme4::Nelder_Mead(fn, par, lower, upper, control)`: xst = 0.02 and xt = xst * 5e-4 per
    coordinate unless given; maxfun = 10000; the loop `newf(fn(xeval()))` until the status is not 0.

    Unknown control names give R's warning "unused control arguments ignored" (in `.warnings`); a
    negative code raises NelderMeadError unless warnOnly; running out of evaluations is code 4 with the
    message "failure to converge in <maxfun> evaluations".
    """
    par = np.array(par, dtype=float)
    n = len(par)
    lower = np.full(n, -math.inf) if lower is None else np.array(lower, dtype=float)
    upper = np.full(n, math.inf) if upper is None else np.array(upper, dtype=float)
    ctrl = dict(control or {})
    xst = np.broadcast_to(np.asarray(ctrl.pop("xst", 0.02), dtype=float), (n,)).copy()
    xt_given = ctrl.pop("xt", None)
    xt = xst * 5e-4 if xt_given is None else np.broadcast_to(np.asarray(xt_given, float), (n,)).copy()
    ctrl.pop("verbose", None)
    if np.any(xst == 0):
        raise NelderMeadError("all(xst != 0) is not TRUE")
    warnings = []
    unknown = [k for k in ctrl if k not in DEFAULTS]
    if unknown:
        warnings.append("unused control arguments ignored")
    cc = {k: ctrl.get(k, v) for k, v in DEFAULTS.items()}
    nm = NelderMead(lower, upper, xst, par, xt, maxeval=int(cc["maxfun"]), minf_max=float(cc["MinfMax"]))
    it = 0
    while True:
        it += 1
        status = nm.newf(float(fn(nm.xeval.copy())))
        if status != Status.ACTIVE:
            break
    code = int(status)
    message = MESSAGES.get(code, "")
    if code == Status.EVALS:
        message = f"failure to converge in {int(cc['maxfun'])} evaluations"
        warnings.append(message)
        code = 4
    if code < 0:
        if not cc["warnOnly"]:
            raise NelderMeadError(message)
        warnings.append(message)
    return NelderMeadResult(
        fval=float(nm.minf),
        par=nm.x.copy(),
        convergence=min(0, code),
        NM_result=code,
        message=message,
        feval=it,
        control={**cc, "xst": xst, "xt": xt},
        warnings=warnings,
    )
