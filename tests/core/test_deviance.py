"""vcheck.devfun: lme4's profiled REML criterion / ML deviance by penalized least squares.

References: lme4's criterion at lme4's own theta, frozen in r_reference/frozen (no R needed).  Properties:
the blocked, dense and sparse-Schur kernels agree; the PLS criterion equals the profiled likelihood
computed the long way from V; the fixed-pattern products equal scipy's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import vcheck
from vcheck.core import blocked_pls, blocks, pattern, schur, tolerances
from vcheck.core.deviance import Devfun, criterion
from vcheck.core.pattern import Bilinear, Pattern
from vcheck.reference import examples

EXAMPLES = examples.names()


def design_of(name: str) -> vcheck.Design:
    ex = examples.load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank-deficiency notices are lFormula's business
        return vcheck.lFormula(ex.formula, ex.data)


def rel(a: float | np.ndarray, b: float | np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), tolerances.ABS_FLOOR))


@pytest.mark.parametrize("name", EXAMPLES)
def test_criterion_at_lme4_theta(name: str) -> None:
    """At lme4's optimum theta: lme4's criterion, beta, sigma to AT_THETA (construction, not optimization)."""
    ex = examples.load(name)
    e = ex.expected
    fn = vcheck.devfun(design_of(name), REML=ex.REML)
    assert rel(fn(e.theta), e.criterion) < tolerances.AT_THETA
    f = fn.last
    assert f is not None and f.beta is not None
    assert rel(f.beta, e.beta.to_numpy()) < tolerances.AT_THETA
    n, p = fn.n, fn.p
    sigma = math.sqrt(f.pwrss / (n - p if ex.REML else n))
    assert rel(sigma, e.sigma) < tolerances.AT_THETA


def brute_force_criterion(d: vcheck.Design, theta: np.ndarray, REML: bool) -> float:
    """The profiled criterion the long way, from V0 = Z Lambda Lambda' Z' + I (V = sigma^2 V0), dense:
    ML:   log|V0| + n (1 + log(2 pi r'V0^-1 r / n))
    REML: log|V0| + log|X'V0^-1 X| + (n-p) (1 + log(2 pi r'V0^-1 r / (n-p))),  r = y - X beta_GLS."""
    Lt = d.Lambdat_at(theta)
    W = (Lt @ d.Zt).toarray()
    V0 = W.T @ W + np.eye(d.n)
    Vinv_X = np.linalg.solve(V0, d.X)
    XVX = d.X.T @ Vinv_X
    beta = np.linalg.solve(XVX, Vinv_X.T @ d.y)
    r = d.y - d.X @ beta
    rss = r @ np.linalg.solve(V0, r)
    logdet = np.linalg.slogdet(V0)[1]
    if REML:
        nmp = d.n - d.p
        return logdet + np.linalg.slogdet(XVX)[1] + nmp * (1 + math.log(2 * math.pi * rss / nmp))
    return logdet + d.n * (1 + math.log(2 * math.pi * rss / d.n))


@pytest.mark.parametrize("name", ["sleepstudy", "three_level", "penicillin", "factor_slope", "nested3"])
@pytest.mark.parametrize("REML", [True, False])
def test_pls_equals_profiled_likelihood_from_V(name: str, REML: bool) -> None:
    d = design_of(name)
    rng = np.random.default_rng(1)
    fn = vcheck.devfun(d, REML=REML)
    for _ in range(3):
        theta = np.where(d.lower == 0, rng.uniform(0.05, 2.0, len(d.theta)), rng.normal(0, 0.5, len(d.theta)))
        assert rel(fn(theta), brute_force_criterion(d, theta, REML)) < 1e-9


def kernels(d: vcheck.Design, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Every PLS kernel on one design: dense, blocked (dense Schur), blocked with a sparse Schur (CHOLMOD
    where scikit-sparse is installed, and SuperLU),
    blocked with scipy products instead of fixed-pattern ones."""
    out: dict[str, object] = {"dense": blocks.DensePLS(d), "blocked": blocks.BlockedPLS(d)}
    with monkeypatch.context() as m:
        m.setattr(blocked_pls, "DENSE_SCHUR_MAX", 0)
        out["sparse_schur"] = blocks.BlockedPLS(d)
        m.setattr(schur, "_cholmod", lambda: None)  # scipy alone: SuperLU
        out["sparse_lu_schur"] = blocks.BlockedPLS(d)
    with monkeypatch.context() as m:
        m.setattr(blocked_pls, "DENSE_G_GAIN", 1e300)  # Z2'Z1 dense, G by one GEMM
        out["dense_G"] = blocks.BlockedPLS(d)
    with monkeypatch.context() as m:
        m.setattr(blocked_pls, "MAX_TRIPLES", 0)
        out["scipy_products"] = blocks.BlockedPLS(d)
    return out


