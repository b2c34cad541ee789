"""vcheck.auditing.construction without R: lme4's design as a vcheck Design (weights and offset carried
over only where the record has them), and V never formed densely beyond DENSE_V_MAX rows."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from vcheck.auditing import construction
from vcheck.reference import examples


def test_the_reference_design_carries_weights_and_offset_only_when_the_record_has_them() -> None:
    b = examples.load("sleepstudy").expected
    plain = construction.reference_design(b)
    assert plain.weights is None and plain.offset is None
    n = b.X.shape[0]
    w, o = np.linspace(0.5, 2.0, n), np.linspace(-1.0, 1.0, n)
    weighted = construction.reference_design(dataclasses.replace(b, weights=w, offset=o))
    assert np.array_equal(weighted.weights, w) and np.array_equal(weighted.offset, o)
    only_w = construction.reference_design(dataclasses.replace(b, weights=w))
    assert np.array_equal(only_w.weights, w) and only_w.offset is None


def _lme(n: int) -> construction.Lme:
    """A random intercept over 10 groups, n rows."""
    g = np.arange(n) % 10
    Zt = sp.csc_matrix((np.ones(n), (g, np.arange(n))), shape=(10, n))
    return construction.Lme(
        X=np.ones((n, 1)), y=np.linspace(0.0, 1.0, n), Zt=Zt, Lambdat=sp.csc_matrix(np.eye(10)),
        Lind=np.zeros(10, dtype=int), theta=np.array([0.5]), sigma=1.0, X_names=["(Intercept)"],
        cnms=[("g", ["(Intercept)"])], n=n, weights=np.ones(n), offset=np.zeros(n),
    )  # fmt: skip


def test_V_is_dense_up_to_2000_rows_and_an_operator_beyond() -> None:
    """A dense V of n rows takes 8 n^2 bytes: never formed beyond 2000 rows (32 MB)."""
    small = construction.AtTheta(_lme(2000), np.array([0.5]), 1.0)
    assert isinstance(small.V(), np.ndarray) and small.V().shape == (2000, 2000)
    big = construction.AtTheta(_lme(2001), np.array([0.5]), 1.0)
    assert isinstance(big.V(), LinearOperator)
    v = np.linspace(-1.0, 1.0, 2001)
    g = np.arange(2001) % 10
    sums = np.bincount(g, weights=v, minlength=10)
    np.testing.assert_allclose(big.V() @ v, 0.25 * sums[g] + v, rtol=1e-12)
    # with prior weights: V = sigma^2 (W'W + diag(1 / w))
    w = np.linspace(0.5, 2.0, 2001)
    weighted = construction.AtTheta(dataclasses.replace(_lme(2001), weights=w), np.array([0.5]), 2.0)
    np.testing.assert_allclose(weighted.V() @ v, 4.0 * (0.25 * sums[g] + v / w), rtol=1e-12)
    np.testing.assert_allclose(
        weighted.V() @ np.column_stack([v, v]), np.column_stack([weighted.V() @ v] * 2)
    )


def test_the_V_cost_bound_is_infinite_where_it_cannot_bound_anything() -> None:
    """Beyond DENSE_V_MAX rows V is compared through probes (no entrywise bound), a non-finite
    difference or a sigma that is not positive bounds nothing: all infinite, never a small number."""
    small = construction.AtTheta(_lme(50), np.array([0.5]), 1.0)
    assert 0 < small.V_cost_bound(1e-9) < 1e-3
    assert small.V_cost_bound(math.inf) == math.inf and small.V_cost_bound(math.nan) == math.inf
    assert construction.AtTheta(_lme(50), np.array([0.5]), 0.0).V_cost_bound(1e-9) == math.inf
    assert construction.AtTheta(_lme(2001), np.array([0.5]), 1.0).V_cost_bound(1e-9) == math.inf
    assert construction.AtTheta(_lme(2000), np.array([0.5]), 1.0).V_cost_bound(1e-9) < math.inf


def test_a_zero_response_has_criterion_minus_infinity_without_warnings() -> None:
    """pwrss = 0 (y = 0): the likelihood is unbounded, -inf, cleanly (no log of zero)."""
    zero = dataclasses.replace(_lme(50), y=np.zeros(50))
    at = construction.AtTheta(zero, np.array([0.5]), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert at.criterion(True) == -math.inf and at.criterion(False) == -math.inf


def test_lme4s_design_pieces_are_frozen() -> None:
    """Lme is shared by every AtTheta built on it: its pieces cannot be rebound."""
    lme = _lme(20)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lme.sigma = 2.0  # type: ignore[misc]


def test_kappa_bounds_the_condition_of_V_with_prior_weights() -> None:
    n = 60
    lme = dataclasses.replace(_lme(n), weights=np.linspace(0.5, 4.0, n))
    at = construction.AtTheta(lme, np.array([0.8]), 1.3)
    V = at.V() / 1.3**2
    assert at.kappa() >= np.linalg.cond(V) * (1 - 1e-12)
    W = at.W.toarray()
    inv_w = 1.0 / lme.weights
    assert at.kappa() == pytest.approx((inv_w.max() + np.abs(W @ W.T).sum(0).max()) / inv_w.min(), rel=1e-12)
    # a small theta: ||W W'||_1 below 1 counts as it is
    tiny = construction.AtTheta(lme, np.array([0.1]), 1.3)
    Wt = tiny.W.toarray()
    assert np.abs(Wt @ Wt.T).sum(0).max() < 1
    assert tiny.kappa() == pytest.approx(
        (inv_w.max() + np.abs(Wt @ Wt.T).sum(0).max()) / inv_w.min(), rel=1e-12
    )


def test_the_V_cost_bound_bounds_the_change_of_the_criterion() -> None:
    """|d(V + dV) - d(V)| <= ||V^-1|| n max|dV_ij| (n + ||V^-1|| ||r||^2), ||V^-1|| <= max(w) / sigma^2,
    d = log det V + r'V^-1 r at the GLS beta: checked against a dense recomputation."""
    n = 50
    lme = dataclasses.replace(
        _lme(n), weights=np.linspace(0.5, 2.0, n), y=np.sin(np.arange(n)), offset=np.cos(np.arange(n))
    )
    at = construction.AtTheta(lme, np.array([0.7]), 1.2)
    delta = 1e-7
    _, _, beta = at.gls()
    r = lme.y - lme.offset - lme.X @ beta
    inv_norm = float(lme.weights.max()) / 1.2**2
    bound = at.V_cost_bound(delta)
    assert bound == pytest.approx(inv_norm * n * delta * (n + inv_norm * float(r @ r)), rel=1e-12, abs=0)
    V = at.V()

    def d(M: np.ndarray) -> float:
        return float(np.linalg.slogdet(M)[1] + r @ np.linalg.solve(M, r))

    change = abs(d(V + delta * np.ones((n, n))) - d(V))
    assert 0 < change <= bound


