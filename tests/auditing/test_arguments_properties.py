"""Property tests over drawn cases with lmer arguments (`strategies.argument_cases`: prior weights, an
offset, NA rows, a subset expression, na.exclude), no R needed:

- the fit with arguments is the fit of the data they describe: the subset's rows without NA, y - offset,
  the weights (criterion at one theta to AT_THETA);
- scaling the weights by c: the criterion at theta / sqrt(c) is unchanged;
- V's diagonal holds sigma^2 / w beyond Z G Z'; the GLS beta at V is the PLS beta;
- fitted() has one value per subset row under na.exclude (NaN at the NA rows), per row used otherwise;
- cases carry their arguments through JSON, and an implementation that takes none is Unsupported.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

import vcheck
from vcheck.auditing.cases import Case
from vcheck.auditing.plugin import bind_arguments
from vcheck.auditing.strategies import argument_cases
from vcheck.core import tolerances
from vcheck.core.deviance import Devfun
from vcheck.core.errors import Unsupported, VcheckError
from vcheck.core.subset import subset_mask


def design_or_none(case: Case) -> vcheck.Design | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return vcheck.lFormula(case.formula, case.data, case.REML, **case.args)
        except VcheckError:  # a drawn subset / NA pattern can leave a factor with one level, etc.
            return None


def theta_for(d: vcheck.Design, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(d.lower == 0, rng.uniform(0.2, 1.5, len(d.theta)), rng.normal(0, 0.4, len(d.theta)))


@settings(max_examples=25)
@given(case=argument_cases())
def test_arguments_are_the_data_they_describe(case: Case) -> None:
    d = design_or_none(case)
    if d is None:
        return
    data = case.data
    mask = subset_mask(case.args.get("subset"), data)
    rows = data if mask is None else data[mask]
    used = rows.loc[d.row_index]
    response = case.formula.split("~", 1)[0].strip()
    plain = used.copy()
    if "offset" in case.args:
        plain[response] = plain[response] - plain[case.args["offset"]]
    kw = {"weights": case.args["weights"]} if "weights" in case.args else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d_plain = vcheck.lFormula(case.formula, plain, case.REML, **kw)
    assert d_plain.n == d.n and d_plain.offset is None
    theta = theta_for(d, 1)
    a, b = Devfun(d, REML=case.REML)(theta), Devfun(d_plain, REML=case.REML)(theta)
    assert a == pytest.approx(b, rel=tolerances.AT_THETA, abs=1e-9)
    assert len(d.frame_index) == len(rows)


@settings(max_examples=15)
@given(case=argument_cases())
def test_weight_scaling_and_V(case: Case) -> None:
    d = design_or_none(case)
    if d is None or d.weights is None:
        return
    theta = theta_for(d, 2)
    scaled = vcheck.Design(**{**d.__dict__, "weights": d.weights * 7.0})
    assert Devfun(scaled, REML=case.REML)(theta / math.sqrt(7.0)) == pytest.approx(
        Devfun(d, REML=case.REML)(theta), rel=tolerances.AT_THETA
    )
    from vcheck.core.fit import fit_at

    fit = fit_at(Devfun(d, REML=case.REML), theta, condVar=False)
    if fit.n > 600:
        return
    Z = fit.Zt.T.toarray()
    Lam = fit.Lambdat.T.toarray()
    ZGZ = fit.sigma**2 * (Z @ Lam @ Lam.T @ Z.T)
    V = fit.V().toarray()
    np.testing.assert_allclose(np.diag(V) - np.diag(ZGZ), fit.sigma**2 / d.weights, rtol=1e-9)
    assert np.max(np.abs(fit.gls_beta() - fit.beta)) <= 1e-6 * max(1.0, float(np.max(np.abs(fit.beta))))


@settings(max_examples=15)
@given(case=argument_cases())
def test_fitted_padding(case: Case) -> None:
    d = design_or_none(case)
    if d is None:
        return
    from vcheck.core.fit import fit_at

    fit = fit_at(Devfun(d, REML=case.REML), theta_for(d, 3), condVar=False)
    f = fit.fitted()
    if case.args.get("na_action") == "na.exclude":
        assert len(f) == len(d.frame_index) and int(f.isna().sum()) == d.n_na_dropped
    else:
        assert len(f) == d.n and not f.isna().any()
    assert np.allclose(fit.residuals().dropna().to_numpy(), fit.y - fit.mu)


@settings(max_examples=10)
@given(case=argument_cases())
def test_cases_carry_their_arguments(case: Case) -> None:
    again = Case.from_dict(case.to_dict())
    assert again.args == case.args
    pd.testing.assert_frame_equal(again.data, case.data, check_dtype=False)


def test_an_implementation_without_the_argument_is_unsupported() -> None:
    def plain(formula: str, data: pd.DataFrame, REML: bool) -> None:
        return None

    def with_weights(formula: str, data: pd.DataFrame, REML: bool, weights: str | None = None) -> str | None:
        return weights

    def anything(formula: str, data: pd.DataFrame, REML: bool, **kw: object) -> dict[str, object]:
        return kw

    with pytest.raises(Unsupported, match="weights"):
        bind_arguments(plain, {"weights": "w"}, "plain")("y ~ (1|g)", pd.DataFrame(), True)
    assert bind_arguments(plain, {}) is plain
    assert bind_arguments(with_weights, {"weights": "w"})("f", pd.DataFrame(), True) == "w"
    with pytest.raises(Unsupported, match="subset"):
        bind_arguments(with_weights, {"weights": "w", "subset": "x > 1"})("f", pd.DataFrame(), True)
    assert bind_arguments(anything, {"subset": "x > 1"})("f", pd.DataFrame(), True) == {"subset": "x > 1"}
    assert isinstance(Unsupported("x"), NotImplementedError)
