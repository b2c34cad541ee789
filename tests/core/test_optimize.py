"""lme4's optimizer stage without R: each optimizer's rules on analytic functions, optimizeLmer's restart
and boundary snap, deriv12 and checkConv, and lmerControl parsing (vcheck.core.control)."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import numpy as np
import pytest

from vcheck.core import optimize, optimizers
from vcheck.core.control import (
    CheckWarning,
    ControlError,
    ConvCheck,
    LmerControl,
    apply_check,
    parse_control,
    start_vector,
)
from vcheck.core.derivs import SINGULAR_MESSAGE, check_conv, check_hess, deriv12
from vcheck.core.errors import DataError, VcheckError
from vcheck.core.nelder_mead import NelderMead, NelderMeadError, Status, nelder_mead


def quad(x: np.ndarray) -> float:
    return float((x[0] - 0.7) ** 2 + 2 * (x[1] + 0.3) ** 2 + 0.5 * x[0] * x[1])


QUAD_MIN = np.linalg.solve([[2.0, 0.5], [0.5, 4.0]], [1.4, -1.2])


def pdfo_available() -> bool:
    try:
        optimizers._powell_bobyqa()
    except optimizers.OptimizerError:
        return False
    return True


# --- nloptwrap ------------------------------------------------------------------------------------------
def test_nloptwrap_settings_and_messages() -> None:
    """nloptwrap's stopping rule on a smooth interior minimum: lme4's XTOL message, conv 0, feval counted."""
    calls: list[np.ndarray] = []

    def f(x: np.ndarray) -> float:
        calls.append(x.copy())
        return quad(x)

    run = optimizers.nloptwrap(f, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), np.full(2, np.inf), {})
    assert run.feval == len(calls) and run.conv == 0
    assert run.message == optimizers.NLOPTR_MESSAGES[run.status] and run.status in (3, 4)
    assert run.control["algorithm"] == "NLOPT_LN_BOBYQA" and run.control["xtol_rel"] == 1e-4
    assert np.allclose(run.par, QUAD_MIN, atol=1e-4)


def test_nloptwrap_optctrl() -> None:
    """maxeval stops with status 5 (conv 5, as lme4 reports it); unknown names (maxfun) are ignored as
    nloptr ignores them; other derivative-free algorithms run; derivative-based ones are refused."""
    lower, upper = np.array([0.0, -np.inf]), np.full(2, np.inf)
    run = optimizers.nloptwrap(quad, np.array([1.0, 0.0]), lower, upper, {"maxeval": 7})
    assert run.feval == 7 and run.status == 5 and run.conv == 5
    same = optimizers.nloptwrap(quad, np.array([1.0, 0.0]), lower, upper, {"maxfun": 7})
    default = optimizers.nloptwrap(quad, np.array([1.0, 0.0]), lower, upper, {})
    assert same.feval == default.feval and np.array_equal(same.par, default.par)
    nm = optimizers.nloptwrap(quad, np.array([1.0, 0.0]), lower, upper, {"algorithm": "NLOPT_LN_NELDERMEAD"})
    assert np.allclose(nm.par, QUAD_MIN, atol=1e-3)
    with pytest.raises(optimizers.OptimizerError, match="derivative-free"):
        optimizers.nloptwrap(quad, np.array([1.0, 0.0]), lower, upper, {"algorithm": "NLOPT_LD_LBFGS"})
    with pytest.raises(optimizers.OptimizerError, match="x0 < lb"):
        optimizers.nloptwrap(quad, np.array([-1.0, 0.0]), lower, upper, {})


# --- lme4's Nelder-Mead ---------------------------------------------------------------------------------
def test_nelder_mead_initial_simplex_and_bounds() -> None:
    """x0 then x0 + xst_i e_i, evaluated in column order; a step past a bound is pinned to it, or turned
    around when the bound is nearer than 0.1 |xst|."""
    nm = NelderMead(
        np.array([0.0, -np.inf]),
        np.array([np.inf, 0.01]),
        np.array([0.02, 0.02]),
        np.array([0.0, 0.0]),
        np.full(2, 1e-5),
    )
    assert np.array_equal(nm.pts[:, 0], [0.0, 0.0])
    assert np.array_equal(nm.pts[:, 1], [0.02, 0.0])
    assert np.array_equal(nm.pts[:, 2], [0.0, 0.01])  # pinned to the upper bound 0.01
    nm = NelderMead(np.array([0.0]), np.array([0.001]), np.array([0.02]), np.array([0.0]), np.array([1e-5]))
    assert nm.pts[0, 1] == 0.0005  # both bounds too near: half-way towards the farther one
    with pytest.raises(NelderMeadError, match="not a feasible point"):
        NelderMead(np.array([0.0]), np.array([1.0]), np.array([0.02]), np.array([-1.0]), np.array([1e-5]))


def test_nelder_mead_steps_by_hand() -> None:
    """The first moves on f(x) = x^2 from x0 = 1 with xst = 0.5: the simplex {1, 1.5}, reflection of the
    worst (1.5) through the centroid (1) to 0.5, which is a new best, so an expansion to 0 follows."""
    seen: list[float] = []

    def f(x: np.ndarray) -> float:
        seen.append(float(x[0]))
        return float(x[0] ** 2)

    res = nelder_mead(f, np.array([1.0]), control={"xst": [0.5], "maxfun": 4})
    assert seen[:4] == [1.0, 1.5, 0.5, 0.0]
    assert res.NM_result == 4 and res.convergence == 0 and res.feval == 5
    assert res.message == "failure to converge in 4 evaluations" and res.warnings == [res.message]
    assert res.par[0] == 0.0 and res.fval == 0.0


def test_nelder_mead_converges_and_counts() -> None:
    """X-convergence (spread below xt = xst * 5e-4 in every coordinate) on a smooth function; feval counts
    every evaluation; the answer is the best point evaluated."""
    calls: list[float] = []

    def f(x: np.ndarray) -> float:
        v = quad(x)
        calls.append(v)
        return v

    res = nelder_mead(f, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), np.full(2, np.inf))
    assert res.NM_result == Status.XCVG and res.message == "parameter values converged to within tolerance"
    assert res.feval == len(calls) and res.fval == min(calls)
    assert np.allclose(res.par, QUAD_MIN, atol=1e-4)
    # FtolAbs/FtolRel are stored but never tested by lme4's C++: the path is the same
    calls.clear()
    same = nelder_mead(
        f, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), None, {"FtolAbs": 1.0, "FtolRel": 0.5}
    )
    assert same.feval == res.feval and np.array_equal(same.par, res.par)
    assert nelder_mead(quad, np.array([1.0, 0.0]), control={"foo": 1}).warnings == [
        "unused control arguments ignored"
    ]


def test_nelder_mead_minf_max_and_errors() -> None:
    res = nelder_mead(lambda x: float(x[0] ** 2 - 1), np.array([1.0]), control={"MinfMax": -0.5})
    assert res.NM_result == 1 and res.message == "objective function went below allowed minimum"
    assert res.fval < -0.5
    with pytest.raises(NelderMeadError):
        nelder_mead(quad, np.array([1.0, 0.0]), control={"xst": [0.0, 0.02]})


def test_nelder_mead_shrinks_when_contraction_fails() -> None:
    """A shrink re-evaluates the whole simplex, the best vertex included (lme4's init_pos = 0)."""
    seen: list[tuple[float, ...]] = []

    def f(x: np.ndarray) -> float:
        seen.append(tuple(x))
        # a narrow valley along x0 = x1 makes reflections and contractions fail often
        return float(100 * (x[0] - x[1]) ** 2 + 0.01 * (x[0] + x[1]) ** 2)

    nelder_mead(f, np.array([1.0, 1.0]), control={"maxfun": 200})
    repeats = [p for i, p in enumerate(seen) if p in seen[:i]]
    assert repeats  # some vertex was evaluated twice (the kept best vertex after a shrink)


# --- minqa's bobyqa (Powell's Fortran) ------------------------------------------------------------------
def test_minqa_bobyqa_rules() -> None:
    """Without pdfo (the 'bobyqa' extra) this is skipped on a developer's machine and fails in CI.

    minqa's defaults: npt = n + 2, rhobeg = min(0.95, 0.2 max|par|), rhoend = 1e-6 rhobeg; one check
        evaluation before BOBYQA, not counted; npt points first (x0, x0 + rhobeg e_i, x0 - rhobeg e_1)."""
    if not pdfo_available():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI=true and pdfo (Powell's Fortran BOBYQA, the 'bobyqa' extra) is not importable")
        pytest.skip("pdfo (Powell's Fortran BOBYQA) is not importable here")
    seen: list[np.ndarray] = []

    def f(x: np.ndarray) -> float:
        seen.append(x.copy())
        return quad(x)

    run = optimizers.minqa_bobyqa(f, np.array([1.0, 0.5]), np.array([0.0, -np.inf]), np.full(2, np.inf), {})
    assert (
        run.control["npt"] == 4 and run.control["rhobeg"] == 0.2 and math.isclose(run.control["rhoend"], 2e-7)
    )
    assert run.feval == len(seen) - 1 and run.conv == 0 and run.message == "Normal exit from bobyqa"
    assert np.array_equal(seen[0], seen[1])  # minqa's check, then Powell's first point
    assert np.allclose(seen[2], [1.2, 0.5]) and np.allclose(seen[3], [1.0, 0.7])
    assert np.allclose(run.par, QUAD_MIN, atol=1e-6)
    short = optimizers.minqa_bobyqa(
        quad, np.array([1.0, 0.5]), np.array([0.0, -np.inf]), np.full(2, np.inf), {"maxfun": 6}
    )
    assert short.conv == 1 and "maximum number of function evaluations" in short.message
    assert "maxfun < 10 * length(par)^2 is not recommended." in short.warnings
    zero = optimizers.minqa_bobyqa(quad, np.zeros(2), np.full(2, -np.inf), np.full(2, np.inf), {"foo": 1})
    assert zero.control["rhobeg"] == pytest.approx(0.2 * 0.001)  # optwrap moved the all-zero start
    assert "unused control arguments ignored" in zero.warnings
    with pytest.raises(optimizers.OptimizerError, match="Starting values violate bounds"):
        optimizers.minqa_bobyqa(quad, np.array([-1.0, 0.5]), np.array([0.0, -np.inf]), np.full(2, np.inf), {})


# --- optimizeLmer ---------------------------------------------------------------------------------------
def test_restart_at_the_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run ending on a bound with a negative one-sided slope is restarted from there (lme4's
    optimizeLmer); lme4's feval is the second run's."""
    runs: list[np.ndarray] = []

    def fake(fn, x0, lower, upper, ctrl):  # type: ignore[no-untyped-def]
        runs.append(np.array(x0))
        theta = np.array([0.0, 0.5]) if len(runs) == 1 else np.array([0.2, 0.5])
        return optimizers.OptimizerRun("nloptwrap", theta, fn(theta), 10 * len(runs), 0, "m", 4)

    monkeypatch.setitem(optimizers.OPTIMIZERS, "nloptwrap", fake)
    opt = optimize.optimize_lmer(lambda t: float((t[0] - 0.2) ** 2 + t[1] ** 2), np.ones(2), np.zeros(2))
    assert opt.restarted and len(runs) == 2 and np.array_equal(runs[1], [0.0, 0.5])
    assert opt.feval == 20 and np.array_equal(opt.theta, [0.2, 0.5])
    runs.clear()  # a positive slope at the bound: no restart
    opt = optimize.optimize_lmer(lambda t: float((t[0] + 0.2) ** 2 + t[1] ** 2), np.ones(2), np.zeros(2))
    assert not opt.restarted and len(runs) == 1
    runs.clear()  # restart_edge = FALSE: none
    opt = optimize.optimize_lmer(
        lambda t: float((t[0] - 0.2) ** 2 + t[1] ** 2), np.ones(2), np.zeros(2), {"restart_edge": False}
    )
    assert not opt.restarted and len(runs) == 1


def scripted_nloptwrap(monkeypatch: pytest.MonkeyPatch, ends: dict[int, np.ndarray]) -> list[np.ndarray]:
    """nloptwrap replaced by a script: its k-th run (k from 1) ends at ends[k] (read when it runs) with
    feval 10 k; the returned list collects each run's start."""
    runs: list[np.ndarray] = []

    def fake(fn, x0, lower, upper, ctrl):  # type: ignore[no-untyped-def]
        runs.append(np.array(x0))
        theta = ends[len(runs)]
        return optimizers.OptimizerRun("nloptwrap", theta, fn(theta), 10 * len(runs), 0, "m", 4)

    monkeypatch.setitem(optimizers.OPTIMIZERS, "nloptwrap", fake)
    return runs


def test_edge_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """vcheck's edge restart: an answer with a theta inside (0, EDGE_RESTART) of its zero bound gets one
    more optwrap from the answer; a lower second answer replaces it (feval adds both runs), a higher one
    is dropped and the devfun's state is the first answer again.  Away from the edge: no second run."""
    ends = {1: np.array([0.004, 0.5]), 2: np.array([0.0, 0.5])}
    runs = scripted_nloptwrap(monkeypatch, ends)
    seen: list[np.ndarray] = []

    def f(t: np.ndarray) -> float:  # lowest on the edge t0 = 0
        seen.append(np.array(t))
        return float(t[0] + (t[1] - 0.5) ** 2)

    opt = optimize.optimize_lmer(f, np.ones(2), np.zeros(2))
    assert len(runs) == 2 and np.array_equal(runs[1], [0.004, 0.5])
    assert np.array_equal(opt.theta, [0.0, 0.5]) and opt.fval == 0.0 and opt.feval == 30
    assert opt.edge_restart == 20 and np.array_equal(opt.fit_theta, [0.0, 0.5])
    runs.clear()  # the second answer is higher: the first is kept, and is the devfun's last state
    seen.clear()
    ends[2] = np.array([0.006, 0.5])
    opt = optimize.optimize_lmer(f, np.ones(2), np.zeros(2))
    assert len(runs) == 2 and np.array_equal(opt.theta, [0.004, 0.5]) and opt.feval == 10
    assert opt.edge_restart == 20 and np.array_equal(seen[-1], [0.004, 0.5])
    runs.clear()  # restart_edge = FALSE, or no theta near its bound: one run
    optimize.optimize_lmer(f, np.ones(2), np.zeros(2), {"restart_edge": False})
    assert len(runs) == 1
    runs.clear()
    ends[1] = np.array([0.02, 0.5])
    opt = optimize.optimize_lmer(f, np.ones(2), np.zeros(2))
    assert len(runs) == 1 and opt.edge_restart == 0
    runs.clear()  # a theta near a bound other than 0 (a correlation, lower -inf) is not an edge
    ends[1] = np.array([0.5, 0.004])
    opt = optimize.optimize_lmer(f, np.ones(2), np.array([0.0, -np.inf]))
    assert len(runs) == 1


def test_edge_restart_takes_derivs_of_the_kept_answer_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer near the edge gets no deriv12 until the edge restart has decided: the kept answer has
    exactly optwrap's derivatives (deriv12 at its par, then fn(par) or fn(first answer)), the dropped one
    none.  Accepted: run 1, fn(par 1), run 2, deriv12 at par 2, fn(par 2); rejected: run 1, fn(par 1),
    run 2, deriv12 at par 1, fn(par 1)."""
    ends = {1: np.array([0.004, 0.5]), 2: np.array([0.0, 0.5])}
    runs = scripted_nloptwrap(monkeypatch, ends)
    calls: list[np.ndarray] = []

    def f(t: np.ndarray) -> float:  # lowest on the edge t0 = 0
        calls.append(np.array(t))
        return float(t[0] + (t[1] - 0.5) ** 2 + t[0] * t[1])

    def deriv12_calls(x: np.ndarray) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        seen: list[np.ndarray] = []
        d = deriv12(lambda t: (seen.append(np.array(t)), f(t))[1], x)
        return d, seen

    n_d = 1 + 2 * 2 + 4 * 1  # deriv12's calls for two thetas
    opt = optimize.optimize_lmer(f, np.ones(2), np.zeros(2))
    d2, seen2 = deriv12_calls(ends[2])
    assert len(runs) == 2 and opt.edge_restart == 20 and np.array_equal(opt.theta, ends[2])
    assert opt.evaluations == 1 + 1 + 1 + n_d + 1
    assert opt.derivs is not None and all(np.array_equal(opt.derivs[k], d2[k]) for k in d2)
    want = [ends[1], ends[1], ends[2], *seen2, ends[2]]
    assert all(np.array_equal(a, b) for a, b in zip(calls[: len(want)], want, strict=True))
    runs.clear()  # the second answer is higher: deriv12 at the first answer, which is the last state
    calls.clear()
    ends[2] = np.array([0.006, 0.5])
    opt = optimize.optimize_lmer(f, np.ones(2), np.zeros(2))
    d1, seen1 = deriv12_calls(ends[1])
    assert len(runs) == 2 and np.array_equal(opt.theta, ends[1]) and opt.feval == 10
    assert opt.evaluations == 1 + 1 + 1 + n_d + 1
    assert opt.derivs is not None and all(np.array_equal(opt.derivs[k], d1[k]) for k in d1)
    want = [ends[1], ends[1], ends[2], *seen1, ends[1]]
    assert all(np.array_equal(a, b) for a, b in zip(calls[: len(want)], want, strict=True))
    runs.clear()  # calc.derivs = FALSE: none either way
    opt = optimize.optimize_lmer(f, np.ones(2), np.zeros(2), {"calc.derivs": False})
    assert len(runs) == 2 and opt.derivs is None and opt.evaluations == 1 + 1 + 1 + 1
    runs.clear()  # within boundary.tol of the edge (the snap may move it): derivatives as lme4 takes them
    ends[1] = np.array([5e-6, 0.5])
    calls.clear()
    opt = optimize.optimize_lmer(f, np.ones(2), np.zeros(2))
    d1, seen1 = deriv12_calls(ends[1])
    assert all(np.array_equal(a, b) for a, b in zip(calls[1 : 1 + n_d], seen1, strict=True))
    assert opt.derivs is not None and all(np.array_equal(opt.derivs[k], d1[k]) for k in d1)


def test_boundary_snap() -> None:
    """check.boundary: thetas within 1e-5 of their bound go onto it, in order and cumulatively, each
    trial compared with the criterion of the unsnapped optimum (lme4's rule, quirk included)."""

    def snapped(fn, theta):  # type: ignore[no-untyped-def]
        opt = optimize.OptResult(np.array(theta), fn(np.array(theta)), 5, 4, "m", 0)
        optimize._snap_to_boundary(opt, fn, np.zeros(3), optimize.BOUNDARY_TOL)
        assert opt.fval == fn(opt.theta)
        return opt.theta, opt.snapped

    theta, which = snapped(lambda t: float(t[0] + (t[1] - 0.3) ** 2 - 10 * t[2]), [4e-6, 0.3, 2e-6])
    assert np.array_equal(theta, [0.0, 0.3, 2e-6]) and which == [0]
    theta, which = snapped(lambda t: float(t[0] + (t[1] - 0.3) ** 2 - t[2]), [4e-6, 0.3, 2e-6])
    assert np.array_equal(theta, [0.0, 0.3, 0.0]) and which == [0, 2]


def test_optimize_lmer_calls_as_lme4() -> None:
    """optwrap's calls after the optimizer: deriv12 (1 + 2k + 4 k(k-1)/2 calls) and fn(par) once more;
    calc.derivs = FALSE drops the derivatives; optimizer None returns the start with conv 1000."""
    calls: list[np.ndarray] = []

    def f(x: np.ndarray) -> float:
        calls.append(x.copy())
        return quad(x)

    opt = optimize.optimize_lmer(
        f, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), {"optimizer": "Nelder_Mead"}
    )
    assert opt.feval is not None and opt.evaluations == len(calls) == opt.feval + 1 + 4 + 4 + 1
    assert np.array_equal(calls[-1], opt.theta) and opt.derivs is not None
    calls.clear()
    opt = optimize.optimize_lmer(
        f, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), {"optimizer": "Nelder_Mead", "calc.derivs": False}
    )
    assert opt.derivs is None and opt.evaluations == opt.feval + 1
    opt = optimize.optimize_lmer(f, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), {"optimizer": None})
    assert opt.conv == 1000 and opt.feval is None and opt.message == "no optimization"
    assert np.array_equal(opt.theta, [1.0, 0.0]) and opt.fval == quad(np.array([1.0, 0.0]))
    info = optimize.optinfo(opt, parse_control({"optimizer": None}), np.array([0.0, -np.inf]))
    assert info["optimizer"] is None and info["derivs"] is None and info["lme4_messages"] == []


