"""The uniform block-diagonal kernel: one small dense k x k block per level of a grouping factor.

For the terms on the grouping factor with the most levels (block 1 of `vcheck.core.blocked_pls`), every
level l has its own k x k block of Z'Z and they share one relative factor lam (k x k):

    A_l = lam' ZtZ_l lam + I = L_l L_l',     C_l = L_l^-1 lam' Z_l'[X r]      (one per level)
    log det A_11 = 2 sum_l log prod diag L_l.

The blocks are stored "one vector per entry" (shape (k, k, nl)): a k x k Cholesky is k^2/2 vector
operations over all nl levels at once, which beats numpy's batched linalg (per-call overhead) for the
handful of rows k has in practice.  k = 1 (scalar terms) is the diagonal kernel: plain vector algebra.
With numba installed (a dependency) blocks of k >= 2 go through `vcheck.core.compiled`, the same
arithmetic compiled; without it, wide blocks (k >= 3) on few levels go through numpy's batched LAPACK,
one call for all levels.
"""

from __future__ import annotations

import numpy as np

from vcheck.core.compiled import kernel

#: blocks of at least this order, over at most BATCHED_SIZE_MAX rows in all, use numpy's batched LAPACK
BATCHED_K_MIN = 3
BATCHED_SIZE_MAX = 4000


def dot_soa(X: np.ndarray, Y: np.ndarray) -> np.ndarray | float:
    """sum_m X[m] * Y[m] over the leading axis (vectors of length n); 0.0 when empty."""
    out: np.ndarray | float = 0.0
    for m in range(X.shape[0]):
        out = out + X[m] * Y[m]
    return out


def cholesky_soa(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of small SPD matrices stored (k, k, n): one vector op per entry
    (k is a handful, n the number of levels; numpy's batched routines cost more in overhead here)."""
    k = A.shape[0]
    L = np.zeros_like(A)
    # A = Lambda' Z'Z Lambda + I >= I, so the pivots stay >= 1 for any finite theta: no check needed
    for j in range(k):
        L[j, j] = np.sqrt(A[j, j] - dot_soa(L[j, :j], L[j, :j]))
        for i in range(j + 1, k):
            L[i, j] = (A[i, j] - dot_soa(L[i, :j], L[j, :j])) / L[j, j]
    return L


def inv_lower_soa(L: np.ndarray) -> np.ndarray:
    """Inverses of a stack of small lower-triangular matrices stored (k, k, n)."""
    k = L.shape[0]
    Li = np.zeros_like(L)
    for j in range(k):
        Li[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, k):
            Li[i, j] = -dot_soa(L[i, j:i], Li[j:i, j]) / L[i, i]
    return Li


def factor_uniform_blocks(
    lam1: np.ndarray, zz1: np.ndarray, zxr1: np.ndarray, nl1: int
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(L, L^-1, log det A_11, C) for every level at once (module docstring).

    lam1 (k, k); zz1 (k*k, nl1): vec(ZtZ_l) per level; zxr1 (k, nl1*(p+1)): Z_l'[X r] by within-level
    position.  L and L^-1 are (k, k, nl1), C is (k, nl1, p+1).
    """
    k1 = lam1.shape[0]
    p1 = zxr1.shape[1] // nl1
    if k1 == 1:  # scalar terms: every block is 1 x 1
        l2 = lam1[0, 0] ** 2
        L11 = np.sqrt(l2 * zz1 + 1.0).reshape(1, 1, nl1)
        L11inv = 1.0 / L11
        ld = 2.0 * float(np.sum(np.log(L11)))
        C1 = (lam1[0, 0] * L11inv[0, 0])[None, :, None] * zxr1.reshape(1, nl1, p1)
        return L11, L11inv, ld, C1
    # vec(lam' Z'Z_l lam) = (lam kron lam)' vec(Z'Z_l), for every level l at once
    kron = (lam1[:, None, :, None] * lam1[None, :, None, :]).reshape(k1 * k1, k1 * k1)
    A11 = kron.T @ zz1
    A11[np.arange(k1) * (k1 + 1)] += 1.0
    H1 = (lam1.T @ zxr1).reshape(k1, nl1, p1)
    compiled = kernel()
    if compiled is not None:  # the same arithmetic as cholesky_soa, inv_lower_soa and dot_soa, compiled
        L11, L11inv, diag, C1 = compiled(np.ascontiguousarray(A11.reshape(k1, k1, nl1)), H1)
        return L11, L11inv, 2.0 * float(np.sum(np.log(diag))), C1
    if k1 >= BATCHED_K_MIN and nl1 * k1 <= BATCHED_SIZE_MAX:
        # few levels of wide blocks: numpy's batched LAPACK beats k^3/3 Python-level vector operations
        L = np.linalg.cholesky(np.ascontiguousarray(A11.reshape(k1, k1, nl1).transpose(2, 0, 1)))
        L11 = np.ascontiguousarray(L.transpose(1, 2, 0))
        L11inv = np.ascontiguousarray(np.tril(np.linalg.inv(L)).transpose(1, 2, 0))
    else:
        L11 = cholesky_soa(A11.reshape(k1, k1, nl1))
        L11inv = inv_lower_soa(L11)
    diag = L11[0, 0]
    for j in range(1, k1):
        diag = diag * L11[j, j]
    ld = 2.0 * float(np.sum(np.log(diag)))  # log det of each block from the product of pivots
    C1 = np.empty_like(H1)
    for a in range(k1):  # C1[a] = sum_b L11inv[a, b] H1[b] (b <= a), per level
        C1[a] = dot_soa(L11inv[a, : a + 1, :, None], H1[: a + 1])
    return L11, L11inv, ld, C1


def W_blocks(lam1: np.ndarray, L11inv: np.ndarray) -> np.ndarray:
    """W_l = lam A_l^-1 lam' = D_l D_l' with D_l = lam L_l^-T, stored (k, k, nl)."""
    if lam1.shape[0] == 1:
        return (lam1[0, 0] * L11inv) ** 2
    D = np.tensordot(lam1, L11inv, axes=([1], [1]))  # D[a, b, l] = sum_c lam[a, c] L11inv[b, c, l]
    k = lam1.shape[0]
    W = np.empty_like(L11inv)
    for a in range(k):
        for b in range(a + 1):
            W[a, b] = W[b, a] = dot_soa(D[a], D[b])  # sum_c D[a, c] D[b, c], per level
    return W
