"""lmer's arguments without R: properties that must hold whatever lme4 answers.

- weights: scaling every weight by c leaves the criterion at theta / sqrt(c) unchanged (and the optimum's
  criterion), multiplies sigma by sqrt(c); unit weights are no weights; V holds sigma^2 / w on its
  diagonal; the GLS beta at the fit is the PLS beta;
- offset: fitting y with offset o is fitting y - o (fitted values differ by o);
- subset: a boolean mask and an R expression select the same rows, and fitting the subset equals fitting
  the subset's rows;
- na_action: na.exclude pads fitted()/residuals() with NaN at the NA rows, na.omit does not, na.fail
  refuses NA;
- contrasts: other contrasts reparametrize X (same criterion, R's column names);
- start, control: a start at the optimum stays there; bad values are refused with VcheckError.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import vcheck
from vcheck.core import tolerances
from vcheck.core.contrasts import contrast_matrix
from vcheck.core.control import parse_control
from vcheck.core.deviance import Devfun
from vcheck.core.errors import DataError, VcheckError
from vcheck.core.subset import SubsetError, subset_mask, subset_rows
from vcheck.reference import examples

SLEEP = "Reaction ~ Days + (Days | Subject)"


@functools.cache
def sleep() -> pd.DataFrame:
    d = examples.load("sleepstudy").data.copy()
    rng = np.random.default_rng(7)
    d["w"] = rng.uniform(0.3, 3.0, len(d))
    d["o"] = rng.normal(0, 20, len(d))
    d["f"] = pd.Categorical(rng.choice(["lo", "mid", "hi"], len(d)), categories=["lo", "mid", "hi"])
    return d


def rel(a: object, b: object) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), tolerances.ABS_FLOOR))


# ---- weights ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("REML", [True, False])
def test_scaling_weights_rescales_theta_and_keeps_the_criterion(REML: bool) -> None:
    d = sleep()
    a = Devfun(vcheck.lFormula(SLEEP, d, weights="w"), REML=REML)
    b = Devfun(vcheck.lFormula(SLEEP, d, weights=10 * d["w"].to_numpy()), REML=REML)
    for theta in ([1.0, 0.0, 1.0], [0.8, -0.1, 0.3], [0.05, 0.02, 0.2]):
        t = np.array(theta)
        assert b(t / math.sqrt(10)) == pytest.approx(a(t), rel=tolerances.AT_THETA)


def test_scaling_weights_at_the_optimum() -> None:
    d = sleep()
    a = vcheck.lmer(SLEEP, d, weights="w")
    b = vcheck.lmer(SLEEP, d, weights=10 * d["w"].to_numpy())
    assert abs(a.criterion - b.criterion) < tolerances.CRITERION_ABS
    assert b.sigma / a.sigma == pytest.approx(math.sqrt(10), rel=tolerances.PATH_DIVERGED)
    assert rel(b.theta * math.sqrt(10), a.theta) < tolerances.PATH_DIVERGED
    assert rel(b.beta, a.beta) < tolerances.PATH_DIVERGED


def test_unit_weights_are_no_weights() -> None:
    d = sleep()
    a = vcheck.lmer(SLEEP, d, weights=np.ones(len(d)))
    b = vcheck.lmer(SLEEP, d)
    assert a.criterion == pytest.approx(b.criterion, rel=1e-13)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-10)


def test_weights_enter_V_gls_beta_and_the_criterion() -> None:
    d = sleep()
    fit = vcheck.lmer(SLEEP, d, weights="w", offset="o")
    assert fit.weights is not None and fit.offset is not None
    np.testing.assert_array_equal(fit.weights, d["w"].to_numpy())
    Z = fit.Zt.T.toarray()
    Lam = fit.Lambdat.T.toarray()
    V = fit.sigma**2 * (Z @ Lam @ Lam.T @ Z.T + np.diag(1.0 / fit.weights))
    assert rel(fit.V().toarray(), V) < tolerances.AT_THETA
    assert rel(fit.gls_beta(), fit.beta) < 1e-8
    # the criterion is -2 log-likelihood of y ~ N(o + X beta, V) (ML: at the ML fit)
    ml = vcheck.lmer(SLEEP, d, REML=False, weights="w", offset="o")
    Z, Lam = ml.Zt.T.toarray(), ml.Lambdat.T.toarray()
    V = ml.sigma**2 * (Z @ Lam @ Lam.T @ Z.T + np.diag(1.0 / ml.weights))
    r = ml.y - ml.offset - ml.X @ ml.beta.to_numpy()
    _, logdet = np.linalg.slogdet(V)
    loglik = -0.5 * (len(r) * math.log(2 * math.pi) + logdet + r @ np.linalg.solve(V, r))
    assert ml.criterion == pytest.approx(-2 * loglik, rel=1e-9)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ("nope", "not a column"),
        ("Subject", "numeric"),
        (np.ones(5), "length"),
        (-np.ones(180), ">= 0"),
        (np.zeros(180), "are 0"),
    ],
)
def test_bad_weights_are_refused(weights: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        vcheck.lmer(SLEEP, sleep(), weights=weights)


def test_na_weights_drop_their_rows() -> None:
    d = sleep()
    w = d["w"].to_numpy().copy()
    w[[0, 5]] = np.nan
    fit = vcheck.lmer(SLEEP, d, weights=w)
    assert fit.n == len(d) - 2 and fit.n_na_dropped == 2
    same = vcheck.lmer(SLEEP, d.drop(d.index[[0, 5]]), weights="w")
    assert fit.criterion == pytest.approx(same.criterion, rel=1e-12)


# ---- offset -------------------------------------------------------------------------------------------


def test_offset_is_shifting_y() -> None:
    d = sleep()
    a = vcheck.lmer(SLEEP, d, offset="o")
    b = vcheck.lmer(SLEEP, d.assign(Reaction=d["Reaction"] - d["o"]))
    assert a.criterion == pytest.approx(b.criterion, rel=1e-12)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-8)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-8)
    np.testing.assert_allclose(a.fitted() - d["o"], b.fitted(), rtol=1e-8)
    np.testing.assert_allclose(a.residuals(), b.residuals(), rtol=1e-6, atol=1e-8)


# ---- subset -------------------------------------------------------------------------------------------


def test_subset_expression_equals_mask_equals_fitting_the_rows() -> None:
    d = sleep()
    expr = 'Days >= 2 & !(Subject %in% c("308", "335")) | Days == 9'
    mask = ((d["Days"] >= 2) & ~d["Subject"].astype(str).isin(["308", "335"])) | (d["Days"] == 9)
    np.testing.assert_array_equal(subset_mask(expr, d), mask.to_numpy())
    a = vcheck.lmer(SLEEP, d, subset=expr, weights="w")
    b = vcheck.lmer(SLEEP, d, subset=mask.to_numpy(), weights="w")
    c = vcheck.lmer(SLEEP, d[mask.to_numpy()], weights="w")
    assert a.criterion == b.criterion == pytest.approx(c.criterion, rel=1e-12)
    assert list(a.row_index) == list(c.row_index)
    assert a.n_na_dropped == 0


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x > 1", [False, True, False, False]),
        ("x > 1 | g == 'b'", [False, True, True, False]),
        ("x > 1 & g == 'b'", [False, True, False, False]),
        ("is.na(x)", [False, False, True, False]),
        ("!is.na(x) & x %% 2 == 0", [False, True, False, False]),
        ("g %in% c('a', 'c')", [True, False, False, True]),
        ("n == 2", [False, True, False, False]),
        ("xor(x > 0, g == 'a')", [False, True, False, True]),
        ("TRUE", [True, True, True, True]),
        ("n %in% 2:3", [False, True, True, False]),
        ("n %in% c(4, 1)", [True, False, False, True]),
        ("-x < -1.5", [False, True, False, False]),
    ],
)
def test_subset_evaluates_this_part_of_R(expr: str, expected: list[bool]) -> None:
    d = pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 0.5],
            "g": pd.Categorical(["a", "b", "b", "c"]),
            "n": pd.Series([1, 2, 3, 4]),
        }
    )
    assert subset_mask(expr, d).tolist() == expected


def test_subset_na_is_an_na_row_as_in_R() -> None:
    d = pd.DataFrame({"x": [1.0, np.nan, 3.0]})
    keep, na = subset_rows("x > 0", d)
    assert keep.tolist() == [True, False, True] and na.tolist() == [False, True, False]
    assert subset_rows("x > 0 | TRUE", d)[1].tolist() == [False, False, False]  # TRUE | NA is TRUE
    assert subset_rows("x > 5 & FALSE", d)[1].tolist() == [False, False, False]  # FALSE & NA is FALSE


@pytest.mark.parametrize(
    ("expr", "match"),
    [
        ("Days > 2 && Days < 5", "&&"),
        ("substr(Subject, 1, 1) == '3'", "outside the part of R"),
        ("Subject < '310'", "collation"),
        ("nope > 1", "not a column"),
        ("Days + 1", "not a logical"),
    ],
)
def test_subset_outside_what_vcheck_evaluates_is_refused(expr: str, match: str) -> None:
    with pytest.raises(SubsetError, match=match):
        vcheck.lmer(SLEEP, sleep(), subset=expr)


def test_subset_mask_of_wrong_length_is_refused() -> None:
    with pytest.raises(SubsetError, match="length"):
        vcheck.lmer(SLEEP, sleep(), subset=np.ones(3, dtype=bool))


# ---- na_action ----------------------------------------------------------------------------------------


def _with_na() -> pd.DataFrame:
    d = sleep().copy()
    d.loc[d.index[[2, 40, 41]], "Days"] = np.nan
    d.loc[d.index[100], "Reaction"] = np.nan
    return d


def test_na_exclude_pads_fitted_and_residuals() -> None:
    d = _with_na()
    omit = vcheck.lmer(SLEEP, d)
    excl = vcheck.lmer(SLEEP, d, na_action="na.exclude")
    assert omit.n_na_dropped == excl.n_na_dropped == 4
    assert len(omit.fitted()) == len(d) - 4
    f = excl.fitted()
    assert len(f) == len(d) and list(f.index) == list(d.index)
    assert sorted(np.flatnonzero(f.isna())) == [2, 40, 41, 100]
    np.testing.assert_array_equal(f.dropna().to_numpy(), omit.fitted().to_numpy())
    r = excl.residuals()
    assert len(r) == len(d) and r.isna().sum() == 4
    np.testing.assert_allclose(r.dropna().to_numpy(), (omit.y - omit.mu))


def test_na_exclude_with_subset_pads_to_the_subset() -> None:
    d = _with_na()
    fit = vcheck.lmer(SLEEP, d, na_action="na.exclude", subset="Days != 0 | is.na(Days)")
    sub = (d["Days"].isna() | (d["Days"] != 0)).to_numpy()
    n_na = int((sub & d[["Days", "Reaction"]].isna().any(axis=1).to_numpy()).sum())
    assert len(fit.fitted()) == sub.sum() and fit.fitted().isna().sum() == n_na == fit.n_na_dropped


def test_na_fail_refuses_na_and_accepts_complete_data() -> None:
    with pytest.raises(DataError, match="missing values"):
        vcheck.lmer(SLEEP, _with_na(), na_action="na.fail")
    fit = vcheck.lmer(SLEEP, sleep(), na_action="na.fail")
    assert fit.n == len(sleep())


@pytest.mark.parametrize("na_action", ["na.pass", "omit", None])
def test_other_na_actions_are_refused(na_action: object) -> None:
    with pytest.raises(DataError, match="na"):
        vcheck.lmer(SLEEP, sleep(), na_action=na_action)  # type: ignore[arg-type]


# ---- contrasts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("contr.treatment", ["fmid", "fhi"]),
        ("contr.sum", ["f1", "f2"]),
        ("contr.helmert", ["f1", "f2"]),
        ("contr.poly", ["f.L", "f.Q"]),
        ("contr.SAS", ["flo", "fmid"]),
    ],
)
def test_contrasts_reparametrize_X(kind: str, names: list[str]) -> None:
    d = sleep()
    formula = "Reaction ~ Days + f + (1 | Subject)"
    base = vcheck.lFormula(formula, d)
    des = vcheck.lFormula(formula, d, contrasts={"f": kind})
    assert des.X_names == ["(Intercept)", "Days", *names]
    C, _ = contrast_matrix(kind, ("lo", "mid", "hi"))
    np.testing.assert_allclose(des.X[:, 2:], C[np.asarray(d["f"].cat.codes)], atol=1e-15)
    theta = np.array([0.7])  # the ML deviance does not depend on X's parametrization (REML's does)
    assert Devfun(des, REML=False)(theta) == pytest.approx(
        Devfun(base, REML=False)(theta), rel=tolerances.AT_THETA
    )


def test_contrast_matrices_are_Rs() -> None:
    levels = ("a", "b", "c", "d")
    np.testing.assert_array_equal(
        contrast_matrix("contr.helmert", levels)[0], [[-1, -1, -1], [1, -1, -1], [0, 2, -1], [0, 0, 3]]
    )
    np.testing.assert_array_equal(
        contrast_matrix("contr.sum", levels)[0], [[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]]
    )


def test_bad_contrasts_are_refused() -> None:
    with pytest.raises(DataError, match=r"contr\.nope"):
        vcheck.lmer(SLEEP, sleep(), contrasts={"f": "contr.nope"})
    with pytest.warns(UserWarning, match="absent"):
        vcheck.lFormula(SLEEP, sleep(), contrasts={"nothere": "contr.sum"})


# ---- start and control --------------------------------------------------------------------------------


def test_start_at_the_optimum_stays_there() -> None:
    d = sleep()
    a = vcheck.lmer(SLEEP, d)
    b = vcheck.lmer(SLEEP, d, start={"theta": a.theta})
    c = vcheck.lmer(SLEEP, d, start=list(a.theta))
    assert b.criterion <= a.criterion + tolerances.CRITERION_ABS
    assert c.criterion == b.criterion
    assert b.optinfo["start"] == list(a.theta)


@pytest.mark.parametrize(
    ("start", "match"),
    [
        ([1.0], "number of theta"),
        ({"fixef": [1.0]}, "no 'theta'"),
        ({"theta": [1.0, 0, 1], "beta": 1}, "incorrect components"),
        ([-1.0, 0.0, 1.0], "lower bounds"),
        (["a", "b", "c"], "numeric vector"),
    ],
)
def test_bad_start_is_refused(start: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        vcheck.lmer(SLEEP, sleep(), start=start)


def test_control_is_read_like_lmerControl() -> None:
    c = parse_control({"check_nobs_vs_nlev": "ignore", "restart_edge": False, "boundary.tol": 0})
    assert c.check("check.nobs.vs.nlev") == "ignore" and not c.restart_edge and c.boundary_tol == 0
    assert c.as_r() == {"check.nobs.vs.nlev": "ignore", "restart_edge": False, "boundary.tol": 0.0}
    with pytest.raises(DataError, match="unused argument"):
        parse_control({"nope": 1})
    with pytest.raises(DataError, match="optimizer"):
        parse_control({"optimizer": "Nelder-Mead"})
    with pytest.raises(DataError, match="action"):
        parse_control({"check.nlev.gtr.1": "sometimes"})


def test_control_checks_act_in_lFormula() -> None:
    d = sleep().assign(obs=lambda x: np.arange(len(x)).astype(str))
    formula = "Reaction ~ Days + (1 | obs)"
    with pytest.raises(DataError, match="number of levels"):
        vcheck.lFormula(formula, d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(VcheckError):  # nobs.vs.nRE still stops
            vcheck.lFormula(formula, d, control={"check.nobs.vs.nlev": "ignore"})
        des = vcheck.lFormula(
            formula, d, control={"check.nobs.vs.nlev": "ignore", "check.nobs.vs.nRE": "ignore"}
        )
    assert des.q == len(d)


def test_control_reaches_the_optimizer() -> None:
    d = sleep()
    fit = vcheck.lmer(SLEEP, d, control={"restart_edge": False, "calc.derivs": False})
    assert fit.optinfo["control"] == {"restart_edge": False, "calc.derivs": False}
    for optimizer in ("bobyqa", "Nelder_Mead"):
        other = vcheck.lmer(SLEEP, d, weights="w", control={"optimizer": optimizer})
        assert other.optinfo["optimizer"] == optimizer
        assert other.criterion == pytest.approx(vcheck.lmer(SLEEP, d, weights="w").criterion, abs=1e-4)
