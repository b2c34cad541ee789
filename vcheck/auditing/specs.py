"""Case specs: what determines a drawn case (`CaseSpec`), how one is drawn (`draw_spec`, through a
two-method `Drawer`), and how its data is built from it deterministically (`build_frame`).

`vcheck.auditing.strategies` draws specs through hypothesis as well, and makes cases of them; this
module needs neither hypothesis nor `vcheck.auditing.cases`, so a case can rebuild its data from here.

What the cases cover: rows in random order; nested groups with inner labels reused across outer groups
(teacher "1" in every school); crossed factors; random slopes with a non-zero true correlation; `||`
terms; factor slopes; unbalanced groups (sizes from 1 up, covariate means that differ across groups);
boundary fits (a term with true variance 0); string, categorical (levels in a non-sorted order) and
integer group codes; a rank-deficient X.  Every case has at most 300 rows and passes lme4's default
checks: each grouping factor has >= 2 levels and fewer levels than rows, and each term has fewer random
effects (levels x columns) than rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from vcheck.core.errors import ArgumentError

T = TypeVar("T")

#: model families, simplest first (hypothesis shrinks toward the first)
FAMILIES: tuple[str, ...] = ("intercept", "slope", "uncorrelated", "factor_slope", "nested", "crossed")
#: group label types, simplest first
CODES: tuple[str, ...] = ("str", "int", "category")
#: fixed-effects parts; "x + x2" is rank deficient (x2 = 2 x - 1), lme4 drops x2
FIXED: tuple[str, ...] = ("x", "1", "x + trt", "x + x2")
MAX_ROWS = 300

# Random-effects parts per family, one per variant; `{}` formulas only (no data-dependent names).
_RANDOM: dict[str, tuple[str, ...]] = {
    "intercept": ("(1 | g)",),
    "slope": ("(x | g)", "(1 + x | g)"),
    "uncorrelated": ("(x || g)", "(1 | g) + (0 + x | g)"),
    "factor_slope": ("(f | g)", "(0 + f | g)"),
    "nested": ("(1 | s/t)", "(1 | s) + (1 | s:t)", "(x | s/t)"),
    "crossed": ("(1 | a) + (1 | b)", "(x | a) + (1 | b)"),
}
_SINGLE = ("intercept", "slope", "uncorrelated", "factor_slope")
_FACTOR_LEVELS = ("A", "B", "C")  # the factor-slope column f, already in R's (sorted) order


@dataclass(frozen=True)
class CaseSpec:
    """Everything that determines a drawn case; `build_frame` turns it into data.

    sizes: rows per cell -- per group (single factor), per (school, teacher) cell (nested), or (n,) (crossed).
    shape: () for a single factor, teachers per school (nested), (levels of a, levels of b) (crossed).
    """

    family: str
    variant: int
    fixed: str
    code: str
    shuffled: bool
    boundary: bool
    REML: bool
    sizes: tuple[int, ...]
    shape: tuple[int, ...]
    data_seed: int

    @property
    def n(self) -> int:
        return int(sum(self.sizes))

    @property
    def random_part(self) -> str:
        options = _RANDOM[self.family]
        return options[self.variant % len(options)]

    @property
    def formula(self) -> str:
        return f"y ~ {self.fixed} + {self.random_part}"

    @property
    def group_columns(self) -> tuple[str, ...]:
        if self.family == "nested":
            return ("s", "t")
        if self.family == "crossed":
            return ("a", "b")
        return ("g",)

    @property
    def features(self) -> tuple[str, ...]:
        out = [self.family, "unsorted" if self.shuffled else "sorted", f"{self.code} labels"]
        if self.boundary:
            out.append("boundary")
        if self.fixed == "x + x2":
            out.append("rank-deficient X")
        if len(set(self.sizes)) > 1:
            out.append("unbalanced")
        if self.family == "nested":
            out.append("inner labels reused")
        if "||" in self.random_part or "0 + x" in self.random_part:
            out.append("uncorrelated terms")
        if self.family in ("slope",) or (self.family in ("nested", "crossed") and "x |" in self.random_part):
            out.append("correlated slopes")
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sizes"], d["shape"] = list(self.sizes), list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseSpec:
        d = dict(d)
        d["sizes"], d["shape"] = tuple(d["sizes"]), tuple(d["shape"])
        return cls(**d)


# --- drawing a spec: one function, two back ends ------------------------------------------------------
class Drawer(Protocol):
    """The two choices `draw_spec_with` makes; hypothesis shrinks each toward `lo` / the first option."""

    def integer(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...


class _NumpyDrawer:
    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return int(self._rng.integers(lo, hi + 1))

    def choice(self, options: Sequence[T]) -> T:
        return options[int(self._rng.integers(len(options)))]


def draw_spec_with(d: Drawer, families: Sequence[str]) -> CaseSpec:
    family = d.choice(families)
    variant = d.integer(0, len(_RANDOM[family]) - 1)
    fixed = d.choice(FIXED)
    code = d.choice(CODES)
    shuffled = d.choice((False, True))
    boundary = d.choice((False, True))
    REML = d.choice((True, False))
    shape: tuple[int, ...]
    if family in _SINGLE:
        k = d.integer(2, 20)
        sizes = tuple(d.integer(1, 12) for _ in range(k))
        shape = ()
    elif family == "nested":
        schools = d.integer(2, 6)
        shape = tuple(d.integer(1, 5) for _ in range(schools))
        sizes = tuple(d.integer(1, 8) for _ in range(sum(shape)))
    else:  # crossed
        ka, kb = d.integer(2, 12), d.integer(2, 8)
        shape = (ka, kb)
        sizes = (d.integer(max(ka, kb) + 1, 200),)
    data_seed = d.integer(0, 2**32 - 1)
    spec = CaseSpec(family, variant, fixed, code, shuffled, boundary, REML, sizes, shape, data_seed)
    return _make_acceptable(spec)


def _term_sizes(spec: CaseSpec) -> list[tuple[int, int]]:
    """(levels, columns) of every random term of the spec's formula, for lme4's size checks."""
    nc_slope = 2
    if spec.family in _SINGLE:
        k = len(spec.sizes)
        return {
            "intercept": [(k, 1)],
            "slope": [(k, nc_slope)],
            "uncorrelated": [(k, 1), (k, 1)],
            "factor_slope": [(k, len(_FACTOR_LEVELS))],
        }[spec.family]
    if spec.family == "nested":
        nc = nc_slope if "x |" in spec.random_part else 1
        return [(len(spec.shape), nc), (sum(spec.shape), nc)]
    ka, kb = spec.shape
    nc_a = nc_slope if "x |" in spec.random_part else 1
    return [(ka, nc_a), (kb, 1)]


def _make_acceptable(spec: CaseSpec) -> CaseSpec:
    """Grow cells one row at a time until every term has fewer random effects than rows (lme4's check)."""
    sizes = list(spec.sizes)
    need = max(levels * nc for levels, nc in _term_sizes(spec)) + 1
    need = max(need, len(_FACTOR_LEVELS) + 1)  # f and trt need all their levels present
    i = 0
    while sum(sizes) < need:
        sizes[i % len(sizes)] += 1
        i += 1
    return replace(spec, sizes=tuple(sizes))


_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))


