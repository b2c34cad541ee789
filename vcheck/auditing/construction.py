"""lme4's construction at any parameters, on lme4's own design: V, the GLS system and their conditioning.

From lme4's record: X (n x p), y, Zt (q x n), the Lambdat template and Lind, prior weights w (unit when
absent) and offset o (zero when absent).  At any (theta, sigma):

    Lambdat = template with Lambdat.data = theta[Lind],   W = Lambdat Zt  (q x n),   D = diag(w)
    V       = sigma^2 (W'W + D^-1)        (lme4's sigma^2 (Z Lambda Lambda' Z' + W^-1))
    V^-1    = sigma^-2 (D - D W' M^-1 W D),   M = I + W D W'  (q x q; Woodbury, never an n x n inverse)
    GLS     (X' V^-1 X) beta = X' V^-1 (y - o)

cond(V / sigma^2) <= (max(1/w) + ||W W'||_1) / min(1/w) =: kappa_V, the conditioning the tolerances in
`vcheck.core.tolerances` scale with.  V itself is formed densely only for n <= DENSE_V_MAX; beyond, it
is a LinearOperator (products in O(nnz(Zt))).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from vcheck.core.record import Design, LmerFit, RandomTerm

if TYPE_CHECKING:
    from vcheck.core.deviance import Devfun

#: V is formed as a dense array up to this many rows; beyond, only as an operator (never n x n dense)
DENSE_V_MAX = 2000
#: M = I + W D W' is factored densely up to this many random effects, else by a sparse LU
DENSE_M_MAX = 3000


@dataclass(frozen=True)
class Lme:
    """lme4's fit with the design pieces a comparison needs, none of them missing (weights and offset
    filled in: unit weights, zero offset)."""

    X: np.ndarray
    y: np.ndarray
    Zt: sp.csc_matrix
    Lambdat: sp.csc_matrix
    Lind: np.ndarray
    theta: np.ndarray
    sigma: float
    X_names: list[str]
    cnms: list[tuple[str, list[str]]]
    n: int
    weights: np.ndarray
    offset: np.ndarray

    @property
    def p(self) -> int:
        return int(self.X.shape[1])

    @property
    def q(self) -> int:
        return int(self.Zt.shape[0])

    @property
    def unit_weights(self) -> bool:
        return bool(np.all(self.weights == 1.0))


def require_design(b: LmerFit) -> Lme:
    """The design pieces of lme4's record; ValueError naming what is missing."""
    names = ("X", "y", "Zt", "Lambdat", "Lind", "theta", "cnms", "sigma", "X_names")
    missing = [n for n in names if getattr(b, n) is None]
    if missing:
        raise ValueError(f"the reference record ({b.source}) needs lme4's design; it has no {missing}")
    assert b.X is not None and b.y is not None and b.Zt is not None and b.Lambdat is not None
    assert b.Lind is not None and b.theta is not None and b.sigma is not None and b.cnms is not None
    n = int(b.X.shape[0])
    w = getattr(b, "weights", None)
    o = getattr(b, "offset", None)
    return Lme(
        X=np.asarray(b.X, dtype=float),
        y=np.asarray(b.y, dtype=float),
        Zt=sp.csc_matrix(b.Zt),
        Lambdat=sp.csc_matrix(b.Lambdat),
        Lind=np.asarray(b.Lind),
        theta=np.asarray(b.theta, dtype=float),
        sigma=float(b.sigma),
        X_names=list(b.X_names or []),
        cnms=[(g, list(names)) for g, names in b.cnms],
        n=n,
        weights=np.ones(n) if w is None else np.asarray(w, dtype=float).reshape(n),
        offset=np.zeros(n) if o is None else np.asarray(o, dtype=float).reshape(n),
    )


def lambdat_at(lme: Lme, theta: np.ndarray) -> sp.csc_matrix:
    """lme4's Lambdat template with its non-zeros set from theta: Lambdat.data = theta[Lind]."""
    L = sp.csc_matrix(lme.Lambdat, copy=True)
    L.data = np.asarray(theta, dtype=float)[lme.Lind]
    return L


