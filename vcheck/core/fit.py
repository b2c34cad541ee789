"""`lmer`: lme4's fit without R — lFormula -> devfun -> optimizeLmer -> the fit record (`mkMerMod`).

At the optimum theta, with the PLS solution of `vcheck.core.blocks` (A = Lambda'Z'Z Lambda + I = L L'):

    sigma^2   = pwrss / (n - p)  (REML)  or  pwrss / n  (ML)
    logLik    = -criterion / 2              (the REML log-likelihood for REML fits, as lme4's logLik)
    vcov(beta)= sigma^2 (RX'RX)^-1
    b         = Lambda u                    (conditional modes, Zt's row order)
    condVar   = sigma^2 Lambda A^-1 Lambda'  (its (term, level) diagonal blocks: lme4's postVar)
    G         = sigma^2 Lambda Lambda',     V = Z G Z' + sigma^2 I    (record.LmerFit's methods)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

import vcheck
from vcheck.core import optimize
from vcheck.core.blocks import Factor
from vcheck.core.control import LmerControl, parse_control, start_vector
from vcheck.core.deviance import Devfun, criterion, sigma
from vcheck.core.errors import DataError
from vcheck.core.record import Design, LmerFit
from vcheck.core.theta import relative_factor
from vcheck.core.threads import single_threaded

#: lme4's message for a singular fit (checkConv with check.conv.singular = "message")
SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"


def lmer(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    start: object = None,
    control: Mapping[str, Any] | LmerControl | None = None,
    condVar: bool = True,
) -> LmerFit:
    """Fit a linear mixed model as `lme4::lmer(formula, data, REML, weights=, offset=, subset=,
    na.action=, contrasts=, start=, control=)` (lme4 1.1-31).

    weights/offset: a column name or an array of len(data); subset: a boolean array or an R expression
    (`vcheck.core.subset`); na_action: "na.omit", "na.exclude" or "na.fail"; contrasts: {factor:
    "contr.sum", ...}; start: theta or {"theta": theta}; control: an lmerControl-like mapping
    (`vcheck.core.control`).  Returns an `LmerFit` with source "vcheck".  `condVar=False` skips the
    conditional variances, which for crossed designs cost more than the fit itself.
    """
    from vcheck.core.design import lFormula

    ctrl = parse_control(control)
    design = lFormula(
        formula,
        data,
        REML,
        weights=weights,
        offset=offset,
        subset=subset,
        na_action=na_action,
        contrasts=contrasts,
        control=ctrl,
    )
    return fit_design(design, REML=REML, condVar=condVar, start=start, control=ctrl)


@single_threaded
def fit_design(
    design: Design,
    REML: bool = True,
    *,
    condVar: bool = True,
    control: Mapping[str, Any] | LmerControl | None = None,
    start: Any = None,
) -> LmerFit:
    """Optimize the profiled criterion of a design (lme4's `optimizeLmer` under `control`, an
    lmerControl-like mapping, from `start`: theta or {"theta": theta}) and build the fit record."""
    from vcheck.core.design import start_theta

    ctrl = parse_control(control)
    fn = Devfun(design, REML=REML)
    theta0 = start_theta(design) if start is None else start_vector(start, design.lower)
    if np.any(theta0 < design.lower):
        raise DataError(
            f"start theta {list(theta0)} is below the lower bounds {list(design.lower)} "
            "(lme4 refuses it too: at least one element in x0 < lb)"
        )
    opt = optimize.optimize_lmer(fn, theta0, design.lower, ctrl)
    fit = fit_at(fn, opt.fit_theta if opt.fit_theta is not None else opt.theta, condVar=condVar)
    fit.optinfo.update(optimize.optinfo(opt, ctrl, design.lower, failures=len(fn.failures)))
    if ctrl.use_last_params:  # lme4's devcomp takes the criterion from opt$fval, the rest from pp's state
        fit.criterion, fit.logLik = opt.fval, -opt.fval / 2.0
    return fit


@single_threaded
def fit_at(fn: Devfun, theta: np.ndarray, *, condVar: bool = True) -> LmerFit:
    """The fit record at a given theta (what lme4's `mkMerMod` reads from the deviance's last state)."""
    design, REML = fn.design, fn.REML
    theta = np.asarray(theta, dtype=float)
    f = fn.pls.factor(theta)
    n, p = design.n, design.p
    crit = criterion(f, n, p, REML, fn.ldW)
    s = sigma(f, n, p, REML)
    assert f.beta is not None and f.RX is not None
    Lambdat = design.Lambdat_at(theta)
    u = fn.pls.modes(f)
    b = Lambdat.T @ u
    mu = design.X @ f.beta + design.Zt.T @ b
    if design.offset is not None:
        mu = mu + design.offset
    RXinv = np.linalg.inv(f.RX)
    vcov = s**2 * (RXinv @ RXinv.T)
    names = list(design.X_names)
    ranef = _ranef(design, b)
    return LmerFit(
        source="vcheck",
        formula=design.formula,
        REML=REML,
        n=n,
        X=design.X,
        X_names=names,
        y=design.y,
        Zt=sp.csc_matrix(design.Zt),
        Lambdat=Lambdat,
        Lind=design.Lind,
        theta=theta,
        lower=np.asarray(design.lower, dtype=float),
        cnms=design.cnms,
        flist=design.flist,
        Gp=design.Gp,
        beta=pd.Series(f.beta, index=names, name="beta"),
        sigma=s,
        criterion=crit,
        logLik=-crit / 2.0,
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        varcorr=varcorr(design, theta, s),
        ranef=ranef,
        condVar=_condvar(fn, f, design, theta, s) if condVar else None,
        singular=optimize.is_singular(theta, design.lower),
        versions={"vcheck": vcheck.__version__},
        n_na_dropped=design.n_na_dropped,
        row_index=design.row_index,
        weights=design.weights,
        offset=design.offset,
        mu=np.asarray(mu, dtype=float),
        na_action=design.na_action,
        frame_index=design.frame_index,
        extra={
            "pwrss": f.pwrss,
            "ldL2": f.ldL2,
            "ldRX2": f.ldRX2,
            "u": u,
            "dropped_columns": design.dropped_columns,
        },
    )


def varcorr(design: Design, theta: np.ndarray, s: float) -> pd.DataFrame:
    """`as.data.frame(VarCorr(fit))`: per term its variances, then its covariances (lower triangle,
    column-major: var1 = the column's name, var2 = the row's), sdcor holding sd or correlation; the
    residual last.  Repeated group names are made unique as R's VarCorr names them ("g", "g.1", ...)."""
    rows: list[dict[str, Any]] = []
    for i, label in enumerate(_unique_names(design)):
        lam = relative_factor(design, i, theta)
        cov = s**2 * (lam @ lam.T)
        sd = np.sqrt(np.diag(cov))
        names = design.terms[i].cnms
        for j, nm in enumerate(names):
            rows.append({"grp": label, "var1": nm, "var2": None, "vcov": cov[j, j], "sdcor": sd[j]})
        for c in range(len(names)):
            for r in range(c + 1, len(names)):
                with np.errstate(divide="ignore", invalid="ignore"):
                    corr = cov[r, c] / (sd[r] * sd[c])
                rows.append(
                    {"grp": label, "var1": names[c], "var2": names[r], "vcov": cov[r, c], "sdcor": corr}
                )
    rows.append({"grp": "Residual", "var1": None, "var2": None, "vcov": s**2, "sdcor": s})
    # labels as object columns holding None (R's NA), as vcheck.reference builds them
    columns: dict[str, Any] = {
        k: pd.Series([r[k] for r in rows], dtype=object) for k in ("grp", "var1", "var2")
    }
    columns["vcov"] = np.array([r["vcov"] for r in rows], dtype=float)
    columns["sdcor"] = np.array([r["sdcor"] for r in rows], dtype=float)
    return pd.DataFrame(columns)


