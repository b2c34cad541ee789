"""What every PLS kernel shares: the per-theta `Factor`, the shifted response, and R from M.

For the relative covariance factor Lambda(theta) (q x q, lme4's `t(Lambdat)`) the PLS system is

    A(theta) = Lambda' Z'Z Lambda + I_q = L L'                    (q x q, symmetric positive definite)
    H(theta) = Lambda' Z' [X r]                                   (q x (p+1))
    M(theta) = [X r]'[X r] - H' A^-1 H = R'R                      ((p+1) x (p+1), R upper triangular)

with `r = y - X b0` the OLS residual (b0 = least squares on X alone).  Shifting y by X b0 changes beta by
b0 and nothing else, but makes `r'r` the residual sum of squares instead of `y'y`, so the difference
that gives pwrss loses no digits when y has a large mean.  From R:

    RX = R[:p, :p],   beta = b0 + RX^-1 R[:p, p],   pwrss = R[p, p]^2,
    ldL2 = log det A,  ldRX2 = 2 sum log diag RX.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vcheck.core.record import Design
from vcheck.core.schur import NotPositiveDefinite, Schur, _dpotrf, _dtrtrs

#: pwrss is recomputed from the residual when the Gram form leaves less than this fraction of r'r
PWRSS_RECHECK = 1e-3


@dataclass
class Factor:
    """The PLS solution at one theta, and the pieces the conditional modes and variances reuse.

    Block 1 arrays are stored (k1, k1, nl1) ("one vector per entry"): L11 and L11inv (lower), W (the
    blocks of Lambda_1 A11^-1 Lambda_1'); C1 = L11^-1 Lambda_1' Z1'[X r] is (k1, nl1, p+1).  Block 2:
    Lt2 (values on `BlockedPLS.Lt2`), the factored S and H2 = Lambda_2'(Z2'[X r] - Z2'Z1 W Z1'[X r]).
    DensePLS leaves block 1 and Lt2 empty: schur factors all of A, and H2 = H.
    """

    theta: np.ndarray
    lam1: np.ndarray  # (k1, k1) Lambda block of block 1, the same for every level
    L11: np.ndarray
    L11inv: np.ndarray
    C1: np.ndarray
    ldL2: float = 0.0
    ldRX2: float = 0.0
    pwrss: float = 0.0
    beta: np.ndarray | None = None  # (p,)
    RX: np.ndarray | None = None  # (p, p) upper: RX'RX = X'X - X'Z Lambda A^-1 Lambda'Z'X
    Lt2: np.ndarray | None = None
    schur: Schur | None = None
    H2: np.ndarray | None = None


def _shifted_response(design: Design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b0, [X r], [X r]'[X r]) with r = y - X b0 the OLS residual (module docstring: why)."""
    X = np.asarray(design.X, dtype=float)
    y = np.asarray(design.y, dtype=float)
    b0 = np.linalg.lstsq(X, y, rcond=None)[0] if X.shape[1] else np.zeros(0)
    Xr = np.column_stack([X, y - X @ b0])
    return b0, Xr, Xr.T @ Xr


class PLSBase:
    """What both kernels share: the shifted response, the pieces of R, and an accurate pwrss.

    pwrss from the Gram form, R[p, p]^2 = r'r - (what the fit explains), loses digits when the random
    effects explain nearly all of r'r (sigma -> 0 with large theta, e.g. a near-saturated design); there
    (pwrss < PWRSS_RECHECK r'r) it is recomputed from the residual, ||y - X beta - Z Lambda u||^2 +
    ||u||^2, as lme4 computes it.  (beta itself is then only as good as lme4's: RX'RX is the same small
    difference; refining beta from X'e gains nothing, as e carries absolute rounding of eps |y|.)
    """

    n: int
    p: int
    q: int

    def _init_common(self, design: Design) -> None:
        self.design = design
        self.n, self.p, self.q = design.n, design.p, design.q
        self.nc = [t.nc for t in design.terms]
        self.nlevels = [t.nlevels for t in design.terms]
        self.Gp = np.asarray(design.Gp, dtype=np.int64)
        self.b0, self.Xr, self.XrXr = _shifted_response(design)
        self.Zt = sp.csc_matrix(design.Zt)

    def modes(self, f: Factor) -> np.ndarray:
        raise NotImplementedError

    def _finish(self, f: Factor, M: np.ndarray, ldL2: float) -> Factor:
        """From M = [X r]'[X r] - H'A^-1 H = R'R: RX, beta = b0 + RX^-1 R[:p, p], pwrss = R[p, p]^2,
        ldRX2 = 2 sum log diag RX."""
        p = self.p
        R, info = _dpotrf(M, lower=0, clean=1)
        if info != 0:
            raise NotPositiveDefinite(
                f"X'X - RZX'RZX is not positive definite at theta={f.theta} (LAPACK info={info})"
            )
        f.RX = RX = R[:p, :p]
        rb, info = _dtrtrs(RX, R[:p, p], lower=0)
        f.beta = self.b0 + rb
        f.ldL2 = ldL2
        f.ldRX2 = 2.0 * float(np.log(RX.diagonal()).sum())
        f.pwrss = float(R[p, p] ** 2)
        if f.pwrss < PWRSS_RECHECK * self.XrXr[p, p]:
            f.pwrss = self.residual_pwrss(f)
        return f

    def residual_pwrss(self, f: Factor) -> float:
        """pwrss = ||e||^2 + ||u||^2 with u solving A u = Lambda'Z'(y - X beta) and
        e = y - X beta - Z Lambda u, from the data (O(nnz(Zt)))."""
        assert f.beta is not None
        u = self.modes(f)
        b = self.Lambdat_T(f.theta) @ u
        e = self.Xr[:, self.p] - self.Xr[:, : self.p] @ (f.beta - self.b0) - self.Zt.T @ b
        return float(e @ e + u @ u)

    def Lambdat_T(self, theta: np.ndarray) -> sp.csr_matrix:
        """Lambda = Lambdat' at theta."""
        return sp.csr_matrix(self.design.Lambdat_at(theta).T)
