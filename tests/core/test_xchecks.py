"""lmerControl's check.rankX and check.scaleX on X (vcheck.core.xchecks), each kind as lme4 1.1-31 acts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from vcheck.core.control import CheckMessage, CheckWarning, ControlError
from vcheck.core.xchecks import check_rankX, check_scaleX, unscale_beta

rng = np.random.default_rng(1)
x = rng.normal(size=20)
X_DEF = np.column_stack([np.ones(20), x, 2 * x])  # rank 2 of 3
NAMES = ["(Intercept)", "x", "x2"]


def test_rankX_kinds() -> None:
    with pytest.warns(CheckMessage, match="dropping 1 column / coefficient"):
        X, names, dropped, msg = check_rankX(X_DEF, NAMES)
    assert X.shape[1] == 2 and dropped == ["x2"] and names == ["(Intercept)", "x"] and msg
    with pytest.warns(CheckWarning):
        check_rankX(X_DEF, NAMES, "warn+drop.cols")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, names, dropped, _ = check_rankX(X_DEF, NAMES, "silent.drop.cols")
        assert dropped == ["x2"]
        X, names, dropped, msg = check_rankX(X_DEF, NAMES, "ignore")
        assert X.shape[1] == 3 and dropped == [] and msg is None
        assert check_rankX(X_DEF[:, :2], NAMES[:2], "stop.deficient")[0].shape[1] == 2
    with pytest.raises(ControlError, match=r"rank\(X\) = 2 < 3 = p"):
        check_rankX(X_DEF, NAMES, "stop.deficient")
    with pytest.raises(ControlError, match="undefined option"):
        check_rankX(X_DEF, NAMES, "drop")


def test_scaleX_kinds() -> None:
    X = np.column_stack([np.ones(20), x * 1e5, rng.integers(0, 2, 20)])
    names = ["(Intercept)", "big", "flag"]
    with pytest.warns(CheckWarning, match="very different scales"):
        assert check_scaleX(X, names)[1] is None
    with pytest.raises(ControlError, match="very different scales"):
        check_scaleX(X, names, "stop")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_scaleX(X, names, "ignore") == (X, None, None)
        Xs, scale, msg = check_scaleX(X, names, "silent.rescale")
        Xm, scale_m, _ = check_scaleX(X, names, "message+rescale")  # lme4 says nothing here either
    assert np.array_equal(Xm, Xs) and scale_m == scale
    assert scale is not None and set(scale) == {"big"} and np.isclose(Xs[:, 1].std(ddof=1), 1.0)
    assert np.array_equal(Xs[:, 2], X[:, 2]) and msg and "auto-rescaled" in msg
    with pytest.warns(CheckWarning, match="auto-rescaled"):
        check_scaleX(X, names, "warn+rescale")
    assert np.allclose(unscale_beta(np.array([1.0, 2.0, 3.0]), names, scale), [1.0, 2.0 * scale["big"], 3.0])
    X_ok = np.column_stack([np.ones(20), x])
    assert check_scaleX(X_ok, ["(Intercept)", "x"]) == (X_ok, None, None)
    with pytest.raises(ControlError, match="unknown check-scale option"):
        check_scaleX(X, names, "rescale")


def test_rankZ_and_nlev5() -> None:
    import scipy.sparse as sp

    from vcheck.core.xchecks import check_nlev_gtreq_5, check_rankZ

    # (1|f) + (1|g) with g one level per row: rank(Z) = 6 = n (lme4's message, checked in R 4.2.2)
    f, g = np.array([0, 0, 1, 1, 2, 2]), np.arange(6)
    Zt = sp.vstack([sp.csr_matrix(np.eye(3)[f].T), sp.csr_matrix(np.eye(6)[g].T)]).tocsc()
    expected = (
        "number of observations (=6) <= rank(Z) (=6); the random-effects parameters and the residual "
        "variance (or scale parameter) are probably unidentifiable"
    )
    with pytest.raises(ControlError) as info:
        check_rankZ(Zt, 6, "stop")
    assert str(info.value) == expected
    with pytest.warns(CheckWarning):
        assert check_rankZ(Zt, 6, "warningSmall") == expected
    assert check_rankZ(Zt, 6, "ignore") is None
    assert check_rankZ(Zt[:3], 6, "stop") is None  # rank 3 < 6
    with pytest.warns(CheckWarning, match="< 5 sampled levels"):
        check_nlev_gtreq_5({"f": 3}, "warning")
    assert check_nlev_gtreq_5({"f": 5}, "stop") is None