class AtTheta:
    """lme4's construction at (theta, sigma): V (dense or operator), V^-1 products, the GLS system."""

    def __init__(self, lme: Lme, theta: np.ndarray, sigma: float) -> None:
        self.lme, self.sigma = lme, float(sigma)
        self.Lambdat = lambdat_at(lme, theta)
        self.W = sp.csc_matrix(self.Lambdat @ lme.Zt)
        self._M: Any = None

    # --- V -------------------------------------------------------------------------------------------
    def V(self) -> Any:
        """V = sigma^2 (W'W + D^-1): a dense array for n <= DENSE_V_MAX, else a LinearOperator."""
        lme, s2 = self.lme, self.sigma**2
        if lme.n <= DENSE_V_MAX:
            Wd = self.W.toarray()
            V = Wd.T @ Wd
            V[np.diag_indices_from(V)] += 1.0 / lme.weights
            return s2 * V
        W, Wt, inv_w = self.W, sp.csr_matrix(self.W.T), 1.0 / lme.weights

        def matvec(v: np.ndarray) -> np.ndarray:
            v = np.asarray(v, dtype=float)
            scale = inv_w if v.ndim == 1 else inv_w[:, None]
            return s2 * (Wt @ (W @ v) + scale * v)

        n = lme.n
        return spla.LinearOperator((n, n), matvec=matvec, rmatvec=matvec, matmat=matvec, dtype=np.float64)

    def max_effects_per_row(self) -> int:
        """The most random effects any one row of V sums over (the roundoff count of an entry of V)."""
        return int(np.diff(self.W.tocsc().indptr).max(initial=0))

    def kappa(self) -> float:
        """An upper bound on cond(V / sigma^2) = cond(W'W + D^-1): (max 1/w + ||W W'||_1) / min 1/w."""
        WWt = sp.csc_matrix(abs(self.W @ self.W.T))
        norm1 = float(np.asarray(WWt.sum(0)).max(initial=0.0))
        inv_w = 1.0 / self.lme.weights
        return float((inv_w.max() + norm1) / inv_w.min())

    # --- V^-1 by Woodbury -----------------------------------------------------------------------------
    def _factor(self) -> Any:
        if self._M is None:
            W, w = self.W, self.lme.weights
            M = sp.csc_matrix(sp.identity(W.shape[0], format="csc") + W @ sp.diags(w) @ W.T)
            if M.shape[0] <= DENSE_M_MAX:
                self._M = ("dense", sla.cho_factor(M.toarray(), lower=True, check_finite=False))
            else:
                self._M = (
                    "sparse",
                    spla.splu(
                        M, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
                    ),
                )
        return self._M

    def _M_solve(self, B: np.ndarray) -> np.ndarray:
        how, f = self._factor()
        if how == "dense":
            return np.asarray(sla.cho_solve(f, B, check_finite=False))
        return np.asarray(f.solve(B))

    def Vinv(self, B: np.ndarray) -> np.ndarray:
        """V^-1 B = sigma^-2 (D B - D W' M^-1 W D B) for an n-vector or n x k matrix B."""
        B = np.asarray(B, dtype=float)
        w = self.lme.weights if B.ndim == 1 else self.lme.weights[:, None]
        DB = w * B
        if self.W.shape[0] == 0:
            return DB / self.sigma**2
        WDB = np.asarray(self.W @ DB)
        return (DB - w * np.asarray(self.W.T @ self._M_solve(WDB))) / self.sigma**2

    def gls(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, c, beta): A = X'V^-1 X, c = X'V^-1 (y - o), beta = A^-1 c (A symmetrized)."""
        lme = self.lme
        A = lme.X.T @ self.Vinv(lme.X)
        A = (A + A.T) / 2.0
        c = lme.X.T @ self.Vinv(lme.y - lme.offset)
        beta = np.linalg.solve(A, c) if A.size else np.zeros(0)
        return A, c, beta

    def V_cost_bound(self, max_abs_dV: float) -> float:
        """Upper bound (first order, deviance units) on how far a V off by dV, |dV_ij| <= max_abs_dV, moves
        lme4's criterion at these parameters: d = log det V + r'V^-1 r changes by
        tr(V^-1 dV) - r'V^-1 dV V^-1 r, so |dd| <= ||V^-1|| ||dV|| (n + ||V^-1|| ||r||^2) with
        ||V^-1||_2 <= max(w) / sigma^2 (V >= sigma^2 W^-1), ||dV||_2 <= n max|dV_ij| and
        r = y - o - X beta_GLS.
        Infinite beyond DENSE_V_MAX rows (V was compared through probes there: no entrywise bound)."""
        lme = self.lme
        n = lme.n
        if n > DENSE_V_MAX or not math.isfinite(max_abs_dV) or self.sigma <= 0:
            return math.inf
        _, _, beta = self.gls()
        r = lme.y - lme.offset - lme.X @ beta
        inv_norm = float(np.max(lme.weights)) / self.sigma**2
        return inv_norm * n * max_abs_dV * (n + inv_norm * float(r @ r))

    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares at theta: r' (W'W + D^-1)^-1 r, r = y - o - X beta_GLS
        (the minimum over beta and u of ||D^1/2 (y - o - X beta - Z Lambda u)||^2 + ||u||^2)."""
        lme = self.lme
        _, _, beta = self.gls()
        r = lme.y - lme.offset - lme.X @ beta
        return float(self.sigma**2 * (r @ self.Vinv(r)))

    def log_det_M(self) -> float:
        """ldL2 = log det (I + W D W') (lme4's L L' = Lambda' Z' D Z Lambda + I)."""
        if self.W.shape[0] == 0:
            return 0.0
        how, f = self._factor()
        if how == "dense":
            return float(2.0 * np.sum(np.log(np.diag(f[0]))))
        return float(np.sum(np.log(np.abs(f.U.diagonal()))))

    def criterion(self, REML: bool) -> float:
        """lme4's profiled criterion at theta (lmerResp::Laplace), prior weights and offset included:
        REML = ldL2 - ldW + ldRX2 + (n - p)(1 + log(2 pi pwrss / (n - p))),
        ML = ldL2 - ldW + n (1 + log(2 pi pwrss / n)), ldW = sum log w, ldRX2 = log det(sigma^2 X'V^-1X)."""
        lme = self.lme
        nu = lme.n - lme.p if REML else lme.n
        if nu <= 0:
            return float("nan")
        pwrss = self.pwrss()
        if not pwrss > 0:
            return float("-inf")
        d = (
            self.log_det_M()
            - float(np.sum(np.log(lme.weights)))
            + nu * (1.0 + np.log(2.0 * np.pi * pwrss / nu))
        )
        if REML and lme.p:
            A, _, _ = self.gls()
            sign, logdet = np.linalg.slogdet(self.sigma**2 * A)
            d += float(logdet) if sign > 0 else float("inf")
        return float(d)

    def profiled_sigma(self, REML: bool) -> float:
        """sqrt(pwrss / (n - p)) (REML) or sqrt(pwrss / n) (ML): the sigma that minimizes the criterion."""
        lme = self.lme
        nu = lme.n - lme.p if REML else lme.n
        return float(np.sqrt(self.pwrss() / nu)) if nu > 0 else float("nan")

    def backward_error(self, beta: np.ndarray, A: np.ndarray, c: np.ndarray) -> float:
        """Normwise backward error of beta in the GLS normal equations A beta = c:
        ||X'V^-1 (y - o - X beta)|| / (||A|| ||beta|| + ||c||), the residual formed from the data residual
        (no cancellation between A beta and c)."""
        lme = self.lme
        if not np.all(np.isfinite(beta)):
            return float("inf")
        r = lme.X.T @ self.Vinv(lme.y - lme.offset - lme.X @ beta)
        scale = float(np.linalg.norm(A, 2) * np.linalg.norm(beta) + np.linalg.norm(c)) if A.size else 0.0
        return float(np.linalg.norm(r) / scale) if scale > 0 else 0.0