def test_use_last_params_takes_the_last_state() -> None:
    calls: list[np.ndarray] = []

    def f(x: np.ndarray) -> float:
        calls.append(x.copy())
        return quad(x)

    ctl = {"optimizer": "Nelder_Mead", "use.last.params": True, "calc.derivs": False}
    opt = optimize.optimize_lmer(f, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), ctl)
    assert opt.fit_theta is not None and np.array_equal(opt.fit_theta, calls[-1])
    assert opt.feval == len(calls)


# --- deriv12 and checkConv ------------------------------------------------------------------------------
def test_deriv12_on_a_quadratic() -> None:
    """Central differences are exact on a quadratic up to rounding: g = A x - b, H = A."""
    A = np.array([[2.0, 0.5, 0.0], [0.5, 4.0, 1.0], [0.0, 1.0, 3.0]])
    b = np.array([1.0, -1.0, 0.5])
    x = np.array([0.3, -0.2, 0.9])
    d = deriv12(lambda t: float(0.5 * t @ A @ t - b @ t), x)
    assert np.allclose(d["gradient"], A @ x - b, atol=1e-8)
    assert np.allclose(d["Hessian"], A, atol=1e-6) and np.array_equal(d["Hessian"], d["Hessian"].T)


def test_check_conv_messages() -> None:
    ctl = LmerControl()
    H = np.diag([2.0, 3.0])
    good = {"gradient": np.array([1e-5, -1e-5]), "Hessian": H}
    res = check_conv(good, np.array([1.0, 0.5]), ctl, np.zeros(2))
    assert res is not None and res.messages == [] and res.code == []
    # singular: the message, and nothing else is checked
    res = check_conv(good, np.array([0.0, 0.5]), ctl, np.zeros(2))
    assert res is not None and res.messages == [SINGULAR_MESSAGE]
    bad = {"gradient": np.array([0.5, 0.0]), "Hessian": H}
    with pytest.warns(CheckWarning, match=r"max\|grad\| = 0.353553 \(tol = 0.002, component 1\)"):
        res = check_conv(bad, np.array([1.0, 0.5]), ctl, np.zeros(2))
    assert res is not None and res.code == [-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = check_conv(bad, np.array([1.0, 0.5]), parse_control({"check.conv.grad": "ignore"}), np.zeros(2))
    assert res is not None and res.code == []
    with pytest.raises(ControlError, match="max\\|grad\\|"):
        check_conv(bad, np.array([1.0, 0.5]), parse_control({"check.conv.grad": "stop"}), np.zeros(2))
    assert check_conv(None, np.array([1.0]), ctl, np.zeros(1)) is None


def test_check_hess_codes() -> None:
    assert check_hess(np.diag([1.0, 2.0]), 1e-6) == ([0], [])
    code, msg = check_hess(np.diag([1.0, -2.0]), 1e-6)
    assert code == [-3] and "degenerate  Hessian with 1 negative eigenvalues" in msg[0]
    code, msg = check_hess(np.diag([1.0, 1e-9]), 1e-6)
    assert code == [-4] and "numerically singular" in msg[0]
    code, msg = check_hess(np.diag([1.0, 2e7]), 1e-6)
    assert code == [2, 3] and "very large eigenvalue" in msg[0]


# --- lmerControl ----------------------------------------------------------------------------------------
def test_control_defaults_are_lme4s() -> None:
    c = LmerControl.parse(None)
    assert c.optimizer == "nloptwrap" and c.restart_edge and c.boundary_tol == 1e-5 and c.calc_derivs
    assert c.check("check.nobs.vs.nlev") == "stop" and c.check("check.nobs.vs.rankZ") == "ignore"
    assert c.check_rankX == "message+drop.cols" and c.check_scaleX == "warning"
    assert c.check_conv_grad == ConvCheck("warning", 2e-3, None)
    assert c.check_conv_singular == ConvCheck("message", 1e-4)
    assert c.as_r() == {}


def test_control_parsing() -> None:
    c = parse_control(
        {
            "optimizer": "bobyqa",
            "optCtrl": {"maxfun": 1e5},
            "check.nobs.vs.nlev": "ignore",
            "check_nobs_vs_nRE": "warning",
            "check.conv.grad": {"action": "warning", "tol": 1e-3, "relTol": 1e-2},
            "check.conv.singular": "ignore",
            "check.rankX": "stop",  # R's match.arg: a unique prefix
            "calc.derivs": "FALSE",  # as the CLI passes it
        }
    )
    assert c.optimizer == "bobyqa" and dict(c.optCtrl) == {"maxfun": 1e5}
    assert c.check("check.nobs.vs.nlev") == "ignore" and c.check("check.nobs.vs.nRE") == "warning"
    assert c.check_conv_grad == ConvCheck("warning", 1e-3, 1e-2)
    assert c.check_conv_singular == ConvCheck("ignore", 1e-4)
    assert c.check_rankX == "stop.deficient" and not c.calc_derivs
    assert c.as_r()["check.conv.singular"] == {"action": "ignore", "tol": 1e-4}
    assert parse_control(c) is c
    assert parse_control({"optimizer": None}).optimizer is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.optimizer = "x"  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("control", "match"),
    [
        ({"nope": 1}, "unused argument"),
        ({"autoscale": True}, "lme4 2.x .*1.1-31.* refuses it too"),
        ({"check.conv.nparmax": 10}, "lme4 2.x"),
        ({"optimizer": "Nelder-Mead"}, "optimizer"),
        ({"optimizer": "none"}, "use NULL"),
        ({"optimizer": "nlminbwrap"}, "lme4 1.1-31 can call it"),
        ({"check.nlev.gtr.1": "sometimes"}, "action"),
        ({"check.rankX": "drop"}, "should be one of"),
        ({"check.conv.grad": {"tol": 1}}, "no 'action' string"),
        ({"check.conv.hess": {"action": "warning", "tol": -1}}, ">= 0"),
        ({"optCtrl": [1, 2]}, "optCtrl"),
        ({"restart_edge": 2}, "TRUE or FALSE"),
        ({"boundary.tol": "x"}, "number"),
        ({"mod.type": "glmer"}, "lmer models only"),
    ],
)
def test_control_refusals(control: dict, match: str) -> None:
    with pytest.raises(ControlError, match=match) as info:
        parse_control(control)
    assert isinstance(info.value, DataError) and isinstance(info.value, VcheckError)


