"""Sparse products whose sparsity pattern is fixed while the values change (one theta after another).

`Bilinear` computes C = P M Q' for fixed patterns of P, M and Q.  Every scalar contribution
P[i,k] M[k,l] Q[j,l] to C[i,j] is enumerated once, at set-up, with the product of the factors that are
constant folded into one weight; an evaluation is then a gather of the changing factors, a multiply and
one `np.bincount`, free of scipy.sparse's per-call overhead and of any pattern recomputation
(MixedModels.jl reaches the same end with in-place kernels).  When only one factor changes and C is
kept on its pattern, C's values are a fixed sparse matrix K times that factor's values,
C[e] = sum_t weight[t] v[idx[t]] over the products t of entry e, evaluated as one CSR product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vcheck.core.compiled import lazy_kernel


@dataclass(frozen=True)
class Pattern:
    """A sparsity pattern: entry e sits at (rows[e], cols[e]) of a matrix of `shape`."""

    rows: np.ndarray
    cols: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return len(self.rows)

    @property
    def T(self) -> Pattern:
        return Pattern(self.cols, self.rows, (self.shape[1], self.shape[0]))


#: a counting sort is used while the key range is at most this many times the number of keys
COUNTING_RANGE = 4


def _counting_order(key: np.ndarray, bound: int) -> np.ndarray:
    """The stable sorting permutation of integer keys in [0, bound), by counting."""
    start = np.zeros(bound + 1, dtype=np.int64)
    for k in key:
        start[k + 1] += 1
    for i in range(bound):
        start[i + 1] += start[i]
    order = np.empty(len(key), dtype=np.int64)
    for i in range(len(key)):
        order[start[key[i]]] = i
        start[key[i]] += 1
    return order


_counting_kernel = lazy_kernel(_counting_order)


def stable_order(key: np.ndarray, bound: int) -> np.ndarray:
    """np.argsort(key, kind="stable") for integer keys in [0, bound): a compiled counting sort (numba)
    when the range is small against the number of keys, else numpy's merge sort."""
    kernel = _counting_kernel() if 0 < bound <= COUNTING_RANGE * len(key) else None
    if kernel is None:
        return np.argsort(key, kind="stable")
    return kernel(np.asarray(key, dtype=np.int64), bound)