def _unique_names(design: Design) -> list[str]:
    """R's make.unique over the terms' group names: the second "g" is "g.1", the third "g.2"."""
    seen: dict[str, int] = {}
    out = []
    for t in design.terms:
        k = seen.get(t.group, 0)
        out.append(t.group if k == 0 else f"{t.group}.{k}")
        seen[t.group] = k + 1
    return out


def _ranef(design: Design, b: np.ndarray) -> dict[str, pd.DataFrame]:
    """Conditional modes per grouping factor: levels x (the cnms of its terms, in term order)."""
    Gp = design.Gp
    blocks: dict[str, list[pd.DataFrame]] = {}
    for i, t in enumerate(design.terms):
        values = b[Gp[i] : Gp[i + 1]].reshape(t.nlevels, t.nc)  # level-major rows of Zt
        blocks.setdefault(t.group, []).append(pd.DataFrame(values, columns=list(t.cnms)))
    out = {}
    for group, frames in blocks.items():
        levels = pd.Index([str(c) for c in design.flist[group].categories], name=group)
        df = frames[0] if len(frames) == 1 else pd.concat(frames, axis=1)
        df.index = levels
        out[group] = df
    return {g: out[g] for g in design.flist if g in out}


def _condvar(fn: Devfun, f: Factor, design: Design, theta: np.ndarray, s: float) -> dict[str, np.ndarray]:
    """sigma^2 Lambda_t (A^-1)_{t,l} Lambda_t' per term t and level l, arranged per grouping factor as an
    (nlevels, k, k) array over the factor's terms.  lme4 computes no covariances between two terms on
    one factor (e.g. `(x || g)`); those entries are NaN here too, so records compare like for like."""
    inv_blocks = fn.pls.inverse_diagonal_blocks(f)
    per_group: dict[str, list[np.ndarray]] = {}
    for i, t in enumerate(design.terms):
        lam = relative_factor(design, i, theta)
        per_group.setdefault(t.group, []).append(s**2 * (lam @ inv_blocks[i] @ lam.T))
    out: dict[str, np.ndarray] = {}
    for group, arrays in per_group.items():
        nl = arrays[0].shape[0]
        k = sum(a.shape[1] for a in arrays)
        full = np.full((nl, k, k), np.nan)
        at = 0
        for a in arrays:
            nc = a.shape[1]
            full[:, at : at + nc, at : at + nc] = a
            at += nc
        out[group] = full
    return {g: out[g] for g in design.flist if g in out}
