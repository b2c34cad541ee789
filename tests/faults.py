"""vcheck's catalogue of classic LMM mistakes, each written as a plug-in, plus two correct controls.

The audit must catch every fault with the kind in its `kind` attribute and must pass the controls (no
finding but "not available").  Each plug-in fits lme4 itself (through `vcheck.reference`) and then makes
one mistake in how it reports or builds the result, so each finding can only come from that mistake:

- KroneckerSortedRecipe (construction): the seed's recipe, V = Z kron(I_k, G) Z' + sigma^2 I, with each
  row's block found by position, as if the data were sorted by group;
- MLForREML (model): fits ML when REML is asked;
- VWithoutResidual (construction): V = Z G Z', the sigma^2 I forgotten;
- DiagonalG (construction): builds V from G's diagonal (correlations dropped), reports the full G;
- TransposedLambda (construction): G = sigma^2 Lambda' Lambda instead of Lambda Lambda';
- SdForVariance (construction): writes standard deviations (and correlations) into varcorr;
- OLSBeta (construction): reports the OLS beta instead of the GLS beta;
- FormulaTermOrder (construction): pairs Z's blocks with the terms in formula order (lme4 reorders);
- SortedV (construction): sorts the data by group, returns V in sorted rather than data row order;
- DropOuterIntercept (model): (1|s/t) fitted as (1|t:s), the school intercept dropped;
- SloppyOptimizer (optimization): stops BOBYQA after its first interpolation points;
- UnprofiledSigma (optimization): a full record at lme4's theta whose sigma is 1% above the profiled
  sigma there (a joint optimizer stopped short in sigma); theta, beta and the criterion are lme4's.

And broken implementations (`BROKEN`), each an `error` on every case: one that raises, one whose answer
is not a mapping, one that answers NaN, one that hangs, one whose process aborts.
"""

from __future__ import annotations

import re
from typing import Any

import nlopt
import numpy as np
import pandas as pd
import scipy.sparse as sp

from vcheck import reference
from vcheck.auditing.plugin import cov_from_theta, unique_group_names
from vcheck.core.record import LmerFit


# --- helpers: lme4's fit as a plug-in mapping ----------------------------------------------------------
def varcorr_rows(fit: LmerFit, value: str = "vcov") -> list[tuple[str, str, str | None, float]]:
    """as.data.frame(VarCorr(fit)) rows without the residual, with `value` ("vcov" or "sdcor")."""
    assert fit.varcorr is not None
    vc = fit.varcorr[fit.varcorr["grp"] != "Residual"]
    return [
        (
            str(r.grp),
            str(r.var1),
            None if r.var2 is None or r.var2 != r.var2 else str(r.var2),
            float(getattr(r, value)),
        )
        for r in vc.itertuples(index=False)
    ]


def term_covs(fit: LmerFit) -> list[np.ndarray]:
    """Per-term G_k = sigma^2 Lambda_k Lambda_k' in lme4's term order."""
    assert fit.theta is not None and fit.cnms is not None and fit.sigma is not None
    return cov_from_theta(fit.theta, fit.cnms, fit.sigma)


def V_from_blocks(fit: LmerFit, Zt: sp.spmatrix, covs: list[np.ndarray], residual: bool = True) -> np.ndarray:
    """V = Z blockdiag_k(kron(I_{levels_k}, G_k)) Z' (+ sigma^2 I) for Zt in lme4's level-major layout."""
    assert fit.cnms is not None and fit.Gp is not None and fit.sigma is not None
    blocks = []
    for k, G in enumerate(covs):
        nlev = (int(fit.Gp[k + 1]) - int(fit.Gp[k])) // len(G)
        blocks.append(sp.kron(sp.identity(nlev), sp.csr_matrix(G)))
    Gm = sp.block_diag(blocks, format="csr")
    Z = sp.csr_matrix(Zt.T)
    V = (Z @ Gm @ Z.T).toarray()
    if residual:
        V += fit.sigma**2 * np.eye(V.shape[0])
    return V


