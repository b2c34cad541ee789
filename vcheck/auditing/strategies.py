"""Hypothesis strategies, and a seeded drawer, for linear mixed model cases that lme4 accepts.

A case is described by a small `CaseSpec` (model family, group structure, label type, row order, a data
seed) and built from it deterministically by `build_frame`.  The spec is drawn through one function,
`_draw_spec`, against a two-method `Drawer`, with two back ends:

- hypothesis (`case_specs()`, `cases()`): every choice is a hypothesis draw, so a failing case shrinks
  toward fewer, smaller groups, the first family (a random intercept), string labels, sorted rows, and
  data seed 0;
- numpy (`draw_case(seed, index)`): case `index` of `seed` has its own random stream
  (`SeedSequence([seed, index])`), so any case is drawable alone and a sweep splits across processes.

What the cases cover: rows in random order; nested groups with inner labels reused across outer groups
(teacher "1" in every school); crossed factors; random slopes with a non-zero true correlation; `||`
terms; factor slopes; unbalanced groups (sizes from 1 up, covariate means that differ across groups);
boundary fits (a term with true variance 0); string, categorical (levels in a non-sorted order) and
integer group codes; a rank-deficient X.  Every case has at most 300 rows and passes lme4's default checks:
each grouping factor has >= 2 levels and fewer levels than rows, and each term has fewer random effects
(levels x columns) than rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from vcheck.auditing.cases import Case

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
    """The two choices `_draw_spec` makes; hypothesis shrinks each toward `lo` / the first option."""

    def integer(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...


class _HypothesisDrawer:
    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return int(self._draw(st.integers(lo, hi)))

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))  # type: ignore[no-any-return]


class _NumpyDrawer:
    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return int(self._rng.integers(lo, hi + 1))

    def choice(self, options: Sequence[T]) -> T:
        return options[int(self._rng.integers(len(options)))]


def _draw_spec(d: Drawer, families: Sequence[str]) -> CaseSpec:
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


# --- from spec to data --------------------------------------------------------------------------------
_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))


def _labels(rng: np.random.Generator, k: int, code: str) -> list[Any]:
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
        labels = _labels(rng, int(idx.max()) + 1, spec.code)  # nested "t": the same labels in every school
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


# --- public entry points -------------------------------------------------------------------------------
def case_from_spec(spec: CaseSpec) -> Case:
    """The case a spec describes (its data built now and cached)."""
    return Case(
        formula=spec.formula,
        REML=spec.REML,
        origin="spec",
        spec=spec.to_dict(),
        features=spec.features,
        _data=build_frame(spec),
    )


def draw_spec(seed: int, index: int, families: Sequence[str] = FAMILIES) -> CaseSpec:
    """The spec of case `index` of `seed`: its own stream, independent of every other case."""
    if seed < 0 or index < 0:
        raise ValueError("seed and index must be non-negative integers")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    return _draw_spec(_NumpyDrawer(rng), families)


def draw_case(seed: int, index: int) -> Case:
    """Case `index` of `seed` (the audit's drawn cases): the same case for the same (seed, index), always."""
    spec = draw_spec(seed, index)
    return Case(
        formula=spec.formula,
        REML=spec.REML,
        origin="drawn",
        seed=int(seed),
        index=int(index),
        spec=spec.to_dict(),
        features=spec.features,
        _data=build_frame(spec),
    )


def draw_cases(seed: int, n: int, start: int = 0) -> Iterator[Case]:
    """Cases start .. start + n - 1 of `seed`."""
    for i in range(start, start + n):
        yield draw_case(seed, i)


@st.composite
def case_specs(draw: Callable[[st.SearchStrategy[Any]], Any], families: Sequence[str] = FAMILIES) -> CaseSpec:
    """Hypothesis strategy for `CaseSpec`s of the given families (shrinking toward small, simple cases)."""
    return _draw_spec(_HypothesisDrawer(draw), tuple(families))


def cases(families: Sequence[str] = FAMILIES) -> st.SearchStrategy[Case]:
    """Hypothesis strategy for cases (formula, data, REML) that lme4 accepts."""
    return case_specs(families).map(case_from_spec)


def nested_cases() -> st.SearchStrategy[Case]:
    """Nested groups with inner labels reused across outer groups (`(1|s/t)`, `(1|s)+(1|s:t)`, `(x|s/t)`)."""
    return cases(("nested",))


def crossed_cases() -> st.SearchStrategy[Case]:
    """Crossed grouping factors (`(1|a) + (1|b)`, `(x|a) + (1|b)`)."""
    return cases(("crossed",))


def slope_cases() -> st.SearchStrategy[Case]:
    """Random slopes: correlated, `||`, and factor slopes on one grouping factor."""
    return cases(("slope", "uncorrelated", "factor_slope"))


# --- case transforms for the invariance properties ---------------------------------------------------
_BAR = re.compile(r"\|\|?\s*([^()|]+?)\s*\)")


def grouping_columns(case: Case) -> tuple[str, ...]:
    """The data columns that grouping factors are made of (from the spec, or the formula's bars)."""
    if case.spec is not None:
        return CaseSpec.from_dict(case.spec).group_columns
    names: list[str] = []
    for expr in _BAR.findall(case.formula):
        for name in re.split(r"[/:]", expr):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return tuple(names)


def shuffle_rows(case: Case, seed: int) -> tuple[Case, np.ndarray]:
    """The case with its rows permuted: returns (shuffled case, perm), new row i = old row perm[i].

    Row labels travel with the rows, so a V fitted to the shuffled data lines up with the original's.
    """
    perm = np.random.default_rng(seed).permutation(len(case.data))
    data = case.data.iloc[perm]
    return case.inline(data, name=f"{case.label} shuffled({seed})"), perm


def relabel_levels(case: Case, seed: int) -> Case:
    """The case with every grouping factor's labels renamed one-to-one (so R's level order changes).

    An inner label reused across outer groups keeps being reused: the renaming is per column.
    """
    rng = np.random.default_rng(seed)
    data = case.data.copy()
    for name in grouping_columns(case):
        col = data[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            old = list(col.cat.categories)
            new = _labels(rng, len(old), "str")
            renamed = col.cat.rename_categories(dict(zip(old, new, strict=True)))
            data[name] = renamed.cat.reorder_categories([new[i] for i in rng.permutation(len(new))])
            continue
        old = sorted(set(col.tolist()))
        code = "int" if pd.api.types.is_integer_dtype(col.dtype) else "str"
        new = _labels(rng, len(old), code)
        mapping = dict(zip(old, new, strict=True))
        values = [mapping[v] for v in col.tolist()]
        data[name] = np.array(values, dtype=np.int64) if code == "int" else pd.Series(values, dtype="str")
    return case.inline(data, name=f"{case.label} relabelled({seed})")


def cases_within(capabilities: Sequence[str]) -> st.SearchStrategy[Case]:
    """Hypothesis strategy for cases that need nothing outside `capabilities`
    (`vcheck.auditing.capabilities`): the families that can fit them, the rest filtered."""
    from vcheck.auditing.capabilities import spec_needs

    have = frozenset(capabilities)
    probe = [
        CaseSpec(f, v, "x", "str", False, False, REML, (5, 5), (), 0)
        for f in FAMILIES
        for v in range(len(_RANDOM[f]))
        for REML in (True, False)
    ]
    families = tuple(dict.fromkeys(s.family for s in probe if spec_needs(s) <= have))
    if not families:
        raise ValueError(f"no drawn model fits the capabilities {sorted(have)}")
    return case_specs(families).filter(lambda spec: spec_needs(spec) <= have).map(case_from_spec)
