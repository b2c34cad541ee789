"""lme4's `lFormula(formula, data)` without R: X, y and the random-effects structure in lme4 1.1-31's layout.

For random-effects term i with grouping factor f_i (levels l = 0..nl_i-1) and term model matrix M_i
(n x nc_i), Zt_i (nl_i*nc_i x n) has Zt_i[l*nc_i + j, r] = M_i[r, j] where f_i[r] = l (level-major rows;
explicit zeros dropped as lme4's drop0 does).  Terms are reordered by `rev(order(nl))` only when some
later term has more levels than the one before it (lme4's `mkReTrms`).  Lambdat is block diagonal: per
level, the transpose of the term's lower-triangular nc x nc factor, whose entries are theta filled column
by column; `Lind` (0-based) gives, for each stored non-zero of Lambdat in CSC order, its theta index.
theta starts at 1 on diagonals and 0 elsewhere; lower bounds are 0 on diagonals, -Inf elsewhere.

Everything is built sparse from integer codes: no dense n x q matrix.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vcheck.core import arguments, xchecks
from vcheck.core.contrasts import check_contrasts
from vcheck.core.control import Control, apply_check, parse_control
from vcheck.core.errors import DataError, FormulaError, Unsupported
from vcheck.core.factors import Factor, interaction
from vcheck.core.model_frame import Logical, ModelFrame, Value, model_frame
from vcheck.core.model_matrix import drop_rank_deficient, model_matrix, scale_problem
from vcheck.core.parse import Bar, ParsedFormula, parse_formula
from vcheck.core.record import Design, RandomTerm
from vcheck.core.rexpr import Call, Node, Sym, deparse
from vcheck.core.subset import subset_rows
from vcheck.core.terms import Terms, terms

#: the model frame's columns for lmer's weights= and offset= arguments (R's names)
WEIGHTS, OFFSET = "(weights)", "(offset)"


class RankDeficiencyWarning(UserWarning):
    """X was column rank deficient; columns were dropped as lme4 does."""


class ScaleWarning(UserWarning):
    """lme4's check.scaleX: predictors on very different scales."""


@dataclass
class _Block:
    """One random-effects term before reordering: its grouping factor and model matrix."""

    bar: Bar
    factor: Factor
    mm: np.ndarray  # (n, nc)
    cnms: list[str]


def _grouping_factor(node: Node, frame: ModelFrame) -> Factor:
    """lme4's makeFac + `%i%`: columns become factors (observed levels), `a:b` their interaction."""
    if isinstance(node, Sym):
        return frame.factor_of_column(node.name)
    assert isinstance(node, Call)
    if node.fn == "(":
        return _grouping_factor(node.args[0], frame)
    return interaction(_grouping_factor(node.args[0], frame), _grouping_factor(node.args[1], frame))


def _random_blocks(parsed: ParsedFormula, frame: ModelFrame, lhs_terms: list[Terms]) -> list[_Block]:
    n = len(frame.rows)
    blocks = []
    for bar, tt in zip(parsed.bars, lhs_terms, strict=True):
        factor = _grouping_factor(bar.group, frame)
        mm, cnms = model_matrix(tt, frame.values, n)
        if not cnms:
            raise FormulaError(f"formula {parsed.text!r}: random-effects term ({bar.label}) has no columns")
        blocks.append(_Block(bar, factor, mm, cnms))
    return blocks


def _reorder(blocks: list[_Block]) -> list[_Block]:
    """mkReTrms: `if (any(diff(nl) > 0)) ord <- rev(order(nl))` (order is stable, so ties reverse)."""
    nl = [b.factor.nlevels for b in blocks]
    if not any(b > a for a, b in itertools.pairwise(nl)):
        return blocks
    ascending = sorted(range(len(blocks)), key=lambda i: nl[i])
    return [blocks[i] for i in reversed(ascending)]


def _build_Zt(blocks: list[_Block], n: int) -> sp.csc_matrix:
    """Stack every term's level-major rows; each column r holds rows offset_i + f_i[r]*nc_i + j."""
    nb = [b.factor.nlevels * len(b.cnms) for b in blocks]
    offsets = np.concatenate([[0], np.cumsum(nb)])
    rows = np.concatenate(
        [
            offsets[i] + b.factor.codes[:, None] * len(b.cnms) + np.arange(len(b.cnms))[None, :]
            for i, b in enumerate(blocks)
        ],
        axis=1,
    )
    vals = np.concatenate([b.mm for b in blocks], axis=1)
    keep = vals != 0  # drop0: explicit zeros are not stored
    counts = keep.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    Zt = sp.csc_matrix((vals[keep], rows[keep].astype(np.int64), indptr), shape=(int(offsets[-1]), n))
    Zt.has_sorted_indices = True
    return Zt