def test_REML_with_as_many_fixed_effects_as_rows_has_no_criterion() -> None:
    """n = p: the REML criterion is not defined (NaN), and nothing divides by n - p."""
    square = dataclasses.replace(_lme(6), X=np.eye(6), X_names=[f"c{i}" for i in range(6)])
    at = construction.AtTheta(square, np.array([0.5]), 1.0)
    assert math.isnan(at.criterion(True)) and math.isnan(at.profiled_sigma(True))
    assert math.isfinite(at.profiled_sigma(False))
    # n = p + 1: one degree of freedom, a REML criterion
    five = dataclasses.replace(_lme(6), y=np.sin(np.arange(6)), X=np.eye(6)[:, :5], X_names=list("abcde"))
    at5 = construction.AtTheta(five, np.array([0.5]), 1.0)
    assert math.isfinite(at5.criterion(True)) and at5.profiled_sigma(True) > 0


def test_the_reference_designs_terms_slice_theta_as_lme4_does() -> None:
    """Term k owns theta[start_k : start_k + nc_k (nc_k + 1) / 2], in cnms order, with its levels."""
    slices = {}
    for name in ("sleepstudy", "penicillin"):
        terms = construction.reference_design(examples.load(name).expected).terms
        slices[name] = [(t.group, t.theta_slice, len(t.levels)) for t in terms]
    assert slices["sleepstudy"] == [("Subject", (0, 3), 18)]
    assert slices["penicillin"] == [("plate", (0, 1), 24), ("sample", (1, 2), 6)]


def test_the_reference_design_keeps_lme4s_row_labels() -> None:
    import pandas as pd

    b = examples.load("sleepstudy").expected
    labels = pd.Index(range(100, 100 + b.X.shape[0]))
    assert construction.reference_design(dataclasses.replace(b, row_index=labels)).row_index.equals(labels)
    unlabelled = construction.reference_design(dataclasses.replace(b, row_index=None)).row_index
    assert unlabelled.equals(pd.RangeIndex(b.X.shape[0]))


def test_the_profiled_quantities_do_not_depend_on_the_sigma_V_is_built_with() -> None:
    """pwrss, the criterion and the profiled sigma are functions of theta alone."""
    lme = dataclasses.replace(_lme(40), y=np.sin(np.arange(40)), weights=np.linspace(0.5, 2.0, 40))
    one, two = (construction.AtTheta(lme, np.array([0.6]), s) for s in (1.0, 2.0))
    assert two.pwrss() == pytest.approx(one.pwrss(), rel=1e-12)
    assert two.criterion(True) == pytest.approx(one.criterion(True), rel=1e-12)
    assert two.profiled_sigma(False) == pytest.approx(one.profiled_sigma(False), rel=1e-12)


def test_the_backward_error_is_the_normwise_residual_of_the_GLS_equations() -> None:
    """||X'V^-1 (y - o - X beta)|| / (||A||_2 ||beta|| + ||c||) for A beta = c, A = X'V^-1X."""
    n = 40
    X = np.column_stack([np.ones(n), np.linspace(-2.0, 3.0, n)])
    lme = dataclasses.replace(
        _lme(n), X=X, X_names=["a", "b"], y=np.sin(np.arange(n)), offset=np.cos(np.arange(n))
    )
    at = construction.AtTheta(lme, np.array([0.6]), 1.5)
    A, c, beta = at.gls()
    off = beta + np.array([1e-3, -2e-3])
    V = at.V()
    r = X.T @ np.linalg.solve(V, lme.y - lme.offset - X @ off)
    expected = np.linalg.norm(r) / (np.linalg.norm(A, 2) * np.linalg.norm(off) + np.linalg.norm(c))
    assert at.backward_error(off, A, c) == pytest.approx(expected, rel=1e-9)
    assert at.backward_error(beta, A, c) < 1e-14
    # scale-free: the same backward error when V is built with sigma 1000 (A and c a million times smaller)
    big = construction.AtTheta(lme, np.array([0.6]), 1000.0)
    A_big, c_big, _ = big.gls()
    assert np.linalg.norm(A_big, 2) * np.linalg.norm(off) + np.linalg.norm(c_big) < 1e-3
    assert big.backward_error(off, A_big, c_big) == pytest.approx(expected, rel=1e-9)
