"""Compiled (numba) kernels for the per-level small blocks, where numpy's per-call overhead dominates.

`uniform_blocks(A, H)` is `vcheck.core.batched`'s one-vector-per-entry Cholesky, triangular inverse and
right-hand side, for every level l of the blocks stored (k, k, nl):

    A_l = L_l L_l',   Li_l = L_l^-1,   d_l = prod_j L_l[j, j],   C_l = Li_l H_l     (H: (k, nl, p+1))

with the same floating-point operations in the same order as `cholesky_soa`, `inv_lower_soa` and
`dot_soa` (sums left to right from 0.0, no fused multiply-add), so its results are those of the numpy
kernel bit for bit (tests/core/test_compiled.py) at a tenth of the cost on a few dozen levels.

`lt_zz_l(vals, rows, ZtZ, ZtXr)` is the dense kernel's A - I = Lambda' Z'Z Lambda (and H = Lambda' Z'[X r],
likewise) for a Lambda with few
nonzeros per column (column j: vals[s, j] at row rows[s, j], s ascending by row, 0 where the column has
fewer), by the columns of Lambda:

    B[i, :] = sum_s vals[s, i] Z'Z[rows[s, i], :],   A[:, j] = sum_s B[:, rows[s, j]] vals[s, j]

each sum a chain of fused multiply-adds from 0.0 in ascending row order, as OpenBLAS's dgemm kernel
accumulates a dot product (zero terms of the full product add nothing exactly), so A is Lambda.T @ Z'Z
@ Lambda and H is Lambda.T @ Z'[X r] bit for bit (tests/reference/test_compiled_corpus.py checks it
on every dense design of lme4's test corpus) in O(q^2 k) instead of O(q^3).

`dense_factor_kernel()` is `vcheck.core.compiled_lapack.dense_factor` (those products, then LAPACK's
dpotrf and dtrtrs, in one compiled call) with scipy's LAPACK bound.

numba is imported on the first call only (`kernel()`, `dense_kernel()`, `dense_factor_kernel()`), so
`import vcheck` does not pay for it; its compiled code is cached on disk (numba's `cache=True`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np


def _uniform_blocks(A: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(L, L^-1, prod diag L, C = L^-1 H) per level, for A (k, k, nl) (lower triangle read) and
    H (k, nl, p+1)."""
    k, _, nl = A.shape
    p1 = H.shape[2]
    L = np.zeros_like(A)
    Li = np.zeros_like(A)
    diag = np.empty(nl)
    C = np.empty_like(H)
    for lev in range(nl):
        for j in range(k):
            s = 0.0
            for m in range(j):
                s = s + L[j, m, lev] * L[j, m, lev]
            L[j, j, lev] = math.sqrt(A[j, j, lev] - s)
            for i in range(j + 1, k):
                s = 0.0
                for m in range(j):
                    s = s + L[i, m, lev] * L[j, m, lev]
                L[i, j, lev] = (A[i, j, lev] - s) / L[j, j, lev]
        for j in range(k):
            Li[j, j, lev] = 1.0 / L[j, j, lev]
            for i in range(j + 1, k):
                s = 0.0
                for m in range(j, i):
                    s = s + L[i, m, lev] * Li[m, j, lev]
                Li[i, j, lev] = -s / L[i, i, lev]
        d = L[0, 0, lev]
        for j in range(1, k):
            d = d * L[j, j, lev]
        diag[lev] = d
        for a in range(k):
            for c in range(p1):
                s = 0.0
                for b in range(a + 1):
                    s = s + Li[a, b, lev] * H[b, lev, c]
                C[a, lev, c] = s
    return L, Li, diag, C


def _compile(fn: Callable[..., Any], **options: Any) -> Callable[..., Any] | None:
    """fn compiled by numba's njit (cached on disk, no GIL) with `options`, or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True, nogil=True, **options)(fn)  # type: ignore[no-any-return]


def lazy_kernel(fn: Callable[..., Any], **options: Any) -> Callable[[], Callable[..., Any] | None]:
    """A getter of `fn` compiled by numba (`_compile`), compiling on its first call only (so that
    importing a module that holds a kernel does not import numba); None without numba."""
    return functools.cache(lambda: _compile(fn, **options))


@functools.cache
def kernel() -> Callable[[np.ndarray, np.ndarray], Any] | None:
    """`_uniform_blocks` compiled by numba, or None when numba cannot be imported."""
    return _compile(_uniform_blocks)


def _lt_zz_l(
    vals: np.ndarray, rows: np.ndarray, ZtZ: np.ndarray, ZtXr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Lambda' Z'Z Lambda, Lambda' Z'[X r]) from Lambda's nonzeros by column (module docstring); the
    loop over s runs outside the one over j, so that each entry's chain is the same and the inner loop
    is contiguous."""
    ns, q = vals.shape
    p1 = ZtXr.shape[1]
    B = np.zeros((q, q))
    H = np.zeros((q, p1))
    for i in range(q):
        for s in range(ns):
            v = vals[s, i]
            r = rows[s, i]
            for j in range(q):
                B[i, j] = B[i, j] + v * ZtZ[r, j]
            for j in range(p1):
                H[i, j] = H[i, j] + v * ZtXr[r, j]
    A = np.zeros((q, q))
    for i in range(q):
        for s in range(ns):
            for j in range(q):
                A[i, j] = A[i, j] + B[i, rows[s, j]] * vals[s, j]
    return A, H


@functools.cache
def dense_kernel() -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], Any] | None:
    """`_lt_zz_l` compiled by numba with multiply-adds contracted to FMA, or None without numba."""
    return _compile(_lt_zz_l, fastmath={"contract"})


@functools.cache
def dense_factor_kernel() -> Callable[..., int] | None:
    """`vcheck.core.compiled_lapack.dense_factor` (the dense evaluation with LAPACK called from numba),
    or None when numba or scipy's cython_lapack cannot be had."""
    try:
        from vcheck.core import compiled_lapack
    except (ImportError, ValueError):  # no numba, or scipy without cython_lapack's dpotrf/dtrtrs
        return None
    return functools.partial(compiled_lapack.dense_factor, compiled_lapack.DPOTRF, compiled_lapack.DTRTRS)