def level_labels(rng: np.random.Generator, k: int, code: str) -> list[Any]:
    """k distinct labels: short lowercase/digit strings ("10" < "9" as strings), or integers in 1..99."""
    if code == "int":
        return [int(v) for v in rng.choice(np.arange(1, 100), size=k, replace=False)]
    out: list[str] = []
    while len(out) < k:
        word = "".join(rng.choice(_ALPHABET, size=int(rng.integers(1, 4))))
        if word not in out:
            out.append(word)
    return out


def _column(values: list[Any], labels: list[Any], code: str, rng: np.random.Generator) -> Any:
    """Group codes as the spec's type; categoricals get their levels in a random (non-sorted) order."""
    if code == "int":
        return np.array(values, dtype=np.int64)
    if code == "category":
        order = [labels[i] for i in rng.permutation(len(labels))]
        return pd.Categorical(values, categories=order)
    return pd.Series(values, dtype="str")


def _r_level_rank(column: pd.Series) -> np.ndarray:
    """Each row's level position in R's factor order (categories; numbers numerically; C-locale strings)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return np.asarray(column.cat.codes)
    levels = sorted(set(column.tolist()))
    position = {v: i for i, v in enumerate(levels)}
    return np.array([position[v] for v in column.tolist()])


def _random_cov(rng: np.random.Generator, nc: int) -> np.ndarray:
    """A true random-effects covariance: sds in [0.4, 2], a correlation that is not zero."""
    sd = rng.uniform(0.4, 2.0, size=nc)
    if nc == 1:
        return np.diag(sd**2)
    rho = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.8) if nc == 2 else rng.uniform(-0.3, 0.7)
    R = np.full((nc, nc), rho)
    np.fill_diagonal(R, 1.0)
    return np.outer(sd, sd) * R


def build_frame(spec: CaseSpec) -> pd.DataFrame:
    """The data of a spec: y simulated from the spec's model, rows sorted by group or shuffled."""
    rng = np.random.default_rng(spec.data_seed)
    n = spec.n
    # group indices per row, in generation (sorted-by-construction) order
    groups: dict[str, np.ndarray] = {}
    if spec.family in _SINGLE:
        groups["g"] = np.repeat(np.arange(len(spec.sizes)), spec.sizes)
    elif spec.family == "nested":
        school_of_cell = np.repeat(np.arange(len(spec.shape)), spec.shape)
        teacher_of_cell = np.concatenate([np.arange(m) for m in spec.shape])
        groups["s"] = np.repeat(school_of_cell, spec.sizes)
        groups["t"] = np.repeat(teacher_of_cell, spec.sizes)
    else:
        ka, kb = spec.shape
        # every level appears at least once, the rest at random (unbalanced, crossed)
        groups["a"] = np.concatenate([np.arange(ka), rng.integers(0, ka, size=n - ka)])
        groups["b"] = rng.permutation(np.concatenate([np.arange(kb), rng.integers(0, kb, size=n - kb)]))

    first = groups[spec.group_columns[0]]
    k_first = int(first.max()) + 1
    # unequal covariate values across groups: a group-specific mean and spread
    x = rng.normal(0.0, 1.5, size=k_first)[first] + rng.uniform(0.5, 2.0, size=k_first)[first] * rng.normal(
        size=n
    )
    f_idx = np.concatenate([np.arange(len(_FACTOR_LEVELS)), rng.integers(0, len(_FACTOR_LEVELS), n - 3)])
    trt_idx = np.concatenate([[0, 1], rng.integers(0, 2, n - 2)])

    # fixed part
    y = np.full(n, rng.uniform(-3, 3))
    if "x" in spec.fixed:
        y = y + rng.uniform(-2, 2) * x
    if spec.fixed == "x + trt":
        y = y + rng.uniform(-1, 1) * trt_idx
    # random part, one draw per level of each term's factor
    for j, (factor, columns) in enumerate(_terms_for_simulation(spec, groups, x, f_idx)):
        nlev = int(factor.max()) + 1
        G = _random_cov(rng, columns.shape[1])
        if spec.boundary and j == 0:
            G = np.zeros_like(G)  # the first term has no variance at all: a boundary fit
        b = rng.multivariate_normal(np.zeros(len(G)), G, size=nlev, method="eigh")
        y = y + np.einsum("ij,ij->i", columns, b[factor])
    y = y + rng.uniform(0.3, 1.5) * rng.normal(size=n)

    frame: dict[str, Any] = {"y": y, "x": x}
    if spec.fixed == "x + x2":
        frame["x2"] = 2.0 * x - 1.0
    if spec.fixed == "x + trt":
        frame["trt"] = pd.Series(np.array(["ctl", "trt"])[trt_idx], dtype="str")
    if spec.family == "factor_slope":
        frame["f"] = pd.Series(np.array(_FACTOR_LEVELS)[f_idx], dtype="str")
    for name in spec.group_columns:
        idx = groups[name]
        # nested "t": the same labels in every school
        labels = level_labels(rng, int(idx.max()) + 1, spec.code)
        frame[name] = _column([labels[i] for i in idx], labels, spec.code, rng)
    df = pd.DataFrame(frame)

    if spec.shuffled:
        order = rng.permutation(n)
    else:  # sorted by the grouping factors in R's level order, as the seed's recipe assumes
        keys = [_r_level_rank(df[c]) for c in reversed(spec.group_columns)]
        order = np.lexsort(keys)
    return df.iloc[order].reset_index(drop=True)


