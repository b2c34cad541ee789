"""The plug-in protocol: an implementation under test, and its answer put in lme4's terms for `compare`.

An implementation is any callable `impl(formula: str, data: DataFrame, REML: bool)` returning either
vcheck's `LmerFit` or a mapping with

    beta       {R column name: value}                  (NaN for a column it dropped as aliased)
    sigma      residual standard deviation
    varcorr    [(group, var1, var2 or None, covariance), ...], as lme4's as.data.frame(VarCorr(fit))
               writes them: variances have var2 None, group names as lme4 prints them ("tch:sch",
               "Subject.1" for a second term on Subject); the residual row is excluded (dropped if given)
    V          n x n ndarray, scipy.sparse matrix or LinearOperator, in the row order of `data` (when
               rows with NA are dropped: the rows the model used, still in the data's order)
    criterion  (optional) REML criterion or ML deviance on lme4's scale (-2 log-likelihood)
    REML       (optional) whether it fitted by REML; ranef (optional) {group: DataFrame levels x names}

It may raise NotImplementedError for a model it cannot express.  `submission()` validates either form
into a `Submission`; `term_covariances()` maps varcorr onto lme4's terms (cnms), and `theta_from_cov()`
turns each term's covariance into lme4's theta: theta_k = lower triangle, column by column, of
chol(G_k / sigma^2) (the factor with a non-negative diagonal, which lme4's lower bounds select).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from vcheck.core import theta
from vcheck.core.errors import Unsupported, VcheckError
from vcheck.core.record import LmerFit
from vcheck.core.theta import cov_from_theta

VarCorrRow: TypeAlias = tuple[str, str, str | None, float]
Output: TypeAlias = LmerFit | Mapping[str, Any]
Impl: TypeAlias = Callable[[str, pd.DataFrame, bool], Output]

_KNOWN = {"beta", "sigma", "varcorr", "V", "criterion", "REML", "ranef", "source"}


class PluginError(VcheckError, ValueError):
    """An implementation's answer does not follow the plug-in protocol (the message says how)."""


@dataclass
class Submission:
    """What one implementation says about one model, in lme4's vocabulary; None = it does not say.

    `V` is in the row order of `row_index` (the data's index) when that is known, else lme4's kept rows.
    `record` is the full LmerFit when the implementation returned one: it claims lme4's layout (X, Zt,
    Lambdat, Lind, cnms), which `compare` then checks exactly.
    """

    source: str
    beta: pd.Series | None = None
    sigma: float | None = None
    varcorr: list[VarCorrRow] | None = None
    V: Any = None  # ndarray, scipy.sparse matrix or LinearOperator, n x n
    criterion: float | None = None
    REML: bool | None = None
    ranef: dict[str, pd.DataFrame] | None = None
    row_index: pd.Index | None = None
    record: LmerFit | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def submission(
    output: Output | Submission, *, data_index: pd.Index | None = None, source: str = "plugin"
) -> Submission:
    """Validate an implementation's answer (LmerFit or mapping) into a `Submission`.

    data_index: the index of the data the implementation was given (V's row labels for a mapping).
    """
    if isinstance(output, Submission):
        return output
    if isinstance(output, LmerFit):
        return _from_record(output)
    if not isinstance(output, Mapping):
        raise PluginError(
            f"an implementation must return an LmerFit or a mapping (beta, sigma, varcorr, V), "
            f"not {type(output).__name__}"
        )
    extra = {k: v for k, v in output.items() if k not in _KNOWN}
    sub = Submission(
        source=str(output.get("source", source)),
        beta=_beta(output.get("beta")),
        sigma=_sigma(output.get("sigma")),
        varcorr=_varcorr_rows(output.get("varcorr")),
        V=_matrix(output.get("V")),
        criterion=_finite_or_none(_float_or_none(output.get("criterion"), "criterion")),
        REML=None if output.get("REML") is None else bool(output["REML"]),
        ranef=_ranef(output.get("ranef")),
        row_index=data_index,
        extra=extra,
    )
    if sub.V is not None and data_index is not None and sub.V.shape[0] != len(data_index):
        # fewer rows than the data: the rows its model used (NA rows dropped), in the data's order
        sub.row_index = None
    return sub


def _from_record(fit: LmerFit) -> Submission:
    """A record's quantities; its V is built from its own Zt, Lambdat and sigma (data row order)."""
    V: Any = None
    if fit.Zt is not None and fit.Lambdat is not None and fit.sigma is not None:
        from vcheck.core import covariance

        V = covariance.V_operator(fit.Zt, fit.Lambdat, fit.sigma) if fit.Zt.shape[1] > 2000 else fit.V()
    elif "V" in fit.extra:
        V = _matrix(fit.extra["V"])
    varcorr = _varcorr_rows(fit.varcorr) if fit.varcorr is not None else _varcorr_from_theta(fit)
    return Submission(
        source=fit.source,
        beta=None if fit.beta is None else fit.beta.astype(float),
        sigma=fit.sigma,
        varcorr=varcorr,
        V=V,
        criterion=fit.criterion,
        REML=fit.REML,
        ranef=fit.ranef,
        row_index=fit.row_index,
        record=fit if fit.Zt is not None and fit.cnms is not None else None,
    )


