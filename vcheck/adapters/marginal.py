"""An implementation's marginal covariance V = Z G Z' + diag(r) from its own Z, G and residual variances,
sparse while that is small, else as an operator.

V's non-zeros are the pairs of rows that share a random effect: up to sum_j c_j^2 + n of them, c_j the
rows in column j of Z.  A factor with few levels over many rows makes that about n^2 / levels (10 levels
over 100,000 rows: 10^9 entries, 12 GB), so beyond `vcheck.core.covariance.MAX_V_NNZ` (the bound lme4's
own V() keeps) V is a LinearOperator, v -> Z (G (Z' v)) + r v, in O(nnz(Z) + nnz(G)) memory: the
plug-in protocol takes one, and compare measures V through probe vectors beyond 2,000 rows anyway.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from vcheck.core.covariance import MAX_V_NNZ, V_nnz_bound


def marginal_V(Z: Any, G: Any, residual: float | np.ndarray, max_nnz: int = MAX_V_NNZ) -> Any:
    """V = Z G Z' + diag(residual) (n x n; residual a scalar or n values): scipy.sparse CSC when its
    non-zeros stay within `max_nnz`, else a symmetric LinearOperator that never forms V."""
    Zc, Gc = sp.csc_matrix(Z), sp.csc_matrix(G)
    n = int(Zc.shape[0])
    r = np.broadcast_to(np.asarray(residual, dtype=float), (n,))
    if V_nnz_bound(Zc.T) <= max_nnz:
        return sp.csc_matrix(Zc @ Gc @ Zc.T + sp.diags(r, format="csc"))
    Zr, Zt = sp.csr_matrix(Zc), sp.csr_matrix(Zc.T)

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        scale = r if v.ndim == 1 else r[:, None]
        return np.asarray(Zr @ (Gc @ (Zt @ v))) + scale * v

    return spla.LinearOperator((n, n), matvec=matvec, rmatvec=matvec, matmat=matvec, dtype=np.float64)
