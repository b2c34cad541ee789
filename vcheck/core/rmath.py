"""R's arithmetic to the last bit: `x ^ y` as R_POW does it, and the C library's elementary functions.

R computes `x ^ 2` as x * x and other powers with the C library's pow(); exp, log, sin, ... are the C
library's too.  numpy's vectorised versions of these can differ from the C library in the last bit, so
finite values go through Python's `math` (the same C library) and the special cases (NaN, Inf, outside
the domain) through numpy, which gives R's NaN / Inf there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def libm(
    scalar: Callable[[float], float], vector: Callable[[np.ndarray], np.ndarray]
) -> Callable[..., np.ndarray]:
    """R calls the C library's exp/log/sin...; numpy's vectorised versions can differ in the last bit.
    Finite values go through Python's math (the same C library), the rest (NaN, Inf, out of the domain)
    through numpy, which gives R's NaN / Inf there."""

    def apply(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = np.array(vector(x), dtype=float)
        ok = np.isfinite(x) & np.isfinite(out)
        out[ok] = [scalar(v) for v in np.asarray(x)[ok].tolist()]
        return out

    return apply


def r_pow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R's `x ^ y` (arithmetic.c R_POW / R_pow): x * x when y == 2, 1 when x == 1 or y == 0, else pow()."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    with np.errstate(all="ignore"):
        out = np.array(np.power(x, y), dtype=float)  # NaN / Inf cases as R gives them
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(out)
    out[ok] = [math.pow(a, b) for a, b in zip(x[ok].tolist(), y[ok].tolist(), strict=True)]
    square = y == 2.0
    out[square] = x[square] * x[square]
    return np.where((x == 1.0) | (y == 0.0), 1.0, out)
