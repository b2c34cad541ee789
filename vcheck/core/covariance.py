"""G, V and GLS beta from lme4's pieces: what the seed's `getV` and `getFE` compute, for any model.

With Lambdat (q x q, lme4's `getME(m, "Lambdat")`), Zt (q x n), sigma, prior weights w (n,; lme4's
`weights(m)`, all 1 when None) and an offset o (n,; 0 when None):

    G = sigma^2 Lambda Lambda' = sigma^2 Lambdat' Lambdat                      (q x q, Zt's row order)
    V = Z G Z' + sigma^2 D = sigma^2 (W'W + D),  W = Lambdat Zt  (q x n),  D = diag(1 / w)
                                                                               (n x n, data row order)
    beta_GLS = (X' V^-1 X)^-1 X' V^-1 (y - o)

V is block diagonal over the clusters of the data: the connected components of the graph in which two
rows are joined when they share a level of some grouping factor (`clusters`).
`V` builds the sparse matrix (refusing when it would be huge), `V_blocks` the dense diagonal blocks,
`V_operator` never forms V; `gls_beta` goes through the blocks, or through Woodbury's identity
V^-1 = sigma^-2 (D^-1 - D^-1 W' (I + W D^-1 W')^-1 W D^-1) when one cluster is too large to hold
densely.
"""

from __future__ import annotations

from typing import Any

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


