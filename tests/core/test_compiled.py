"""The compiled kernels (numba) are the numpy computations they replace, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from designs import factor_both_ways
from hypothesis import given, settings
from hypothesis import strategies as st

from vcheck.core import batched, compiled, dense_pls
from vcheck.core.dense_pls import DensePLS
from vcheck.core.design import lFormula
from vcheck.core.schur import NotPositiveDefinite
from vcheck.core.threads import blas_threads


def blocks(k: int, nl: int, p1: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lam (k, k) lower, vec(Z'Z_l) (k*k, nl) positive semidefinite per level, Z_l'[X r] (k, nl*p1)."""
    rng = np.random.default_rng(seed)
    lam = np.tril(rng.standard_normal((k, k)))
    Z = rng.standard_normal((k, 3, nl)) * rng.integers(0, 2, size=(1, 3, nl))  # some levels rank deficient
    zz = np.einsum("abl,cbl->acl", Z, Z).reshape(k * k, nl)
    return lam, zz, rng.standard_normal((k, nl * p1))


def numpy_kernel(lam: np.ndarray, zz: np.ndarray, zxr: np.ndarray, nl: int) -> tuple[np.ndarray, ...]:
    """cholesky_soa, inv_lower_soa and dot_soa as batched.factor_uniform_blocks composes them."""
    k = lam.shape[0]
    p1 = zxr.shape[1] // nl
    kron = (lam[:, None, :, None] * lam[None, :, None, :]).reshape(k * k, k * k)
    A = kron.T @ zz
    A[np.arange(k) * (k + 1)] += 1.0
    L = batched.cholesky_soa(A.reshape(k, k, nl))
    Li = batched.inv_lower_soa(L)
    H = (lam.T @ zxr).reshape(k, nl, p1)
    C = np.empty_like(H)
    for a in range(k):
        C[a] = batched.dot_soa(Li[a, : a + 1, :, None], H[: a + 1])
    diag = L[0, 0]
    for j in range(1, k):
        diag = diag * L[j, j]
    return L, Li, 2.0 * float(np.sum(np.log(diag))), C


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 6), nl=st.integers(1, 60), p1=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_compiled_kernel_is_the_numpy_kernel_bit_for_bit(k: int, nl: int, p1: int, seed: int) -> None:
    assert compiled.kernel() is not None, "numba is a dependency of vcheck"
    lam, zz, zxr = blocks(k, nl, p1, seed)
    got = batched.factor_uniform_blocks(lam, zz, zxr, nl)
    want = numpy_kernel(lam, zz, zxr, nl)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(np.asarray(g), np.asarray(w))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_without_numba_the_numpy_kernels_give_the_same_factor(
    monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    """The fallback (numba missing): the SoA kernel for k = 2 (bit for bit), batched LAPACK for k >= 3
    (to rounding)."""
    lam, zz, zxr = blocks(k, 40, 3, 7)
    with_numba = batched.factor_uniform_blocks(lam, zz, zxr, 40)
    monkeypatch.setattr(batched, "kernel", lambda: None)
    without = batched.factor_uniform_blocks(lam, zz, zxr, 40)
    for g, w in zip(without, with_numba, strict=True):
        if k == 2:
            assert np.array_equal(np.asarray(g), np.asarray(w))
        else:
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12, atol=1e-14)


def test_a_planted_fault_in_the_kernel_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: a kernel that drops the last term of C's sums differs."""
    lam, zz, zxr = blocks(3, 10, 2, 3)

    def faulty(A: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, ...]:
        L, Li, d, C = compiled._uniform_blocks(A, H)
        C[-1] -= Li[-1, -1][:, None] * H[-1]
        return L, Li, d, C

    monkeypatch.setattr(batched, "kernel", lambda: faulty)
    got = batched.factor_uniform_blocks(lam, zz, zxr, 10)
    want = numpy_kernel(lam, zz, zxr, 10)
    assert not np.array_equal(got[3], want[3])


def dense_design(seed: int, k: int, nl: int, n: int) -> tuple[DensePLS, np.ndarray]:
    """A DensePLS for y ~ x + (1 + x + ... | g) on drawn data, and a drawn theta."""
    rng = np.random.default_rng(seed)
    cols = {f"x{j}": rng.normal(size=n) for j in range(1, k)}
    data = pd.DataFrame({"y": rng.normal(size=n), "g": rng.integers(0, nl, size=n).astype(str), **cols})
    slope = " + ".join(["1", *cols])
    design = lFormula(f"y ~ 1 + ({slope} | g)", data)
    return DensePLS(design), np.asarray(design.theta) * rng.uniform(0.1, 3.0, size=len(design.theta))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 4), nl=st.integers(2, 20))
