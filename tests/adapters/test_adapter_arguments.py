"""lmer's arguments through the adapters, where the library has the same model (issue 14): nlme's
`varFixed(~ 1/w)` is lme4's prior weights, glmmTMB's `offset =` is lme4's offset; glmmTMB's Gaussian
weights (log-likelihood weights) and every argument an adapter does not take are Unsupported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import vcheck
from vcheck.auditing.plugin import bind_arguments
from vcheck.core.errors import Unsupported
from vcheck.reference import examples

FORMULA = "Reaction ~ Days + (1|Subject)"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    d = examples.load("sleepstudy").data.copy()
    rng = np.random.default_rng(1)
    d["w"] = np.exp(rng.uniform(-1.0, 1.0, len(d)))
    d["o"] = rng.normal(0.0, 1.0, len(d))
    return d.sample(frac=1.0, random_state=3)  # unsorted rows


def _close(fit: dict, ref: vcheck.LmerFit, rtol: float) -> None:
    np.testing.assert_allclose(list(fit["beta"].values()), ref.beta.to_numpy(), rtol=rtol)
    np.testing.assert_allclose(fit["sigma"], ref.sigma, rtol=rtol)
    V, Vref = fit["V"].toarray(), ref.V().toarray()
    assert np.abs(V - Vref).max() <= rtol * np.abs(Vref).max()


@pytest.mark.r
@pytest.mark.parametrize("REML", [True, False])
def test_nlme_weights_are_lme4s_prior_weights(data: pd.DataFrame, REML: bool) -> None:
    from vcheck.adapters import nlme

    ref = vcheck.reference.lmer(FORMULA, data, REML=REML, weights="w")
    fit = nlme.fit(FORMULA, data, REML, weights="w")
    _close(fit, ref, 1e-5)  # two optimizers on one likelihood (nlme's nlminb, lme4's BOBYQA)
    unweighted = nlme.fit(FORMULA, data, REML)
    assert abs(unweighted["sigma"] - ref.sigma) > 1e-2 * ref.sigma  # the weights did reach nlme


@pytest.mark.r
def test_glmmtmb_offset_is_lme4s_offset(data: pd.DataFrame) -> None:
    from vcheck.adapters import glmmtmb

    ref = vcheck.reference.lmer(FORMULA, data, REML=True, offset="o")
    fit = glmmtmb.fit(FORMULA, data, True, offset=data["o"].to_numpy())
    _close(fit, ref, 1e-5)
    plain = glmmtmb.fit(FORMULA, data, True)
    assert abs(plain["beta"]["(Intercept)"] - ref.beta["(Intercept)"]) > 1e-3


def test_what_the_library_cannot_fit_is_unsupported(data: pd.DataFrame) -> None:
    from vcheck.adapters import glmmtmb, nlme, statsmodels

    with pytest.raises(Unsupported, match="precision weights"):
        glmmtmb.fit(FORMULA, data, True, weights="w")
    for impl, arg in ((nlme.fit, "offset"), (statsmodels.fit, "weights"), (glmmtmb.fit, "subset")):
        with pytest.raises(Unsupported, match=arg):
            bind_arguments(impl, {arg: "w"})(FORMULA, data, True)


def test_NA_in_a_passed_weight_is_unsupported(data: pd.DataFrame) -> None:
    from vcheck.adapters import nlme

    d = data.copy()
    d.loc[d.index[0], "w"] = np.nan
    with pytest.raises(Unsupported, match="weights is NA"):
        nlme.fit(FORMULA, d, True, weights="w")
