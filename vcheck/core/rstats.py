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


#: levels with more rows than this are summed one at a time; the rest position by position
LONG_GROUP = 64


def _group_sums(xs: np.ndarray, starts: np.ndarray, counts: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Per group g (rows starts[g] .. starts[g]+counts[g]-1 of xs): sum(xs - shift[g]) in long double,
    left to right from 0 as R's loop adds.  Short groups advance together, one row position per step
    (adding position j to every group that has one keeps each group's order); long ones by cumsum."""
    out = np.zeros(len(starts), dtype=LD)
    long = counts > LONG_GROUP
    for g in np.flatnonzero(long):
        out[g] = _seqsum(xs[starts[g] : starts[g] + counts[g]] - shift[g])
    short = np.flatnonzero(~long & (counts > 0))
    short = short[np.argsort(-counts[short], kind="stable")]  # the groups with a row j are a prefix
    lens = counts[short]
    for j in range(int(lens.max(initial=0))):
        live = short[: int(np.searchsorted(-lens, -j, side="left"))]
        out[live] += xs[starts[live] + j] - shift[live]
    return out


def r_ave(x: np.ndarray, codes: np.ndarray, nlevels: int) -> np.ndarray:
    """R's ave(x, f) with FUN = mean: each row gets R's mean (`r_mean`) of its level's values."""
    x = np.asarray(x, dtype=float)
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    xs = x[order].astype(LD)
    counts = np.bincount(codes, minlength=nlevels)[:nlevels]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    zero = np.zeros(nlevels, dtype=LD)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = _group_sums(xs, starts, counts, zero) / counts
        finite = np.isfinite(s)
        s[finite] = (
            s[finite] + _group_sums(xs, starts, counts, np.where(finite, s, 0))[finite] / counts[finite]
        )
    means = s.astype(float)
    means[counts == 0] = np.nan
    return means[codes]