# --- field validation ----------------------------------------------------------------------------------
def _float_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"{name} must be a number, not {value!r}") from exc
    return out


def _finite_or_none(value: float | None) -> float | None:
    """A criterion of NaN or inf is no criterion: glmmTMB, for one, reports logLik NaN when its Hessian
    is not positive definite.  Absent, it is reported "not available" instead of a false disagreement."""
    return value if value is not None and math.isfinite(value) else None


def _sigma(value: Any) -> float | None:
    s = _float_or_none(value, "sigma")
    if s is not None and not (math.isfinite(s) and s > 0):
        raise PluginError(f"sigma must be a positive finite number, not {s}")
    return s


def _beta(value: Any) -> pd.Series | None:
    if value is None:
        return None
    if isinstance(value, pd.Series):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise PluginError("beta must map R's fixed-effect column names to values, e.g. {'(Intercept)': 1.0}")
    try:
        return pd.Series({str(k): float(v) for k, v in value.items()}, dtype=float)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"beta values must be numbers: {exc}") from exc


def _varcorr_rows(value: Any) -> list[VarCorrRow] | None:
    """(group, var1, var2 or None, covariance) rows, the residual row dropped; a DataFrame like
    as.data.frame(VarCorr(fit)) (grp, var1, var2, vcov) is accepted too."""
    if value is None:
        return None
    if isinstance(value, pd.DataFrame):
        missing = {"grp", "var1", "var2", "vcov"} - set(value.columns)
        if missing:
            raise PluginError(
                f"a varcorr DataFrame needs columns grp, var1, var2, vcov (missing {sorted(missing)})"
            )
        value = list(zip(*(value[c].tolist() for c in ("grp", "var1", "var2", "vcov")), strict=True))
    rows: list[VarCorrRow] = []
    for row in value:
        if len(row) != 4:
            raise PluginError(f"a varcorr row is (group, var1, var2 or None, covariance), not {row!r}")
        group, var1, var2, cov = row
        if _missing(var1):
            if str(group) == "Residual":
                continue  # the residual variance is sigma^2; lme4 writes it as a row, the protocol omits it
            raise PluginError(f"varcorr row {row!r} has no var1")
        try:
            c = float(cov)
        except (TypeError, ValueError) as exc:
            raise PluginError(f"varcorr covariance must be a number in {row!r}") from exc
        rows.append((str(group), str(var1), None if _missing(var2) else str(var2), c))
    return rows


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def _matrix(value: Any) -> Any:
    if value is None:
        return None
    out: Any
    if isinstance(value, LinearOperator) or sp.issparse(value):
        out = value
    else:
        try:
            out = np.asarray(value, dtype=float)
        except (TypeError, ValueError) as exc:
            raise PluginError(f"V must be an n x n array, sparse matrix or LinearOperator: {exc}") from exc
    if len(out.shape) != 2 or out.shape[0] != out.shape[1]:
        raise PluginError(f"V must be square (n x n), not of shape {out.shape}")
    return out


def _ranef(value: Any) -> dict[str, pd.DataFrame] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(v, pd.DataFrame) for v in value.values()):
        raise PluginError("ranef must map group names to DataFrames (levels x coefficient names)")
    return {str(k): v for k, v in value.items()}


def _varcorr_from_theta(fit: LmerFit) -> list[VarCorrRow] | None:
    """varcorr rows from a record's theta, cnms and sigma: G_k = sigma^2 Lambda_k Lambda_k'."""
    if fit.theta is None or fit.cnms is None or fit.sigma is None:
        return None
    rows: list[VarCorrRow] = []
    covs = cov_from_theta(fit.theta, fit.cnms, fit.sigma)
    for group, (_, names), G in zip(
        unique_group_names([g for g, _ in fit.cnms]), fit.cnms, covs, strict=True
    ):
        nc = len(names)
        rows.extend((group, names[i], None, float(G[i, i])) for i in range(nc))
        rows.extend((group, names[i], names[j], float(G[j, i])) for i in range(nc) for j in range(i + 1, nc))
    return rows


# --- varcorr -> lme4's terms -> theta ------------------------------------------------------------------
def unique_group_names(groups: Sequence[str]) -> list[str]:
    """R's make.unique, as VarCorr names the terms: Subject, Subject.1, ..."""
    seen: dict[str, int] = {}
    out = []
    for g in groups:
        if g in seen:
            seen[g] += 1
            out.append(f"{g}.{seen[g]}")
        else:
            seen[g] = 0
            out.append(g)
    return out


@dataclass
class TermMapping:
    """varcorr mapped onto lme4's terms: one covariance matrix per term (NaN where nothing was given)."""

    cov: list[np.ndarray]
    problems: list[str]  # rows or terms that do not map: a different model
    unmapped: int = 0  # rows matching no lme4 term (then no theta describes its model)


