"""covariance with prior weights and an offset, against dense numpy formulas (no R needed).

V = sigma^2 (Z Lambda Lambda' Z' + W^-1), W = diag(w);  beta = (X'V^-1X)^-1 X'V^-1 (y - offset).
V(), V_blocks(), V_operator() and gls_beta() (blocks and Woodbury) agree with the dense formulas, and the
records' methods pass their weights and offset on.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.sparse as sp

from vcheck.core import covariance
from vcheck.core.errors import VcheckError
from vcheck.core.record import LmerFit


def _model(seed: int = 1, n: int = 40, groups: int = 6):
    """A random-intercept-and-slope layout: Zt (2*groups x n), Lambdat block diagonal, X, y, w, offset."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    rows = np.concatenate([2 * g, 2 * g + 1])
    cols = np.concatenate([np.arange(n), np.arange(n)])
    vals = np.concatenate([np.ones(n), x])
    Zt = sp.csc_matrix((vals, (rows, cols)), shape=(2 * groups, n))
    T = np.array([[0.8, 0.0], [-0.3, 0.5]])  # lower-triangular relative factor
    Lambdat = sp.csc_matrix(sp.kron(sp.identity(groups), T.T))
    X = np.column_stack([np.ones(n), x, rng.normal(size=n)])
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=n)
    w = rng.uniform(0.2, 3.0, n)
    offset = rng.normal(size=n)
    return X, y, Zt, Lambdat, w, offset


def _dense_V(Zt, Lambdat, sigma, w):
    Z = Zt.T.toarray()
    Lam = Lambdat.T.toarray()
    return sigma**2 * (Z @ Lam @ Lam.T @ Z.T + np.diag(1.0 / w))


def test_V_with_weights_is_sigma2_ZLLZ_plus_W_inverse() -> None:
    _X, y, Zt, Lambdat, w, _ = _model()
    Vd = _dense_V(Zt, Lambdat, 1.7, w)
    np.testing.assert_allclose(
        covariance.V(Zt, Lambdat, 1.7, weights=w).toarray(), Vd, rtol=1e-13, atol=1e-13
    )
    full = np.zeros_like(Vd)
    for rows, block in covariance.V_blocks(Zt, Lambdat, 1.7, weights=w):
        full[np.ix_(rows, rows)] = block
    np.testing.assert_allclose(full, Vd, rtol=1e-13, atol=1e-13)
    op = covariance.V_operator(Zt, Lambdat, 1.7, weights=w)
    P = np.random.default_rng(0).normal(size=(len(y), 3))
    np.testing.assert_allclose(op @ P, Vd @ P, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op @ P[:, 0], Vd @ P[:, 0], rtol=1e-12, atol=1e-12)


def test_unit_weights_are_no_weights() -> None:
    _X, y, Zt, Lambdat, _w, _ = _model()
    a = covariance.V(Zt, Lambdat, 1.3, weights=np.ones(len(y))).toarray()
    b = covariance.V(Zt, Lambdat, 1.3).toarray()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("max_rows", [covariance.MAX_BLOCK_ROWS, 1], ids=["blocks", "woodbury"])
def test_gls_beta_with_weights_and_offset(max_rows: int) -> None:
    X, y, Zt, Lambdat, w, offset = _model()
    Vd = _dense_V(Zt, Lambdat, 0.9, w)
    Vi = np.linalg.inv(Vd)
    expected = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ (y - offset))
    got = covariance.gls_beta(X, y, Zt, Lambdat, 0.9, max_rows=max_rows, weights=w, offset=offset)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_offset_is_shifting_y() -> None:
    X, y, Zt, Lambdat, w, offset = _model(seed=3)
    a = covariance.gls_beta(X, y, Zt, Lambdat, 1.1, weights=w, offset=offset)
    b = covariance.gls_beta(X, y - offset, Zt, Lambdat, 1.1, weights=w)
    np.testing.assert_allclose(a, b, rtol=1e-14)


@pytest.mark.parametrize(
    "bad",
    [np.zeros(40), -np.ones(40), np.full(40, np.nan), np.ones(39)],
    ids=["zero", "negative", "nan", "length"],
)
def test_bad_weights_are_refused(bad: np.ndarray) -> None:
    _X, _y, Zt, Lambdat, _, _ = _model()
    with pytest.raises(VcheckError, match="weights"):
        covariance.V(Zt, Lambdat, 1.0, weights=bad)


def test_record_methods_pass_weights_and_offset() -> None:
    X, y, Zt, Lambdat, w, offset = _model(seed=5)
    fit = LmerFit(
        source="test", formula="y ~ x + (x | g)", REML=True, X=X, X_names=["a", "b", "c"], y=y, Zt=Zt,
        Lambdat=Lambdat, sigma=1.2, weights=w, offset=offset,
    )  # fmt: skip
    Vd = _dense_V(Zt, Lambdat, 1.2, w)
    np.testing.assert_allclose(fit.V().toarray(), Vd, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(fit.V_operator() @ np.ones(len(y)), Vd @ np.ones(len(y)), rtol=1e-12)
    assert sum(len(r) for r, _ in fit.V_blocks()) == len(y)
    Vi = np.linalg.inv(Vd)
    expected = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ (y - offset))
    np.testing.assert_allclose(fit.gls_beta().to_numpy(), expected, rtol=1e-10)
    plain = dataclasses.replace(fit, weights=None, offset=None)
    np.testing.assert_allclose(plain.V().toarray(), _dense_V(Zt, Lambdat, 1.2, np.ones(len(y))), rtol=1e-13)


