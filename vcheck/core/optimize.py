"""lme4 1.1-31's optimization of the profiled criterion: `optimizeLmer` and `optwrap`, under an `LmerControl`.

- Start: `vcheck.core.design.start_theta` (mkLmerDevfun's variance-ratio start for scalar intercept
  terms) unless the caller gives one.
- optwrap: the optimizer (`vcheck.core.optimizers`: nloptwrap, bobyqa or Nelder_Mead) with lower bounds
  `lower` and upper bounds +Inf; a nonzero conv gives the warning "convergence code <conv> from
  <optimizer>: <message>".  With calc.derivs, `deriv12` at the answer (`vcheck.core.derivs`; not
  counted in feval); then fn(par) once more (unless use.last.params).
- Restart at the edge (restart_edge): if any theta of the devfun's current state sits exactly on its
  lower bound, the one-sided slope (f(theta + 1e-5 e_i) - f(theta)) / 1e-5 is taken for each; if any is
  negative, optwrap runs again from the answer (its feval replaces the first one's).
- Boundary snap (`check.boundary`, boundary.tol = 1e-5): each theta within (0, tol) of its bound is
  moved onto it, in order and cumulatively, when that trial is below the unsnapped answer's criterion.
- vcheck's edge restart (with restart_edge; not in lme4): if, after lme4's steps, a theta with lower
  bound 0 lies inside (0, EDGE_RESTART), the optimizer stopped near the edge, where the criterion is
  flattest and BOBYQA's stopping rule (ftol_abs) ends a path that still descends slowly.  optwrap then
  runs once more from the answer, and the lower answer is kept (feval adds both runs).  Such a fit is
  singular or nearly so; others are untouched.  optwrap's deriv12 and closing fn(par) are taken for the
  kept answer only: an optimizer answer with such a theta at least boundary.tol from 0 (where the snap
  leaves it) gets its deriv12 after the restart has decided, at the same par, so the kept answer has
  exactly the derivatives optwrap computes there.
- optimizer None (R's NULL): the start is the answer, fval = fn(start), conv = 1000, "no optimization".
- Singular (`isSingular`): any theta whose lower bound is 0 is below `tolerances.SINGULAR_TOL` (1e-4).

Fed lme4's own criterion values, each optimizer here evaluates lme4's points bit for bit and as many
(tests/reference/test_optimizers_live.py).  vcheck's criterion differs from lme4's in the last bits
(about 1e-12 on 2e3), which Nelder-Mead only sees when a comparison is a near tie, and which BOBYQA's
quadratic models carry into every later point (theta ~1e-9 apart).  On a flat or nearly symmetric
criterion those differences can send the path elsewhere: on lme4's test-isSingular.R model both
grouping factors are the same factor, the two intercept variances nearly exchangeable, and at
evaluation 19 BOBYQA swaps them; lme4 stops after 416 evaluations, vcheck after 755 with a REML
criterion 6.1e-4 lower (with the data rounded to 15 digits, 698 against 450, vcheck 3.7e-4 higher).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vcheck.core import optimizers, tolerances
from vcheck.core.control import LmerControl
from vcheck.core.derivs import check_conv, deriv12
from vcheck.core.optimizers import NLOPTR_MESSAGES, NLOPTWRAP_DEFAULTS

#: nloptwrap's settings in lme4 1.1-31 plus nloptr's xtol_rel (kept for callers of the old name)
NLOPTWRAP = {**NLOPTWRAP_DEFAULTS, "xtol_rel": 1e-4}
#: `optimizeLmer`'s step for the one-sided boundary slope
RESTART_STEP = 1e-5
#: `lmerControl()$boundary.tol`
BOUNDARY_TOL = 1e-5
#: vcheck's edge restart (module docstring): a theta with a zero lower bound inside (0, this)
EDGE_RESTART = 1e-2

__all__ = ["BOUNDARY_TOL", "NLOPTR_MESSAGES", "NLOPTWRAP", "OptResult", "is_singular", "optimize_lmer"]


@dataclass
class OptResult:
    """What `optimizeLmer` returns, plus vcheck's bookkeeping.

    feval: evaluations of the last optimizer run (lme4's optinfo$feval; None without an optimizer);
    evaluations: every call of the criterion (restart slopes, derivatives and boundary checks included);
    theta: the answer (lme4's opt$par, after the boundary snap); fit_theta: where the fit is taken (the
    answer, or with use.last.params the devfun's last state, lme4's pp$theta); par: the optimizer's own
    answer before the snap; edge_restart: evaluations of vcheck's edge restart (0: none); derivs:
    deriv12's gradient and Hessian at par (calc.derivs).
    """

    theta: np.ndarray
    fval: float
    feval: int | None
    status: int
    message: str
    conv: int
    restarted: bool = False
    snapped: list[int] = field(default_factory=list)
    edge_restart: int = 0
    evaluations: int = 0
    start: np.ndarray | None = None
    optimizer: str | None = "nloptwrap"
    warnings: list[str] = field(default_factory=list)
    conv_warning: str | None = None
    derivs: dict[str, np.ndarray] | None = None
    control: dict[str, Any] = field(default_factory=dict)
    par: np.ndarray | None = None
    fit_theta: np.ndarray | None = None


def optimize_lmer(
    fn: Callable[[np.ndarray], float],
    theta0: np.ndarray,
    lower: np.ndarray,
    control: LmerControl | Mapping[str, Any] | None = None,
    *,
    restart_edge: bool | None = None,
    boundary_tol: float | None = None,
) -> OptResult:
    """lme4's `optimizeLmer` under `control` (module docstring); restart_edge and boundary_tol, when
    given, override the control's."""
    ctl = LmerControl.parse(control)
    if restart_edge is None:
        restart_edge = ctl.restart_edge
    if boundary_tol is None:
        boundary_tol = ctl.boundary_tol
    lower = np.asarray(lower, dtype=float)
    theta0 = np.array(theta0, dtype=float)
    state = _State(0, theta0.copy())

    def counted(theta: np.ndarray) -> float:
        state.calls += 1
        state.last = np.array(theta, dtype=float)
        return float(fn(theta))

    if ctl.optimizer is None:
        fval = counted(theta0)
        return OptResult(
            theta=theta0,
            fval=fval,
            feval=None,
            status=0,
            message="no optimization",
            conv=1000,
            evaluations=state.calls,
            start=theta0,
            optimizer=None,
            par=theta0,
        )
    defer = boundary_tol if restart_edge else None
    opt = _optwrap(ctl, counted, theta0, lower, state, defer_above=defer)
    if restart_edge:
        current = np.array(state.last)
        on_bound = np.flatnonzero(current == lower)
        if len(on_bound):
            d0 = counted(current)
            slopes = []
            for i in on_bound:
                theta = current.copy()
                theta[i] = lower[i] + RESTART_STEP
                slopes.append((counted(theta) - d0) / RESTART_STEP)
            counted(current)
            if any(s < 0 for s in slopes):
                # lme4 keeps the second run only (its feval, message and warnings)
                opt = _optwrap(ctl, counted, np.asarray(opt.par), lower, state, defer_above=defer)
                opt.restarted = True
    opt.start = theta0
    if boundary_tol > 0:
        _snap_to_boundary(opt, counted, lower, boundary_tol, current=np.array(state.last))
    if restart_edge:
        opt = _edge_restart(opt, ctl, counted, lower, state)
        _pending_derivs(opt, ctl, counted, state)
    opt.fit_theta = np.array(state.last) if ctl.use_last_params else np.asarray(opt.theta)
    opt.evaluations = state.calls
    return opt


@dataclass
class _State:
    """The devfun's call count and its last theta (lme4's rho$pp$theta)."""

    calls: int
    last: np.ndarray


def _optwrap(
    ctl: LmerControl,
    fn: Callable[[np.ndarray], float],
    par: np.ndarray,
    lower: np.ndarray,
    state: _State,
    *,
    defer_above: float | None = None,
) -> OptResult:
    """lme4's `optwrap` (adj = FALSE): the optimizer, its convergence warning, derivatives, fn(par).

    defer_above: when a theta with lower bound 0 lies in [defer_above, EDGE_RESTART) of it (the
    boundary snap, which moves only thetas closer than boundary.tol, leaves it there, so vcheck's edge
    restart will run), deriv12 is left out (opt.derivs stays None) and taken by `_edge_restart` or
    `_pending_derivs` only if this answer is kept."""
    opt, last_opt = _optwrap_run(ctl, fn, par, lower, state)
    derivs = defer_above is None or not (np.isfinite(opt.fval) and _near_edge(opt.theta, lower, defer_above))
    return _optwrap_finish(ctl, fn, opt, last_opt, derivs=derivs)


def _optwrap_run(
    ctl: LmerControl, fn: Callable[[np.ndarray], float], par: np.ndarray, lower: np.ndarray, state: _State
) -> tuple[OptResult, np.ndarray]:
    """optwrap's first part: the optimizer and its convergence warning; with the devfun's state after the
    optimizer (the theta it evaluated last)."""
    assert ctl.optimizer is not None
    upper = np.full(len(par), np.inf)
    run = optimizers.OPTIMIZERS[ctl.optimizer](fn, par, lower, upper, ctl.optCtrl)
    # lme4's optwrap appends its own "convergence code" warning to a variable in R's global environment
    # (`curWarnings <<-` inside optwrap's body), so optinfo$warnings holds the optimizer's warnings only
    warns = list(run.warnings)
    conv_warning = f"convergence code {run.conv} from {ctl.optimizer}: {run.message}" if run.conv else None
    opt = OptResult(
        theta=np.array(run.par, dtype=float),
        fval=run.fval,
        feval=run.feval,
        status=run.status,
        message=run.message,
        conv=run.conv,
        optimizer=ctl.optimizer,
        warnings=warns,
        conv_warning=conv_warning,
        control=dict(run.control),
        par=np.array(run.par, dtype=float),
    )
    return opt, np.array(state.last)


def _optwrap_finish(
    ctl: LmerControl,
    fn: Callable[[np.ndarray], float],
    opt: OptResult,
    last_opt: np.ndarray,
    derivs: bool = True,
) -> OptResult:
    """optwrap's second part: deriv12 at the optimizer's answer (calc.derivs, unless `derivs` is False),
    then fn at the answer (or, with use.last.params and calc.derivs, at the optimizer's last theta
    `last_opt`)."""
    assert opt.par is not None
    if ctl.calc_derivs and derivs:
        opt.derivs = deriv12(fn, opt.par)
    if ctl.use_last_params:
        if ctl.calc_derivs:
            fn(last_opt)
    else:
        fn(opt.par)
    return opt


def _near_edge(theta: np.ndarray, lower: np.ndarray, floor: float = 0.0) -> bool:
    """Whether a theta with lower bound 0 lies inside (0, EDGE_RESTART) (vcheck's edge restart runs), and
    at least `floor` above it."""
    gap = theta - lower
    return bool(np.any((lower == 0) & (gap > 0) & (gap >= floor) & (gap < EDGE_RESTART)))


def _pending_derivs(
    opt: OptResult, ctl: LmerControl, fn: Callable[[np.ndarray], float], state: _State
) -> None:
    """The deriv12 that `_optwrap(defer_above=...)` left out, at the kept answer's opt.par (the numbers
    optwrap would have computed there: the devfun is a function of theta alone); then the devfun's state
    is put back where it was."""
    if not ctl.calc_derivs or opt.derivs is not None or opt.par is None:
        return
    current = np.array(state.last)
    opt.derivs = deriv12(fn, opt.par)
    fn(current)


def _edge_restart(
    opt: OptResult, ctl: LmerControl, fn: Callable[[np.ndarray], float], lower: np.ndarray, state: _State
) -> OptResult:
    """vcheck's edge restart (module docstring): optwrap once more from an answer with a theta_i in
    (0, EDGE_RESTART) where lower_i = 0; the lower of the two answers is kept.  optwrap's derivatives and
    closing evaluation are taken for the answer that is kept only (deferred: `_optwrap`)."""
    if not _near_edge(opt.theta, lower) or not np.isfinite(opt.fval):
        return opt
    answer = np.array(state.last)
    again, last_again = _optwrap_run(ctl, fn, opt.theta, lower, state)
    if not again.fval < opt.fval:
        if ctl.calc_derivs and opt.derivs is None:
            assert opt.par is not None
            opt.derivs = deriv12(fn, opt.par)
        fn(answer)  # the devfun's state is the first answer again (what use.last.params reads)
        opt.edge_restart = again.feval or 0
        return opt
    again = _optwrap_finish(ctl, fn, again, last_again)
    again.edge_restart = again.feval or 0
    again.feval = (opt.feval or 0) + again.edge_restart
    again.restarted, again.snapped, again.start = opt.restarted, opt.snapped, opt.start
    return again


def _snap_to_boundary(
    opt: OptResult,
    fn: Callable[[np.ndarray], float],
    lower: np.ndarray,
    tol: float,
    current: np.ndarray | None = None,
) -> None:
    """lme4's `check.boundary`: put near-boundary theta on the bound where that lowers the criterion.
    Which thetas are near is read from the devfun's current state (`current`, lme4's rho$pp$theta),
    which is the answer unless use.last.params."""
    state = opt.theta if current is None else current
    gap = state - lower
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


def optinfo(opt: OptResult, control: LmerControl, lower: np.ndarray, failures: int = 0) -> dict[str, Any]:
    """The fit's optinfo (lme4's `.optinfo(opt, checkConv(...))` plus vcheck's bookkeeping); runs
    `checkConv`, which warns or raises as the control's check.conv.* actions say."""
    conv = check_conv(opt.derivs, opt.theta, control, lower)
    warns = list(opt.warnings)
    if failures:
        warns.append(
            f"the PLS system was numerically not positive definite at {failures} theta(s) (criterion "
            "+inf there; lme4 would stop with 'Downdated VtV is not positive definite')"
        )
    algorithm = opt.control.get("algorithm") if opt.optimizer == "nloptwrap" else None
    return {
        "optimizer": opt.optimizer,
        "algorithm": algorithm,
        "control": control.as_r(),
        "optCtrl": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in opt.control.items()},
        "feval": opt.feval,
        "message": opt.message,
        "conv": opt.conv,
        "status": opt.status,
        "restarted": opt.restarted,
        "snapped": list(opt.snapped),
        "edge_restart": opt.edge_restart,
        "evaluations": opt.evaluations,
        "start": [float(t) for t in np.asarray(opt.start)],
        "val": [float(t) for t in np.asarray(opt.theta)],
        "warnings": warns,
        "conv_warning": opt.conv_warning,
        "derivs": opt.derivs,
        "lme4_messages": [] if conv is None else list(conv.messages),
        "lme4_code": [] if conv is None else list(conv.code),
    }


def is_singular(theta: np.ndarray, lower: np.ndarray, tol: float = tolerances.SINGULAR_TOL) -> bool:
    """lme4's `isSingular`: any theta with lower bound 0 below tol."""
    theta, lower = np.asarray(theta), np.asarray(lower)
    return bool(np.any(theta[lower == 0] < tol))