def test_apply_check_and_start() -> None:
    with pytest.raises(ControlError, match="boom"):
        apply_check("stop", "boom")
    with pytest.warns(CheckWarning, match="careful"):
        assert apply_check("warning", "careful") == "careful"
    assert apply_check("ignore", "quiet") is None
    lower = np.array([0.0, -np.inf, 0.0])
    assert np.array_equal(start_vector([1, 0, 1], lower), [1.0, 0.0, 1.0])
    assert np.array_equal(start_vector({"theta": [1, 0, 1]}, lower), [1.0, 0.0, 1.0])
    with pytest.raises(ControlError, match=r"incorrect number of theta components \(!=3\)"):
        start_vector([1, 0], lower)
    with pytest.raises(ControlError, match="incorrect components in start list: foo"):
        start_vector({"foo": 1}, lower)
    with pytest.raises(ControlError, match="must be NULL"):
        start_vector("abc", lower)


def test_optctrl_values_from_text() -> None:
    """--control passes text: numbers and TRUE/FALSE are read as R reads them; other text is refused by
    the optimizer that needs a number, with a clear error."""
    c = parse_control({"optCtrl": {"maxeval": "7", "warnOnly": "TRUE", "algorithm": "NLOPT_LN_BOBYQA"}})
    assert dict(c.optCtrl) == {"maxeval": 7.0, "warnOnly": True, "algorithm": "NLOPT_LN_BOBYQA"}
    opt = optimize.optimize_lmer(quad, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), c)
    assert opt.feval == 7 and opt.conv == 5
    with pytest.raises(optimizers.OptimizerError, match="maxeval = 'many' is not a number"):
        optimize.optimize_lmer(
            quad, np.array([1.0, 0.0]), np.array([0.0, -np.inf]), {"optCtrl": {"maxeval": "many"}}
        )
    with pytest.raises(optimizers.OptimizerError, match="maxfun"):
        optimize.optimize_lmer(
            quad,
            np.array([1.0, 0.0]),
            np.array([0.0, -np.inf]),
            {"optimizer": "Nelder_Mead", "optCtrl": {"maxfun": "x"}},
        )
