"""The bordered (block arrowhead) Cholesky of the Schur complement: the same factor, solves and criterion
as a dense Cholesky, on the blocks a separator leaves (vcheck.core.bordered, vcheck.core.blocked_pls)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from designs import departments

import vcheck
from vcheck.core import bordered, schur
from vcheck.core.blocks import BlockedPLS, DensePLS
from vcheck.core.schur import NotPositiveDefinite

pytestmark = pytest.mark.skipif(not schur.cholmod_available(), reason="scikit-sparse (CHOLMOD) not installed")


def arrowhead(seed: int, sizes: tuple[int, ...] = (60, 80, 50, 70), m: int = 40) -> np.ndarray:
    """A random SPD matrix that is block arrowhead (blocks `sizes`, separator m) under a hidden random
    permutation; each block meets only some separator rows, and each block is itself sparse."""
    rng = np.random.default_rng(seed)
    q = sum(sizes) + m
    M = np.zeros((q, q))
    at = 0
    for n in sizes:
        M[at : at + n, at : at + n] = rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.1)
        rows = rng.choice(m, size=m // 2, replace=False) + q - m
        M[np.ix_(rows, np.arange(at, at + n))] = rng.standard_normal((len(rows), n)) * (
            rng.random((len(rows), n)) < 0.2
        )
        at += n
    M[q - m :, q - m :] = rng.standard_normal((m, m))
    pattern = (M != 0) | (M != 0).T | np.eye(q, dtype=bool)
    A = np.where(pattern, rng.standard_normal((q, q)) * 0.1, 0.0)
    A = (A + A.T) / 2.0
    A[np.diag_indices(q)] = np.abs(A).sum(axis=1) + 1.0  # diagonally dominant: SPD on the pattern
    perm = rng.permutation(q)
    return A[np.ix_(perm, perm)]


def planned(seed: int) -> tuple[np.ndarray, bordered.Plan]:
    """arrowhead(seed) and its bordered plan (which must exist)."""
    S = arrowhead(seed)
    r, c = np.nonzero(np.tril(S))
    plan = bordered.plan(r, c, S.shape[0])
    assert plan is not None
    return S, plan


def factor(S: np.ndarray, plan: bordered.Plan) -> bordered.BorderedSchur:
    r, c = np.nonzero(np.tril(S))
    values = np.zeros(plan.size)
    values[plan.positions(r, c)] = S[r, c]
    return bordered.BorderedSchur(plan, values)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bordered_factor_is_the_dense_one(seed: int) -> None:
    S, plan = planned(seed)
    q = S.shape[0]
    assert plan.flops * bordered.BORDERED_GAIN < q**3 / 3.0
    B = factor(S, plan)
    sign, logdet = np.linalg.slogdet(S)
    assert sign == 1.0 and B.logdet == pytest.approx(logdet, rel=1e-13)
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((q, 3))
    x = np.linalg.solve(S, b)
    np.testing.assert_allclose(B.solve(b), x, rtol=0, atol=1e-12 * np.abs(x).max())
    np.testing.assert_allclose(B.solve(b[:, 0]), x[:, 0], rtol=0, atol=1e-12 * np.abs(x).max())
    quad = B.quad(b)
    np.testing.assert_allclose(quad, b.T @ x, rtol=1e-12)
    assert np.array_equal(quad, quad.T)
    Sinv = np.linalg.inv(S)
    starts = np.array([0, 7, q - 2])
    blocks = np.array([Sinv[s : s + 2, s : s + 2] for s in starts])
    np.testing.assert_allclose(B.inverse_diagonal_blocks(starts, 2), blocks, rtol=0, atol=1e-13)


def test_a_full_pattern_has_no_bordered_order() -> None:
    q = 200
    r, c = np.tril_indices(q)
    assert bordered.plan(r, c, q) is None


def test_an_entry_off_the_arrowhead_is_refused() -> None:
    _, plan = planned(0)
    first, second = plan.blocks[0], plan.blocks[1]
    i, j = plan.perm[second.start], plan.perm[first.start]  # two different diagonal blocks
    with pytest.raises(ValueError, match="outside the bordered pattern"):
        plan.positions(np.array([i]), np.array([j]))


def test_an_indefinite_matrix_is_refused() -> None:
    S, plan = planned(1)
    k = plan.perm[-1]  # a separator row: its pivot comes last
    S[k, k] = -1.0
    with pytest.raises(NotPositiveDefinite, match="not positive definite"):
        factor(S, plan)


def test_blocked_pls_factors_an_insteval_shape_bordered(monkeypatch: pytest.MonkeyPatch) -> None:
    d = vcheck.lFormula("y ~ x + (1|s) + (1|d)", departments())
    pls = BlockedPLS(d)
    assert pls.schur_kind == "dense" and pls.bordered is not None
    monkeypatch.setattr(bordered, "plan", lambda *a: None)
    plain = BlockedPLS(d)
    assert plain.bordered is None
    ref = DensePLS(d)
    for theta in (np.array([0.4, 0.9]), np.array([0.0, 1.7]), np.array([2.5, 0.05])):
        f, g, h = pls.factor(theta), plain.factor(theta), ref.factor(theta)
        for a, b, c in ((f.ldL2, g.ldL2, h.ldL2), (f.ldRX2, g.ldRX2, h.ldRX2), (f.pwrss, g.pwrss, h.pwrss)):
            assert a == pytest.approx(b, rel=1e-12) and a == pytest.approx(c, rel=1e-12)
        np.testing.assert_allclose(f.beta, h.beta, rtol=1e-11)
        np.testing.assert_allclose(pls.modes(f), ref.modes(h), rtol=0, atol=1e-10)
        for mine, theirs in zip(pls.inverse_diagonal_blocks(f), ref.inverse_diagonal_blocks(h), strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)


def test_the_fit_is_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    data = departments(seed=9)
    fit = vcheck.lmer("y ~ x + (1|s) + (1|d)", data)
    monkeypatch.setattr(bordered, "plan", lambda *a: None)
    plain = vcheck.lmer("y ~ x + (1|s) + (1|d)", data)
    assert fit.criterion == pytest.approx(plain.criterion, rel=1e-12)
    np.testing.assert_allclose(fit.theta, plain.theta, rtol=1e-5)
    for g in fit.condVar or {}:
        np.testing.assert_allclose(fit.condVar[g], (plain.condVar or {})[g], rtol=1e-5)


def test_sparse_input_pattern_both_triangles() -> None:
    S = arrowhead(2)
    q = S.shape[0]
    coo = sp.coo_matrix(S)  # both triangles and the diagonal
    plan = bordered.plan(coo.row, coo.col, q)
    assert plan is not None
    lower = coo.row >= coo.col
    values = np.zeros(plan.size)
    values[plan.positions(coo.row[lower], coo.col[lower])] = coo.data[lower]
    assert bordered.BorderedSchur(plan, values).logdet == pytest.approx(np.linalg.slogdet(S)[1], rel=1e-13)