def as_mapping(fit: LmerFit, *, V: Any = None, with_criterion: bool = True, **changes: Any) -> dict[str, Any]:
    """The plug-in mapping of a fit: beta, sigma, varcorr, V (its own, data row order), criterion."""
    assert fit.beta is not None
    out: dict[str, Any] = {
        "beta": dict(fit.beta.items()),
        "sigma": fit.sigma,
        "varcorr": varcorr_rows(fit),
        "V": fit.V().toarray() if V is None else V,
    }
    if with_criterion:
        out["criterion"] = fit.criterion
    out.update(changes)
    return out


class Plugin:
    """Base class: `name`, the `kind` the audit must report (None for a correct control)."""

    name = "plugin"
    kind: str | None = None
    with_criterion = True

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        raise NotImplementedError


# --- correct controls ----------------------------------------------------------------------------------
class Lme4Mapping(Plugin):
    """lme4 itself as a plug-in mapping: only "not available" (ranef) may be found."""

    name = "lme4 (mapping)"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        return as_mapping(reference.lmer(formula, data, REML, extras=False))


class Lme4Record(Plugin):
    """lme4 itself as a full LmerFit record (claims lme4's layout; gives ranef too)."""

    name = "lme4 (record)"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=True)
        fit.source = "lme4 as plug-in"
        return fit


class ShuffledLme4(Plugin):
    """lme4 on the rows shuffled internally, V mapped back to the data's row order: correct."""

    name = "lme4 on shuffled rows"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        perm = np.random.default_rng(len(data)).permutation(len(data))
        shuffled = data.iloc[perm].reset_index(drop=True)
        fit = reference.lmer(formula, shuffled, REML, extras=False)
        assert fit.row_index is not None
        # lme4's rows are shuffled positions (NA rows dropped); back to the data's order of those rows
        back = np.argsort(perm[np.asarray(fit.row_index)])
        V = fit.V().toarray()[np.ix_(back, back)]
        return as_mapping(fit, V=V)


# --- faults --------------------------------------------------------------------------------------------
class KroneckerSortedRecipe(Plugin):
    """The seed's recipe: Gm = kronecker(diag(k), G) per term, V = Z Gm Z' + sigma^2 I, with each row's
    block found by position, as if rows came sorted by group (level j owns the next n_j rows).  Right
    for one sorted grouping factor; wrong as soon as rows come in another order."""

    name = "seed's kronecker recipe (rows assumed sorted)"
    kind = "construction"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=False)
        return as_mapping(fit, V=V_from_blocks(fit, positional_Zt(fit), term_covs(fit)))


def positional_Zt(fit: LmerFit) -> sp.csc_matrix:
    """lme4's Zt with each row moved to the level its POSITION would have in sorted data.

    A row's model-matrix values (intercept, x, ...) are read off Zt; the level is re-assigned by position:
    with level counts n_1, n_2, ... in level order, rows 0..n_1-1 go to level 1, and so on.
    """
    assert fit.Zt is not None and fit.Gp is not None and fit.cnms is not None and fit.flist is not None
    Zt = sp.csc_matrix(fit.Zt)
    n = Zt.shape[1]
    rows, cols, vals = [], [], []
    for k, (group, names) in enumerate(fit.cnms):
        nc = len(names)
        codes = np.asarray(fit.flist[group].codes, dtype=np.int64)
        counts = np.bincount(codes, minlength=len(fit.flist[group].categories))
        positional = np.repeat(np.arange(len(counts)), counts)
        start = int(fit.Gp[k])
        for r in range(n):
            true_rows = start + codes[r] * nc + np.arange(nc)
            values = Zt[true_rows, r].toarray().ravel()
            rows.extend(start + positional[r] * nc + np.arange(nc))
            cols.extend([r] * nc)
            vals.extend(values)
    return sp.csc_matrix((vals, (rows, cols)), shape=Zt.shape)


class MLForREML(Plugin):
    """Always fits ML, whatever was asked (and does not say so)."""

    name = "ML when REML asked"
    kind = "model"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        return as_mapping(reference.lmer(formula, data, False, extras=False), with_criterion=False)