@pytest.mark.parametrize(
    "name", ["sleepstudy_uncorrelated", "star_k", "penicillin", "nested3", "factor_slope"]
)
def test_kernels_agree(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The structure-exploiting factorizations are the same factorization: criterion pieces, beta, modes
    and the diagonal blocks of A^-1 agree across kernels."""
    d = design_of(name)
    ks = kernels(d, monkeypatch)
    rng = np.random.default_rng(7)
    theta = np.where(d.lower == 0, rng.uniform(0.1, 1.5, len(d.theta)), rng.normal(0, 0.3, len(d.theta)))
    ref = ks["dense"]
    fr = ref.factor(theta)  # type: ignore[attr-defined]
    for label, k in ks.items():
        f = k.factor(theta)  # type: ignore[attr-defined]
        assert rel(f.ldL2, fr.ldL2) < 1e-11, label
        assert rel(f.ldRX2, fr.ldRX2) < 1e-11, label
        assert rel(f.pwrss, fr.pwrss) < 1e-11, label
        assert rel(f.beta, fr.beta) < 1e-11, label
        assert rel(k.modes(f), ref.modes(fr)) < 1e-9, label  # type: ignore[attr-defined]
        for a, b in zip(k.inverse_diagonal_blocks(f), ref.inverse_diagonal_blocks(fr), strict=True):  # type: ignore[attr-defined]
            assert rel(a, b) < 1e-10, label


def test_kernel_choice_and_structure() -> None:
    """Small q factors dense; star_k (nested vector terms) puts both teacher terms in block 1 and the
    school terms in a dense Schur complement."""
    assert isinstance(vcheck.devfun(design_of("sleepstudy")).pls, blocks.DensePLS)
    d = design_of("star_k")
    k = blocks.BlockedPLS(d)
    assert (k.k1, k.nl1) == (2, d.terms[0].nlevels)
    assert k.q2 == d.q - 2 * d.terms[0].nlevels and k.dense_schur


def test_ml_and_reml_differ_as_lme4() -> None:
    """One factorization, two criteria: REML adds ldRX2 and uses n - p (lme4's Laplace)."""
    d = design_of("sleepstudy")
    fn = Devfun(d, REML=True)
    f = fn.factor(d.theta)
    n, p = d.n, d.p
    reml = f.ldL2 + f.ldRX2 + (n - p) * (1 + math.log(2 * math.pi * f.pwrss / (n - p)))
    ml = f.ldL2 + n * (1 + math.log(2 * math.pi * f.pwrss / n))
    assert criterion(f, n, p, True) == pytest.approx(reml, rel=1e-15)
    assert criterion(f, n, p, False) == pytest.approx(ml, rel=1e-15)
    assert Devfun(d, REML=False)(d.theta) == pytest.approx(ml, rel=1e-15)


def test_large_mean_response_keeps_digits() -> None:
    """y shifted by 1e6 (beta's intercept moves, nothing else): the criterion is unchanged, because the
    PLS works on the OLS residual (through y'y it is off by 5e-8 relative here)."""
    d = design_of("sleepstudy")
    shifted = vcheck.Design(**{**d.__dict__, "y": d.y + 1e6})
    theta = np.array([0.9, 0.02, 0.25])
    assert rel(vcheck.devfun(shifted)(theta), vcheck.devfun(d)(theta)) < 1e-12


def test_near_saturated_design_keeps_digits() -> None:
    """Seven rows, nine random effects (hypothesis found it): at lme4's theta sigma is 1e-3 and pwrss is
    5e-6 of r'r, where the Gram form loses 9 digits.  Reference: the criterion in 50-digit arithmetic
    (mpmath, from A, X'V^-1 X and the PLS residual) = 5.5687952687351549739; lme4 gives ...165."""
    import pandas as pd

    data = pd.DataFrame(
        {
            "y": [-2.1833653230694057, -3.268064598972356, -3.7129490026503476, -1.6253070706518205,
                  -0.5192205475216307, -7.113083697065887, -7.061527634954034],
            "x": [1.9334905164699068, 1.7980364090855434, 1.2870824511755838, 1.1668278481033054,
                  0.8380873524990167, 0.1337892147298969, 0.9345959814633267],
            "f": ["B", "C", "A", "A", "B", "C", "C"],
            "g": ["qnc", "qnc", "qnc", "zt", "zt", "zt", "zt"],
        }
    )  # fmt: skip
    theta = np.array([1137.5102318305755, 590.1143824045296, -3123.2222979895005, 1053.8787677071127,
                      58.257676674054785, 0.0009120261736442804])  # fmt: skip
    d = vcheck.lFormula("y ~ x + (f | g)", data)
    assert rel(vcheck.devfun(d)(theta), 5.5687952687351549739) < tolerances.AT_THETA


def test_bilinear_matches_scipy() -> None:
    """C = P M Q' on fixed patterns, dense and sparse output, lower-triangle option, constant factors."""
    rng = np.random.default_rng(3)

    def rand(m: int, n: int) -> sp.coo_matrix:
        return sp.random(m, n, density=0.3, random_state=rng, format="coo")

    P, M, Q = rand(7, 5), rand(5, 6), rand(7, 6)
    pats = [Pattern(x.row.astype(np.int64), x.col.astype(np.int64), x.shape) for x in (P, M, Q)]
    expect = (P @ M @ Q.T).toarray()
    dense = Bilinear(*pats, dense=True)
    assert np.allclose(dense(P.data, M.data, Q.data).reshape(7, 7), expect, rtol=1e-14, atol=1e-14)
    lower = Bilinear(*pats, dense=True, lower_by=np.arange(7), M_values=M.data)
    assert np.allclose(lower(P.data, Q.data).reshape(7, 7), np.tril(expect), rtol=1e-14, atol=1e-14)
    sparse = Bilinear(*pats, dense=False, P_values=P.data, Q_values=Q.data)
    assert sparse.out is not None
    got = sp.coo_matrix((sparse(M.data), (sparse.out.rows, sparse.out.cols)), shape=(7, 7)).toarray()
    assert np.allclose(got, expect, rtol=1e-14, atol=1e-14)
    # one varying factor: one CSR product, the same sums in the same order as gather + reduceat
    assert sparse.K is not None
    by_csr = sparse(M.data)
    sparse.K = None
    assert np.array_equal(sparse(M.data), by_csr)
    # column-major dense output (what LAPACK takes without a copy): the transpose of the row-major one
    fortran = Bilinear(*pats, dense=True, fortran=True)
    assert np.allclose(fortran(P.data, M.data, Q.data).reshape(7, 7).T, expect, rtol=1e-14, atol=1e-14)


def test_reml_needs_more_rows_than_columns() -> None:
    d = design_of("sleepstudy")
    tiny = vcheck.Design(**{**d.__dict__, "X": np.ones((d.n, d.n)), "X_names": [f"c{i}" for i in range(d.n)]})
    with pytest.raises(ValueError, match="REML needs more observations"):
        vcheck.devfun(tiny, REML=True)


def test_stable_order_is_numpys_stable_argsort(monkeypatch: pytest.MonkeyPatch) -> None:
    """The counting sort behind Bilinear's set-up orders keys exactly as np.argsort(kind="stable"),
    ties in their original order, and Bilinear's numbers do not depend on which sort ran."""
    rng = np.random.default_rng(8)
    for n, bound in ((1, 1), (50, 3), (5000, 700), (20000, 80000)):
        key = rng.integers(0, bound, n)
        assert np.array_equal(pattern.stable_order(key, bound), np.argsort(key, kind="stable"))
    P = sp.random(40, 30, density=0.3, random_state=rng, format="coo")
    M = sp.random(30, 30, density=0.3, random_state=rng, format="coo")
    pats = [Pattern(x.row.astype(np.int64), x.col.astype(np.int64), x.shape) for x in (P, M, P)]
    counted = Bilinear(*pats, dense=False, P_values=P.data, Q_values=P.data, lower_by=np.arange(40))
    monkeypatch.setattr(pattern, "COUNTING_RANGE", 0)  # numpy's merge sort instead
    merged = Bilinear(*pats, dense=False, P_values=P.data, Q_values=P.data, lower_by=np.arange(40))
    assert counted.out is not None and merged.out is not None
    assert np.array_equal(counted.out.rows, merged.out.rows)
    assert np.array_equal(counted(M.data), merged(M.data))


def test_scale_scatter_compiled_is_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """S = diag(l) T diag(l) scattered onto flat positions: the compiled pass is numpy's, bit for bit."""
    rng = np.random.default_rng(11)
    q = 30
    rows, cols = np.tril_indices(q)
    keep = rng.random(len(rows)) < 0.4
    rows, cols = rows[keep], cols[keep]
    pos = cols.astype(np.int64) * q + rows
    lam, T = rng.standard_normal(q), rng.standard_normal(len(rows))
    compiled = pattern.scale_scatter(q * q, pos, lam, T, rows, cols)
    monkeypatch.setattr(pattern, "_scale_scatter_kernel", lambda: None)
    plain = pattern.scale_scatter(q * q, pos, lam, T, rows, cols)
    assert np.array_equal(compiled, plain)
    expected = np.zeros((q, q))
    expected[rows, cols] = lam[rows] * T * lam[cols]
    assert np.array_equal(plain.reshape(q, q).T, expected)
