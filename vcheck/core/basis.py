"""Matrix-valued model-frame variables: R's `poly()`, lme4's `dummy()`, and R's argument matching.

A `Basis` is what such a call leaves in R's model frame: an (n, k) matrix whose columns R's model.matrix
names `<call><colname>` (`poly(Days, 2)1`, `poly(Days, 2)2`), or just `<call>` when k = 1.

`poly(x, degree)` (stats::poly, one variable): with xbar = mean(x), the QR (LINPACK) of the centred
Vandermonde matrix [1, x - xbar, ..., (x - xbar)^degree] = QR gives Z = Q diag(R); then
norm2 = colSums(Z^2), alpha_j = sum(x Z_j^2) / norm2_j + xbar (j = 0..degree-1), and the columns
Z_1..Z_degree divided by sqrt(norm2).  `coefs = {alpha, norm2}` (norm2 with R's leading 1) rebuild the
basis for new x by the three-term recurrence P_0 = 1, P_1 = x - alpha_0,
P_{i+1} = (x - alpha_i) P_i - (norm2_{i+1} / norm2_i) P_{i-1}, each divided by sqrt(norm2).
`raw = TRUE` gives x, x^2, ..., x^degree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vcheck.core.errors import DataError, FormulaError
from vcheck.core.linpack import dqrdc2, qr_qy
from vcheck.core.rmath import r_pow


@dataclass(frozen=True)
class Basis:
    """An (n, k) matrix variable; `colnames` as R names its columns; `coefs` what predict() needs."""

    values: np.ndarray
    colnames: tuple[str, ...]
    coefs: dict[str, Any] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> Basis:
        return Basis(self.values[rows], self.colnames, self.coefs)


def match_args(
    fn: str, args: tuple[Any, ...], names: tuple[str | None, ...], formals: list[str], text: str
) -> dict[str, Any]:
    """R's argument matching (exact names, then unique partial names, then positions) of a call's
    arguments to `formals`; unknown or repeated arguments are refused as R refuses them."""
    out: dict[str, Any] = {}
    positional = []
    for value, name in zip(args, names, strict=True):
        if name is None:
            positional.append(value)
            continue
        exact = [f for f in formals if f == name]
        partial = [f for f in formals if f.startswith(name)]
        match = exact or (partial if len(partial) == 1 else [])
        if not match:
            raise FormulaError(f"formula {text!r}: unused argument {name} in {fn}()")
        if match[0] in out:
            raise FormulaError(f"formula {text!r}: formal argument {match[0]!r} matched twice in {fn}()")
        out[match[0]] = value
    free = [f for f in formals if f not in out]
    if len(positional) > len(free):
        raise FormulaError(f"formula {text!r}: too many arguments to {fn}()")
    out.update(zip(free, positional, strict=False))
    return out


def poly(x: np.ndarray, degree: int, raw: bool = False, coefs: dict[str, Any] | None = None) -> Basis:
    """stats::poly(x, degree, raw = raw, coefs = coefs) for one numeric variable (see the module doc)."""
    if degree < 1:
        raise DataError("'degree' must be at least 1")
    names = tuple(str(j) for j in range(1, degree + 1))
    if raw:  # R allows NA here (the rows are NA)
        powers = r_pow(x[:, None], np.arange(1, degree + 1, dtype=float)[None, :])  # outer(x, 1:d, "^")
        return Basis(powers, names, {"raw": True})
    if coefs is None:
        if np.isnan(x).any():
            raise DataError("missing values are not allowed in 'poly'")
        if degree >= len(np.unique(x)):
            raise DataError("'degree' must be less than number of unique points")
        xbar = float(np.mean(x))
        xc = x - xbar
        vander = r_pow(xc[:, None], np.arange(degree + 1, dtype=float)[None, :])  # outer(x, 0:d, "^")
        qr, qraux, rank, _ = dqrdc2(vander, 1e-7)
        if rank < degree:
            raise DataError("'degree' must be less than number of unique points")
        Z = _full_qy(qr, qraux, rank, len(x), degree)
        norm2 = (Z**2).sum(axis=0)
        alpha = ((xc[:, None] * Z**2).sum(axis=0) / norm2 + xbar)[:degree]
        norm2_r = np.concatenate([[1.0], norm2])
        values = Z[:, 1:] / np.sqrt(norm2[1:])[None, :]
        return Basis(values, names, {"alpha": alpha, "norm2": norm2_r})
    alpha = np.asarray(coefs["alpha"], dtype=float)
    norm2 = np.asarray(coefs["norm2"], dtype=float)
    Z = np.ones((len(x), degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    values = Z[:, 1:] / np.sqrt(norm2[2:])[None, :]
    return Basis(values, names, {"alpha": alpha, "norm2": norm2})


def _full_qy(qr: np.ndarray, qraux: np.ndarray, rank: int, n: int, degree: int) -> np.ndarray:
    """R's `qr.qy(QR, z)` with z the (n, degree+1) matrix holding R's diagonal (zeros elsewhere)."""
    z = np.zeros((n, degree + 1))
    for j in range(degree + 1):
        z[j, j] = qr[j, j]
    return qr_qy(qr, qraux, rank, z)


def dummy(levels: tuple[str, ...], codes: np.ndarray, keep: list[str] | None) -> Basis:
    """lme4's `dummy(f, levelsToKeep)`: indicator columns of `f` for the kept levels (default: all but
    the first), named by level; NA in f gives NA rows."""
    wanted = list(levels[1:]) if keep is None else keep
    if not any(lv in levels for lv in wanted):
        raise DataError("at least some of the levels in f must also be present in levelsToKeep")
    if not all(lv in levels for lv in wanted):
        raise DataError("all of the levelsToKeep must be levels of f")
    cols = [levels.index(lv) for lv in wanted]
    values = (codes[:, None] == np.asarray(cols)[None, :]).astype(float)
    values[codes < 0] = np.nan
    return Basis(values, tuple(wanted))
