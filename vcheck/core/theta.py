"""theta, lme4's covariance parameters: theta <-> the relative factors Lambda_k <-> per-term covariances.

For a term k with nc_k columns, its slice of theta is the lower triangle of the nc_k x nc_k relative
covariance factor Lambda_k, column by column (lme4's `Lind` order):

    theta_k = [L[0,0], L[1,0], ..., L[nc-1,0], L[1,1], ..., L[nc-1,nc-1]]
    G_k     = sigma^2 Lambda_k Lambda_k'            (the term's covariance, per level of its factor)
    Lambda_k = chol(G_k / sigma^2)                  (lower, non-negative diagonal; zero columns on a boundary)

`relative_factor` reads a term's Lambda_k from theta (the fit), `cov_from_theta` and `theta_from_cov` go
between theta and the G_k (the plug-in protocol and the comparison), `chol_psd` is the Cholesky factor of
a positive SEMI-definite matrix, as lme4's boundary fits have them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vcheck.core.errors import VcheckError
from vcheck.core.record import Design


class NotPositiveSemidefinite(VcheckError, ValueError):
    """A covariance matrix that no theta gives: not (numerically) positive semi-definite."""


def lower_from_theta(theta: np.ndarray, nc: int) -> np.ndarray:
    """The nc x nc lower-triangular relative factor from one term's slice of theta (column by column)."""
    L = np.zeros((nc, nc))
    k = 0
    for j in range(nc):
        for i in range(j, nc):
            L[i, j] = theta[k]
            k += 1
    return L


def relative_factor(design: Design, term: int, theta: np.ndarray) -> np.ndarray:
    """The term's nc x nc lower-triangular relative covariance factor, filled column-wise from theta."""
    t = design.terms[term]
    return lower_from_theta(theta[t.theta_slice[0] : t.theta_slice[1]], t.nc)


def lower_triangle_columnwise(L: np.ndarray) -> np.ndarray:
    """[L[0,0], L[1,0], ..., L[nc-1,0], L[1,1], ...]: lme4's theta order for one term."""
    nc = len(L)
    return np.array([L[i, j] for j in range(nc) for i in range(j, nc)])


def theta_from_cov(cov: Sequence[np.ndarray], sigma: float) -> np.ndarray:
    """lme4's theta for per-term covariances: lower triangle of chol(G_k / sigma^2), column by column.

    Zero variances (a boundary fit) give zero columns, as lme4's theta has them.  Raises
    NotPositiveSemidefinite when a term's matrix is not positive semi-definite (no theta gives it).
    """
    parts = [lower_triangle_columnwise(chol_psd(np.asarray(G, dtype=float) / sigma**2)) for G in cov]
    return np.concatenate(parts) if parts else np.zeros(0)


def cov_from_theta(
    theta: np.ndarray, cnms: Sequence[tuple[str, Sequence[str]]], sigma: float
) -> list[np.ndarray]:
    """Per-term G_k = sigma^2 Lambda_k Lambda_k' from lme4's theta (terms and their columns: cnms)."""
    out = []
    start = 0
    for _, names in cnms:
        nc = len(names)
        L = lower_from_theta(theta[start : start + nc * (nc + 1) // 2], nc)
        start += nc * (nc + 1) // 2
        out.append(sigma**2 * (L @ L.T))
    return out


def chol_psd(A: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Lower L with non-negative diagonal and L L' = A, for A positive SEMI-definite.

    A pivot below rtol * max(diag A) is a zero variance direction: its column of L is set to zero (the
    boundary factor lme4 reports).  Raises NotPositiveSemidefinite if A is not (numerically) positive
    semi-definite.
    """
    A = 0.5 * (A + A.T)
    nc = len(A)
    scale = max(float(np.max(np.abs(np.diag(A)))) if nc else 0.0, np.finfo(float).tiny)
    L = np.zeros_like(A)
    for j in range(nc):
        d = A[j, j] - L[j, :j] @ L[j, :j]
        rest = A[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]
        if d <= rtol * scale:
            if d < -1e-8 * scale or np.max(np.abs(rest), initial=0.0) > 1e-6 * scale:
                raise NotPositiveSemidefinite(f"covariance matrix {A.tolist()} is not positive semi-definite")
            continue  # zero variance in this direction: column j of L stays 0
        L[j, j] = math.sqrt(d)
        L[j + 1 :, j] = rest / L[j, j]
    return L
