"""lme4 live through rpy2: the seed's numbers, every built-in example against its frozen answers, lme4's
quantities at a fixed theta, and R errors.

A failing `test_refit_matches_frozen` means the installed lme4 no longer gives the frozen answer: either
lme4 changed (compare the versions test) or the data/conversion path did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vcheck.core.errors import RError
from vcheck.core.record import LmerFit
from vcheck.core.tolerances import ABS_FLOOR, AT_OPTIMUM, AT_THETA
from vcheck.reference import examples

pytestmark = pytest.mark.r

SLEEP = "Reaction ~ Days + (Days|Subject)"


@pytest.fixture(scope="module")
def reference():
    from vcheck import reference

    return reference


def G(fit: LmerFit) -> np.ndarray:
    """G = sigma^2 crossprod(Lambdat) = sigma^2 Lambda Lambda'."""
    L = fit.Lambdat.toarray()
    return fit.sigma**2 * (L.T @ L)


def close(a, b, rtol: float) -> None:
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=ABS_FLOOR
    )


def assert_same_layout(live, frozen) -> None:
    """Exact layouts: names, sparsity patterns, Lind, Gp, cnms, level order, rows kept."""
    assert live.X_names == frozen.X_names
    assert live.cnms == frozen.cnms
    np.testing.assert_array_equal(live.X, frozen.X)
    np.testing.assert_array_equal(live.y, frozen.y)
    for a, b in ((live.Zt, frozen.Zt), (live.Lambdat, frozen.Lambdat)):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(live.Zt.data, frozen.Zt.data)
    np.testing.assert_array_equal(live.Lind, frozen.Lind)
    np.testing.assert_array_equal(live.Gp, frozen.Gp)
    np.testing.assert_array_equal(live.lower, frozen.lower)
    assert list(live.flist) == list(frozen.flist)
    for g in frozen.flist:
        assert list(live.flist[g].categories) == list(frozen.flist[g].categories)
        np.testing.assert_array_equal(live.flist[g].codes, frozen.flist[g].codes)
    assert live.row_index.equals(frozen.row_index)
    assert live.n_na_dropped == frozen.n_na_dropped


# ---- the seed's numbers ---------------------------------------------------------------------------------


def test_sleepstudy_seed_numbers_live(reference) -> None:
    fit = reference.lmer(SLEEP, examples.load("sleepstudy").data)
    assert fit.source == "lme4" and fit.REML
    np.testing.assert_allclose(fit.beta.to_numpy(), [251.40510, 10.46729], atol=5e-6)
    np.testing.assert_allclose(G(fit)[:2, :2], [[612.100158, 9.604409], [9.604409, 35.071714]], atol=5e-7)
    assert fit.criterion == pytest.approx(1743.628, abs=5e-4)
    assert fit.varcorr is not None
    np.testing.assert_allclose(
        fit.varcorr["vcov"].to_numpy(), [612.100158, 35.071714, 9.604409, 654.940008], atol=5e-7
    )
    assert fit.varcorr["var2"].tolist() == [None, None, "Days", None]


def test_three_level_seed_numbers_live(reference) -> None:
    ex = examples.load("three_level")
    fit = reference.lmer(ex.formula, ex.data)
    np.testing.assert_allclose(fit.beta.to_numpy(), [0.3758945, 0.3587507], atol=5e-8)
    assert fit.criterion == pytest.approx(490.1123, abs=5e-5)
    np.testing.assert_allclose(np.diag(G(fit))[[0, 30]], [1.226473, 0.4201496], atol=5e-7)


def test_star_sample_seed_numbers_live(reference) -> None:
    ex = examples.load("star_k")
    fit = reference.lmer(ex.formula, ex.data)
    np.testing.assert_allclose(fit.beta.to_numpy(), [438.908738, -5.923652, -2.209975, 2.045771], atol=5e-7)
    assert fit.singular
    assert fit.n_na_dropped == 115 and fit.n == 1150


# ---- every example against its frozen answer --------------------------------------------------------------


def test_lme4_version_matches_frozen(reference) -> None:
    live = reference.versions()
    frozen = examples.load("sleepstudy").versions
    for key in ("lme4", "Matrix", "R", "collation"):
        assert live[key] == frozen[key], f"{key}: live {live[key]!r}, frozen {frozen[key]!r}: refreeze?"


