"""lmer's arguments against live lme4 1.1-31, on calls from lme4's own test suite.

Each call runs in vcheck (`vcheck.lmer(..., weights=, offset=, subset=, na_action=, contrasts=, start=,
control=)`) and in lme4 (`vcheck.reference.lmer` with the same arguments, passed as R code passes them).
At lme4's theta vcheck's construction must agree to AT_THETA: criterion, beta, sigma, V including
sigma^2 W^-1, the prior weights and offset, the rows used; at the optimum the criterion agrees to
CRITERION_ABS (theta to PATH_DIVERGED: BOBYQA's path may part from lme4's on a flat optimum).  V is
checked against lme4's own likelihood: -2 logLik(ML) = n log(2 pi) + log det V + r'V^-1 r with
r = y - offset - X beta.  na.exclude's padding is compared with R's own fitted() and residuals().

Sources (lme4's tests/): priorWeights.R, priorWeightsModComp.R, testthat/test-lmer.R (Dyestuff with
weights/subset/na.action/offset/contrasts/start), testthat/test-NAhandling.R, testthat/test-resids.R.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

import vcheck
from vcheck.auditing.cases import Case
from vcheck.auditing.strategies import argument_cases
from vcheck.core import tolerances
from vcheck.core.deviance import Devfun
from vcheck.core.fit import fit_at

pytestmark = pytest.mark.r


def rel(a: object, b: object) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(
        np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), tolerances.ABS_FLOOR)
    )


def r_eval(code: str) -> Any:
    """Evaluate R code in the embedded R (after vcheck's bridge has started it)."""
    from vcheck.reference import rbridge

    rbridge.session()
    import rpy2.robjects as ro

    return ro.r(code)


def r_frame(code: str) -> pd.DataFrame:
    from vcheck.reference import rbridge

    return rbridge.frame_from_r(r_eval(code)).reset_index(drop=True)


def r_vector(code: str) -> np.ndarray:
    return np.asarray(r_eval(code), dtype=float)


@functools.cache
def sleepstudy() -> pd.DataFrame:
    return r_frame("lme4::sleepstudy")


@functools.cache
def dyestuff() -> pd.DataFrame:
    return r_frame("lme4::Dyestuff")


@functools.cache
def prior_weights_data() -> pd.DataFrame:
    """lme4's tests/priorWeights.R: 100 groups of 10, residual sd rpois(1) + 1, w = 1 / sd^2."""
    return r_frame(
        """local({
        suppressWarnings(RNGkind("Mersenne-Twister", "Inversion", "Rounding"))
        set.seed(1)
        nGroups <- 100; nObs <- 1000
        explVar1 <- rnorm(nObs); explVar2 <- rnorm(nObs)
        groupFac <- as.factor(rep(1:nGroups, each = nObs/nGroups))
        randEff0 <- rep(rnorm(nGroups), each = nObs/nGroups)
        randEff1 <- rep(rnorm(nGroups), each = nObs/nGroups)
        randEff2 <- rep(rnorm(nGroups), each = nObs/nGroups)
        residSD <- rpois(nObs, 1) + 1
        residError <- rnorm(nObs, sd = residSD)
        y <- randEff0 + (1 + randEff1) * explVar1 + (1 + randEff2) * explVar2 + residError
        out <- data.frame(y = y, x = explVar1, z = explVar2, g = groupFac, w = 1 / residSD^2)
        RNGkind("default", "default", "default")
        out
    })"""
    )


def quiet(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def agree(
    formula: str, data: pd.DataFrame, REML: bool = True, **kw: Any
) -> tuple[vcheck.LmerFit, vcheck.LmerFit]:
    """vcheck and lme4 on one call: construction at lme4's theta, then the optimum."""
    lme = quiet(vcheck.reference.lmer, formula, data, REML, **kw)
    start, control = kw.pop("start", None), kw.pop("control", None)
    design = quiet(vcheck.lFormula, formula, data, REML, control=control, **kw)
    at = fit_at(Devfun(design, REML=REML), lme.theta)
    assert at.n == lme.n and at.n_na_dropped == lme.n_na_dropped
    assert list(at.row_index) == list(lme.row_index)
    if lme.frame_index is not None:
        assert list(at.frame_index) == list(lme.frame_index)
    assert at.na_action == lme.na_action
    for name in ("weights", "offset"):
        mine, theirs = getattr(at, name), getattr(lme, name)
        assert (mine is None) == (theirs is None), name
        if mine is not None:
            assert rel(mine, theirs) < tolerances.AT_THETA, name
    assert at.X_names == lme.X_names
    assert rel(at.X, lme.X) < tolerances.AT_THETA
    assert rel(at.criterion, lme.criterion) < tolerances.AT_THETA
    assert rel(at.beta, lme.beta) < tolerances.AT_THETA
    assert rel(at.sigma, lme.sigma) < tolerances.AT_THETA
    assert rel(at.mu, lme.mu) < tolerances.AT_THETA
    if lme.n <= 2000:
        assert rel(at.V().toarray(), lme.V().toarray()) < tolerances.AT_THETA
    assert rel(lme.gls_beta(), lme.beta) < 1e-7
    fit = quiet(vcheck.lmer, formula, data, REML, start=start, control=control, **kw)
    assert fit.criterion <= lme.criterion + max(
        tolerances.CRITERION_ABS, tolerances.CRITERION_REL * abs(lme.criterion)
    )
    assert abs(fit.criterion - lme.criterion) < max(
        tolerances.CRITERION_ABS, tolerances.CRITERION_REL * abs(lme.criterion)
    )
    assert rel(fit.theta, lme.theta) < tolerances.PATH_DIVERGED
    return fit, lme


def minus2_loglik(fit: vcheck.LmerFit) -> float:
    """-2 log N(y; offset + X beta, V) with V from the record (W^-1 included)."""
    V = fit.V().toarray()
    r = fit.y - (0 if fit.offset is None else fit.offset) - fit.X @ fit.beta.to_numpy()
    _, logdet = np.linalg.slogdet(V)
    return float(len(r) * math.log(2 * math.pi) + logdet + r @ np.linalg.solve(V, r))


# ---- weights ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "REML"),
    [
        ("y ~ x + (1|g)", False),
        ("y ~ x + (1|g)", True),
        ("y ~ x + (x|g)", False),
        ("y ~ x + (x|g)", True),
        ("y ~ x + z + (x+z|g)", False),
    ],
)
def test_prior_weights_R(formula: str, REML: bool) -> None:
    """lme4's tests/priorWeights.R: lmer(formula, weights = w, REML)."""
    agree(formula, prior_weights_data(), REML, weights="w")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prior_weights_mod_comp(seed: int) -> None:
    """lme4's tests/priorWeightsModComp.R: sleepstudy, w = 1 / (rpois(n, 1) + 1), and w * 10."""
    w = 1.0 / (r_vector(f"local({{ set.seed({seed}); rpois(180, 1) + 1 }})"))
    d = sleepstudy()
    fit1, lme1 = agree("Reaction ~ Days + (Days | Subject)", d, False, weights=w)
    agree("Reaction ~ Days + (1 | Subject)", d, False, weights=w)
    fit10, lme10 = agree("Reaction ~ Days + (Days | Subject)", d, False, weights=w * 10)
    # scaling the weights: same deviance, sigma * sqrt(10), in lme4 and in vcheck
    assert lme10.criterion == pytest.approx(lme1.criterion, abs=1e-5)
    assert fit10.sigma / fit1.sigma == pytest.approx(math.sqrt(10), rel=1e-5)


def test_V_includes_W_inverse_as_lme4s_likelihood_says() -> None:
    d = sleepstudy()
    w = 1.0 / (r_vector("local({ set.seed(3); rpois(180, 1) + 1 })"))
    lme = quiet(vcheck.reference.lmer, "Reaction ~ Days + (Days | Subject)", d, False, weights=w)
    assert lme.criterion == pytest.approx(minus2_loglik(lme), rel=1e-10)
    assert lme.criterion == pytest.approx(-2 * lme.logLik, rel=1e-12)


def test_constant_weights_sleepstudy() -> None:
    """lme4's tests/priorWeights.R: weights = rep(5, nrow(sleepstudy)), REML = FALSE."""
    _fit, lme = agree("Reaction ~ Days + (Days|Subject)", sleepstudy(), False, weights=np.full(180, 5.0))
    plain = quiet(vcheck.reference.lmer, "Reaction ~ Days + (Days|Subject)", sleepstudy(), False)
    assert lme.criterion == pytest.approx(plain.criterion, rel=1e-8)


# ---- Dyestuff: lme4's tests/testthat/test-lmer.R ------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"weights": np.ones(30)},
        {"subset": "TRUE"},
        {"na_action": "na.exclude"},
        {"offset": np.zeros(30)},
        {"contrasts": None},
        {"start": None},
    ],
    ids=["weights", "subset", "na.exclude", "offset", "contrasts", "start"],
)
def test_dyestuff_arguments(kw: dict[str, Any]) -> None:
    agree("Yield ~ 1|Batch", dyestuff(), True, **kw)