def term_covariances(varcorr: Sequence[VarCorrRow], cnms: Sequence[tuple[str, Sequence[str]]]) -> TermMapping:
    """Each lme4 term's covariance matrix from varcorr rows, matched by group and coefficient names.

    A row's group is lme4's group name, or that name with VarCorr's ".k" suffix for a repeated group.
    Rows that match no term, terms with a variance missing and correlated terms given without their
    covariances are listed as problems: the implementation fitted a different model.  Missing entries
    are NaN in `cov`.
    """
    groups = [g for g, _ in cnms]
    unique = unique_group_names(groups)
    cov = [np.full((len(names), len(names)), np.nan) for _, names in cnms]
    problems: list[str] = []
    unmapped = 0
    for group, var1, var2, value in varcorr:
        k = _find_term(group, var1, var2, cnms, groups, unique)
        if k is None:
            label = f"({group}, {var1}{', ' + var2 if var2 else ''})"
            problems.append(f"its random-effect {label} matches none of lme4's terms {_terms_text(cnms)}")
            unmapped += 1
            continue
        names = list(cnms[k][1])
        i = names.index(var1)
        j = i if var2 is None else names.index(var2)
        if not math.isnan(cov[k][i, j]):
            problems.append(f"{group} ({var1}, {var2}) is given twice")
        cov[k][i, j] = cov[k][j, i] = value
    for k, (group, term_names) in enumerate(cnms):
        term = f"({' + '.join(term_names)} | {group})"
        diag = np.diag(cov[k])
        if np.isnan(diag).any():
            absent = [n for n, d in zip(term_names, diag, strict=True) if math.isnan(d)]
            problems.append(f"lme4's term {term} has no variance for {absent}: not in its model")
        elif np.isnan(cov[k]).any():
            problems.append(f"lme4's term {term} is correlated; it gives no covariances (uncorrelated)")
    return TermMapping(cov=cov, problems=problems, unmapped=unmapped)


def _find_term(
    group: str,
    var1: str,
    var2: str | None,
    cnms: Sequence[tuple[str, Sequence[str]]],
    groups: list[str],
    unique: list[str],
) -> int | None:
    def fits(k: int) -> bool:
        names = cnms[k][1]
        return var1 in names and (var2 is None or var2 in names)

    # exact VarCorr name first ("Subject.1" is lme4's second term on Subject) ...
    if group in unique and fits(unique.index(group)):
        return unique.index(group)
    # ... else by the base group and the coefficient names (implementations may order terms differently);
    # an interaction is the same whatever its factors' order and parentheses: class:(school:district)
    base = group if group in groups else re.sub(r"\.\d+$", "", group)
    candidates = [k for k, g in enumerate(groups) if g == base and fits(k)]
    if not candidates:
        candidates = [k for k, g in enumerate(groups) if _factors(g) == _factors(base) and fits(k)]
    return candidates[0] if candidates else None


def _factors(group: str) -> frozenset[str]:
    """The factors an interaction group is made of: "class:(school:district)" -> {class, school, district}."""
    return frozenset(p.strip() for p in re.sub(r"[()]", "", group).split(":"))


def _terms_text(cnms: Sequence[tuple[str, Sequence[str]]]) -> str:
    return ", ".join(f"({' + '.join(names)} | {g})" for g, names in cnms)


def theta_from_cov(cov: Sequence[np.ndarray], sigma: float) -> np.ndarray:
    """`vcheck.core.theta.theta_from_cov`, for an implementation's covariances: PluginError when a term's
    matrix is not positive semi-definite (no theta gives it)."""
    try:
        return theta.theta_from_cov(cov, sigma)
    except theta.NotPositiveSemidefinite as exc:
        raise PluginError(str(exc)) from None


def chol_psd(A: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """`vcheck.core.theta.chol_psd` of an implementation's covariance: PluginError when it is not
    positive semi-definite."""
    try:
        return theta.chol_psd(A, rtol)
    except theta.NotPositiveSemidefinite as exc:
        raise PluginError(str(exc)) from None


def bind_arguments(impl: Callable[..., Any], args: Mapping[str, Any], name: str = "") -> Callable[..., Any]:
    """impl called with a case's lmer arguments (weights, offset, subset, na_action, contrasts, start,
    control) as keywords: `impl(formula, data, REML, **args)`.  An implementation whose signature takes
    none of them by name (nor **kwargs) is `Unsupported` for a case that carries one: the returned
    callable raises it, naming the arguments."""
    if not args:
        return impl
    import inspect

    try:
        params = inspect.signature(impl).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: no way to know, call it plainly
        params = ()  # type: ignore[assignment]
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params)
    named = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    missing = [k for k in args if not takes_all and k not in named]

    def call(formula: str, data: pd.DataFrame, REML: bool) -> Any:
        if missing:
            who = name or getattr(impl, "__name__", "the implementation")
            raise Unsupported(f"{who} takes no {', '.join(missing)} argument (the case needs {dict(args)})")
        return impl(formula, data, REML, **args)

    return call
