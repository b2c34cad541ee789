"""G, V and GLS beta from lme4's pieces: what the seed's `getV` and `getFE` compute, for any model.

With Lambdat (q x q, lme4's `getME(m, "Lambdat")`), Zt (q x n) and sigma:

    G = sigma^2 Lambda Lambda' = sigma^2 Lambdat' Lambdat                      (q x q, Zt's row order)
    V = Z G Z' + sigma^2 I = sigma^2 (W'W + I),  W = Lambdat Zt  (q x n)       (n x n, data row order)
    beta_GLS = (X' V^-1 X)^-1 X' V^-1 y

V is block diagonal over the clusters of the data: the connected components of the graph in which two
rows are joined when they share a level of some grouping factor (`clusters`).
`V` builds the sparse matrix (refusing when it would be huge), `V_blocks` the dense diagonal blocks,
`V_operator` never forms V; `gls_beta` goes through the blocks, or through Woodbury's identity
V^-1 = sigma^-2 (I - W' (I + W W')^-1 W) when one cluster is too large to hold densely.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from vcheck.core.errors import VcheckError
from vcheck.core.threads import single_threaded

#: V() refuses to build a sparse V with more stored entries than this (it would need ~12 bytes each)
MAX_V_NNZ = 50_000_000
#: V_blocks() refuses a cluster with more rows than this (its dense block needs 8 * rows^2 bytes)
MAX_BLOCK_ROWS = 5000


def G(Lambdat: sp.csc_matrix, sigma: float) -> sp.csc_matrix:
    """G = sigma^2 Lambdat' Lambdat: the q x q covariance of the random effects b, sparse."""
    Lt = sp.csc_matrix(Lambdat)
    return sp.csc_matrix(sigma**2 * (Lt.T @ Lt))


def _W(Zt: sp.csc_matrix, Lambdat: sp.csc_matrix) -> sp.csc_matrix:
    """W = Lambdat Zt (q x n): V = sigma^2 (W'W + I)."""
    return sp.csc_matrix(sp.csc_matrix(Lambdat) @ sp.csc_matrix(Zt))


@single_threaded
def V(Zt: sp.csc_matrix, Lambdat: sp.csc_matrix, sigma: float, max_nnz: int = MAX_V_NNZ) -> sp.csc_matrix:
    """V = sigma^2 (Z Lambda Lambda' Z' + I) as an n x n scipy.sparse matrix (data row order).

    Its non-zeros are the pairs of rows sharing a grouping level.  Raises VcheckError when the number of
    such pairs exceeds `max_nnz` (e.g. a factor with few levels over many rows): use V_operator or
    V_blocks then.
    """
    W = _W(Zt, Lambdat)
    n = W.shape[1]
    # pairs of rows sharing an effect, an upper bound on nnz(V) (a pair sharing two effects counts twice)
    per_effect = np.diff(sp.csr_matrix(Zt).indptr).astype(np.int64)
    bound = int(np.sum(per_effect**2)) + n
    if bound > max_nnz:
        raise VcheckError(
            f"V would hold up to {bound:,} non-zeros (n = {n:,}); use V_operator() or V_blocks() instead"
        )
    return sp.csc_matrix(sigma**2 * (W.T @ W + sp.identity(n, format="csc")))


