"""Shrink a case with a finding to a small one with a finding of the same kind: what goes upstream.

    small = minimize(impl, case, kind="construction", seconds=30)
    small.case, small.original, small.minimized          # the reduced case, sizes before and after

Reductions, tried in this order, each kept only when the audit of the reduced case (the implementation
and lme4 live, `vcheck.auditing.run.audit_case`) still has a finding of the same kind:

1. terms: drop a fixed-effects term, a random slope (`(x | g)` -> `(1 | g)`), a whole random term
   while another remains;
2. groups: drop levels of each grouping column (chunks of levels, halving, as delta debugging does);
3. rows: drop rows (chunks, halving down to single rows).

A reduction lme4 refuses (too few levels, too few rows), or one that leaves no unique optimum (n <= p + q:
rows no more than fixed-effects columns plus random effects), is not kept.  Within `seconds`; what it
reached by then is returned, with the sizes before and after and the number of audits tried.  Columns
the model does not use are dropped at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vcheck.auditing.cases import Case

#: seconds a case's minimization may take by default
SECONDS = 30.0


@dataclass(frozen=True)
class Size:
    """How big a case is: rows, levels per grouping column, fixed-effects and random terms."""

    rows: int
    levels: dict[str, int]
    fixed_terms: int
    random_terms: int

    def text(self) -> str:
        groups = ", ".join(f"{k} {v} levels" for k, v in self.levels.items())
        return (
            f"{self.rows} rows, {groups}, {self.fixed_terms} fixed-effects terms, "
            f"{self.random_terms} random terms"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "levels": dict(self.levels),
            "fixed_terms": self.fixed_terms,
            "random_terms": self.random_terms,
        }


@dataclass
class Minimized:
    """The outcome of `minimize`: the reduced case (or the original one, when nothing could go)."""

    case: Case
    original: Size
    minimized: Size
    kind: str
    trials: int = 0
    seconds: float = 0.0
    result: Any = None  # the CaseResult of the reduced case (its findings)
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "original": self.original.to_dict(),
            "minimized": self.minimized.to_dict(),
            "trials": self.trials,
            "seconds": round(self.seconds, 1),
            "formula": self.case.formula,
            "steps": self.steps,
        }


# --- formulas -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Model:
    """A formula as pieces that can be dropped: response, fixed labels, random terms (lhs, group)."""

    response: str
    intercept: bool
    fixed: tuple[str, ...]
    random: tuple[tuple[str, str], ...]

    @property
    def formula(self) -> str:
        fixed = list(self.fixed) if self.intercept else ["0", *self.fixed]
        if not fixed:
            fixed = ["1"]
        bars = [f"({lhs} | {group})" for lhs, group in self.random]
        return f"{self.response} ~ {' + '.join(fixed + bars)}"


def _model(formula: str) -> _Model:
    from vcheck.auditing import formula_terms as _formula
    from vcheck.core.terms import terms as r_terms

    parsed = _formula.parse(formula)
    fixed = r_terms(parsed.fixed_node)
    return _Model(
        response=parsed.response,
        intercept=fixed.intercept,
        fixed=tuple(fixed.labels),
        random=tuple((t.lhs, ":".join(t.factors)) for t in parsed.terms),
    )


def _smaller_models(m: _Model) -> list[_Model]:
    """Every model one step simpler: one fixed term fewer, one slope fewer, one random term fewer."""
    out = [
        _Model(m.response, m.intercept, m.fixed[:i] + m.fixed[i + 1 :], m.random) for i in range(len(m.fixed))
    ]
    for i, (lhs, group) in enumerate(m.random):
        if lhs.strip() not in ("1", "0 + 1"):
            out.append(
                _Model(m.response, m.intercept, m.fixed, (*m.random[:i], ("1", group), *m.random[i + 1 :]))
            )
        if len(m.random) > 1:
            out.append(_Model(m.response, m.intercept, m.fixed, m.random[:i] + m.random[i + 1 :]))
    return out


def size_of(case: Case) -> Size:
    """The case's size (rows, levels of each grouping column, terms)."""
    m = _model(case.formula)
    data = case.data
    columns = list(dict.fromkeys(c for _, group in m.random for c in group.split(":")))
    return Size(
        rows=len(data),
        levels={c: int(data[c].nunique()) for c in columns if c in data.columns},
        fixed_terms=len(m.fixed) + int(m.intercept),
        random_terms=len(m.random),
    )


# --- the search ---------------------------------------------------------------------------------------
def _ddmin(items: list[Any], keeps: Callable[[list[Any]], bool], deadline: float, least: int) -> list[Any]:
    """Delta debugging's reduction: drop chunks (halves, quarters, ...) of `items` while `keeps` holds,
    keeping at least `least` items."""
    parts = 2
    while len(items) > least and time.monotonic() < deadline:
        chunk = math.ceil(len(items) / parts)
        for start in range(0, len(items), chunk):
            candidate = items[:start] + items[start + chunk :]
            if len(candidate) >= least and time.monotonic() < deadline and keeps(candidate):
                items = candidate
                parts = max(parts - 1, 2)
                break
        else:
            if chunk <= 1:
                break
            parts = min(len(items), parts * 2)
    return items