@pytest.mark.parametrize("name", examples.names())
def test_refit_matches_frozen(reference, name: str) -> None:
    ex = examples.load(name)
    live = reference.lmer(ex.formula, ex.data, REML=ex.REML)
    frozen = ex.expected
    assert_same_layout(live, frozen)
    assert live.REML == frozen.REML and live.singular == frozen.singular
    for field in ("theta", "sigma", "criterion", "logLik"):
        close(getattr(live, field), getattr(frozen, field), AT_OPTIMUM)
    close(live.beta.to_numpy(), frozen.beta.to_numpy(), AT_OPTIMUM)
    close(live.Lambdat.data, frozen.Lambdat.data, AT_OPTIMUM)
    close(G(live), G(frozen), AT_OPTIMUM)
    assert live.vcov is not None and frozen.vcov is not None
    close(live.vcov.to_numpy(), frozen.vcov.to_numpy(), AT_OPTIMUM)
    assert live.varcorr is not None and frozen.varcorr is not None
    pd.testing.assert_frame_equal(
        live.varcorr[["grp", "var1", "var2"]], frozen.varcorr[["grp", "var1", "var2"]]
    )
    close(live.varcorr["vcov"], frozen.varcorr["vcov"], AT_OPTIMUM)
    assert live.ranef is not None and frozen.ranef is not None and live.condVar is not None
    for g, modes in frozen.ranef.items():
        assert list(live.ranef[g].index) == list(modes.index)
        assert list(live.ranef[g].columns) == list(modes.columns)
        # conditional modes of a singular fit sit near 0: compare on the scale of the largest mode
        scale = max(1.0, float(np.abs(modes.to_numpy()).max()))
        np.testing.assert_allclose(
            live.ranef[g].to_numpy(), modes.to_numpy(), rtol=AT_OPTIMUM, atol=AT_OPTIMUM * scale
        )
        np.testing.assert_allclose(live.condVar[g], frozen.condVar[g], rtol=AT_OPTIMUM, atol=ABS_FLOOR)
    assert live.optinfo["lme4_messages"] == frozen.optinfo["lme4_messages"]
    assert live.extra["dropped_columns"] == frozen.extra["dropped_columns"]


@pytest.mark.parametrize("name", examples.names())
def test_lformula_matches_frozen(reference, name: str) -> None:
    ex = examples.load(name)
    live = reference.lFormula(ex.formula, ex.data, REML=ex.REML)
    frozen = ex.design
    assert frozen is not None
    assert_same_layout(live, frozen)
    np.testing.assert_array_equal(live.theta, frozen.theta)
    np.testing.assert_array_equal(live.Lambdat.data, frozen.Lambdat.data)
    assert [t.levels for t in live.terms] == [t.levels for t in frozen.terms]
    assert live.dropped_columns == frozen.dropped_columns
    np.testing.assert_array_equal(reference.start_theta(ex.formula, ex.data, REML=ex.REML), ex.theta_start)


# ---- lme4 at a fixed theta -------------------------------------------------------------------------------


def test_devfun_at_the_optimum_is_the_criterion(reference) -> None:
    ex = examples.load("sleepstudy")
    d = reference.devfun(ex.formula, ex.data)
    assert d(ex.expected.theta) == pytest.approx(ex.expected.criterion, rel=AT_THETA)
    ml = reference.devfun(ex.formula, ex.data, REML=False)
    fit_ml = examples.load("sleepstudy_ml").expected
    assert ml(fit_ml.theta) == pytest.approx(fit_ml.criterion, rel=AT_THETA)
    assert d(np.array([1.0, 0.0, 1.0])) > ex.expected.criterion


@pytest.mark.parametrize("name", ["sleepstudy", "three_level", "sleepstudy_ml", "star_k"])
def test_fit_at_theta_reproduces_the_fit(reference, name: str) -> None:
    """At lme4's own optimum theta, the no-optimization record equals the fit (construction regime)."""
    ex = examples.load(name)
    fit = ex.expected
    at = reference.fit_at_theta(ex.formula, ex.data, fit.theta, REML=ex.REML)
    assert at.extra["at_fixed_theta"] and at.optinfo["feval"] == 1
    np.testing.assert_array_equal(at.theta, fit.theta)
    close(at.beta.to_numpy(), fit.beta.to_numpy(), AT_THETA)
    close(at.sigma, fit.sigma, AT_THETA)
    close(at.criterion, fit.criterion, AT_THETA)
    close(at.Lambdat.toarray(), fit.Lambdat.toarray(), AT_THETA)