def residual_scale(weights: np.ndarray | None, n: int) -> np.ndarray | None:
    """D's diagonal 1 / w for prior weights w (None when the weights are all 1).  Refuses weights of the
    wrong length, non-finite, or not positive: V = sigma^2 (W'W + D) needs 1 / w finite."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=float).ravel()
    if w.shape != (n,):
        raise VcheckError(f"weights have length {w.size}, the model has {n} rows")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise VcheckError("weights must be finite and positive for V (a zero weight makes V infinite)")
    return 1.0 / w


def _response(y: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """y - offset (the offset is known: it shifts the response the fixed effects explain)."""
    y = np.asarray(y, dtype=float)
    if offset is None:
        return y
    o = np.asarray(offset, dtype=float).ravel()
    if o.shape != y.shape:
        raise VcheckError(f"offset has length {o.size}, the response has {y.size}")
    return y - o


def _require_finite(**arrays: np.ndarray) -> None:
    """VcheckError naming the first array with a NaN or infinite entry (beta would be NaN)."""
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise VcheckError(f"{name} has non-finite entries: beta = (X'V^-1X)^-1 X'V^-1 y is undefined")


def _W(Zt: sp.csc_matrix, Lambdat: sp.csc_matrix) -> sp.csc_matrix:
    """W = Lambdat Zt (q x n): V = sigma^2 (W'W + I)."""
    return sp.csc_matrix(sp.csc_matrix(Lambdat) @ sp.csc_matrix(Zt))


@single_threaded
def V_nnz_bound(Zt: Any) -> int:
    """sum_j c_j^2 + n, c_j the rows in random effect j (row j of Zt): the pairs of rows sharing an effect
    plus the diagonal, an upper bound on nnz(V) (a pair sharing two effects counts twice)."""
    per_effect = np.diff(sp.csr_matrix(Zt).indptr).astype(np.int64)
    return int(np.sum(per_effect**2)) + int(Zt.shape[1])


def V(
    Zt: sp.csc_matrix,
    Lambdat: sp.csc_matrix,
    sigma: float,
    max_nnz: int = MAX_V_NNZ,
    weights: np.ndarray | None = None,
) -> sp.csc_matrix:
    """V = sigma^2 (Z Lambda Lambda' Z' + W^-1) as an n x n scipy.sparse matrix (data row order),
    W = diag(weights) (the identity when weights is None).

    Its non-zeros are the pairs of rows sharing a grouping level.  Raises VcheckError when the number of
    such pairs exceeds `max_nnz` (e.g. a factor with few levels over many rows): use V_operator or
    V_blocks then.
    """
    W = _W(Zt, Lambdat)
    n = W.shape[1]
    bound = V_nnz_bound(Zt)
    if bound > max_nnz:
        raise VcheckError(
            f"V would hold up to {bound:,} non-zeros (n = {n:,}); use V_operator() or V_blocks() instead"
        )
    d = residual_scale(weights, n)
    D = sp.identity(n, format="csc") if d is None else sp.diags(d, format="csc")
    return sp.csc_matrix(sigma**2 * (W.T @ W + D))


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
    Zt: sp.csc_matrix,
    Lambdat: sp.csc_matrix,
    sigma: float,
    max_rows: int = MAX_BLOCK_ROWS,
    weights: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """V's diagonal blocks, one per cluster: [(row indices, dense block of sigma^2 (W_c'W_c + D_c))],
    D = diag(1 / weights) (the identity when weights is None).

    Row indices are 0-based data rows in increasing order; clusters come in order of their first row.
    V[np.ix_(rows, rows)] == block, and V is zero between clusters.  Raises VcheckError when a cluster
    has more than `max_rows` rows (use V_operator then).
    """
    d = residual_scale(weights, Zt.shape[1])
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
        rows = order[bounds[c] : bounds[c + 1]]
        block[np.diag_indices_from(block)] += 1.0 if d is None else d[rows]
        out.append((rows, sigma**2 * block))
    return out


def V_operator(
    Zt: sp.csc_matrix, Lambdat: sp.csc_matrix, sigma: float, weights: np.ndarray | None = None
) -> spla.LinearOperator:
    """V as a LinearOperator: v -> sigma^2 (W'(W v) + D v), D = diag(1 / weights), O(nnz(Zt)) per
    product, V never formed."""
    W = _W(Zt, Lambdat)
    Wt = sp.csr_matrix(W.T)
    n = W.shape[1]
    s2 = float(sigma) ** 2
    d = residual_scale(weights, n)

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        if d is None:
            return s2 * (Wt @ (W @ v) + v)
        return s2 * (Wt @ (W @ v) + (d * v.T).T)

    return spla.LinearOperator((n, n), matvec=matvec, rmatvec=matvec, matmat=matvec, dtype=np.float64)


def V_diagonal(
    Zt: sp.csc_matrix, Lambdat: sp.csc_matrix, sigma: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """diag(V) = sigma^2 (colSums(W^2) + 1 / w), W = Lambdat Zt, w the prior weights (1 when None): the n
    variances, in O(nnz(W))."""
    W = _W(Zt, Lambdat)
    d = residual_scale(weights, W.shape[1])
    return float(sigma) ** 2 * (np.asarray(W.multiply(W).sum(axis=0)).ravel() + (1.0 if d is None else d))


@single_threaded
def gls_beta(
    X: np.ndarray,
    y: np.ndarray,
    Zt: sp.csc_matrix,
    Lambdat: sp.csc_matrix,
    sigma: float,
    max_rows: int = MAX_BLOCK_ROWS,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """The seed's getFE: beta = (X' V^-1 X)^-1 X' V^-1 (y - offset), summed over V's cluster blocks
    (Cholesky of each), or by Woodbury's identity through I + W D^-1 W' (q x q, sparse LU) when a
    cluster is too large.  V = sigma^2 (W'W + D), D = diag(1 / weights).  Refuses non-finite X, y, offset,
    Zt or Lambdat and a sigma that is not finite and positive (VcheckError, never a NaN beta)."""
    X = np.asarray(X, dtype=float)
    y = _response(y, offset)
    _require_finite(X=X, y=y, Zt=sp.csc_matrix(Zt).data, Lambdat=sp.csc_matrix(Lambdat).data)
    if not (np.isfinite(sigma) and sigma > 0):
        raise VcheckError(f"sigma must be finite and positive for V^-1, not {sigma}")
    d = residual_scale(weights, X.shape[0])
    k, labels = clusters(Zt, Lambdat)
    largest = int(np.max(np.bincount(labels))) if k else 0
    if largest <= max_rows:
        XtVX = np.zeros((X.shape[1], X.shape[1]))
        XtVy = np.zeros(X.shape[1])
        for rows, block in V_blocks(Zt, Lambdat, sigma, max_rows=max_rows, weights=weights):
            cf = sla.cho_factor(block, lower=True)  # checks finiteness: an overflow raises, never a NaN beta
            Xb = X[rows]
            XtVX += Xb.T @ sla.cho_solve(cf, Xb)
            XtVy += Xb.T @ sla.cho_solve(cf, y[rows])
    else:
        # with w = 1 / d: V^-1 = sigma^-2 (diag(w) - diag(w) W' (I + W diag(w) W')^-1 W diag(w))
        w = np.ones(X.shape[0]) if d is None else 1.0 / d
        W = _W(Zt, Lambdat)
        Ww = sp.csc_matrix(W @ sp.diags(w))
        A = sp.csc_matrix(sp.identity(W.shape[0], format="csc") + Ww @ W.T)
        lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        WX, Wy = np.asarray(Ww @ X), np.asarray(Ww @ y)
        s2 = float(sigma) ** 2
        Xw = X * w[:, None]
        XtVX = (Xw.T @ X - WX.T @ lu.solve(WX)) / s2
        XtVy = (Xw.T @ y - WX.T @ lu.solve(Wy)) / s2
    return np.linalg.solve((XtVX + XtVX.T) / 2.0, XtVy)