class VWithoutResidual(Plugin):
    """V = Z G Z': the residual sigma^2 I forgotten."""

    name = "V without sigma^2 I"
    kind = "construction"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=False)
        return as_mapping(fit, V=fit.V().toarray() - fit.sigma**2 * np.eye(fit.n or 0))  # type: ignore[operator]


class DiagonalG(Plugin):
    """Builds V from G's diagonal only (correlations dropped) but reports the full varcorr."""

    name = "G without correlations"
    kind = "construction"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=False)
        assert fit.Zt is not None
        covs = [np.diag(np.diag(G)) for G in term_covs(fit)]
        return as_mapping(fit, V=V_from_blocks(fit, fit.Zt, covs))


class TransposedLambda(Plugin):
    """G = sigma^2 Lambda' Lambda (the relative factor transposed) in V."""

    name = "Lambda transposed"
    kind = "construction"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=False)
        assert fit.Lambdat is not None and fit.Zt is not None and fit.sigma is not None
        Lt = fit.Lambdat
        LZ = Lt.T @ fit.Zt  # Lambda Zt = (Lambda')' ... the wrong factor
        V = fit.sigma**2 * ((LZ.T @ LZ).toarray() + np.eye(fit.Zt.shape[1]))
        return as_mapping(fit, V=V)


class SdForVariance(Plugin):
    """varcorr carries standard deviations and correlations (sdcor) where covariances belong."""

    name = "sd reported as variance"
    kind = "construction"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=False)
        rows = [(g, v1, v2, 0.0 if c != c else c) for g, v1, v2, c in varcorr_rows(fit, "sdcor")]
        return as_mapping(fit, varcorr=rows)


class OLSBeta(Plugin):
    """beta by ordinary least squares, ignoring V."""

    name = "OLS beta"
    kind = "construction"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=False)
        assert fit.X is not None and fit.y is not None and fit.X_names is not None
        beta = np.linalg.lstsq(fit.X, fit.y, rcond=None)[0]
        return as_mapping(fit, beta=dict(zip(fit.X_names, beta, strict=True)))


class FormulaTermOrder(Plugin):
    """Pairs Z's term blocks with the covariances in the formula's term order, unaware that lme4
    reorders terms by decreasing number of levels."""

    name = "terms in formula order"
    kind = "construction"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=False)
        assert fit.cnms is not None and fit.Zt is not None
        covs = term_covs(fit)
        order = formula_order(formula, [g for g, _ in fit.cnms])
        # block k of Z gets the covariance of the k-th term as the formula writes them
        shuffled = [covs[order[k]] for k in range(len(covs))]
        if any(a.shape != b.shape for a, b in zip(shuffled, covs, strict=True)):
            shuffled = covs  # terms of different sizes: this implementation would crash, keep it simple
        return as_mapping(fit, V=V_from_blocks(fit, fit.Zt, shuffled))


def formula_order(formula: str, groups: list[str]) -> list[int]:
    """For each position in the formula's order of random terms, the index of that term in lme4's order."""
    written: list[frozenset[str]] = []
    for expr in re.findall(r"\|\|?\s*([^()|]+?)\s*\)", formula):
        parts = [p.strip() for p in expr.split("/")]
        for i in range(len(parts)):
            written.append(frozenset(":".join(parts[: i + 1]).split(":")))
    lme4 = [frozenset(g.split(":")) for g in groups]
    order: list[int] = []
    for w in written:
        for k, g in enumerate(lme4):
            if g == w and k not in order:
                order.append(k)
                break
    order += [k for k in range(len(groups)) if k not in order]  # || terms etc.: as lme4 has them
    return order[: len(groups)]


class SortedV(Plugin):
    """Sorts the rows by group for its own convenience and returns V in that sorted order."""

    name = "V in sorted row order"
    kind = "construction"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        groups = re.findall(r"\|\|?\s*([^()|]+?)\s*\)", formula)
        first = re.split(r"[/:]", groups[0])[0].strip()
        order = np.argsort(data[first].astype(str).to_numpy(), kind="stable")
        fit = reference.lmer(formula, data.iloc[order].reset_index(drop=True), REML, extras=False)
        return as_mapping(fit)  # V of the sorted data, not mapped back


