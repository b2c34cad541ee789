"""lme4's profiled criterion as a function of theta, by penalized least squares (`mkLmerDevfun`).

For theta, with A = Lambda'Z'Z Lambda + I = L L' and RX, beta, u, pwrss from `vcheck.core.blocks`:

    ldL2  = log det A = 2 sum log diag L
    ldRX2 = 2 sum log diag RX
    REML(theta) = ldL2 + ldRX2 + (n - p) (1 + log(2 pi pwrss / (n - p)))
    ML(theta)   = ldL2 + n (1 + log(2 pi pwrss / n))

exactly as lme4's C++ `lmerResp::Laplace` (pwrss = ||y - X beta - Z Lambda u||^2 + ||u||^2); p is X's
column count after the rank drop.  sigma = sqrt(pwrss / (n - p)) for REML, sqrt(pwrss / n) for ML.

With prior weights w and an offset o (lme4's `lmerResp`: its `sqrtXwt` scales the rows of X and Z, its
wrss weights the residuals), the kernel runs on the transformed design

    X* = W^1/2 X,   y* = W^1/2 (y - o),   Zt* = Zt W^1/2,        W = diag(w)

and the criterion subtracts ldW = sum(log w) (`Laplace`: `ldL2 - d_ldW + ...`), so that it is -2 times
the (REML) log-likelihood of y ~ N(o + X beta, sigma^2 (Z Lambda Lambda' Z' + W^-1)).  Scaling every
weight by c leaves the criterion's optimum unchanged, with theta / sqrt(c) and sigma * sqrt(c).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.sparse as sp

from vcheck.core.blocks import Factor, NotPositiveDefinite, make_pls
from vcheck.core.errors import DataError
from vcheck.core.record import Design
from vcheck.core.threads import single_threaded

_LOG_2PI = math.log(2.0 * math.pi)


def criterion(f: Factor, n: int, p: int, REML: bool, ldW: float = 0.0) -> float:
    """The REML criterion or ML deviance from one PLS factorization (formulas in the module docstring);
    ldW = sum(log w) for prior weights w."""
    if REML:
        nmp = n - p
        return f.ldL2 - ldW + f.ldRX2 + nmp * (1.0 + _LOG_2PI + math.log(f.pwrss / nmp))
    return f.ldL2 - ldW + n * (1.0 + _LOG_2PI + math.log(f.pwrss / n))


def weighted_design(design: Design) -> Design:
    """The design the PLS kernel sees: rows scaled by sqrt(w), y shifted by the offset (module docstring).
    The design itself when there are no weights and no offset."""
    if design.weights is None and design.offset is None:
        return design
    y = np.asarray(design.y, dtype=float)
    if design.offset is not None:
        y = y - np.asarray(design.offset, dtype=float)
    if design.weights is None:
        return dataclasses.replace(design, y=y)
    sw = np.sqrt(np.asarray(design.weights, dtype=float))
    Zt = sp.csc_matrix(design.Zt @ sp.diags(sw))
    Zt.sort_indices()
    return dataclasses.replace(
        design, X=np.ascontiguousarray(design.X * sw[:, None]), y=y * sw, Zt=Zt, weights=None, offset=None
    )


def log_det_weights(design: Design) -> float:
    """ldW = sum(log w) (0 without weights)."""
    if design.weights is None:
        return 0.0
    return float(np.sum(np.log(np.asarray(design.weights, dtype=float))))


def sigma(f: Factor, n: int, p: int, REML: bool) -> float:
    """lme4's sigma: sqrt(pwrss / (n - p)) under REML, sqrt(pwrss / n) under ML."""
    return math.sqrt(f.pwrss / (n - p if REML else n))


class Devfun:
    """theta -> REML criterion (or ML deviance); closes over the design's precomputed cross-products.

    Attributes: `design`, `REML`, `pls` (the PLS kernel, `vcheck.core.blocks`), `lower`, `evaluations`
    (calls so far), `last` (the Factor of the most recent call), `failures` (thetas where the PLS system
    was numerically not positive definite: the criterion is +inf there, so the optimizer backs away;
    lme4 stops with "Downdated VtV is not positive definite" instead).
    """

    def __init__(self, design: Design, REML: bool = True) -> None:
        self.design = design
        self.REML = bool(REML)
        self.n, self.p = design.n, design.p
        if self.REML and self.n <= self.p:
            raise DataError(
                f"REML needs more observations (n={self.n}) than fixed effects (p={self.p}): give more "
                "rows, fewer fixed effects, or fit by maximum likelihood (REML=False, `vcheck fit --ml`)"
            )
        self.pls = make_pls(weighted_design(design))
        self.ldW = log_det_weights(design)
        self.lower = np.asarray(design.lower, dtype=float)
        self.evaluations = 0
        self.failures: list[np.ndarray] = []
        self.last: Factor | None = None

    @single_threaded
    def factor(self, theta: np.ndarray) -> Factor:
        """The full PLS solution at theta (counted as an evaluation)."""
        self.evaluations += 1
        self.last = self.pls.factor(theta)
        return self.last

    @single_threaded
    def __call__(self, theta: np.ndarray) -> float:
        try:
            f = self.factor(theta)
        except NotPositiveDefinite:
            # only reachable at extreme theta (sigma -> 0 on a near-saturated design)
            self.failures.append(np.array(theta, dtype=float))
            return math.inf
        return criterion(f, self.n, self.p, self.REML, self.ldW)


def devfun(design: Design, REML: bool = True) -> Devfun:
    """lme4's `mkLmerDevfun`: a function of theta giving the REML criterion (REML=True) or ML deviance."""
    return Devfun(design, REML=REML)
