"""vcheck.core.covariance: G, V (sparse, blocks, operator) and GLS beta, as properties (no R needed).

- V == Z G Z' + sigma^2 I, built the seed's way (dense, from G);
- the cluster blocks and the operator agree with V, and V is zero between clusters;
- gls_beta() (the seed's getFE) equals the PLS beta, through blocks and through Woodbury, REML and ML,
  on the built-in examples and on hypothesis-drawn unsorted, nested, crossed and random-slope data.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given

import vcheck
from vcheck.auditing.cases import Case
from vcheck.auditing.strategies import cases
from vcheck.core import covariance, tolerances
from vcheck.core.deviance import Devfun
from vcheck.core.errors import VcheckError
from vcheck.core.fit import fit_at, fit_design
from vcheck.reference import examples


def rel(a: object, b: object) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(
        np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), tolerances.ABS_FLOOR)
    )


@functools.cache
def example_fit(name: str) -> vcheck.LmerFit:
    ex = examples.load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_design(vcheck.lFormula(ex.formula, ex.data), REML=ex.REML)


def fit_case(case: Case, REML: bool) -> vcheck.LmerFit:
    """The fit record at a generic theta (the properties hold at any theta, not just the optimum)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = vcheck.lFormula(case.formula, case.data)
    rng = np.random.default_rng(len(case.data))
    theta = np.where(d.lower == 0, rng.uniform(0.2, 1.5, len(d.theta)), rng.normal(0, 0.4, len(d.theta)))
    return fit_at(Devfun(d, REML=REML), theta, condVar=False)


def check_covariance(f: vcheck.LmerFit) -> None:
    assert f.Zt is not None and f.Lambdat is not None and f.sigma is not None
    n = f.Zt.shape[1]
    Z = f.Zt.T.toarray()
    G = f.G.toarray()
    # G: symmetric, sigma^2 Lambda Lambda'
    Lam = f.Lambdat.T.toarray()
    assert np.allclose(G, f.sigma**2 * Lam @ Lam.T, rtol=1e-13, atol=0)
    # V: the seed's Z G Z' + sigma^2 I
    V = f.V()
    assert sp.issparse(V)
    V_seed = Z @ G @ Z.T + f.sigma**2 * np.eye(n)
    assert rel(V.toarray(), V_seed) < 1e-13
    # blocks: a partition of the rows; V is block diagonal over it
    blocks = f.V_blocks()
    rows = np.concatenate([r for r, _ in blocks])
    assert np.array_equal(np.sort(rows), np.arange(n))
    Vd = V.toarray()
    covered = np.zeros((n, n), dtype=bool)
    for r, block in blocks:
        assert np.array_equal(r, np.sort(r))
        assert rel(block, Vd[np.ix_(r, r)]) < 1e-13
        covered[np.ix_(r, r)] = True
    assert not np.any(Vd[~covered])
    # operator: matvec and matmat
    op = f.V_operator()
    x = np.random.default_rng(0).normal(size=(n, 3))
    assert rel(op @ x, Vd @ x) < 1e-13
    assert rel(op.matvec(x[:, 0]), Vd @ x[:, 0]) < 1e-13
    # GLS through V's blocks equals PLS beta, and so does Woodbury's route
    assert f.beta is not None and f.X is not None and f.y is not None
    assert rel(f.gls_beta(), f.beta) < 1e-9
    woodbury = covariance.gls_beta(f.X, f.y, f.Zt, f.Lambdat, f.sigma, max_rows=0)
    assert rel(woodbury, f.beta) < 1e-9


@pytest.mark.parametrize(
    "name",
    ["sleepstudy", "three_level", "star_k", "penicillin", "sleepstudy_ml", "dyestuff2", "factor_slope_0"],
)
def test_examples(name: str) -> None:
    check_covariance(example_fit(name))


@given(case=cases())
def test_properties_on_drawn_cases(case: Case) -> None:
    check_covariance(fit_case(case, REML=case.REML))


@given(case=cases(("nested", "crossed")))
def test_properties_nested_and_crossed_ml(case: Case) -> None:
    check_covariance(fit_case(case, REML=False))


def test_gls_equals_seed_getFE_dense() -> None:
    """The seed's getFE literally: solve(t(X) solve(V) X) t(X) solve(V) y with dense V."""
    f = example_fit("three_level")
    assert f.X is not None and f.y is not None and f.beta is not None
    Vd = f.V().toarray()
    VinvX = np.linalg.solve(Vd, f.X)
    beta = np.linalg.solve(f.X.T @ VinvX, VinvX.T @ f.y)
    assert rel(beta, f.beta) < 1e-10
    assert rel(f.gls_beta(), beta) < 1e-10


def test_clusters() -> None:
    """sleepstudy: one cluster per subject; three-level data: one per school (teachers nest in schools);
    penicillin (crossed plate x sample): everything is one cluster.  With `(0 + f | g)` a row has a
    non-zero only in its own level of f, yet rows of one g share that g's covariance block: Lambdat's
    pattern ties them together."""
    assert covariance.clusters(example_fit("sleepstudy").Zt)[0] == 18
    assert covariance.clusters(example_fit("three_level").Zt)[0] == 10
    assert covariance.clusters(example_fit("penicillin").Zt)[0] == 1
    f = example_fit("factor_slope_0")
    assert f.flist is not None
    groups = len(f.flist["g"].categories)
    assert covariance.clusters(f.Zt, f.Lambdat)[0] == groups
    assert covariance.clusters(f.Zt)[0] > groups


def test_size_guards() -> None:
    f = example_fit("penicillin")
    assert f.Zt is not None and f.Lambdat is not None and f.sigma is not None
    with pytest.raises(VcheckError, match="V_operator"):
        covariance.V(f.Zt, f.Lambdat, f.sigma, max_nnz=100)
    with pytest.raises(VcheckError, match="V_operator"):
        covariance.V_blocks(f.Zt, f.Lambdat, f.sigma, max_rows=10)
    # the operator and Woodbury's GLS still work where V would be refused
    assert rel(covariance.gls_beta(f.X, f.y, f.Zt, f.Lambdat, f.sigma, max_rows=10), f.beta) < 1e-9


def test_no_dense_n_by_n_for_large_n() -> None:
    """A 20,000-row random-slope model: V stays sparse (nnz = sum of squared group sizes), V_blocks are
    per group, and the operator works without forming anything dense."""
    rng = np.random.default_rng(5)
    n, k = 20_000, 400
    g = rng.integers(0, k, n)
    x = rng.normal(size=n)
    import pandas as pd

    data = pd.DataFrame({"y": 1 + x + rng.normal(size=k)[g] + rng.normal(size=n), "x": x, "g": g.astype(str)})
    d = vcheck.lFormula("y ~ x + (x|g)", data)
    f = fit_at(Devfun(d), np.array([0.8, 0.1, 0.3]), condVar=False)
    V = f.V()
    sizes = np.bincount(g)
    assert sp.issparse(V) and V.nnz == int(np.sum(sizes**2))
    assert len(f.V_blocks()) == k
    v = rng.normal(size=n)
    assert rel(f.V_operator() @ v, V @ v) < 1e-13
    assert rel(f.gls_beta(), f.beta) < 1e-9