class DropOuterIntercept(Plugin):
    """(1|s/t) fitted as (1|t:s) alone: the outer (school) intercept silently dropped, as statsmodels'
    variance components do without re_formula="1"."""

    name = "school intercept dropped"
    kind = "model"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        # (expr | a/b) -> (expr | b:a), lme4's own name for the inner term; deeper nesting keeps the last pair
        def inner_only(m: re.Match[str]) -> str:
            parts = [p.strip() for p in m.group(2).split("/")]
            return f"({m.group(1)}| {':'.join(reversed(parts))})"

        changed = re.sub(r"\(([^()|]*)\|\s*([^()|]+/[^()|]+?)\s*\)", inner_only, formula)
        return as_mapping(reference.lmer(changed, data, REML, extras=False))


class SloppyOptimizer(Plugin):
    """BOBYQA on lme4's own deviance function, stopped after its first 2 p + 1 evaluations; everything
    else is computed consistently at the theta it stopped at (lme4's fit at that fixed theta)."""

    name = "optimizer stopped early"
    kind = "optimization"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        design = reference.lFormula(formula, data, REML)
        d = reference.devfun(formula, data, REML)
        p = len(design.theta)
        opt = nlopt.opt(nlopt.LN_BOBYQA, p)
        opt.set_lower_bounds(design.lower)
        opt.set_min_objective(lambda x, grad: d(x))
        opt.set_maxeval(2 * p + 1)  # BOBYQA's initial interpolation points, nothing more
        try:
            theta = opt.optimize(np.asarray(design.theta, dtype=float))
        except nlopt.RoundoffLimited:
            theta = np.asarray(design.theta, dtype=float)
        return as_mapping(reference.fit_at_theta(formula, data, theta, REML, extras=False))


class UnprofiledSigma(Plugin):
    """lme4's own record with sigma 1% too large: theta, beta, the criterion and the layout are lme4's,
    V and G follow from the record's sigma.  No flat optimum excuses it: at its theta the criterion is
    minimized by the profiled sigma, not by this one."""

    name = "sigma not profiled"
    kind = "optimization"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        fit = reference.lmer(formula, data, REML, extras=False)
        assert fit.sigma is not None
        fit.sigma *= 1.01
        fit.source = "lme4 with sigma 1% off"
        return fit


CONTROLS: list[Plugin] = [Lme4Mapping(), Lme4Record(), ShuffledLme4()]
FAULTS: list[Plugin] = [
    KroneckerSortedRecipe(),
    MLForREML(),
    VWithoutResidual(),
    DiagonalG(),
    TransposedLambda(),
    SdForVariance(),
    OLSBeta(),
    FormulaTermOrder(),
    SortedV(),
    DropOuterIntercept(),
    SloppyOptimizer(),
    UnprofiledSigma(),
]

__all__ = [
    "BROKEN",
    "CONTROLS",
    "FAULTS",
    "Plugin",
    "dies",
    "formula_order",
    "hangs",
    "nan_output",
    "positional_Zt",
    "raises",
    "unique_group_names",
    "unreadable",
]


# --- broken implementations: each case must be an `error` finding, and `--fail-on all` must exit 1 ------
def raises(formula: str, data: pd.DataFrame, REML: bool) -> Any:
    """Raises on every case."""
    raise RuntimeError("this implementation always fails")


def unreadable(formula: str, data: pd.DataFrame, REML: bool) -> Any:
    """Returns something the protocol cannot read (not a mapping)."""
    return [1.0, 2.0, 3.0]


def nan_output(formula: str, data: pd.DataFrame, REML: bool) -> Any:
    """Returns NaN for every number."""
    return {
        "beta": {"(Intercept)": float("nan")},
        "sigma": float("nan"),
        "varcorr": [],
        "criterion": float("nan"),
    }


def hangs(formula: str, data: pd.DataFrame, REML: bool) -> Any:
    """Never returns."""
    import time

    while True:
        time.sleep(1.0)


def dies(formula: str, data: pd.DataFrame, REML: bool) -> Any:
    """Its process aborts (as a crash in compiled code would)."""
    import os

    os.abort()


BROKEN = [raises, unreadable, nan_output, hangs, dies]