def minimize(
    impl: Any,
    case: Case,
    kind: str,
    *,
    seconds: float = SECONDS,
    name: str | None = None,
    audit: Callable[[Case], Any] | None = None,
    timeout: float | None = None,
) -> Minimized:
    """The smallest case reached within `seconds` whose audit still has a finding of `kind`.

    audit: how a candidate is audited (default `vcheck.auditing.run.audit_case(impl, case)` with lme4
    in this process); it returns a CaseResult.  timeout: seconds impl may take on one candidate, in a
    process of its own (`vcheck.auditing.isolate`; the audit's --timeout): a candidate it does not
    answer in time is an error, not a finding of `kind`, so it is not kept.
    """
    from vcheck.auditing.run import audit_case

    start = time.monotonic()
    deadline = start + seconds
    run = audit or (lambda c: audit_case(impl, c, source=name, timeout=timeout))
    trials = 0
    last: dict[str, Any] = {}

    def keeps(candidate: Case) -> bool:
        nonlocal trials
        if saturated(candidate):  # no unique optimum there (q + p >= n): not a case to hand over
            return False
        trials += 1
        try:
            result = run(candidate)
        except Exception:
            return False
        ok = any(f.kind == kind for f in result.findings)
        if ok:
            last["result"] = result
        return bool(ok)

    current = case.inline(case.data.reset_index(drop=True), name=f"{case.label} minimized")
    steps: list[str] = []
    # 1. terms
    model = _model(case.formula)
    progress = True
    while progress and time.monotonic() < deadline:
        progress = False
        for smaller in _smaller_models(model):
            if time.monotonic() >= deadline:
                break
            candidate = _with(current, formula=smaller.formula)
            if keeps(candidate):
                steps.append(f"formula {model.formula} -> {smaller.formula}")
                model, current, progress = smaller, candidate, True
                break
    # 2. levels of each grouping column
    for column in size_of(current).levels:
        data = current.data
        levels = list(pd.unique(data[column]))
        kept = _ddmin(levels, _level_test(keeps, current, column), deadline, least=2)
        if len(kept) < len(levels):
            steps.append(f"{column}: {len(levels)} -> {len(kept)} levels")
            current = _with(current, data=data[data[column].isin(kept)])
    # 3. rows
    rows = list(range(len(current.data)))
    kept_rows = _ddmin(rows, lambda keep: keeps(_with(current, data=current.data.iloc[keep])), deadline, 3)
    if len(kept_rows) < len(rows):
        steps.append(f"rows: {len(rows)} -> {len(kept_rows)}")
        current = _with(current, data=current.data.iloc[kept_rows])
    current = _with(current, data=_model_columns(current))
    result = last.get("result")
    if result is None or steps:  # the final case's own audit (its findings are what the reproducer says)
        trials += 1
        result = run(current)
    return Minimized(
        case=current,
        original=size_of(case),
        minimized=size_of(current),
        kind=kind,
        trials=trials,
        seconds=time.monotonic() - start,
        result=result,
        steps=steps,
    )


def _level_test(keeps: Callable[[Case], bool], case: Case, column: str) -> Callable[[list[Any]], bool]:
    """Whether the case with only these levels of `column` keeps its finding."""

    def test(levels: list[Any]) -> bool:
        return keeps(_with(case, data=case.data[case.data[column].isin(levels)]))

    return test


def saturated(case: Case) -> bool:
    """n <= p + q (fixed-effects columns plus random effects): the model has no unique optimum; also
    True for a case whose design cannot be built (lme4 would refuse it)."""
    import warnings

    from vcheck.core.design import lFormula

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            design = lFormula(case.formula, case.data)
    except Exception:
        return True
    n, p = design.X.shape
    return bool(n <= p + design.Zt.shape[0])


def _with(case: Case, *, formula: str | None = None, data: pd.DataFrame | None = None) -> Case:
    """The case with another formula or data (rows renumbered 0..n-1; unused categories dropped)."""
    frame = case.data if data is None else data
    frame = frame.reset_index(drop=True)
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].cat.remove_unused_categories()
    return Case(
        formula=formula or case.formula,
        REML=case.REML,
        origin="inline",
        name=case.name,
        features=case.features,
        _data=frame,
    )


def _model_columns(case: Case) -> pd.DataFrame:
    """Only the columns the formula uses, in the data's order."""
    from vcheck.auditing import formula_terms as _formula

    used: Sequence[str] = _formula.parse(case.formula).variables
    return case.data[[c for c in case.data.columns if c in used]]