def _by_column(pat: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """Entries of `pat` grouped by column: (entry ids ordered by column, column pointer of length ncols+1)."""
    order = np.argsort(pat.cols, kind="stable").astype(np.int64)
    ptr = np.zeros(pat.shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(pat.cols, minlength=pat.shape[1]), out=ptr[1:])
    return order, ptr


def _enumerate(
    P: Pattern, M: Pattern, Q: Pattern, lower_by: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every scalar product P[i,k] M[k,l] Q[j,l] as entry indices (p, m, q), in two expansions: each M
    entry (k, l) over the entries of column k of P, then each of those over column l of Q.  With
    `lower_by`, column l of Q is ordered by rank so that the kept entries (rank[j] <= rank[i]) are a
    prefix, and the others are never generated."""
    pord, pptr = _by_column(P)
    npk = pptr[M.rows + 1] - pptr[M.rows]  # P entries in column k, for each M entry (k, l)
    m1 = np.repeat(np.arange(M.nnz, dtype=np.int64), npk)
    a = np.arange(len(m1), dtype=np.int64) - np.repeat(np.cumsum(npk) - npk, npk)
    p1 = pord[pptr[M.rows[m1]] + a]
    cols = M.cols[m1].astype(np.int64)
    qptr = np.zeros(Q.shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(Q.cols, minlength=Q.shape[1]), out=qptr[1:])
    if lower_by is None:
        qord = np.argsort(Q.cols, kind="stable").astype(np.int64)
        count = qptr[cols + 1] - qptr[cols]
    else:
        rank = np.asarray(lower_by, dtype=np.int64)
        R = int(rank.max(initial=0)) + 1
        qord = np.lexsort((rank[Q.rows], Q.cols)).astype(np.int64)
        qkey = Q.cols[qord].astype(np.int64) * R + rank[Q.rows[qord]]
        count = np.searchsorted(qkey, cols * R + rank[P.rows[p1]], side="right") - qptr[cols]
    e = np.repeat(np.arange(len(m1), dtype=np.int64), count)
    b = np.arange(len(e), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    return p1[e], m1[e], qord[qptr[cols[e]] + b]


def count_triples(P: Pattern, M: Pattern, Q: Pattern) -> int:
    """How many scalar products C = P M Q' enumerates (set-up memory is ~40 bytes each)."""
    cP = np.bincount(P.cols, minlength=P.shape[1]).astype(np.int64)
    cQ = np.bincount(Q.cols, minlength=Q.shape[1]).astype(np.int64)
    return int(np.sum(cP[M.rows] * cQ[M.cols]))


class Bilinear:
    """C = P M Q' (P: a x k, M: k x l, Q: b x l) on fixed patterns.

    `*_values` given at set-up mark that factor constant (folded into the weights); the others are passed
    to `__call__` as value arrays in their pattern's entry order.  With `dense=True` the result is a flat
    (a*b,) array, row-major (column-major with `fortran=True`, so that LAPACK takes it without a copy),
    otherwise the values on `self.out` (C's pattern, row-major order).
    `lower_by=rank` keeps only contributions to entries with rank[i] >= rank[j] (a lower triangle, or a
    block-lower one), for symmetric results of which one triangle is used.
    """

    def __init__(
        self,
        P: Pattern,
        M: Pattern,
        Q: Pattern,
        *,
        dense: bool,
        P_values: np.ndarray | None = None,
        M_values: np.ndarray | None = None,
        Q_values: np.ndarray | None = None,
        lower_by: np.ndarray | None = None,
        fortran: bool = False,
    ) -> None:
        if P.shape[1] != M.shape[0] or Q.shape[1] != M.shape[1]:
            raise ValueError(f"shapes {P.shape} x {M.shape} x {Q.shape}' do not chain")
        p_idx, m_idx, q_idx = _enumerate(P, M, Q, lower_by)
        weight = np.ones(len(m_idx))
        idx: list[np.ndarray | None] = []
        for ix, const in ((p_idx, P_values), (m_idx, M_values), (q_idx, Q_values)):
            if const is None:
                idx.append(ix)
            else:
                weight *= np.asarray(const, dtype=float)[ix]
                idx.append(None)
        constant = not (P_values is None and M_values is None and Q_values is None)
        nq = Q.shape[0]
        key = P.rows[p_idx].astype(np.int64) * nq + Q.rows[q_idx]
        if dense and fortran:
            key = Q.rows[q_idx].astype(np.int64) * P.shape[0] + P.rows[p_idx]
        self.shape = (P.shape[0], nq)
        self.out: Pattern | None = None
        self.starts: np.ndarray | None = None
        if dense:
            self.c_idx, self.size = key, P.shape[0] * nq
        else:
            # sort the products by output entry: each entry is then one contiguous run, summed by
            # np.add.reduceat, which beats bincount's scattered writes
            order = stable_order(key, P.shape[0] * nq)
            key = key[order]
            idx = [None if ix is None else ix[order] for ix in idx]
            weight = weight[order]
            first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else key
            uniq = key[first]
            self.c_idx, self.size, self.starts = np.zeros(0, dtype=np.int64), len(uniq), first
            self.out = Pattern(uniq // nq, uniq % nq, self.shape)
            self.count = len(key)
        self.idx = idx
        self.weight = weight if constant else None
        self.K: sp.csr_matrix | None = None
        varying = [(ix, n) for ix, n in zip(idx, (P.nnz, M.nnz, Q.nnz), strict=True) if ix is not None]
        if self.starts is not None and len(varying) == 1 and len(key):
            ix, n = varying[0]
            indptr = np.append(self.starts, len(key)).astype(np.int64)
            self.K = sp.csr_matrix((weight, ix, indptr), shape=(self.size, n))

    def __len__(self) -> int:
        return self.count if self.starts is not None else len(self.c_idx)

    def __call__(self, *values: np.ndarray) -> np.ndarray:
        """C's values from the non-constant factors' values, in the order P, M, Q."""
        if self.K is not None:
            return np.asarray(self.K @ values[0])
        it = iter(values)
        w = self.weight
        for idx in self.idx:
            if idx is not None:
                g = next(it)[idx]
                w = g if w is None else w * g
        if w is None:  # every factor constant
            w = np.ones(len(self))
        if self.starts is not None:
            return np.add.reduceat(w, self.starts) if self.size else np.zeros(0)
        return np.bincount(self.c_idx, weights=w, minlength=self.size)


def _scale_scatter(
    size: int, pos: np.ndarray, lam: np.ndarray, T: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    out = np.zeros(size)
    for e in range(len(pos)):
        out[pos[e]] = lam[rows[e]] * T[e] * lam[cols[e]]
    return out


_scale_scatter_kernel = lazy_kernel(_scale_scatter)


def scale_scatter(
    size: int, pos: np.ndarray, lam: np.ndarray, T: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """diag(lam) T diag(lam) entry by entry, T given on its pattern (rows, cols), written at flat
    positions `pos` of a zero array of `size`: out[pos[e]] = lam[rows[e]] * T[e] * lam[cols[e]] (in
    that order of multiplication); one compiled pass (numba) when available."""
    kernel = _scale_scatter_kernel()
    if kernel is not None:
        return kernel(size, pos, lam, T, rows, cols)
    out = np.zeros(size)
    out[pos] = lam[rows] * T * lam[cols]
    return out


def sparse_times_dense(pat: Pattern, values: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(the matrix with `values` on `pat`) @ B, for a dense B with few columns."""
    out = np.empty((pat.shape[0], B.shape[1]))
    for j in range(B.shape[1]):
        out[:, j] = np.bincount(pat.rows, weights=values * B[pat.cols, j], minlength=pat.shape[0])
    return out