def clusters(Zt: sp.csc_matrix, Lambdat: sp.csc_matrix | None = None) -> tuple[int, np.ndarray]:
    """Connected clusters of the data rows: (count, label per row, clusters numbered in order of their
    first row).  Two rows are joined when they share a random effect (a non-zero in one row of Zt), and
    effects are joined when Lambdat ties them (its stored entries: the columns of one term at one level,
    e.g. the levels of a factor slope `(0 + f | g)`).  V is zero between clusters for every theta."""
    Z = sp.coo_matrix(Zt)  # q x n
    keep = Z.data != 0
    q, n = Z.shape
    # one graph over rows (nodes 0..n-1) and effects (nodes n..n+q-1)
    rows = [Z.col[keep]]
    cols = [n + Z.row[keep]]
    if Lambdat is not None:
        L = sp.coo_matrix(Lambdat)
        rows.append(n + L.row)
        cols.append(n + L.col)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n + q, n + q)).tocsr()
    _, labels = connected_components(graph, directed=False)
    row_labels = labels[:n]
    _, first, inverse = np.unique(row_labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return len(first), rank[inverse]


@single_threaded
def V_blocks(
    Zt: sp.csc_matrix, Lambdat: sp.csc_matrix, sigma: float, max_rows: int = MAX_BLOCK_ROWS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """V's diagonal blocks, one per cluster: [(row indices, dense block of sigma^2 (W_c'W_c + I))].

    Row indices are 0-based data rows in increasing order; clusters come in order of their first row.
    V[np.ix_(rows, rows)] == block, and V is zero between clusters.  Raises VcheckError when a cluster
    has more than `max_rows` rows (use V_operator then).
    """
    k, labels = clusters(Zt, Lambdat)
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])
    largest = int(np.max(np.diff(bounds))) if k else 0
    if largest > max_rows:
        raise VcheckError(
            f"the largest cluster of rows has {largest:,} rows (> {max_rows:,}): its dense block of V is too "
            "large; use V_operator() instead"
        )
    W = _W(Zt, Lambdat)[:, order]
    out = []
    for c in range(k):
        Wc = W[:, bounds[c] : bounds[c + 1]]
        Wc = Wc[np.unique(Wc.indices)]  # only the effects this cluster touches
        Wd = Wc.toarray()
        block = Wd.T @ Wd
        block[np.diag_indices_from(block)] += 1.0
        out.append((order[bounds[c] : bounds[c + 1]], sigma**2 * block))
    return out


def V_operator(Zt: sp.csc_matrix, Lambdat: sp.csc_matrix, sigma: float) -> spla.LinearOperator:
    """V as a LinearOperator: v -> sigma^2 (W'(W v) + v), O(nnz(Zt)) per product, V never formed."""
    W = _W(Zt, Lambdat)
    Wt = sp.csr_matrix(W.T)
    n = W.shape[1]
    s2 = float(sigma) ** 2

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        return s2 * (Wt @ (W @ v) + v)

    return spla.LinearOperator((n, n), matvec=matvec, rmatvec=matvec, matmat=matvec, dtype=np.float64)


def V_diagonal(Zt: sp.csc_matrix, Lambdat: sp.csc_matrix, sigma: float) -> np.ndarray:
    """diag(V) = sigma^2 (colSums(W^2) + 1), W = Lambdat Zt: the n variances, in O(nnz(W))."""
    W = _W(Zt, Lambdat)
    return float(sigma) ** 2 * (np.asarray(W.multiply(W).sum(axis=0)).ravel() + 1.0)


@single_threaded
def gls_beta(
    X: np.ndarray,
    y: np.ndarray,
    Zt: sp.csc_matrix,
    Lambdat: sp.csc_matrix,
    sigma: float,
    max_rows: int = MAX_BLOCK_ROWS,
) -> np.ndarray:
    """The seed's getFE: beta = (X' V^-1 X)^-1 X' V^-1 y, summed over V's cluster blocks (Cholesky of
    each), or by Woodbury's identity through I + W W' (q x q, sparse LU) when a cluster is too large."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    k, labels = clusters(Zt, Lambdat)
    largest = int(np.max(np.bincount(labels))) if k else 0
    if largest <= max_rows:
        XtVX = np.zeros((X.shape[1], X.shape[1]))
        XtVy = np.zeros(X.shape[1])
        for rows, block in V_blocks(Zt, Lambdat, sigma, max_rows=max_rows):
            cf = sla.cho_factor(block, lower=True, check_finite=False)
            Xb = X[rows]
            XtVX += Xb.T @ sla.cho_solve(cf, Xb, check_finite=False)
            XtVy += Xb.T @ sla.cho_solve(cf, y[rows], check_finite=False)
    else:
        W = _W(Zt, Lambdat)
        A = sp.csc_matrix(sp.identity(W.shape[0], format="csc") + W @ W.T)
        lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        WX, Wy = np.asarray(W @ X), np.asarray(W @ y)
        s2 = float(sigma) ** 2
        XtVX = (X.T @ X - WX.T @ lu.solve(WX)) / s2
        XtVy = (X.T @ y - WX.T @ lu.solve(Wy)) / s2
    return np.linalg.solve((XtVX + XtVX.T) / 2.0, XtVy)