def _build_Lambdat(blocks: list[_Block]) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Lambdat at theta0, Lind (0-based), theta0, lower.

    Term i's factor T (nc x nc, lower triangular) holds theta[thoff_i + k] at its k-th lower-triangular
    entry counted column by column.  Lambdat's column l*nc + c (level l) holds rows l*nc + r, r <= c,
    with value T[c, r] (the transpose), so its CSC entries are already sorted.
    """
    indptr_parts, index_parts, lind_parts = [], [], []
    theta_parts, lower_parts = [], []
    row_offset = 0
    theta_offset = 0
    nnz = 0
    for b in blocks:
        nc, nl = len(b.cnms), b.factor.nlevels
        tri = np.full((nc, nc), -1, dtype=np.int64)
        k = 0
        for c in range(nc):  # T's columns
            for r in range(c, nc):
                tri[r, c] = k
                k += 1
        # one level's columns: column c of Lambdat's block has rows 0..c with theta index tri[c, r]
        col_rows = [np.arange(c + 1) for c in range(nc)]
        col_lind = [tri[c, : c + 1] for c in range(nc)]
        per_level_rows = np.concatenate(col_rows)
        per_level_lind = np.concatenate(col_lind)
        per_level_counts = np.array([c + 1 for c in range(nc)])
        level_base = (np.arange(nl) * nc)[:, None]
        index_parts.append((row_offset + level_base + per_level_rows[None, :]).ravel())
        lind_parts.append(np.tile(per_level_lind + theta_offset, nl))
        counts = np.tile(per_level_counts, nl)
        indptr_parts.append(nnz + np.cumsum(counts))
        nnz += int(counts.sum())
        diag = np.array([r == c for c in range(nc) for r in range(c, nc)])
        theta_parts.append(diag.astype(float))
        lower_parts.append(np.where(diag, 0.0, -np.inf))
        row_offset += nl * nc
        theta_offset += k
    indptr = np.concatenate([[0], *indptr_parts]).astype(np.int64)
    indices = np.concatenate(index_parts).astype(np.int64)
    Lind = np.concatenate(lind_parts).astype(np.int64)
    theta = np.concatenate(theta_parts)
    lower = np.concatenate(lower_parts)
    Lambdat = sp.csc_matrix((theta[Lind], indices, indptr), shape=(row_offset, row_offset))
    Lambdat.has_sorted_indices = True
    return Lambdat, Lind, theta, lower


def _act_check(action: str, msg: str) -> None:
    """lme4's check actions (`vcheck.core.control.apply_check`); "stop" raises DataError."""
    apply_check(action, msg, DataError)


def _check_levels(flist: dict[str, Factor], n: int, ctrl: Control) -> None:
    """lme4's checkNlevels (check.nlev.gtr.1 and check.nobs.vs.nlev are "stop" by default)."""
    few = {name: f.nlevels for name, f in flist.items() if f.nlevels < 2}
    if few:
        detail = ", ".join(f"{name!r} has {k} level{'s' if k != 1 else ''}" for name, k in few.items())
        _act_check(ctrl.check("check.nlev.gtr.1"), f"grouping factors must have > 1 sampled level: {detail}")
    many = {name: f.nlevels for name, f in flist.items() if f.nlevels >= n}
    if many:
        detail = ", ".join(f"{name!r} has {k} levels" for name, k in many.items())
        _act_check(
            ctrl.check("check.nobs.vs.nlev"),
            "number of levels of each grouping factor must be < number of observations "
            f"(problems: {detail}; {n} observations)",
        )


def _check_Zdims(blocks: list[_Block], n: int, ctrl: Control) -> None:
    """lme4's checkZdims (check.nobs.vs.nRE = "stop"): each term needs fewer random effects than rows."""
    for b in blocks:
        q_i = b.factor.nlevels * len(b.cnms)
        if q_i >= n:
            _act_check(
                ctrl.check("check.nobs.vs.nRE"),
                f"number of observations (={n}) <= number of random effects (={q_i}) for term "
                f"({b.bar.label}); the random-effects parameters and the residual variance are probably "
                "unidentifiable",
            )


def _response(value: Value, name: str) -> np.ndarray:
    if isinstance(value, Logical):  # lmer takes a logical response as 0/1
        return value.codes.astype(float)
    if isinstance(value, Factor):
        raise DataError(f"response {name!r} must be numeric; it is a factor/string column")
    return np.asarray(value, dtype=float)


