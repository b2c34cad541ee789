"""What the adapters (and the audit's capabilities and minimizer) need of an lme4 formula: the
response, the fixed part, and the random terms.

Parsing is `vcheck.core.parse` (lme4's `findbars`, `expandSlash`, `expandDoubleVerts`): `(1|a/b)` is
`(1|b:a) + (1|a)`, `(x||g)` is `(1|g) + (0+x|g)`.  Here each random term carries its left-hand side as
R text, the data columns whose interaction is its grouping factor, and the group name lme4 prints
(`b:a`, `c:(b:a)`).  The grouping factor's levels are the observed combinations.

Terms are put in lme4's order (decreasing number of levels, `rev(order(nl))` when any reordering is
needed) so that `varcorr` lists come out the way `as.data.frame(VarCorr(fit))` writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vcheck.core.basis import Basis
from vcheck.core.errors import Unsupported
from vcheck.core.model_frame import ModelFrame, model_frame
from vcheck.core.parse import parse_formula
from vcheck.core.rexpr import Node, Num, Sym, deparse, symbols
from vcheck.core.terms import terms as r_terms


@dataclass(frozen=True)
class Term:
    """One random-effects term `(lhs | group)` after lme4's `/` and `||` expansion."""

    lhs: str  # R text of the left-hand side, e.g. "1", "Days", "0 + x"
    group: str  # lme4's group name, e.g. "Subject", "tch.cl:sch.cl"
    factors: tuple[str, ...]  # data columns whose interaction is the grouping factor
    intercept: bool  # the term's model matrix has an "(Intercept)" column
    slopes: tuple[str, ...]  # R's term labels of the left-hand side besides the intercept
    lhs_node: Node = field(default=Num(1.0), compare=False, repr=False)

    @property
    def scalar_intercept(self) -> bool:
        """`(1|g)`: one random intercept per level."""
        return self.intercept and not self.slopes


@dataclass(frozen=True)
class Formula:
    """An lme4 formula split into `response ~ fixed + terms` (R text)."""

    text: str
    response: str
    fixed: str  # R text of the fixed part's right-hand side
    terms: tuple[Term, ...]
    variables: tuple[str, ...]  # every data column the formula uses (R's all.vars), in order
    response_node: Node = field(default=Num(1.0), compare=False, repr=False)
    fixed_node: Node = field(default=Num(1.0), compare=False, repr=False)

    def model_variables(self) -> list[Node]:
        """The model frame's variables (R's `all.vars` level of `Days`, `log(x)`, `I(t^2)`): response,
        fixed part, random terms' left-hand sides, then the grouping factors, without repeats."""
        nodes = [self.response_node, *r_terms(self.fixed_node).variables]
        for term in self.terms:
            nodes += r_terms(term.lhs_node).variables
        nodes += [Sym(f) for term in self.terms for f in term.factors]
        return list({deparse(n): n for n in nodes}.values())


def parse(formula: str) -> Formula:
    """`vcheck.core.parse.parse_formula` (lme4's `||` and `/` expansion, findbars order) as adapter terms."""
    parsed = parse_formula(formula)
    out = []
    names = symbols(parsed.response) + symbols(parsed.fixed)
    for bar in parsed.bars:
        lhs = r_terms(bar.lhs)
        factors = tuple(symbols(bar.group))
        names += symbols(bar.lhs) + list(factors)
        out.append(
            Term(
                lhs=deparse(bar.lhs),
                group=bar.group_name,
                factors=factors,
                intercept=lhs.intercept,
                slopes=tuple(lhs.labels),
                lhs_node=bar.lhs,
            )
        )
    return Formula(
        text=formula,
        response=deparse(parsed.response),
        fixed=deparse(parsed.fixed),
        terms=tuple(out),
        variables=tuple(dict.fromkeys(names)),
        response_node=parsed.response,
        fixed_node=parsed.fixed,
    )


# --- data -------------------------------------------------------------------------------------------


def model_rows(
    data: pd.DataFrame, formula: Formula, *, offsets: bool = False, matrix_terms: bool = False
) -> tuple[pd.DataFrame, ModelFrame]:
    """The rows lme4 would use (R's model frame with na.omit: `vcheck.core.model_frame`), reindexed 0..n-1,
    and the evaluated variables on them.

    An adapter that passes `offset()` terms or matrix terms (poly, ns, bs, dummy) through to its library
    says so with `offsets=True` / `matrix_terms=True`; otherwise such a formula is `Unsupported` (rather
    than an offset silently fitted as a covariate)."""
    frame = model_frame(data, formula.model_variables(), formula.text)
    if frame.offset is not None and not offsets:
        raise Unsupported(f"formula {formula.text!r}: this implementation is not given offset() terms")
    matrices = [key for key, value in frame.values.items() if isinstance(value, Basis)]
    if matrices and not matrix_terms:
        raise Unsupported(
            f"formula {formula.text!r}: this implementation is not given matrix terms ({', '.join(matrices)})"
        )
    used = data.iloc[frame.rows].reset_index(drop=True)
    return used, frame


