"""Sparse products whose sparsity pattern is fixed while the values change (one theta after another).

`Bilinear` computes C = P M Q' for fixed patterns of P, M and Q.  Every scalar contribution
P[i,k] M[k,l] Q[j,l] to C[i,j] is enumerated once, at set-up, with the product of the factors that are
constant folded into one weight; an evaluation is then a gather of the changing factors, a multiply and
one `np.bincount`, free of scipy.sparse's per-call overhead and of any pattern recomputation
(MixedModels.jl reaches the same end with in-place kernels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def _by_column(pat: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """Entries of `pat` grouped by column: (entry ids ordered by column, column pointer of length ncols+1)."""
    order = np.argsort(pat.cols, kind="stable").astype(np.int64)
    ptr = np.zeros(pat.shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(pat.cols, minlength=pat.shape[1]), out=ptr[1:])
    return order, ptr


def count_triples(P: Pattern, M: Pattern, Q: Pattern) -> int:
    """How many scalar products C = P M Q' enumerates (set-up memory is ~40 bytes each)."""
    cP = np.bincount(P.cols, minlength=P.shape[1]).astype(np.int64)
    cQ = np.bincount(Q.cols, minlength=Q.shape[1]).astype(np.int64)
    return int(np.sum(cP[M.rows] * cQ[M.cols]))


class Bilinear:
    """C = P M Q' (P: a x k, M: k x l, Q: b x l) on fixed patterns.

    `*_values` given at set-up mark that factor constant (folded into the weights); the others are passed
    to `__call__` as value arrays in their pattern's entry order.  With `dense=True` the result is a flat
    (a*b,) row-major array, otherwise the values on `self.out` (C's pattern, row-major order).
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
    ) -> None:
        if P.shape[1] != M.shape[0] or Q.shape[1] != M.shape[1]:
            raise ValueError(f"shapes {P.shape} x {M.shape} x {Q.shape}' do not chain")
        pord, pptr = _by_column(P)
        qord, qptr = _by_column(Q)
        npk = pptr[M.rows + 1] - pptr[M.rows]  # P entries in column k, for each M entry (k, l)
        nql = qptr[M.cols + 1] - qptr[M.cols]
        per = npk * nql
        m_idx = np.repeat(np.arange(M.nnz, dtype=np.int64), per)
        # position s within each M entry's run of npk*nql products: s = a * nql + b
        s = np.arange(len(m_idx), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
        nq = np.maximum(np.repeat(nql, per), 1)
        p_idx = pord[pptr[M.rows[m_idx]] + s // nq]
        q_idx = qord[qptr[M.cols[m_idx]] + s % nq]
        i, j = P.rows[p_idx].astype(np.int64), Q.rows[q_idx].astype(np.int64)
        if lower_by is not None:
            keep = lower_by[i] >= lower_by[j]
            p_idx, q_idx, m_idx, i, j = p_idx[keep], q_idx[keep], m_idx[keep], i[keep], j[keep]
        weight = np.ones(len(m_idx))
        self.idx: list[np.ndarray | None] = []
        for idx, const in ((p_idx, P_values), (m_idx, M_values), (q_idx, Q_values)):
            if const is None:
                self.idx.append(idx)
            else:
                weight *= np.asarray(const, dtype=float)[idx]
                self.idx.append(None)
        self.weight = None if P_values is None and M_values is None and Q_values is None else weight
        key = i * Q.shape[0] + j
        self.shape = (P.shape[0], Q.shape[0])
        self.out: Pattern | None
        if dense:
            self.c_idx, self.size, self.out = key, P.shape[0] * Q.shape[0], None
        else:
            uniq, self.c_idx = np.unique(key, return_inverse=True)
            self.size = len(uniq)
            self.out = Pattern(uniq // Q.shape[0], uniq % Q.shape[0], self.shape)

    def __len__(self) -> int:
        return len(self.c_idx)

    def __call__(self, *values: np.ndarray) -> np.ndarray:
        """C's values from the non-constant factors' values, in the order P, M, Q."""
        it = iter(values)
        w = self.weight
        for idx in self.idx:
            if idx is not None:
                g = next(it)[idx]
                w = g if w is None else w * g
        return np.bincount(self.c_idx, weights=w, minlength=self.size)


def sparse_times_dense(pat: Pattern, values: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(the matrix with `values` on `pat`) @ B, for a dense B with few columns."""
    out = np.empty((pat.shape[0], B.shape[1]))
    for j in range(B.shape[1]):
        out[:, j] = np.bincount(pat.rows, weights=values * B[pat.cols, j], minlength=pat.shape[0])
    return out
