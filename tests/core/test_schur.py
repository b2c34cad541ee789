"""The Schur complement's factorization: dense where it fills in, sparse (CHOLMOD) where it stays sparse,
the same criterion either way (vcheck.core.blocked_pls, vcheck.core.schur)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import vcheck
from vcheck.core import blocked_pls, schur
from vcheck.core.blocks import BlockedPLS, DensePLS


def _data(nested: bool, seed: int = 3) -> pd.DataFrame:
    """2,000 levels of g (two rows each) and 400 of h: h either contains whole g levels (nested) or
    is drawn per row (crossed)."""
    rng = np.random.default_rng(seed)
    n, ng, nh = 4000, 2000, 400
    g = rng.permutation(np.arange(n) % ng)
    h = g % nh if nested else rng.integers(0, nh, n)
    y = rng.normal(size=ng)[g] + rng.normal(size=nh)[h] + rng.normal(size=n)
    cat = pd.Categorical.from_codes
    return pd.DataFrame(
        {
            "y": y,
            "g": cat(g, pd.Index([f"g{i}" for i in range(ng)])),
            "h": cat(h, pd.Index([f"h{i}" for i in range(nh)])),
        }
    )


@pytest.mark.skipif(not schur.cholmod_available(), reason="scikit-sparse (CHOLMOD) not installed")
def test_nested_schur_is_sparse_and_crossed_dense() -> None:
    nested = BlockedPLS(vcheck.lFormula("y ~ 1 + (1|g) + (1|h)", _data(nested=True)))
    crossed = BlockedPLS(vcheck.lFormula("y ~ 1 + (1|g) + (1|h)", _data(nested=False)))
    assert nested.q2 == crossed.q2 == 400 > blocked_pls.SPARSE_SCHUR_MIN
    assert nested.schur_kind == "cholmod"
    assert crossed.schur_kind == "dense"


@pytest.mark.parametrize("nested", [True, False])
def test_every_schur_factorization_gives_the_same_criterion(
    nested: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = vcheck.lFormula("y ~ 1 + (1|g) + (1|h)", _data(nested))
    theta = np.array([0.7, 1.3])
    ref = DensePLS(d).factor(theta)
    kernels = {"chosen": BlockedPLS(d)}
    with monkeypatch.context() as m:
        m.setattr(blocked_pls, "DENSE_SCHUR_MAX", 0)
        kernels["sparse"] = BlockedPLS(d)
        m.setattr(schur, "_cholmod", lambda: None)
        kernels["superlu"] = BlockedPLS(d)
    for label, k in kernels.items():
        f = k.factor(theta)
        for a, b in ((f.ldL2, ref.ldL2), (f.ldRX2, ref.ldRX2), (f.pwrss, ref.pwrss)):
            assert abs(a - b) <= 1e-10 * abs(b), label


def test_fixed_pattern_keeps_explicit_zeros_and_the_diagonal() -> None:
    rows, cols = np.array([1, 2, 2]), np.array([0, 0, 1])
    pat = schur.FixedCSC(rows, cols, 3)
    S = pat.plus_identity(np.array([0.0, 0.5, 0.0]))
    assert S.nnz == 6  # three given entries, zeros included, and the diagonal
    expected = np.eye(3)
    expected[2, 0] = 0.5
    assert np.array_equal(S.toarray(), expected)
    assert sp.isspmatrix_csc(S) or isinstance(S, sp.csc_matrix)


@pytest.mark.skipif(not schur.cholmod_available(), reason="scikit-sparse (CHOLMOD) not installed")
def test_cholesky_flops_are_the_factors_column_counts() -> None:
    """The symbolic count (elimination tree, compiled) is sum (column count of L)^2 of CHOLMOD's own
    simplicial factor under the same AMD order, on patterns sparse, banded, nested and nearly full."""
    from sksparse import cholmod

    rng = np.random.default_rng(5)
    patterns = [
        sp.random(n, n, density=d, random_state=rng, format="csc") for n, d in ((60, 0.05), (200, 0.02))
    ]
    patterns.append(sp.diags([1.0] * 7, range(-3, 4), shape=(150, 150), format="csc"))
    patterns.append(sp.csc_matrix(np.kron(np.eye(20), np.ones((5, 5)))))
    patterns.append(sp.csc_matrix(np.ones((40, 40))))
    for pattern in patterns:
        P = sp.csc_matrix(pattern + pattern.T, dtype=float)
        P.data[:] = 1.0
        P = sp.csc_matrix(P + sp.diags(np.asarray(P.sum(axis=1)).ravel() + 1.0))
        factor = cholmod.cholesky(sp.tril(P, format="csc"), mode="simplicial", ordering_method="amd")
        L = sp.csc_matrix(factor.L())
        expected = float(np.sum(np.diff(L.indptr).astype(float) ** 2))
        assert schur.sparse_cholesky_flops(sp.csc_matrix(pattern + pattern.T)) == expected