def per_row(spec: object, data: pd.DataFrame, frame: ModelFrame, what: str) -> np.ndarray | None:
    """lmer's `weights=` / `offset=` (a column name or an array of len(data)) on the rows `model_rows`
    kept, in their order; Unsupported when it is NA on one of them (lme4 drops such a row, these
    adapters do not)."""
    if spec is None:
        return None
    from vcheck.core.arguments import column_or_array

    values = column_or_array(spec, data, what)
    assert values is not None
    kept = values[np.asarray(frame.rows)]
    if np.isnan(kept).any():
        raise Unsupported(f"{what} is NA on rows the formula's variables keep: not passed through")
    return kept


def group_codes(data: pd.DataFrame, factors: Sequence[str]) -> pd.Series:
    """The grouping factor of a term as string labels: the interaction `a:b` of its columns, row by row."""
    labels = data[factors[0]].astype(str)
    for name in factors[1:]:
        labels = labels + ":" + data[name].astype(str)
    return labels.rename(":".join(factors))


def nested_in(inner: pd.Series, outer: pd.Series) -> bool:
    """Every level of `inner` occurs within a single level of `outer`."""
    return bool(
        (pd.DataFrame({"i": inner.to_numpy(), "o": outer.to_numpy()}).groupby("i")["o"].nunique() == 1).all()
    )


def lme4_order(terms: Sequence[Term], data: pd.DataFrame) -> list[Term]:
    """lme4's term order: by decreasing number of levels, `rev(order(nl))`, when any reordering is needed."""
    nl = np.array([group_codes(data, t.factors).nunique() for t in terms])
    if len(nl) < 2 or not np.any(np.diff(nl) > 0):
        return list(terms)
    order = np.argsort(nl, kind="stable")[::-1]
    return [terms[i] for i in order]


def make_unique(names: Sequence[str]) -> list[str]:
    """R's `make.unique`: repeated names get `.1`, `.2`, ... (lme4's VarCorr names for `(x||g)`: g, g.1)."""
    seen = set(names)
    counts: dict[str, int] = {}
    out = []
    for name in names:
        if name not in counts:
            counts[name] = 0
            out.append(name)
            continue
        while True:
            counts[name] += 1
            candidate = f"{name}.{counts[name]}"
            if candidate not in seen:
                break
        seen.add(candidate)
        out.append(candidate)
    return out


def varcorr_groups(terms: Sequence[Term], data: pd.DataFrame) -> list[tuple[Term, str]]:
    """The terms in lme4's order, each with the group name `as.data.frame(VarCorr(fit))` gives it."""
    ordered = lme4_order(terms, data)
    return list(zip(ordered, make_unique([t.group for t in ordered]), strict=True))


VarCorrRow = tuple[str, str, "str | None", float]


def varcorr_rows(
    blocks: Sequence[tuple[str, Sequence[str], np.ndarray]], labelled: Sequence[tuple[Term, str]]
) -> list[VarCorrRow]:
    """An implementation's covariance blocks as lme4's `as.data.frame(VarCorr(fit))` rows (no residual).

    `blocks` are (group, column names, covariance matrix) as the implementation estimates them;
    `labelled` is `varcorr_groups(...)`.  A block shared by several lme4 terms on one factor (glmmTMB's
    and nlme's diagonal structure for `(x||g)`, lme4's `(1|g) + (0+x|g)`) is split into lme4's terms:
    the intercept to the term with one, each slope's columns to its term.  Covariances between the
    split terms are structural zeros there; a non-zero one is kept (under the first term) so that a
    genuinely different model still shows.  A block no term claims keeps its own group name.  Rows
    come in lme4's term order: variances, then covariances (i, j) for i < j.
    """
    rows: list[tuple[int, VarCorrRow]] = []
    taken: set[int] = set()
    for group, names_, cov in blocks:
        names = list(names_)
        mine = [(k, label, t) for k, (t, label) in enumerate(labelled) if t.group == group and k not in taken]
        parts = [(k, label, cols) for k, label, cols in _split_columns(mine, names) if cols]
        if not parts or sorted(i for _, _, cols in parts for i in cols) != list(range(len(names))):
            k, label = (mine[0][0], mine[0][1]) if mine else (len(labelled), group)
            parts = [(k, label, list(range(len(names))))]
        owner = {}
        for k, label, cols in parts:
            taken.add(k)
            owner.update({i: (k, label) for i in cols})
            rows += [(k, (label, names[i], None, float(cov[i, i]))) for i in cols]
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                same = owner[i][0] == owner[j][0]
                if same or cov[j, i] != 0.0:
                    k, label = owner[i]
                    rows.append((k, (label, names[i], names[j], float(cov[j, i]))))
    return [row for _, row in sorted(rows, key=lambda kr: kr[0])]


def _split_columns(mine: list[tuple[int, str, Term]], names: list[str]) -> list[tuple[int, str, list[int]]]:
    """Columns of a block for each candidate lme4 term: intercept, then exact or prefix slope matches."""
    if len(mine) == 1:
        k, label, _ = mine[0]
        return [(k, label, list(range(len(names))))]
    free = list(range(len(names)))
    parts = []
    for k, label, term in mine:
        cols: list[int] = []
        if term.intercept and "(Intercept)" in names and names.index("(Intercept)") in free:
            cols.append(names.index("(Intercept)"))
        for slope in term.slopes:
            exact = [i for i in free if names[i] == slope and i not in cols]
            cols += exact or [i for i in free if names[i].startswith(slope) and i not in cols]
        free = [i for i in free if i not in cols]
        parts.append((k, label, sorted(cols)))
    return parts