def test_offset_and_subset_expression() -> None:
    d = sleepstudy().assign(o=lambda x: 0.5 * x["Days"] ** 2)
    agree("Reaction ~ Days + (Days | Subject)", d, True, offset="o", subset='Days > 0 & Subject != "308"')
    agree("Reaction ~ Days + offset(o) + (1 | Subject)", d, False, offset=np.linspace(-3, 3, 180))


# ---- NA handling: test-NAhandling.R, test-resids.R ----------------------------------------------------


def test_na_exclude_two_factors() -> None:
    """lme4's test-NAhandling.R: lmer(y ~ x + (1|f) + (1|g), dd, na.action = na.exclude)."""
    dd = r_frame(
        """local({ set.seed(101); data.frame(x = c(rnorm(199), NA), y = rnorm(200),
        f = factor(rep(1:10, each = 20)), g = factor(rep(1:20, each = 10))) })"""
    )
    fit, _lme = agree("y ~ x + (1|f) + (1|g)", dd, True, na_action="na.exclude")
    assert len(fit.fitted()) == 200 and np.isnan(fit.fitted().iloc[199])


def test_na_exclude_padding_is_Rs() -> None:
    """lme4's test-resids.R: Reaction[1] <- NA; lmer(Reaction ~ 1 + (1|Subject), na.action = na.exclude);
    fitted() and residuals() padded as R pads them (NA first)."""
    d = sleepstudy().copy()
    d.loc[0, "Reaction"] = np.nan
    d.loc[[50, 51], "Days"] = np.nan
    fit, lme = agree(
        "Reaction ~ Days + (1|Subject)", d, True, na_action="na.exclude", subset="Days != 3 | is.na(Days)"
    )
    r_fitted = r_vector(
        """local({ d <- lme4::sleepstudy; d$Reaction[1] <- NA; d$Days[51:52] <- NA
        m <- lme4::lmer(Reaction ~ Days + (1|Subject), d, na.action = na.exclude,
                        subset = Days != 3 | is.na(Days))
        c(fitted(m), NaN, residuals(m)) })"""
    )
    k = len(r_fitted) // 2
    np.testing.assert_allclose(fit.fitted().to_numpy(), r_fitted[:k], rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(
        fit.residuals().to_numpy(), r_fitted[k + 1 :], rtol=1e-5, atol=1e-6, equal_nan=True
    )
    np.testing.assert_allclose(lme.fitted().to_numpy(), r_fitted[:k], rtol=1e-12, equal_nan=True)


def test_na_fail_refuses_like_lme4() -> None:
    d = sleepstudy().copy()
    d.loc[3, "Days"] = np.nan
    with pytest.raises(vcheck.VcheckError, match="missing values"):
        vcheck.lmer("Reaction ~ Days + (1|Subject)", d, na_action="na.fail")
    with pytest.raises(vcheck.RError, match="missing values"):
        vcheck.reference.lmer("Reaction ~ Days + (1|Subject)", d, na_action="na.fail")


# ---- contrasts, start, control ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["contr.sum", "contr.helmert", "contr.poly", "contr.SAS", "contr.treatment"])
def test_contrasts(kind: str) -> None:
    d = r_frame("lme4::cake")
    agree("angle ~ recipe + temperature + (1|replicate)", d, True, contrasts={"recipe": kind})


def test_start_and_control() -> None:
    d = sleepstudy()
    agree("Reaction ~ Days + (Days | Subject)", d, True, start={"theta": [0.5, 0.0, 0.5]})
    agree(
        "Reaction ~ Days + (Days | Subject)", d, False, start=[2.0, 0.1, 0.5], control={"restart_edge": False}
    )
    agree("Reaction ~ Days + (1 | Subject)", d, True, control={"boundary.tol": 0, "calc.derivs": False})


def test_control_checks_like_lme4() -> None:
    d = sleepstudy().assign(obs=lambda x: np.arange(len(x)).astype(str))
    formula = "Reaction ~ Days + (1|Subject) + (1|obs)"
    with pytest.raises(vcheck.RError, match="number of levels"):
        vcheck.reference.lmer(formula, d)
    with pytest.raises(vcheck.DataError, match="number of levels"):
        vcheck.lmer(formula, d)
    ctrl = {"check.nobs.vs.nlev": "ignore", "check.nobs.vs.nRE": "ignore"}
    lme = quiet(vcheck.reference.lFormula, formula, d, control=ctrl)
    mine = quiet(vcheck.lFormula, formula, d, control=ctrl)
    assert rel(mine.Zt.toarray(), lme.Zt.toarray()) == 0.0
    theta = np.array([0.8, 0.4])
    theirs = vcheck.reference.devfun(formula, d, control=ctrl)
    assert rel(Devfun(mine)(theta), theirs(theta)) < tolerances.AT_THETA


@pytest.mark.parametrize(
    "control",
    [
        {"optimizer": "bobyqa"},
        {"optimizer": "Nelder_Mead"},
        {"optimizer": "nloptwrap", "optCtrl": {"xtol_abs": 1e-10, "ftol_abs": 1e-10}},
    ],
    ids=["bobyqa", "Nelder_Mead", "nloptwrap-optCtrl"],
)
def test_optimizers_with_weights_follow_lme4(control: dict[str, Any]) -> None:
    """A non-default optimizer on a weighted model with an offset: lme4's optimum (and its path: the
    same number of evaluations)."""
    d = sleepstudy().assign(o=lambda x: 0.1 * x["Days"])
    w = 1.0 / (r_vector("local({ set.seed(4); rpois(180, 1) + 1 })"))
    fit, lme = agree("Reaction ~ Days + (Days | Subject)", d, True, weights=w, offset="o", control=control)
    assert fit.optinfo["optimizer"] == lme.optinfo["optimizer"] == control["optimizer"]
    if control["optimizer"] == "bobyqa":
        # measured: 88 evaluations against lme4's 87 on this case (98/98 and 104/104 on others): vcheck's
        # BOBYQA (Powell's Fortran through pdfo) parts from minqa's in the last digits here
        assert abs(fit.optinfo["feval"] - lme.optinfo["feval"]) <= 2
    else:
        assert fit.optinfo["feval"] == lme.optinfo["feval"]


# ---- drawn cases with arguments -----------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(case=argument_cases())
def test_drawn_cases_with_arguments_agree_with_lme4(case: Case) -> None:
    """Drawn weights, offsets, NA rows, subsets and na.exclude: lme4's devfun at random thetas, and lme4's
    fit at its theta, equal vcheck's (or both refuse the case)."""
    try:
        lme = quiet(vcheck.reference.lmer, case.formula, case.data, case.REML, **case.args)
    except vcheck.RError:
        with pytest.raises(vcheck.VcheckError):
            quiet(vcheck.lFormula, case.formula, case.data, case.REML, **case.args)
        return
    design = quiet(vcheck.lFormula, case.formula, case.data, case.REML, **case.args)
    theirs = vcheck.reference.devfun(case.formula, case.data, case.REML, **case.args)
    mine = Devfun(design, REML=case.REML)
    rng = np.random.default_rng(0)
    for _ in range(2):
        theta = np.where(
            design.lower == 0, rng.uniform(0.1, 2.0, len(design.theta)), rng.normal(0, 0.5, len(design.theta))
        )
        assert rel(mine(theta), theirs(theta)) < tolerances.AT_THETA
    at = fit_at(mine, lme.theta, condVar=False)
    assert list(at.row_index) == list(lme.row_index) and at.n_na_dropped == lme.n_na_dropped
    for field in ("criterion", "beta", "sigma", "mu"):
        assert rel(getattr(at, field), getattr(lme, field)) < tolerances.AT_THETA, field
    np.testing.assert_allclose(
        at.fitted().to_numpy(), lme.fitted().to_numpy(), rtol=1e-8, atol=1e-10, equal_nan=True
    )
