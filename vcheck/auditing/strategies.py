"""Hypothesis strategies, and a seeded drawer, for linear mixed model cases that lme4 accepts.

A case is described by a small `CaseSpec` (model family, group structure, label type, row order, a data
seed) and built from it deterministically by `build_frame`.  The spec is drawn through one function,
`draw_spec_with`, against a two-method `Drawer`, with two back ends:

- hypothesis (`case_specs()`, `cases()`): every choice is a hypothesis draw, so a failing case shrinks
  toward fewer, smaller groups, the first family (a random intercept), string labels, sorted rows, and
  data seed 0;
- numpy (`draw_case(seed, index)`): case `index` of `seed` has its own random stream
  (`SeedSequence([seed, index])`), so any case is drawable alone and a sweep splits across processes.

What the cases cover: rows in random order; nested groups with inner labels reused across outer groups
(teacher "1" in every school); crossed factors; random slopes with a non-zero true correlation; `||`
terms; factor slopes; unbalanced groups (sizes from 1 up, covariate means that differ across groups);
boundary fits (a term with true variance 0); string, categorical (levels in a non-sorted order) and
integer group codes; a rank-deficient X (see `vcheck.auditing.specs`, where specs are drawn and built).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from vcheck.auditing.cases import Case
from vcheck.auditing.specs import FAMILIES, CaseSpec, build_frame, draw_spec, draw_spec_with, level_labels

__all__ = [
    "FAMILIES",
    "CaseSpec",
    "build_frame",
    "case_from_spec",
    "case_specs",
    "cases",
    "crossed_cases",
    "draw_case",
    "draw_spec",
    "grouping_columns",
    "nested_cases",
    "relabel_levels",
    "shuffle_rows",
    "slope_cases",
]

T = TypeVar("T")


class _HypothesisDrawer:
    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return int(self._draw(st.integers(lo, hi)))

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))  # type: ignore[no-any-return]


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


@st.composite
def case_specs(draw: Callable[[st.SearchStrategy[Any]], Any], families: Sequence[str] = FAMILIES) -> CaseSpec:
    """Hypothesis strategy for `CaseSpec`s of the given families (shrinking toward small, simple cases)."""
    return draw_spec_with(_HypothesisDrawer(draw), tuple(families))


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
            new = level_labels(rng, len(old), "str")
            renamed = col.cat.rename_categories(dict(zip(old, new, strict=True)))
            data[name] = renamed.cat.reorder_categories([new[i] for i in rng.permutation(len(new))])
            continue
        old = sorted(set(col.tolist()))
        code = "int" if pd.api.types.is_integer_dtype(col.dtype) else "str"
        new = level_labels(rng, len(old), code)
        mapping = dict(zip(old, new, strict=True))
        values = [mapping[v] for v in col.tolist()]
        data[name] = np.array(values, dtype=np.int64) if code == "int" else pd.Series(values, dtype="str")
    return case.inline(data, name=f"{case.label} relabelled({seed})")


# --- lmer's further arguments -----------------------------------------------------------------------------
@st.composite
def argument_cases(draw: Callable[[st.SearchStrategy[Any]], Any], families: Sequence[str] = FAMILIES) -> Case:
    """Cases that call lmer with further arguments (`Case.args`): prior weights (column "w_prior",
    positive, spread over a factor up to 100), an offset (column "o_offset"), NA rows in the response
    and the weights, a subset expression over a row-number column ("row_id %% k != j") and na.omit or
    na.exclude.  Each is drawn independently, so a failing case shrinks toward the plain case."""
    case = draw(cases(families))
    data = case.data.copy()
    n = len(data)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    response = case.formula.split("~", 1)[0].strip()
    args: dict[str, Any] = {}
    if draw(st.booleans()):
        data["w_prior"] = np.exp(rng.uniform(-np.log(10), np.log(10), n)).round(6)
        args["weights"] = "w_prior"
    if draw(st.booleans()):
        data["o_offset"] = rng.normal(0, 1, n).round(6)
        args["offset"] = "o_offset"
    if draw(st.booleans()) and response in data.columns:
        y = data[response].astype(float).to_numpy(copy=True)
        y[rng.choice(n, size=max(1, n // 20), replace=False)] = np.nan
        data[response] = y
        if "weights" in args:
            w = data["w_prior"].to_numpy(copy=True)
            w[rng.choice(n, size=1)] = np.nan
            data["w_prior"] = w
    if draw(st.booleans()):
        k = draw(st.integers(5, 9))
        data["row_id"] = np.arange(n)
        args["subset"] = f"row_id %% {k} != {draw(st.integers(0, k - 1))}"
    if draw(st.booleans()):
        args["na_action"] = "na.exclude"
    return Case(
        formula=case.formula,
        REML=case.REML,
        origin="inline",
        name=f"{case.label} with {', '.join(sorted(args)) or 'no arguments'}",
        features=(*case.features, *(f"arg:{a}" for a in sorted(args))),
        args=args,
        _data=data,
    )


def cases_within(capabilities: Sequence[str]) -> st.SearchStrategy[Case]:
    """Hypothesis strategy for cases that need nothing outside `capabilities`
    (`vcheck.auditing.capabilities`): the families that can fit them, the rest filtered."""
    from vcheck.auditing.capabilities import spec_needs

    have = frozenset(capabilities)
    probe = [
        CaseSpec(f, v, "x", "str", False, False, REML, (5, 5), (), 0)
        for f in FAMILIES
        for v in range(3)  # every variant of each family (a spec's variant wraps around)
        for REML in (True, False)
    ]
    families = tuple(dict.fromkeys(s.family for s in probe if spec_needs(s) <= have))
    if not families:
        raise ValueError(f"no drawn model fits the capabilities {sorted(have)}")
    return case_specs(families).filter(lambda spec: spec_needs(spec) <= have).map(case_from_spec)


#: how many indices past the requested number of cases the search for fitting draws may look
_SEARCH = 400


def drawn_within(seed: int, n: int, capabilities: Sequence[str] | frozenset[str]) -> list[Case]:
    """The first `n` drawn cases of `seed` (`draw_case(seed, i)`, i = 0, 1, ...) whose needs lie within
    `capabilities` (`vcheck.auditing.capabilities`): every case keeps its address, the others are
    skipped.  Raises CapabilityError when the capabilities admit no drawn model (only `rank_deficient`)."""
    from vcheck.auditing.capabilities import CapabilityError, spec_needs

    have = frozenset(capabilities)
    out: list[Case] = []
    index = 0
    while len(out) < n:
        if index >= _SEARCH * (len(out) + 1) + n:
            raise CapabilityError(
                f"no drawn case within the capabilities {sorted(have)} among the first {index} "
                f"of seed {seed}: the drawn models need at least intercept (or slopes), and REML or ML"
            )
        if spec_needs(draw_spec(seed, index)) <= have:
            out.append(draw_case(seed, index))
        index += 1
    return out
