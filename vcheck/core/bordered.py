"""A dense Cholesky that skips the zero blocks of a bordered (one-level nested dissection) order.

A sparse symmetric S whose graph falls apart into components once a separator is removed is, in the
order (components..., separator), block arrowhead:

    P S P' = [ A_1          B_1' ]        A_b = L_b L_b',   W_b = B_b L_b^-T,
             [      ...     ...  ]        C - sum_b W_b W_b' = L_C L_C',
             [ B_1  ...  C       ]        L = [ diag(L_b)  0 ; W_b ...  L_C ],

and log det S = 2 sum log diag L_b + 2 sum log diag L_C.  B_b is kept only on the separator rows R_b
the block touches (W_b has the same rows), so the update of C costs |R_b|^2 n_b, not m^2 n_b.  Each
factor is a LAPACK/BLAS call on a contiguous block; nothing off the arrowhead is stored or touched.

The order comes from METIS's nested dissection (CHOLMOD's `analyze`, scikit-sparse) on S's pattern:
its last m vertices form the top separator, and m is chosen by a flop count among a few candidates.
`plan(rows, cols, q)` returns None when no candidate beats a plain dense Cholesky by BORDERED_GAIN
(crossed factors whose graph has no small separator), and the caller factors S dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from vcheck.core.compiled import lazy_kernel
from vcheck.core.schur import cholesky_lower, cholmod_available

#: a bordered order is sought only for an S with at most this fraction of its entries nonzero
MAX_DENSITY = 0.3
#: a bordered order is used when its flop count is under 1/BORDERED_GAIN of the dense q^3/3
BORDERED_GAIN = 1.4
#: the fixed cost of one diagonal block (its four BLAS/LAPACK calls), in multiply-adds
BLOCK_CALL_COST = 4e5
#: components are merged, in order, into diagonal blocks of at least this many rows
MIN_BLOCK = 16
#: candidate separator sizes m: these fractions of q, then every q/FINE_STEPS around the best of them
SEPARATOR_FRACTIONS = tuple(i / 10 for i in range(1, 10))
FINE_STEPS = 40

_dtrtrs = sla.lapack.dtrtrs
_dtrsm = sla.blas.dtrsm
_dsyrk = sla.blas.dsyrk


@dataclass(frozen=True)
class Block:
    """One diagonal block: rows [start, start+n) of the bordered order; A at `a`, B (r x n) at `b` in
    the flat buffer; R = the separator rows (0..m-1, ascending) that B keeps."""

    start: int
    n: int
    a: int
    b: int
    R: np.ndarray


@dataclass(frozen=True)
class Plan:
    """The bordered order of a q x q pattern: perm (bordered position -> original index), the diagonal
    blocks, the separator's size m and C's offset, the flat buffer's size, and its flop count."""

    q: int
    perm: np.ndarray
    blocks: tuple[Block, ...]
    m: int
    c: int
    size: int
    flops: float

    def positions(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Flat-buffer position of each entry (rows[i], cols[i]) of S (original indices; each pair
        stored once, either triangle), as the lower triangle of the bordered order."""
        inv = np.empty(self.q, dtype=np.int64)
        inv[self.perm] = np.arange(self.q)
        i, j = inv[np.asarray(rows)], inv[np.asarray(cols)]
        i, j = np.maximum(i, j), np.minimum(i, j)
        k = self.q - self.m
        out = np.full(len(i), -1, dtype=np.int64)
        sep = j >= k  # both in the separator
        out[sep] = self.c + (j[sep] - k) * self.m + (i[sep] - k)
        for blk in self.blocks:
            inside = (j >= blk.start) & (j < blk.start + blk.n)
            diag = inside & (i < blk.start + blk.n)
            out[diag] = blk.a + (j[diag] - blk.start) * blk.n + (i[diag] - blk.start)
            border = inside & (i >= k)
            a = np.searchsorted(blk.R, i[border] - k)
            if np.any(a >= len(blk.R)) or np.any(blk.R[np.minimum(a, len(blk.R) - 1)] != i[border] - k):
                raise ValueError("an entry of S lies outside the bordered pattern")
            out[border] = blk.b + (j[border] - blk.start) * len(blk.R) + a
        if np.any(out < 0):
            raise ValueError("an entry of S lies outside the bordered pattern")
        return out

    def diagonal(self) -> np.ndarray:
        """Flat-buffer positions of S's diagonal, in original index order."""
        idx = np.arange(self.q)
        return self.positions(idx, idx)


def _blocks_of(
    labels: np.ndarray, edges: tuple[np.ndarray, np.ndarray], k: int, m: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """Components of the leading k vertices (their labels) merged, in label order, into blocks of
    >= MIN_BLOCK rows: (vertices, separator rows R) per block, and the blocks' flop count.  `edges`
    (i, j) are the pattern's off-diagonal entries in the nested-dissection order, i > j."""
    block_of_label = np.empty(int(labels.max()) + 1, dtype=np.int64)
    nblocks, size = 0, 0
    for lab, n in enumerate(np.bincount(labels).tolist()):
        block_of_label[lab] = nblocks
        size += n
        if size >= MIN_BLOCK:
            nblocks, size = nblocks + 1, 0
    nblocks += size > 0
    block_of = block_of_label[labels]
    order = np.argsort(block_of, kind="stable")
    cut = np.searchsorted(block_of[order], np.arange(nblocks + 1))
    i, j = edges
    border = (i >= k) & (j < k)  # a separator row meeting a block vertex
    meets = np.zeros((nblocks, m), dtype=bool)
    meets[block_of[j[border]], i[border] - k] = True
    out, flops = [], 0.0
    for b in range(nblocks):
        verts, R = order[cut[b] : cut[b + 1]], np.flatnonzero(meets[b])
        n, r = len(verts), len(R)
        flops += n**3 / 3.0 + n * n * r + n * r * r + BLOCK_CALL_COST
        out.append((verts, R))
    return out, flops


def plan(rows: np.ndarray, cols: np.ndarray, q: int) -> Plan | None:
    """The bordered order for a symmetric q x q pattern with entries (rows, cols) (either triangle or
    both), or None when CHOLMOD is missing, the pattern is over MAX_DENSITY full, or no separator
    gives BORDERED_GAIN over dense."""
    if not cholmod_available():
        return None
    from sksparse import cholmod

    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    off = rows != cols
    pattern = sp.coo_matrix((np.ones(int(off.sum())), (rows[off], cols[off])), shape=(q, q)).tocsr()
    pattern = sp.csr_matrix(pattern + pattern.T)
    pattern.data[:] = 1.0
    if pattern.nnz + q > MAX_DENSITY * q * q:  # crossed factors: no small separator to find
        return None
    diag_dominant = sp.csc_matrix(pattern + sp.diags(np.asarray(pattern.sum(axis=1)).ravel() + 1.0))
    try:
        analysis = cholmod.analyze(sp.tril(diag_dominant, format="csc"), ordering_method="metis")
    except cholmod.CholmodError:  # CHOLMOD built without METIS: its own nested dissection
        analysis = cholmod.analyze(sp.tril(diag_dominant, format="csc"), ordering_method="nesdis")
    perm0 = np.asarray(analysis.P(), dtype=np.int64)
    adjacency = sp.csr_matrix(pattern[perm0][:, perm0])
    lower = sp.tril(adjacency, k=-1, format="coo")
    edges = (lower.row.astype(np.int64), lower.col.astype(np.int64))
    dense = q**3 / 3.0
    candidates: dict[int, tuple[float, list[tuple[np.ndarray, np.ndarray]]]] = {}

    def consider(m: int) -> None:
        k = q - m
        if m < 1 or k < 1 or m in candidates:
            return
        _, labels = connected_components(adjacency[:k, :k], directed=False)
        blocks, flops = _blocks_of(labels, edges, k, m)
        candidates[m] = (flops + m**3 / 3.0, blocks)

    for frac in SEPARATOR_FRACTIONS:
        consider(round(frac * q))
    if not candidates:
        return None
    coarse = min(candidates, key=lambda m: candidates[m][0])
    step = max(1, q // FINE_STEPS)
    for m in range(coarse - 3 * step, coarse + 3 * step + 1, step):
        consider(m)
    m = min(candidates, key=lambda m: candidates[m][0])
    flops, groups = candidates[m]
    if flops * BORDERED_GAIN >= dense:
        return None
    k = q - m
    perm = np.concatenate([perm0[v] for v, _ in groups] + [perm0[k:]])
    out, at, start = [], 0, 0
    for verts, R in groups:
        n = len(verts)
        out.append(Block(start=start, n=n, a=at, b=at + n * n, R=R))
        at += n * n + n * len(R)
        start += n
    return Plan(q=q, perm=perm, blocks=tuple(out), m=m, c=at, size=at + m * m, flops=flops)


def _sub_lower_at(C: np.ndarray, R: np.ndarray, U: np.ndarray) -> None:
    """C[R[a], R[b]] -= U[a, b] for a >= b (C and U column-major, R ascending)."""
    r = len(R)
    for b in range(r):
        cb = R[b]
        for a in range(b, r):
            C[R[a], cb] -= U[a, b]


_sub_kernel = lazy_kernel(_sub_lower_at)


def _subtract_lower(C: np.ndarray, R: np.ndarray, U: np.ndarray) -> None:
    """C[R, R] -= U on the lower triangle (numba when available)."""
    kernel = _sub_kernel()
    if kernel is not None:
        kernel(C, R, U)
        return
    low = np.tril_indices(len(R))
    C[R[low[0]], R[low[1]]] -= U[low]


class BorderedSchur:
    """S = P' L L' P in the bordered order of `plan` (module docstring), from the flat buffer `values`
    (S's lower triangle in that order, as `Plan.positions` lays it out; overwritten by L)."""

    def __init__(self, plan: Plan, values: np.ndarray) -> None:
        self.plan = plan
        m = plan.m
        C = values[plan.c : plan.c + m * m].reshape((m, m), order="F")
        self.L: list[np.ndarray] = []
        self.W: list[np.ndarray] = []
        logdet = 0.0
        for blk in plan.blocks:
            n, r = blk.n, len(blk.R)
            A = values[blk.a : blk.a + n * n].reshape((n, n), order="F")
            L = cholesky_lower(A, "the PLS Schur complement")
            logdet += 2.0 * float(np.log(L.diagonal()).sum())
            W = values[blk.b : blk.b + r * n].reshape((r, n), order="F")
            if r:
                W = _dtrsm(1.0, L, W, side=1, lower=1, trans_a=1, overwrite_b=1)  # B L^-T
                _subtract_lower(C, blk.R, _dsyrk(1.0, W, lower=1))
            self.L.append(L)
            self.W.append(W)
        self.LC = cholesky_lower(C, "the PLS Schur complement")
        self.logdet = logdet + 2.0 * float(np.log(self.LC.diagonal()).sum())

    def _rows(self, b: np.ndarray) -> np.ndarray:
        """(P b)' as a fresh column-major array, one row per right-hand side: each block's rows of P b
        are then a contiguous column range, solved in place from the right."""
        bp = np.asarray(b, dtype=float)[self.plan.perm]
        return bp.reshape(len(bp), -1).T

    def whiten(self, b: np.ndarray) -> np.ndarray:
        """L^-1 P b (rows in the bordered order): b' S^-1 b = |L^-1 P b|^2.  Solved transposed,
        c' = (P b)' L^-T, block by block in place: c_b' = b_b' L_b^-T, then the separator's
        (b_sep' - sum_b c_b' W_b') L_C^-T."""
        plan = self.plan
        k = plan.q - plan.m
        ct = self._rows(b)  # (R, q), column-major
        rest = ct[:, k:]
        for blk, L, W in zip(plan.blocks, self.L, self.W, strict=True):
            cols = slice(blk.start, blk.start + blk.n)
            ct[:, cols] = cb = _dtrsm(1.0, L, ct[:, cols], side=1, lower=1, trans_a=1, overwrite_b=1)
            if len(blk.R):
                rest[:, blk.R] -= cb @ W.T
        ct[:, k:] = _dtrsm(1.0, self.LC, rest, side=1, lower=1, trans_a=1, overwrite_b=1)
        return ct.T.reshape(np.shape(b))

    def solve(self, b: np.ndarray) -> np.ndarray:
        """S^-1 b = P' L^-T L^-1 P b, transposed as in `whiten`: x_sep' = c_sep' L_C^-1, then
        x_b' = (c_b' - x_sep'[R_b] W_b) L_b^-1."""
        plan = self.plan
        k = plan.q - plan.m
        xt = np.asfortranarray(self.whiten(b).reshape(plan.q, -1).T)  # (R, q)
        xt[:, k:] = sep = _dtrsm(1.0, self.LC, xt[:, k:], side=1, lower=1, overwrite_b=1)
        for blk, L, W in zip(plan.blocks, self.L, self.W, strict=True):
            cols = slice(blk.start, blk.start + blk.n)
            if len(blk.R):
                xt[:, cols] -= sep[:, blk.R] @ W
            xt[:, cols] = _dtrsm(1.0, L, xt[:, cols], side=1, lower=1, overwrite_b=1)
        out = np.empty((plan.q, xt.shape[0]))
        out[plan.perm] = xt.T
        return out.reshape(np.shape(b))

    def quad(self, b: np.ndarray) -> np.ndarray:
        """b' S^-1 b as (L^-1 P b)'(L^-1 P b), exactly symmetric."""
        c = self.whiten(b)
        return c.T @ c

    def inverse_diagonal_blocks(self, starts: np.ndarray, size: int) -> np.ndarray:
        """Blocks S^-1[s:s+size, s:s+size] for each s in starts: (len(starts), size, size), from the
        whitened unit columns (S^-1 = (L^-1 P)' (L^-1 P))."""
        q = self.plan.q
        out = np.empty((len(starts), size, size))
        chunk = max(1, (1 << 22) // max(q, 1) // max(size, 1))  # ~32 MB of whitened columns at a time
        for c0 in range(0, len(starts), chunk):
            s = np.asarray(starts[c0 : c0 + chunk])
            cols = (s[:, None] + np.arange(size)).ravel()
            E = np.zeros((q, len(cols)))
            E[cols, np.arange(len(cols))] = 1.0
            Wc = self.whiten(E).reshape(q, len(s), size)
            out[c0 : c0 + len(s)] = np.einsum("kla,klb->lab", Wc, Wc)
        return out
