"""The dense PLS kernel: A = Lambda'Z'Z Lambda + I formed and factored dense, for small q.

    A = Lambda' (Z'Z) Lambda + I = L L'   (LAPACK dpotrf),   H = Lambda' (Z'[X r])

Z'Z and Z'[X r] are computed once; an evaluation is a scatter of theta into Lambda, two small matrix
products, one Cholesky and one triangular solve.  With numba all of that is one compiled call
(`vcheck.core.compiled_lapack.dense_factor`: the products by the nonzeros of Lambda's columns, the
matrix products' results bit for bit, then scipy's own dpotrf and dtrtrs); without it, numpy's products
and `DenseSchur`, the same numbers.  Below `vcheck.core.blocks.DENSE_Q_MAX` random effects
numpy's per-call overhead outweighs anything structure could save.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from vcheck.core.compiled import dense_factor_kernel, dense_kernel
from vcheck.core.errors import VcheckError
from vcheck.core.pls import Factor, PLSBase
from vcheck.core.record import Design
from vcheck.core.schur import DenseSchur, NotPositiveDefinite

_EMPTY2, _EMPTY3 = np.zeros((0, 0)), np.zeros((0, 0, 0))


class _Factored(DenseSchur):
    """A DenseSchur whose L (lower, Fortran order, upper triangle 0) was computed elsewhere, by the same
    dpotrf call DenseSchur makes (`vcheck.core.compiled_lapack`)."""

    def __init__(self, L: np.ndarray) -> None:
        self.L = L
        self.logdet = 2.0 * float(np.log(L.diagonal()).sum())


class DensePLS(PLSBase):
    """PLS with A = Lambda'Z'Z Lambda + I formed and factored dense: for small q, where two small matrix
    products and one LAPACK Cholesky beat any bookkeeping.  Same interface as BlockedPLS."""

    def __init__(self, design: Design) -> None:
        self._init_common(design)
        Xr = self.Xr
        Zt = sp.csr_matrix(design.Zt)
        self.ZtZ = (Zt @ Zt.T).toarray()
        self.ZtXr = np.asarray(Zt @ Xr)
        coo = sp.csc_matrix(design.Lambdat).tocoo()  # storage order: Lind's order
        Lind = np.asarray(design.Lind, dtype=np.int64)
        if coo.nnz != len(Lind):
            raise VcheckError(f"Lambdat has {coo.nnz} stored entries but Lind has {len(Lind)}")
        # Lambda = Lambdat': entry (r, c) of Lambdat is Lambda[c, r]
        self.lam_rows, self.lam_cols, self.lam_theta = coo.col, coo.row, Lind
        self.diag = np.arange(self.q) * (self.q + 1)
        self.slot_rows, self.slot_entry = self._slots()
        # row i of A = B Lambda reads B[i, :rmax[i]] (rows of Lambda's columns 0..i)
        self.rmax = np.maximum.accumulate(self.slot_rows.max(axis=0, initial=0)) + 1

    def _slots(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, entry), each (slots, q): the s-th nonzero of Lambda's column j, in ascending row order,
        sits at row rows[s, j] and is Lambda's stored entry entry[s, j] (-1: column j has fewer)."""
        order = np.lexsort((self.lam_rows, self.lam_cols))  # by column, then row
        cols = self.lam_cols[order]
        rank = np.arange(len(order)) - np.searchsorted(cols, np.arange(self.q))[cols]
        ns = int(rank.max(initial=-1)) + 1
        rows = np.zeros((ns, self.q), dtype=np.int64)
        entry = np.full((ns, self.q), -1, dtype=np.int64)
        rows[rank, cols] = self.lam_rows[order]
        entry[rank, cols] = order
        return rows, entry

    def products(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Lambda' Z'Z Lambda, Lambda' Z'[X r]): compiled by Lambda's columns when numba is there, else
        by numpy's matrix products (the same numbers)."""
        kernel = dense_kernel()
        if kernel is None:
            Lam = np.zeros((self.q, self.q))
            Lam[self.lam_rows, self.lam_cols] = theta[self.lam_theta]
            return np.asarray(Lam.T @ self.ZtZ @ Lam), np.asarray(Lam.T @ self.ZtXr)
        vals = np.append(theta[self.lam_theta], 0.0)[self.slot_entry]  # entry -1: the appended 0
        A, H = kernel(vals, self.slot_rows, self.ZtZ, self.ZtXr)
        return A, H

    def factor(self, theta: np.ndarray) -> Factor:
        theta = np.ascontiguousarray(theta, dtype=float)
        kernel = dense_factor_kernel()
        if kernel is None:
            A, H = self.products(theta)
            A.ravel()[self.diag] += 1.0
            schur = DenseSchur(A)
            c = schur.whiten(H)
        else:
            q, p1 = self.ZtXr.shape
            L, H, c = np.empty((q, q), order="F"), np.empty((q, p1)), np.empty((q, p1), order="F")
            info = kernel(
                theta,
                self.lam_theta,
                self.slot_entry,
                self.slot_rows,
                self.rmax,
                self.ZtZ,
                self.ZtXr,
                L,
                H,
                c,
            )
            if info > 0:
                raise NotPositiveDefinite(
                    f"the PLS Schur complement is not positive definite (LAPACK dpotrf info={info})"
                )
            if info < 0:
                raise VcheckError(f"triangular solve failed (LAPACK dtrtrs info={-info})")
            schur = _Factored(L)
        f = Factor(theta, _EMPTY2, _EMPTY3, _EMPTY3, _EMPTY3, schur=schur, H2=H)
        return self._finish(f, self.XrXr - c.T @ c, schur.logdet)

    def modes(self, f: Factor) -> np.ndarray:
        """u (q,) solving A u = Lambda'Z'(y - X beta)."""
        assert f.beta is not None and f.schur is not None and f.H2 is not None
        w = np.concatenate([-(f.beta - self.b0), [1.0]])
        return np.asarray(f.schur.solve(f.H2 @ w))

    def inverse_diagonal_blocks(self, f: Factor) -> list[np.ndarray]:
        """Per term: (nlevels, nc, nc) diagonal blocks of A^-1."""
        assert f.schur is not None
        return [
            f.schur.inverse_diagonal_blocks(self.Gp[t] + np.arange(nl) * nc, nc)
            for t, (nc, nl) in enumerate(zip(self.nc, self.nlevels, strict=True))
        ]
