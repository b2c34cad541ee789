"""The frozen examples with lmer arguments (weights, offset + subset, na.exclude, bobyqa, Nelder_Mead,
contr.sum), without R: vcheck against lme4's frozen answers.

At lme4's theta: the rows used, weights, offset, X, criterion, beta, sigma, fitted values and V
(including sigma^2 W^-1) agree to AT_THETA; at the optimum the criterion agrees to CRITERION_ABS and
theta to PATH_DIVERGED; na.exclude pads fitted() to the data's rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import vcheck
from vcheck.core import tolerances
from vcheck.core.deviance import Devfun
from vcheck.core.fit import fit_at
from vcheck.reference import examples

NAMES = examples.argument_names()


def rel(a: object, b: object) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(
        np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), tolerances.ABS_FLOOR)
    )


def test_the_argument_examples_are_frozen() -> None:
    assert set(NAMES) >= {
        "sleepstudy_weights",
        "sleepstudy_offset",
        "sleepstudy_na_exclude",
        "sleepstudy_bobyqa",
        "penicillin_nelder_mead",
        "cake_contr_sum",
    }
    assert not set(NAMES) & set(examples.names())


@pytest.mark.parametrize("name", NAMES)
def test_construction_at_lme4s_theta(name: str) -> None:
    ex = examples.load(name)
    e = ex.expected
    kw = {k: v for k, v in ex.kwargs.items() if k not in ("start", "control")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = vcheck.lFormula(ex.formula, ex.data, ex.REML, **kw)
    f = fit_at(Devfun(design, REML=ex.REML), e.theta)
    assert f.n == e.n and f.n_na_dropped == e.n_na_dropped
    assert list(f.row_index) == list(e.row_index)
    assert list(f.frame_index) == list(e.frame_index)
    for field in ("weights", "offset"):
        mine, theirs = getattr(f, field), getattr(e, field)
        assert (mine is None) == (theirs is None)
        if theirs is not None:
            assert rel(mine, theirs) < tolerances.AT_THETA
    assert f.X_names == e.X_names and rel(f.X, e.X) < tolerances.AT_THETA
    for field in ("criterion", "beta", "sigma", "mu"):
        assert rel(getattr(f, field), getattr(e, field)) < tolerances.AT_THETA, field
    assert rel(f.V().toarray(), e.V().toarray()) < tolerances.AT_THETA
    np.testing.assert_allclose(f.fitted().to_numpy(), e.fitted().to_numpy(), rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_optimum(name: str) -> None:
    ex = examples.load(name)
    e = ex.expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = vcheck.lmer(ex.formula, ex.data, ex.REML, **ex.kwargs)
    tol = max(tolerances.CRITERION_ABS, tolerances.CRITERION_REL * abs(e.criterion))
    assert abs(f.criterion - e.criterion) < tol
    assert rel(f.theta, e.theta) < tolerances.PATH_DIVERGED
    assert f.optinfo["optimizer"] == e.optinfo["optimizer"]


def test_na_exclude_example_pads_to_the_data() -> None:
    ex = examples.load("sleepstudy_na_exclude")
    f = vcheck.lmer(ex.formula, ex.data, ex.REML, **ex.kwargs)
    assert ex.kwargs["na_action"] == "na.exclude" and f.na_action == ex.expected.na_action == "na.exclude"
    assert len(f.fitted()) == len(ex.data) and int(f.fitted().isna().sum()) == 4 == f.n_na_dropped
    assert len(ex.expected.residuals()) == len(ex.data)
