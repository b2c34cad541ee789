"""R's `mean`, `var` and `ave(x, f)` to the last bit (R's C code accumulates in long double).

mean (summary.c):   s = sum(x) / n in long double, then s += sum(x - s) / n, returned as a double.
var (cov.c):        m = the same two-pass mean, rounded to double; var = sum((x - m)^2) / (n - 1),
                    the sum in long double.
Sums run left to right, as R's loops do (numpy's own sums are pairwise, which rounds differently).
lme4's mkLmerDevfun starts scalar intercept models at sqrt(var(ave(y, f)) / (var(y) - sum var(ave))),
so these give lme4's start bit for bit.
"""

from __future__ import annotations

import numpy as np

LD = np.longdouble


def _seqsum(x: np.ndarray) -> np.longdouble:
    """Left-to-right sum in long double (np.cumsum accumulates sequentially)."""
    return np.cumsum(x, dtype=LD)[-1] if len(x) else LD(0)


def r_mean(x: np.ndarray) -> float:
    """R's mean.default(x) for a double vector without NA."""
    xl = np.asarray(x, dtype=float).astype(LD)
    n = len(xl)
    s = _seqsum(xl) / n
    if np.isfinite(s):
        s = s + _seqsum(xl - s) / n
    return float(s)


def r_var(x: np.ndarray) -> float:
    """R's var(x) for a double vector without NA (n - 1 denominator)."""
    xl = np.asarray(x, dtype=float).astype(LD)
    n = len(xl)
    if n < 2:
        return float("nan")
    m = _seqsum(xl) / n
    if np.isfinite(m):
        m = m + _seqsum(xl - m) / n
    md = LD(float(m))
    d = xl - md
    return float(_seqsum(d * d) / (n - 1))


def r_ave(x: np.ndarray, codes: np.ndarray, nlevels: int) -> np.ndarray:
    """R's ave(x, f) with FUN = mean: each row gets R's mean of its level's values."""
    x = np.asarray(x, dtype=float)
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(nlevels + 1))
    means = np.array(
        [
            r_mean(x[order[bounds[k] : bounds[k + 1]]]) if bounds[k + 1] > bounds[k] else np.nan
            for k in range(nlevels)
        ]
    )
    return means[codes]