def lFormula(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    control: Mapping[str, Any] | Control | None = None,
) -> Design:
    """lme4's `lFormula(formula, data, REML, weights, offset, subset, na.action, contrasts, control)`:
    the design of `formula` on `data`, in lme4 1.1-31's layout.

    `subset` (a boolean array or an R expression, `vcheck.core.subset`) keeps rows; then rows with NA in
    any variable of the model, the weights or the offset are dropped (na.omit / na.exclude) or refused
    (na.fail).  Zt's columns are the remaining rows in data order and `row_index` their labels;
    `frame_index` the labels of the subset's rows.  `weights`/`offset` are a column name or an array
    (`vcheck.core.arguments`); unit weights and a zero offset are recorded as None.  `contrasts` maps
    factor names to contr.* names for X (`core.contrasts`); `control` is read like lmerControl
    (`core.control`: its check.nlev.gtr.1, check.nobs.vs.nlev and check.nobs.vs.nRE act here).
    REML is accepted for lme4's signature; the design does not depend on it.  Raises FormulaError /
    DataError naming the problem.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    na_action = arguments.check_na_action(na_action)
    ctrl = parse_control(control)
    contr = check_contrasts(contrasts)
    parsed = parse_formula(formula, columns=[str(c) for c in data.columns])
    fixed_terms = terms(parsed.fixed, parsed.response, text=formula)
    lhs_terms = [terms(bar.lhs, text=formula) for bar in parsed.bars]
    variables = _frame_variables(parsed, fixed_terms, lhs_terms)
    mask, mask_na = subset_rows(subset, data)
    extras = {
        key: v
        for key, v in (
            (WEIGHTS, arguments.column_or_array(weights, data, "weights")),
            (OFFSET, arguments.column_or_array(offset, data, "offset")),
        )
        if v is not None
    }
    if mask is not None and mask_na is not None and mask_na.any():  # R: NA in subset -> an all-NA row
        mask = mask | mask_na
        extras["(subset)"] = np.where(mask_na, np.nan, 0.0)
    frame = model_frame(data, variables, formula, subset=mask, extras=extras)
    frame_rows = np.arange(len(data)) if mask is None else np.flatnonzero(mask)
    n = len(frame.rows)
    if na_action == "na.fail" and frame.n_dropped:
        raise DataError(
            f"missing values in object: {frame.n_dropped} row(s) have NA in a variable of {formula!r} "
            "(na_action='na.fail')"
        )
    if n == 0:
        raise DataError(f"0 (non-NA) cases: every row has NA in some variable of {formula!r}")
    w = frame.values.get(WEIGHTS)
    if w is not None:
        arguments.check_weights(np.asarray(w, dtype=float))
    absent = sorted(set(contr) - {k for k, v in frame.values.items() if isinstance(v, Factor)})
    if absent:
        warnings.warn(
            f"variable(s) {', '.join(map(repr, absent))} absent, contrasts ignored", UserWarning, stacklevel=2
        )
    y = _response(frame.values[deparse(parsed.response)], deparse(parsed.response))

    blocks = _reorder(_random_blocks(parsed, frame, lhs_terms))
    flist: dict[str, Factor] = {}
    for b in blocks:
        flist.setdefault(b.bar.group_name, b.factor)
    _check_levels(flist, n, ctrl)
    _check_Zdims(blocks, n, ctrl)
    Zt = _build_Zt(blocks, n)
    Lambdat, Lind, theta, lower = _build_Lambdat(blocks)

    X, X_names = model_matrix(fixed_terms, frame.values, n, contr)
    messages: list[str] = []
    X, X_names, dropped = _rank_check(X, X_names, ctrl.check_rankX, messages)
    _scale_check(X, X_names, ctrl.check_scaleX, messages)
    for msg in (
        xchecks.check_rankZ(Zt, n, ctrl.check_nobs_vs_rankZ),
        xchecks.check_nlev_gtreq_5({k: f.nlevels for k, f in flist.items()}, ctrl.check_nlev_gtreq_5),
    ):
        if msg:
            messages.append(msg)

    terms_out = []
    theta_start = 0
    for b in blocks:
        nc = len(b.cnms)
        nth = nc * (nc + 1) // 2
        terms_out.append(
            RandomTerm(b.bar.group_name, tuple(b.cnms), b.factor.levels, (theta_start, theta_start + nth))
        )
        theta_start += nth
    return Design(
        formula=formula,
        X=X,
        X_names=X_names,
        y=y,
        Zt=Zt,
        Lambdat=Lambdat,
        Lind=Lind,
        theta=theta,
        lower=lower,
        terms=terms_out,
        flist={name: f.to_categorical() for name, f in flist.items()},
        row_index=data.index[frame.rows],
        n_na_dropped=frame.n_dropped,
        dropped_columns=dropped,
        messages=messages,
        weights=None if w is None or np.all(np.asarray(w) == 1.0) else np.asarray(w, dtype=float),
        offset=_offset(frame),
        na_action=na_action,
        frame_index=data.index[frame_rows],
    )


def _offset(frame: ModelFrame) -> np.ndarray | None:
    """R's model.offset(): the "(offset)" column (offset= argument) plus the formula's offset() terms
    (`frame.offset`, summed by the formula layer), over the rows used; None when there is neither or
    their sum is 0 (the records' convention for no offset)."""
    parts = [np.asarray(v, dtype=float) for v in (frame.values.get(OFFSET), frame.offset) if v is not None]
    total = np.sum(parts, axis=0) if parts else None
    return None if total is None or np.all(total == 0.0) else total


def _rank_check(
    X: np.ndarray, names: list[str], kind: str, messages: list[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """lme4's check.rankX: the default drops rank-deficient columns with a message naming them; other
    kinds (silent/warn drop, stop.deficient, ignore) as `vcheck.core.xchecks.check_rankX`."""
    if kind == "ignore" and X.shape[1] and xchecks.qr_rank(X, xchecks.RANK_TOL)[0] < X.shape[1]:
        raise DataError(
            "check.rankX = 'ignore' keeps a rank-deficient X, on which lme4's PLS stops ('Downdated VtV "
            "is not positive definite'): no fit exists to compare"
        )
    if kind != "message+drop.cols":
        X, names, dropped, msg = xchecks.check_rankX(X, names, kind)
        if msg:
            messages.append(msg)
        return X, names, dropped
    X, names, dropped = drop_rank_deficient(X, names, tol=1e-7)
    if dropped:
        k = len(dropped)
        msg = (
            f"fixed-effect model matrix is rank deficient so dropping {k} column{'s' if k > 1 else ''} / "
            f"coefficient{'s' if k > 1 else ''}: {', '.join(dropped)}"
        )
        messages.append(msg)
        warnings.warn(msg, RankDeficiencyWarning, stacklevel=3)
    return X, names, dropped


def _scale_check(X: np.ndarray, names: list[str], kind: str, messages: list[str]) -> None:
    """lme4's check.scaleX: "warning" (default), "stop", "ignore"; the rescaling kinds change X and
    beta's scale, which vcheck does not reproduce (Unsupported)."""
    if kind in ("warning", "stop", "ignore"):
        msg = scale_problem(X, names) if kind != "ignore" else None
        if msg and kind == "stop":
            raise DataError(msg)
        if msg:
            messages.append(msg)
            warnings.warn(msg, ScaleWarning, stacklevel=3)
        return
    raise Unsupported(f"control check.scaleX = {kind!r}: vcheck does not reproduce lme4's rescaling of X")


def _frame_variables(parsed: ParsedFormula, fixed: Terms, lhs: list[Terms]) -> list[Node]:
    """The model frame's variables (R's `model.frame(subbars(formula))`): response, fixed-part variables,
    random-term variables and the grouping columns."""
    out: dict[str, Node] = {}
    for node in [*fixed.variables, *(v for tt in lhs for v in tt.variables)]:
        out.setdefault(deparse(node), node)
    for bar in parsed.bars:
        for name in _group_columns(bar.group):
            out.setdefault(deparse(Sym(name)), Sym(name))
    return list(out.values())


def _group_columns(node: Node) -> list[str]:
    if isinstance(node, Sym):
        return [node.name]
    assert isinstance(node, Call)
    return [name for a in node.args for name in _group_columns(a)]


def start_theta(design: Design) -> np.ndarray:
    """lme4 1.1-31's starting theta for `lmer` (in `mkLmerDevfun`, not in `lFormula`).

    Design.theta (1 on diagonals, 0 elsewhere) except when every term is a scalar `(Intercept)` term on
    its own grouping factor: then theta0_f = sqrt(v_f / v_e), v_f = var(ave(y, f)) (the variance of the
    group means spread over the rows), v_e = var(y) - sum_f v_f, used only when v_e > 0.
    """
    theta = design.theta.copy()
    all_intercepts = all(t.cnms == ("(Intercept)",) for t in design.terms)
    if not all_intercepts or len(design.flist) != len(design.lower):
        return theta
    from vcheck.core.rstats import r_ave, r_var  # R's mean/var to the last bit: lme4's exact start

    y = design.y
    v = []
    for t in design.terms:
        codes = np.asarray(design.flist[t.group].codes)
        v.append(r_var(r_ave(y, codes, t.nlevels)))
    v_e = r_var(y) - sum(v)
    if not np.isfinite(v_e) or v_e <= 0:
        return theta
    rel = np.array(v) / v_e
    if np.all(rel >= design.lower**2):
        return np.sqrt(rel)
    return theta