def test_dense_kernel_is_the_matrix_product_bit_for_bit(seed: int, k: int, nl: int) -> None:
    """Lambda' Z'Z Lambda by Lambda's columns (FMA chains in row order) is numpy's two GEMMs, exactly."""
    assert compiled.dense_kernel() is not None
    pls, theta = dense_design(seed, k, nl, 6 * nl)
    Lam = np.zeros((pls.q, pls.q))
    Lam[pls.lam_rows, pls.lam_cols] = theta[pls.lam_theta]
    with blas_threads(1):
        A, H = pls.products(theta)
        assert np.array_equal(A, Lam.T @ pls.ZtZ @ Lam)
        assert np.array_equal(H, Lam.T @ pls.ZtXr)


def test_without_numba_the_dense_kernel_is_the_matrix_product(monkeypatch: pytest.MonkeyPatch) -> None:
    pls, theta = dense_design(5, 2, 10, 60)
    Lam = np.zeros((pls.q, pls.q))
    Lam[pls.lam_rows, pls.lam_cols] = theta[pls.lam_theta]
    with_numba = pls.products(theta)
    monkeypatch.setattr(dense_pls, "dense_kernel", lambda: None)
    for got, want in zip(pls.products(theta), with_numba, strict=True):
        np.testing.assert_array_equal(got, want)


def factor_fields(f: dense_pls.Factor) -> list[np.ndarray]:
    """Every number of a DensePLS factor: L, H, R's pieces, beta, the log determinants and pwrss."""
    assert f.schur is not None and f.H2 is not None and f.RX is not None and f.beta is not None
    L = np.asarray(f.schur.L)  # type: ignore[attr-defined]
    return [L, f.H2, f.RX, f.beta, np.array([f.ldL2, f.ldRX2, f.pwrss])]


def assert_same_factor(got: dense_pls.Factor, want: dense_pls.Factor) -> None:
    for g, w in zip(factor_fields(got), factor_fields(want), strict=True):
        assert g.shape == w.shape and g.strides == w.strides and np.array_equal(g, w)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 4), nl=st.integers(2, 20))
def test_compiled_dense_factor_is_the_numpy_and_lapack_path_bit_for_bit(seed: int, k: int, nl: int) -> None:
    """One compiled call (Lambda' Z'Z Lambda + I, dpotrf and dtrtrs from numba) gives the Factor the
    numpy products and scipy's f2py LAPACK wrappers give: every array, its layout, every number."""
    assert compiled.dense_factor_kernel() is not None, "numba is a dependency of vcheck"
    pls, theta = dense_design(seed, k, nl, 6 * nl)
    got, want = factor_both_ways(pls, theta)
    assert_same_factor(got, want)
    assert np.array_equal(pls.modes(got), pls.modes(want))


def test_compiled_dense_factor_without_fixed_effects_and_on_the_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    """p = 0 (y ~ 0 + (1 + x | g)), a theta with zeros (Lambda's columns partly empty) and one with a
    zero column: the compiled call and the numpy path agree bit for bit."""
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"y": rng.normal(size=60), "x": rng.normal(size=60), "g": rng.integers(0, 10, 60)})
    data["g"] = data["g"].astype(str)
    designs = [lFormula("y ~ 0 + (1 + x | g)", data), lFormula("y ~ x + (1 | g) + (0 + x | g)", data)]
    for design in designs:
        pls = DensePLS(design)
        thetas = [np.asarray(design.theta) * 0.7, np.zeros(len(design.theta)), np.array(design.theta) * 1e4]
        thetas[0][-1] = 0.0
        for theta in thetas:
            got, want = factor_both_ways(pls, theta)
            assert_same_factor(got, want)


def test_compiled_dense_factor_refuses_as_dense_schur() -> None:
    """A Cholesky that fails (theta ~ 1e15 on levels with one or two rows: A's + I is lost to rounding,
    dpotrf's info > 0) raises NotPositiveDefinite with DenseSchur's message, from the compiled call as
    from the numpy path."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"y": rng.normal(size=30), "x": rng.normal(size=30), "g": rng.integers(0, 10, 30)})
    pls = DensePLS(lFormula("y ~ 1 + (1 + x | g)", data.astype({"g": str})))
    theta = np.array([1e15, 0.999999e15, 1e12])
    messages = []
    for kernel in (compiled.dense_factor_kernel, lambda: None):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dense_pls, "dense_factor_kernel", kernel)
            with pytest.raises(NotPositiveDefinite, match="Schur complement is not positive definite") as err:
                pls.factor(theta)
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_a_planted_fault_in_the_compiled_dense_factor_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: the kernel run on a Z'Z one unit in the last place larger differs."""
    pls, theta = dense_design(2, 2, 10, 60)
    want = pls.factor(theta)
    kernel = compiled.dense_factor_kernel()
    assert kernel is not None

    def faulty(*args: np.ndarray) -> int:
        theta_, lam_theta, entry, rows, rmax, ZtZ, *rest = args
        return int(kernel(theta_, lam_theta, entry, rows, rmax, ZtZ * (1.0 + 2.0**-52), *rest))

    monkeypatch.setattr(dense_pls, "dense_factor_kernel", lambda: faulty)
    got = pls.factor(theta)
    assert_same_factor(got, got)
    with pytest.raises(AssertionError):
        assert_same_factor(got, want)
