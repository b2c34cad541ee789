"""An implementation's V = Z G Z' + r I: sparse while its non-zeros are few, an operator beyond (a factor with
few levels over many rows has ~n^2 / levels of them); the statsmodels adapter's V either way."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from vcheck.adapters import marginal
from vcheck.adapters import statsmodels as sm_adapter
from vcheck.auditing.comparison import compare
from vcheck.core.covariance import V_nnz_bound
from vcheck.reference import examples


def design(n: int, levels: int, seed: int = 0) -> tuple[sp.csc_matrix, sp.csc_matrix]:
    """Z for (1 + x | g) with `levels` levels over n unsorted rows, and a G = I (x) [[2, .5], [.5, 1]]."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, levels, n)
    x = rng.standard_normal(n)
    rows = np.repeat(np.arange(n), 2)
    cols = (2 * g[:, None] + np.arange(2)).ravel()
    Z = sp.csc_matrix((np.column_stack([np.ones(n), x]).ravel(), (rows, cols)), shape=(n, 2 * levels))
    G = sp.kron(sp.identity(levels), np.array([[2.0, 0.5], [0.5, 1.0]]), format="csc")
    return Z, G


def test_nnz_bound_counts_the_pairs_of_rows_sharing_an_effect() -> None:
    Z, G = design(300, 7)
    V = sp.csc_matrix(Z @ G @ Z.T + sp.identity(300))
    assert V.nnz <= V_nnz_bound(Z.T)
    counts = np.bincount(Z.tocoo().col, minlength=Z.shape[1])
    assert V_nnz_bound(Z.T) == int(np.sum(counts**2)) + 300


@pytest.mark.parametrize("residual", [0.7, np.linspace(0.5, 2.0, 400)])
def test_operator_beyond_the_bound_is_the_sparse_V(residual: float | np.ndarray) -> None:
    Z, G = design(400, 5)
    V = marginal.marginal_V(Z, G, residual)
    assert sp.issparse(V)
    op = marginal.marginal_V(Z, G, residual, max_nnz=V_nnz_bound(Z.T) - 1)
    assert isinstance(op, LinearOperator) and op.shape == (400, 400)
    P = np.random.default_rng(1).standard_normal((400, 3))
    np.testing.assert_allclose(op @ P, V @ P, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(op @ P[:, 0], V @ P[:, 0], rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(op.T @ P, V @ P, rtol=1e-13, atol=1e-12)


def test_few_levels_over_many_rows_never_form_V() -> None:
    """10 levels over 200,000 rows: V would hold 4 * 10^9 entries (48 GB sparse); the operator holds Z."""
    Z, G = design(200_000, 10)
    assert V_nnz_bound(Z.T) > marginal.MAX_V_NNZ
    V = marginal.marginal_V(Z, G, 1.0)
    assert isinstance(V, LinearOperator)
    e = np.zeros(200_000)
    e[0] = 1.0
    column = V @ e  # V's first column: rows sharing row 0's level, x_i' G_g x_0, plus 1 on the diagonal
    assert column[0] > 1.0 and np.count_nonzero(column) < 200_000 / 5


def test_statsmodels_V_as_an_operator_is_judged_as_the_sparse_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """sleepstudy through statsmodels with the bound forced down: V is an operator, and compare's verdicts
    are those of the sparse V."""
    ex = examples.load("sleepstudy")
    formula = "Reaction ~ Days + (Days|Subject)"
    sparse_fit = sm_adapter.fit(formula, ex.data, True)
    assert sp.issparse(sparse_fit["V"])
    monkeypatch.setattr(marginal, "MAX_V_NNZ", 0)
    monkeypatch.setattr(
        sm_adapter,
        "marginal_V",
        lambda Z, G, r: marginal.marginal_V(Z, G, r, max_nnz=marginal.MAX_V_NNZ),
    )
    op_fit = sm_adapter.fit(formula, ex.data, True)
    assert isinstance(op_fit["V"], LinearOperator)
    n = len(ex.data)
    np.testing.assert_allclose(op_fit["V"] @ np.eye(n), sparse_fit["V"].toarray(), rtol=1e-12, atol=1e-9)
    verdicts = [(r.quantity, r.check, r.verdict) for r in compare(op_fit, ex.expected).rows]
    assert verdicts == [(r.quantity, r.check, r.verdict) for r in compare(sparse_fit, ex.expected).rows]
