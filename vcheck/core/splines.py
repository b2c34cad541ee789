"""R's splines package: `bs()` (B-spline basis) and `ns()` (natural cubic spline basis).

Knots as splines places them: Boundary.knots = range(x) over the non-NA x; with `df` and no `knots`, the
interior knots are `quantile(x, (1:m)/(m+1))` (type 7) with m = df - ord + 1 - intercept for bs (ord =
degree + 1) and m = df - 1 - intercept for ns.  The full knot vector repeats each boundary knot ord times.
bs: B = splineDesign(knots, x, ord) (scipy's BSpline), without its first column unless `intercept`.
ns: cubic B (ord 4) and C = the basis's second derivatives at the two boundary knots (without first
columns unless `intercept`); with t(C) = QR (LINPACK), the basis is (Q' B')' without its first 2 columns,
i.e. the cubic splines whose second derivative vanishes at both boundaries.  NA in x gives NA rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.interpolate import BSpline, PPoly

from vcheck.core.basis import Basis
from vcheck.core.errors import DataError
from vcheck.core.linpack import dqrdc2, qr_qty


def _interior_knots(x: np.ndarray, m: int) -> np.ndarray:
    if m <= 0:
        return np.zeros(0)
    probs = np.linspace(0.0, 1.0, m + 2)[1:-1]
    return np.quantile(x, probs)  # R's quantile type 7


def spline_design(knots: np.ndarray, x: np.ndarray, ord: int, deriv: int = 0) -> np.ndarray:
    """splines::splineDesign(knots, x, ord, derivs): (len(x), len(knots) - ord) B-spline values."""
    k = ord - 1
    nbasis = len(knots) - ord
    out = np.empty((len(x), nbasis))
    # x at the right end of the knots: R's splineDesign evaluates the last interval of positive length
    # (its closed right end); scipy picks the last interval, empty when an interior knot equals the
    # boundary knot (tied data), and gives 0 there
    t = np.asarray(knots, dtype=float)
    at_end = x == t[-1]
    last = int(np.flatnonzero(np.diff(t) > 0)[-1]) if at_end.any() else -1
    if last == len(t) - ord - 1:  # scipy's own interval there has positive length: its value stands
        last = -1
    for j in range(nbasis):
        coef = np.zeros(nbasis)
        coef[j] = 1.0
        spline = BSpline(knots, coef, k, extrapolate=True)
        piece = spline.derivative(deriv) if deriv else spline
        out[:, j] = piece(x)
        if last >= 0:
            # the polynomial of interval `last`, evaluated at its right end (from_spline takes a BSpline;
            # scipy-stubs declare only the (t, c, k) tuple)
            pp = PPoly.from_spline(piece)  # type: ignore[arg-type]
            h = t[-1] - pp.x[last]
            out[at_end, j] = np.polyval(pp.c[:, last], h)
    return out


def _setup(
    x: np.ndarray, knots: Any, boundary: Any, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    ok = ~np.isnan(x)
    xs = x[ok]
    if len(xs) == 0:
        raise DataError(f"{what}: x has no non-missing values")
    if boundary is not None and np.size(boundary) != 2:
        raise DataError(f"{what}: Boundary.knots must be two numbers, not {boundary!r}")
    bk = np.array([xs.min(), xs.max()]) if boundary is None else np.sort(np.asarray(boundary, dtype=float))
    if boundary is not None and ((xs < bk[0]) | (xs > bk[1])).any():
        raise DataError(f"{what}: x values beyond Boundary.knots (R extrapolates there; vcheck does not)")
    given = None if knots is None else np.sort(np.atleast_1d(np.asarray(knots, dtype=float)))
    if given is not None and ((given < bk[0]) | (given > bk[1])).any():
        # R: ns(x, knots = 100) fails with "NA/NaN/Inf in foreign function call"
        raise DataError(f"{what}: knots {given.tolist()} outside Boundary.knots {bk.tolist()}")
    return ok, bk, given


def _with_na(ok: np.ndarray, basis: np.ndarray) -> np.ndarray:
    full = np.full((len(ok), basis.shape[1]), np.nan)
    full[ok] = basis
    return full


def bs(
    x: np.ndarray,
    df: int | None = None,
    knots: Any = None,
    degree: int = 3,
    intercept: bool = False,
    boundary: Any = None,
) -> Basis:
    """splines::bs(x, df, knots, degree, intercept, Boundary.knots)."""
    ord_ = 1 + int(degree)
    if ord_ <= 1:
        raise DataError("'degree' must be integer >= 1")
    ok, bk, inner = _setup(x, knots, boundary, "bs()")
    if df is not None and inner is None:
        m = int(df) - ord_ + (1 - int(intercept))
        inner = _interior_knots(x[ok], max(m, 0))
    inner = np.zeros(0) if inner is None else inner
    aknots = np.sort(np.concatenate([np.repeat(bk, ord_), inner]))
    basis = spline_design(aknots, x[ok], ord_)
    if not intercept:
        basis = basis[:, 1:]
    names = tuple(str(j) for j in range(1, basis.shape[1] + 1))
    coefs = {"degree": int(degree), "knots": inner, "Boundary.knots": bk, "intercept": bool(intercept)}
    return Basis(_with_na(ok, basis), names, coefs)


def ns(
    x: np.ndarray, df: int | None = None, knots: Any = None, intercept: bool = False, boundary: Any = None
) -> Basis:
    """splines::ns(x, df, knots, intercept, Boundary.knots)."""
    ok, bk, inner = _setup(x, knots, boundary, "ns()")
    if df is not None and inner is None:
        m = int(df) - 1 - int(intercept)
        inner = _interior_knots(x[ok], max(m, 0))
    inner = np.zeros(0) if inner is None else inner
    aknots = np.sort(np.concatenate([np.repeat(bk, 4), inner]))
    basis = spline_design(aknots, x[ok], 4)
    try:
        const = spline_design(aknots, bk, 4, deriv=2)
    except ValueError as exc:  # scipy: repeated interior knots leave no second derivative
        raise DataError(f"ns(): vcheck does not evaluate these knots ({inner.tolist()}): {exc}") from exc
    if not intercept:
        const, basis = const[:, 1:], basis[:, 1:]
    qr, qraux, rank, _ = dqrdc2(const.T, 1e-7)
    basis = qr_qty(qr, qraux, rank, basis.T).T[:, 2:]
    names = tuple(str(j) for j in range(1, basis.shape[1] + 1))
    coefs = {"degree": 3, "knots": inner, "Boundary.knots": bk, "intercept": bool(intercept)}
    return Basis(_with_na(ok, basis), names, coefs)