def test_fit_at_another_theta(reference) -> None:
    ex = examples.load("sleepstudy")
    theta = np.array([0.5, 0.1, 0.3])
    at = reference.fit_at_theta(ex.formula, ex.data, theta)
    assert at.criterion == pytest.approx(reference.devfun(ex.formula, ex.data)(theta), rel=AT_THETA)
    np.testing.assert_array_equal(at.Lambdat.data, theta[at.Lind])
    # beta at theta is the GLS estimate at V(theta) = sigma^2 (Z Lambda Lambda' Z' + I), sigma cancels
    Z = at.Zt.T.toarray()
    ZL = Z @ at.Lambdat.T.toarray()
    V = ZL @ ZL.T + np.eye(at.n)
    Vi_X = np.linalg.solve(V, at.X)
    close(np.linalg.solve(at.X.T @ Vi_X, Vi_X.T @ at.y), at.beta.to_numpy(), AT_THETA)


# ---- R errors ---------------------------------------------------------------------------------------------


def test_unknown_column_raises_rerror_and_r_keeps_working(reference) -> None:
    data = examples.load("sleepstudy").data
    with pytest.raises(RError) as info:
        reference.lmer("Reaction ~ Nope + (1|Subject)", data)
    assert "Nope" in info.value.r_message and "not found" in info.value.r_message
    assert reference.lmer(SLEEP, data, extras=False).criterion == pytest.approx(1743.628, abs=5e-4)


def test_malformed_formula_raises_rerror_and_r_keeps_working(reference) -> None:
    data = examples.load("sleepstudy").data
    with pytest.raises(RError) as info:
        reference.lmer("Reaction ~ Days + (Days|Subject", data)
    assert "unexpected" in info.value.r_message
    with pytest.raises(RError, match="No random effects terms"):
        reference.lmer("Reaction ~ Days", data)
    assert reference.lFormula(SLEEP, data).Zt.shape == (36, 180)


def test_lme4_refusals_raise_rerror(reference) -> None:
    data = examples.load("sleepstudy").data.assign(one="a", obs=lambda d: np.arange(len(d)).astype(str))
    with pytest.raises(RError, match="grouping factors must have > 1 sampled level"):
        reference.lmer("Reaction ~ Days + (1|one)", data)
    with pytest.raises(
        RError, match="number of levels of each grouping factor must be < number of observations"
    ):
        reference.lmer("Reaction ~ Days + (1|obs)", data)
    with pytest.raises(RError, match="theta has length 1"):
        reference.fit_at_theta(SLEEP, data, [1.0])
    assert reference.devfun(SLEEP, data)(np.array([1.0, 0.0, 1.0])) > 0


def test_warnings_and_messages_are_kept(reference) -> None:
    ex = examples.load("rank_deficient")
    fit = reference.lmer(ex.formula, ex.data)
    assert fit.X_names == ["(Intercept)", "x"] and fit.extra["dropped_columns"] == ["x2"]
    assert any("rank deficient" in m for m in fit.optinfo["r_messages"])
    singular = reference.lmer("Yield ~ 1 + (1|Batch)", examples.load("dyestuff2").data)
    assert singular.singular and any("singular" in m for m in singular.optinfo["r_messages"])


# ---- freezing ------------------------------------------------------------------------------------------


def test_freeze_reproduces_the_frozen_files(reference, tmp_path) -> None:
    """`python -m vcheck.reference --freeze DIR --only NAME` rewrites a reference byte for byte."""
    import subprocess
    import sys

    subprocess.run(
        [
            sys.executable,
            "-m",
            "vcheck.reference",
            "--freeze",
            str(tmp_path),
            "--only",
            "dyestuff2",
            "three_level",
        ],
        check=True,
        capture_output=True,
    )
    frozen = examples.frozen_dir()
    for name in ("dyestuff2", "three_level"):
        for file in ("data.csv", "reference.json"):
            assert (tmp_path / name / file).read_bytes() == (frozen / name / file).read_bytes(), (name, file)