def test_offset_of_the_wrong_length_is_refused() -> None:
    """An offset that does not match the rows is a clear error, never broadcast onto the response."""
    X, y, Zt, Lambdat, w, offset = _model()
    for bad in (offset[:-1], offset[:1]):
        with pytest.raises(VcheckError, match="offset"):
            covariance.gls_beta(X, y, Zt, Lambdat, 1.0, weights=w, offset=bad)


def _two_groups() -> tuple[sp.csc_matrix, sp.csc_matrix]:
    """A random intercept over groups of 2 and 3 rows: V has 2^2 + 3^2 = 13 non-zeros."""
    Zt = sp.csc_matrix(np.array([[1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0, 1.0]]))
    return Zt, sp.csc_matrix(0.7 * np.eye(2))


def test_V_size_guard_counts_pairs_of_rows_sharing_an_effect() -> None:
    """V refuses exactly when its bound on the non-zeros (pairs of rows sharing an effect, 13 here, plus
    one diagonal entry per row, 5) exceeds max_nnz: never a V larger than allowed, never a refusal of one
    within the bound."""
    Zt, Lambdat = _two_groups()
    V = covariance.V(Zt, Lambdat, 1.0, max_nnz=18)
    assert V.nnz == 13
    with pytest.raises(VcheckError, match="18 non-zeros"):
        covariance.V(Zt, Lambdat, 1.0, max_nnz=17)
    with pytest.raises(VcheckError, match="V_operator"):
        covariance.V(Zt, Lambdat, 1.0, max_nnz=V.nnz - 1)


def test_V_blocks_size_guard_allows_a_cluster_of_exactly_max_rows() -> None:
    Zt, Lambdat = _two_groups()
    assert [len(r) for r, _ in covariance.V_blocks(Zt, Lambdat, 1.0, max_rows=3)] == [2, 3]
    with pytest.raises(VcheckError, match="3 rows"):
        covariance.V_blocks(Zt, Lambdat, 1.0, max_rows=2)


def test_V_diagonal_is_the_diagonal_of_V() -> None:
    _X, _y, Zt, Lambdat, w, _ = _model()
    np.testing.assert_allclose(
        covariance.V_diagonal(Zt, Lambdat, 1.3), covariance.V(Zt, Lambdat, 1.3).diagonal(), rtol=1e-14
    )
    np.testing.assert_allclose(
        covariance.V_diagonal(Zt, Lambdat, 1.3, w),
        covariance.V(Zt, Lambdat, 1.3, weights=w).diagonal(),
        rtol=1e-14,
    )


def test_large_V_comparisons_carry_the_prior_weights() -> None:
    """vdiff's diagonal and block comparisons of a weighted fit against itself are exact, and against
    the same fit with its weights forgotten they differ (they read V = sigma^2 (W'W + diag(1/w)))."""
    from vcheck.core import vdiff

    _X, _y, Zt, Lambdat, w, _ = _model()
    fit = LmerFit(
        source="a", formula="y ~ x + (1 | g)", REML=True, Zt=Zt, Lambdat=Lambdat, sigma=1.3, weights=w
    )
    unweighted = dataclasses.replace(fit, weights=None)
    assert vdiff.V_diagonal_diff(fit, fit) == 0.0
    assert vdiff.V_diagonal_diff(unweighted, fit) > 0.1
    same = vdiff.V_block_diff(fit, fit)
    assert same is not None and same[0] == 0.0
    other = vdiff.V_block_diff(unweighted, fit)
    assert other is not None and other[0] > 0.1


@pytest.mark.parametrize("max_rows", [covariance.MAX_BLOCK_ROWS, 1], ids=["blocks", "woodbury"])
@pytest.mark.parametrize("where", ["X", "y", "offset", "Zt", "Lambdat", "sigma"])
def test_gls_beta_refuses_non_finite_input_instead_of_a_nan_beta(where: str, max_rows: int) -> None:
    X, y, Zt, Lambdat, w, offset = _model()
    args = {"X": X.copy(), "y": y.copy(), "Zt": Zt.copy(), "Lambdat": Lambdat.copy(), "sigma": 1.0}
    if where == "sigma":
        args["sigma"] = math.nan
        for bad in (math.inf, -1.0):
            with pytest.raises(VcheckError, match="sigma"):
                covariance.gls_beta(**{**args, "sigma": bad}, max_rows=max_rows)
    elif where in ("Zt", "Lambdat"):
        args[where].data[0] = math.nan
    elif where == "offset":
        offset = offset.copy()
        offset[2] = math.inf
    else:
        args[where][2] = math.nan
    with pytest.raises(VcheckError, match="sigma" if where == "sigma" else "non-finite"):
        covariance.gls_beta(**args, max_rows=max_rows, weights=w, offset=offset)


def test_gls_beta_refuses_a_zero_sigma() -> None:
    X, y, Zt, Lambdat, _w, _ = _model()
    with pytest.raises(VcheckError, match="positive"):
        covariance.gls_beta(X, y, Zt, Lambdat, 0.0)
