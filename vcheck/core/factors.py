"""R factors in numpy: integer codes into levels, with R's level order.

`factor(x)` sorts the distinct values: numbers numerically (labels as `as.character` prints them),
logicals FALSE < TRUE, strings by this R's collation (`vcheck.core.collate`).  A pandas Categorical keeps its
categories' order (as R keeps a factor's levels); an ordered Categorical is an R ordered factor.
lme4 builds `a:b` grouping factors with its `%i%`: labels "a:b" of the observed pairs, ordered by
(a's level, b's level).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vcheck.core.collate import r_sorted
from vcheck.core.rexpr import format_number


@dataclass(frozen=True)
class Factor:
    """codes: (n,) int64 into `levels` (-1 = NA); levels in R's order."""

    codes: np.ndarray
    levels: tuple[str, ...]
    ordered: bool = False

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    def take(self, rows: np.ndarray) -> Factor:
        return Factor(self.codes[rows], self.levels, self.ordered)

    def drop_unused(self) -> Factor:
        """`droplevels()`: keep only levels that occur, in their order."""
        used = np.zeros(len(self.levels), dtype=bool)
        used[self.codes[self.codes >= 0]] = True
        if used.all():
            return self
        new_code = np.cumsum(used) - 1
        codes = np.where(self.codes >= 0, new_code[np.maximum(self.codes, 0)], -1)
        return Factor(codes, tuple(lv for lv, u in zip(self.levels, used, strict=True) if u), self.ordered)

    def to_categorical(self) -> pd.Categorical:
        categories = pd.Index(list(self.levels), dtype=object)
        return pd.Categorical.from_codes(self.codes, categories=categories, ordered=self.ordered)


def label(value: object) -> str:
    """R's `as.character` of one value (a factor label)."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return format_number(float(value))
    return str(value)


def as_factor(series: pd.Series) -> Factor:
    """R's `factor(x)` (or `x` itself when already a factor), NA -> code -1.  Unused levels are kept for
    categoricals (R keeps a factor's levels; `drop_unused` is the model frame's job)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cat = series.array
        assert isinstance(cat, pd.Categorical)
        return Factor(
            np.asarray(cat.codes, dtype=np.int64),
            tuple(label(c) for c in cat.categories),
            bool(cat.ordered),
        )
    missing = series.isna().to_numpy()
    present = series[~missing]
    codes = np.full(len(series), -1, dtype=np.int64)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        values = present.to_numpy()
        uniques, inverse = np.unique(values, return_inverse=True)
        codes[~missing] = inverse
        return Factor(codes, tuple(label(u) for u in uniques))
    # strings (object or string dtype): R's factor() sorts with the locale's collation
    strings = present.astype(str).to_numpy(dtype=object)
    levels = r_sorted(list(set(strings)))
    lookup = {s: i for i, s in enumerate(levels)}
    codes[~missing] = np.fromiter((lookup[s] for s in strings), dtype=np.int64, count=len(strings))
    return Factor(codes, tuple(levels))


def interaction(f1: Factor, f2: Factor) -> Factor:
    """lme4's `f1 %i% f2`: levels "l1:l2" of the observed pairs, ordered by (f1 code, f2 code)."""
    pair = f1.codes * np.int64(max(f2.nlevels, 1)) + f2.codes
    uniq, inverse = np.unique(pair, return_inverse=True)
    levels = tuple(f"{f1.levels[u // max(f2.nlevels, 1)]}:{f2.levels[u % max(f2.nlevels, 1)]}" for u in uniq)
    return Factor(inverse.astype(np.int64), levels)
