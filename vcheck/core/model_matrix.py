"""R's `model.matrix()` and lme4's checks on X: contrasts, column names, rank drop, scale warning.

Columns, for each term in R's order: a numeric variable is one column named by its expression
(`Days`, `I(age^2)`, `log(x)`); a factor coded by contrasts gives `contr.treatment` columns named
variable + level (`cltypesmall class`) or, when ordered, `contr.poly` columns `.L .Q .C ^4 ...`; a factor
coded by dummies gives one column per level; a matrix variable (poly, ns, bs, dummy: `core.basis`) gives
its columns, named expression + column name (`poly(x, 2)1`), or the expression alone when it has one
column (`dummy(Sex, "Female")`).  In an interaction the first variable varies fastest and names
join with ":".  Without an intercept, the first factor of the first term that has one is coded by dummies
(R's model.c).  (formulaic names and codes differently, e.g. `g[T.b]`, so this follows R directly.)

lme4's checks: `chkRank.drop.cols` keeps the columns LINPACK's `dqrdc2` (R's `qr(X, tol = 1e-7,
LAPACK = FALSE)`) finds independent, in their order; `checkScaleX` warns when column scales differ by
more than a factor 1000.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from vcheck.core.basis import Basis
from vcheck.core.contr_poly import contr_poly
from vcheck.core.contrasts import contrast_matrix
from vcheck.core.errors import DataError
from vcheck.core.factors import Factor
from vcheck.core.linpack import dqrdc2
from vcheck.core.model_frame import Logical, Value
from vcheck.core.terms import Terms


def contr_treatment(levels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """`contr.treatment(levels)`: (nlevels, nlevels-1), the first level is the baseline."""
    k = len(levels)
    return np.eye(k)[:, 1:], list(levels[1:])


def _coding(
    name: str, value: Factor, code: int, contrasts: Mapping[str, str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """The (n, k) columns of one factor in one term: contrasts (code 1) or dummies (code 2)."""
    if code == 2:
        contr, cnames = np.eye(value.nlevels), list(value.levels)
    elif value.nlevels < 2:
        raise DataError(
            f"factor {name!r} has {value.nlevels} level{'s' if value.nlevels != 1 else ''} "
            f"({', '.join(value.levels) or 'none'}) in the rows used; contrasts need 2 or more levels"
        )
    elif contrasts and name in contrasts:  # lmer's contrasts= (vcheck.core.contrasts)
        contr, cnames = contrast_matrix(contrasts[name], value.levels)
    elif value.ordered and not isinstance(value, Logical):
        contr, cnames = contr_poly(value.nlevels)
    else:
        contr, cnames = contr_treatment(value.levels)
    return contr[value.codes], [name + c for c in cnames]


def model_matrix(
    terms: Terms, values: dict[str, Value], n: int, contrasts: Mapping[str, str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """X (n, p) and its column names, as R's `model.matrix(terms, frame, contrasts.arg = contrasts)`."""
    names_of = terms.variable_names
    codes = [dict(c) for c in terms.codes]
    if not terms.intercept:
        first = next(
            (
                (j, i)
                for j, term in enumerate(terms.terms)
                for i in term
                if isinstance(values[names_of[i]], Factor) and values[names_of[i]].nlevels > 1  # type: ignore[union-attr]
            ),
            None,
        )
        if first is not None:
            codes[first[0]][first[1]] = 2
    columns: list[np.ndarray] = [np.ones(n)] if terms.intercept else []
    colnames: list[str] = ["(Intercept)"] if terms.intercept else []
    for term, term_codes in zip(terms.terms, codes, strict=True):
        block = np.ones((n, 1))
        block_names = [""]
        for i in term:
            name = names_of[i]
            value = values[name]
            if isinstance(value, Factor):
                var_cols, var_names = _coding(name, value, term_codes[i], contrasts)
            elif isinstance(value, Basis):  # R names a matrix's columns name + colname (name alone if one)
                var_cols = value.values
                var_names = [name] if len(value.colnames) == 1 else [name + c for c in value.colnames]
            else:
                var_cols, var_names = value.reshape(n, 1), [name]
            # the term's first variable varies fastest
            block = (block[:, :, None] * var_cols[:, None, :]).reshape(n, -1, order="F")
            block_names = [f"{b}:{v}" if b else v for v in var_names for b in block_names]
        columns.append(block)
        colnames.extend(block_names)
    if not columns:
        return np.zeros((n, 0)), []
    X = np.column_stack(columns) if len(columns) > 1 else np.asarray(columns[0]).reshape(n, -1)
    return np.ascontiguousarray(X, dtype=float), colnames


def qr_rank(X: np.ndarray, tol: float = 1e-7) -> tuple[int, np.ndarray]:
    """Rank and pivot of R's `qr(X, tol)` (dqrdc2)."""
    _, _, rank, pivot = dqrdc2(X, tol)
    return rank, pivot


def drop_rank_deficient(
    X: np.ndarray, names: list[str], tol: float = 1e-7
) -> tuple[np.ndarray, list[str], list[str]]:
    """lme4's `chkRank.drop.cols`: keep `qr(X, tol)$pivot[1:rank]`; returns (X, names, dropped names)."""
    if X.shape[1] == 0:
        return X, names, []
    rank, pivot = qr_rank(X, tol)
    if rank == X.shape[1]:
        return X, names, []
    keep = pivot[:rank]
    dropped = [names[j] for j in sorted(pivot[rank:])]
    return np.ascontiguousarray(X[:, keep]), [names[j] for j in keep], dropped


def scale_problem(X: np.ndarray, names: list[str], tol: float = 1000.0) -> str | None:
    """lme4's `checkScaleX`: among columns not all 0/1, a column sd or ratio of sds beyond `tol`."""
    cont = ~np.all((X == 0) | (X == 1), axis=0)
    if not cont.any():
        return None
    sub = X[:, cont]
    sd = sub.std(axis=0, ddof=1) if sub.shape[0] > 1 else np.full(sub.shape[1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        logsd = np.abs(np.log(sd))
        ratio = np.abs(np.log(sd[:, None] / sd[None, :]))
    bad = logsd > math.log(tol)
    if not (bad.any() or (ratio > math.log(tol)).any()):
        return None
    cont_names = [nm for nm, c in zip(names, cont, strict=True) if c]
    detail = ", ".join(f"{nm} (sd {s:.3g})" for nm, s in zip(cont_names, sd, strict=True))
    return f"Some predictor variables are on very different scales: consider rescaling [{detail}]"