def _terms_for_simulation(
    spec: CaseSpec, groups: dict[str, np.ndarray], x: np.ndarray, f_idx: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(level index per row, per-row model-matrix columns) for each true random term."""
    one = np.ones((len(x), 1))
    ix = np.column_stack([np.ones_like(x), x])
    fdum = np.eye(len(_FACTOR_LEVELS))[f_idx]
    slope = "x |" in spec.random_part
    if spec.family == "intercept":
        return [(groups["g"], one)]
    if spec.family == "slope":
        return [(groups["g"], ix)]
    if spec.family == "uncorrelated":
        return [(groups["g"], one), (groups["g"], x[:, None])]
    if spec.family == "factor_slope":
        return [(groups["g"], fdum)]
    if spec.family == "nested":
        cell = np.unique(np.column_stack([groups["s"], groups["t"]]), axis=0, return_inverse=True)[1].ravel()
        cols = ix if slope else one
        return [(groups["s"], cols), (cell, cols)]
    return [(groups["a"], ix if slope else one), (groups["b"], one)]


def draw_spec(seed: int, index: int, families: Sequence[str] = FAMILIES) -> CaseSpec:
    """The spec of case `index` of `seed`: its own stream, independent of every other case."""
    if seed < 0 or index < 0:
        raise ArgumentError(f"seed and index must be non-negative integers, not seed={seed}, index={index}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    return draw_spec_with(_NumpyDrawer(rng), families)
