"""Factored symmetric positive definite matrices of the PLS system: dense (LAPACK) and sparse.

A factor holds S = L L' (or a permuted sparse equivalent) and gives what penalized least squares needs:

    logdet = log det S,   solve(b) = S^-1 b,   quad(b) = b' S^-1 b,
    inverse_diagonal_blocks(starts, size) = the blocks S^-1[s:s+size, s:s+size].

`DenseSchur` calls LAPACK's dpotrf/dtrtrs directly (scipy.linalg.lapack, no checks or copies beyond
them).  `SparseSchur` factors a sparse S with a fill-reducing order: CHOLMOD's supernodal Cholesky
(scikit-sparse) when it is installed, else SuperLU in symmetric mode without pivoting (scipy alone).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from vcheck.core.compiled import lazy_kernel
from vcheck.core.errors import VcheckError


class NotPositiveDefinite(VcheckError):
    """A factorization of the PLS system failed numerically (e.g. theta so large that X'X - RZX'RZX is
    a difference of nearly equal matrices, lme4's "Downdated VtV is not positive definite")."""


_dpotrf = sla.lapack.dpotrf
_dtrtrs = sla.lapack.dtrtrs


def cholesky_lower(S: np.ndarray, what: str) -> np.ndarray:
    """Lower Cholesky factor by LAPACK dpotrf, reading only S's lower triangle (S may be overwritten)."""
    L, info = _dpotrf(S, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise NotPositiveDefinite(f"{what} is not positive definite (LAPACK dpotrf info={info})")
    return L


class Schur(Protocol):
    """A factored Schur complement S (q2 x q2, SPD)."""

    logdet: float

    def solve(self, b: np.ndarray) -> np.ndarray: ...

    def quad(self, b: np.ndarray) -> np.ndarray: ...

    def inverse_diagonal_blocks(self, starts: np.ndarray, size: int) -> np.ndarray: ...


class DenseSchur:
    """S = L L' (LAPACK); log det S = 2 sum log diag L.  Only S's lower triangle is read."""

    def __init__(self, S_lower: np.ndarray) -> None:
        self.L = cholesky_lower(S_lower, "the PLS Schur complement")
        self.logdet = 2.0 * float(np.log(self.L.diagonal()).sum())

    def whiten(self, b: np.ndarray) -> np.ndarray:
        """L^-1 b."""
        x, info = _dtrtrs(self.L, b, lower=1)
        if info != 0:
            raise VcheckError(f"triangular solve failed (LAPACK dtrtrs info={info})")
        return x

    def solve(self, b: np.ndarray) -> np.ndarray:
        x, info = _dtrtrs(self.L, self.whiten(b), lower=1, trans=1)
        if info != 0:
            raise VcheckError(f"triangular solve failed (LAPACK dtrtrs info={info})")
        return x

    def quad(self, b: np.ndarray) -> np.ndarray:
        # b' S^-1 b as (L^-1 b)'(L^-1 b): one triangular solve and an exactly symmetric Gram matrix
        c = self.whiten(b)
        return c.T @ c

    def inverse_diagonal_blocks(self, starts: np.ndarray, size: int) -> np.ndarray:
        """Blocks S^-1[s:s+size, s:s+size] for each s in starts: (len(starts), size, size)."""
        Linv = self.whiten(np.eye(self.L.shape[0]))
        cols = Linv[:, starts[:, None] + np.arange(size)]  # S^-1 = Linv' Linv
        return np.einsum("kia,kib->iab", cols, cols)


def _cholmod() -> Any:
    """scikit-sparse's CHOLMOD module, or None when it is not installed."""
    try:
        from sksparse import cholmod
    except ImportError:
        return None
    return cholmod


class SparseSchur:
    """A sparse SPD S factored with a fill-reducing order: CHOLMOD (P S P' = L L') when scikit-sparse
    is installed, else SuperLU (S = Pr' L U Pc', symmetric mode, no pivoting).

    With CHOLMOD the symbolic analysis (the ordering and the supernodes) is done once, on the first S,
    and reused for every later S of the same pattern (`refactor`)."""

    def __init__(self, S: sp.csc_matrix, analysis: Any = None) -> None:
        S = sp.csc_matrix(S)
        cholmod = _cholmod()
        self.chol: Any = None
        self.lu: Any = None
        self.analysis: Any = None
        if cholmod is not None:
            try:
                if analysis is None:
                    analysis = cholmod.analyze(S, mode="auto", ordering_method="amd")
                self.chol = analysis.cholesky(S)
            except cholmod.CholmodNotPositiveDefiniteError as exc:
                raise NotPositiveDefinite(
                    f"the PLS Schur complement is not positive definite ({exc})"
                ) from exc
            self.analysis = analysis
            self.logdet = float(self.chol.logdet())
            return
        try:
            self.lu = spla.splu(
                S, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
            )
        except RuntimeError as exc:
            raise VcheckError(f"the PLS Schur complement is singular: {exc}") from exc
        d = self.lu.U.diagonal()
        if np.any(d <= 0):
            raise NotPositiveDefinite("the PLS Schur complement is not positive definite")
        self.logdet = float(np.sum(np.log(d)))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.lu.shape) if self.lu is not None else (len(self.chol.P()), len(self.chol.P()))

    def solve(self, b: np.ndarray) -> np.ndarray:
        b = np.asarray(b, dtype=float)
        if self.chol is not None:
            return np.asarray(self.chol(b))
        return np.asarray(self.lu.solve(b))

    def quad(self, b: np.ndarray) -> np.ndarray:
        Q = b.T @ self.solve(b)
        return (Q + Q.T) / 2.0

    def inverse_diagonal_blocks(self, starts: np.ndarray, size: int) -> np.ndarray:
        q2 = self.shape[0]
        out = np.empty((len(starts), size, size))
        chunk = max(1, 1024 // size)
        for c0 in range(0, len(starts), chunk):
            s = starts[c0 : c0 + chunk]
            m = len(s)
            rows = (s[:, None] + np.arange(size)).ravel()
            E = np.zeros((q2, m * size))
            E[rows, np.arange(m * size)] = 1.0
            Xs = self.solve(E)[rows, :].reshape(m, size, m, size)
            out[c0 : c0 + m] = Xs[np.arange(m), :, np.arange(m), :]
        return out


def cholmod_available() -> bool:
    """Whether scikit-sparse's CHOLMOD can be imported here."""
    return _cholmod() is not None


def _column_counts(indptr: np.ndarray, indices: np.ndarray, n: int) -> np.ndarray:
    """Column counts of the Cholesky factor L (diagonal included) of a symmetric pattern (CSC, both
    triangles), by the row subtrees of the elimination tree: row k of L holds every node on the tree
    paths from each i < k with A[i, k] != 0 up to k; parent[i] is the first row that reaches i."""
    parent = np.full(n, -1, dtype=np.int64)
    flag = np.full(n, -1, dtype=np.int64)
    counts = np.ones(n, dtype=np.int64)
    for k in range(n):
        flag[k] = k
        for p in range(indptr[k], indptr[k + 1]):
            i = indices[p]
            if i >= k:
                continue
            while flag[i] != k:
                if parent[i] == -1:
                    parent[i] = k
                counts[i] += 1
                flag[i] = k
                i = parent[i]
    return counts


_column_counts_kernel = lazy_kernel(_column_counts)


def sparse_cholesky_flops(pattern: sp.csc_matrix) -> float:
    """Work of a sparse Cholesky of a matrix with this symmetric pattern under CHOLMOD's fill-reducing
    order (AMD): sum over the columns of L of (column count)^2.  The counts come from the elimination
    tree of the permuted pattern (a compiled symbolic pass, numba), or else from one numeric
    factorization of a diagonally dominant matrix with that pattern (the values do not change the fill)."""
    cholmod = _cholmod()
    P = sp.csc_matrix(pattern, dtype=float, copy=True)
    P.data[:] = 1.0
    P = sp.csc_matrix(P + sp.diags(np.asarray(P.sum(axis=1)).ravel() + 1.0))
    kernel = _column_counts_kernel()
    if kernel is not None:
        perm = np.asarray(cholmod.analyze(sp.tril(P, format="csc"), ordering_method="amd").P())
        A = sp.csc_matrix(P[perm][:, perm])
        counts = kernel(A.indptr.astype(np.int64), A.indices.astype(np.int64), A.shape[0]).astype(float)
    else:
        L = cholmod.cholesky(sp.tril(P, format="csc"), mode="supernodal", ordering_method="amd").L()
        counts = np.diff(sp.csc_matrix(L).indptr).astype(float)
    return float(np.sum(counts**2))


class FixedCSC:
    """A sparse symmetric q x q matrix assembled on one fixed CSC pattern, evaluation after evaluation:
    the given entries (rows, cols) plus the unit diagonal, so S = (values on the pattern) + I keeps the
    same stored pattern (CHOLMOD's symbolic analysis is reused) even where a value is exactly 0."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, q: int) -> None:
        diag = np.arange(q, dtype=np.int64) * (q + 1)
        keys = np.asarray(cols, dtype=np.int64) * q + np.asarray(rows, dtype=np.int64)
        uniq = np.unique(np.concatenate([keys, diag]))
        self.q = q
        self.pos = np.searchsorted(uniq, keys)
        self.diag_pos = np.searchsorted(uniq, diag)
        self.indices = (uniq % q).astype(np.int32)
        self.indptr = np.zeros(q + 1, dtype=np.int32)
        np.cumsum(np.bincount(uniq // q, minlength=q), out=self.indptr[1:])
        self.nnz = len(uniq)

    def plus_identity(self, values: np.ndarray) -> sp.csc_matrix:
        """The matrix with `values` at (rows, cols) (each position once) plus the identity."""
        data = np.zeros(self.nnz)
        data[self.pos] = values
        data[self.diag_pos] += 1.0
        return sp.csc_matrix((data, self.indices, self.indptr), shape=(self.q, self.q))