def reference_design(b: LmerFit) -> Design:
    """lme4's design as a vcheck `Design`, read off lme4's fit record (X, y, Zt, Lambdat, Lind, cnms, and
    the prior weights and offset where the record and `Design` carry them)."""
    lme = require_design(b)
    terms = []
    start = 0
    flist = b.flist or {}
    for group, names in lme.cnms:
        k = len(names) * (len(names) + 1) // 2
        levels = tuple(str(c) for c in flist[group].categories) if group in flist else ()
        terms.append(
            RandomTerm(group=group, cnms=tuple(names), levels=levels, theta_slice=(start, start + k))
        )
        start += k
    fields = {f.name for f in dataclasses.fields(Design)}
    extra: dict[str, Any] = {}
    if "weights" in fields and getattr(b, "weights", None) is not None:
        extra["weights"] = lme.weights
    if "offset" in fields and getattr(b, "offset", None) is not None:
        extra["offset"] = lme.offset
    return Design(
        formula=b.formula,
        X=lme.X,
        X_names=lme.X_names,
        y=lme.y,
        Zt=lme.Zt,
        Lambdat=lme.Lambdat,
        Lind=lme.Lind,
        theta=lme.theta,
        lower=np.asarray(b.lower) if b.lower is not None else np.zeros(len(lme.theta)),
        terms=terms,
        flist=dict(flist),
        row_index=b.row_index if b.row_index is not None else pd.RangeIndex(lme.n),
        **extra,
    )


class OnLmeDesign:
    """vcheck.core.deviance on lme4's own design (X, y, Zt, Lambdat, Lind, weights, offset of lme4's
    record), no R needed: lme4's criterion d(theta) and the profiled sigma(theta) = sqrt(pwrss / (n - p))
    (REML) or sqrt(pwrss / n) (ML), the sigma that minimizes the criterion at that theta."""

    def __init__(self, b: LmerFit) -> None:
        self.b = b
        self.design = reference_design(b)
        self._devfuns: dict[bool, Devfun] = {}

    def devfun(self, REML: bool) -> Devfun:
        """lme4's mkLmerDevfun for this design and REML flag (`vcheck.core.deviance.Devfun`), made once."""
        from vcheck.core import deviance

        if REML not in self._devfuns:
            self._devfuns[REML] = deviance.devfun(self.design, REML=REML)
        return self._devfuns[REML]

    @property
    def plain(self) -> bool:
        """Unit weights and no offset: vcheck.core.deviance's model exactly."""
        return self.b.weights is None and self.b.offset is None

    def criterion(self, theta: np.ndarray, REML: bool) -> float:
        """lme4's criterion at theta: vcheck.core.deviance, or, with prior weights or an offset,
        the same formula through `AtTheta` (Woodbury's identity on lme4's design)."""
        if not self.plain:
            return AtTheta(require_design(self.b), np.asarray(theta, dtype=float), 1.0).criterion(REML)
        return float(self.devfun(REML)(np.asarray(theta, dtype=float)))

    def sigma(self, theta: np.ndarray, REML: bool) -> float:
        """Profiled sigma at theta, sqrt(pwrss / nu) through `AtTheta` (prior weights and offset
        included)."""
        return AtTheta(require_design(self.b), np.asarray(theta, dtype=float), 1.0).profiled_sigma(REML)
