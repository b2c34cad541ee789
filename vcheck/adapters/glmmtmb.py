"""glmmTMB as a plug-in: the same formula syntax as lme4, fitted by R's glmmTMB through rpy2.

`glmmTMB(formula, data, REML = REML)` (Gaussian family).  Everything reported is glmmTMB's own:

- beta = `fixef(fit)$cond`, sigma = `sigma(fit)`, criterion = -2 `logLik(fit)` (with REML = TRUE
  glmmTMB's logLik is the restricted likelihood; on sleepstudy it gives lme4's 1743.628);
- varcorr from `VarCorr(fit)$cond`, one covariance matrix per term; glmmTMB builds its terms the lme4
  way and names them as lme4 does, except `(x||g)`, which glmmTMB fits as one diagonal block: its
  columns are handed back to lme4's terms `g` and `g.1` (its zero covariance is structural);
- V = Z G Z' + sigma^2 I with Z = `getME(fit, "Z")` (glmmTMB's own n x q random-effects design) and
  G = bdiag over terms of `I(nlevels) %x% VarCorr(fit)$cond[[term]]`.  That kronecker layout is the
  level-major order lme4's `mkReTrms` gives Z's columns, which glmmTMB shares; the tests check it by
  the GLS beta at this V reproducing glmmTMB's fixef and by V permuting with the rows of the data.

Configurations (`CONFIGURATIONS`): `default` (glmmTMB's nlminb), `optimizer=optim`
(`glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS"))`, the alternative glmmTMB's
documentation gives) and `profile=true` (`glmmTMBControl(profile = TRUE)`: the fixed effects profiled
out of the outer optimization).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vcheck.adapters import _r
from vcheck.adapters.marginal import marginal_V
from vcheck.auditing import capabilities
from vcheck.auditing import formula_terms as _formula
from vcheck.core.errors import Unsupported

_R_FIT = r"""
function(formula, data, REML, optimizer, profile, offset) {
  warnings <- character(0)
  control <- if (optimizer == "optim") {
    glmmTMB::glmmTMBControl(optimizer = stats::optim, optArgs = list(method = "BFGS"), profile = profile)
  } else {
    glmmTMB::glmmTMBControl(profile = profile)
  }
  fit <- withCallingHandlers(
    glmmTMB::glmmTMB(stats::as.formula(formula), data = data, REML = REML, control = control,
                     offset = offset),
    warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  vc <- glmmTMB::VarCorr(fit)$cond
  rt <- fit$modelInfo$reTrms$cond
  nl <- vapply(attr(rt$flist, "assign"), function(i) nlevels(rt$flist[[i]]), 1L)
  Z <- methods::as(methods::as(glmmTMB::getME(fit, "Z"), "generalMatrix"), "TsparseMatrix")
  G <- Matrix::bdiag(lapply(seq_along(vc), function(k)
    Matrix::kronecker(Matrix::Diagonal(nl[k]), methods::as(unclass(vc[[k]])[, , drop = FALSE], "matrix"))))
  G <- methods::as(methods::as(G, "generalMatrix"), "TsparseMatrix")
  if (ncol(Z) != nrow(G)) stop("glmmTMB's Z has ", ncol(Z), " columns but its VarCorr gives ", nrow(G))
  cov <- lapply(vc, function(m) {
    m <- unclass(m)
    attributes(m) <- list(dim = dim(m), dimnames = dimnames(m))
    m
  })
  list(beta = glmmTMB::fixef(fit)$cond,
       sigma = stats::sigma(fit),
       criterion = -2 * as.numeric(stats::logLik(fit)),
       groups = names(vc),
       cov = cov,
       cnms = lapply(cov, function(m) rownames(m)),
       Zi = Z@i, Zj = Z@j, Zx = Z@x, n = nrow(Z), q = ncol(Z),
       Gi = G@i, Gj = G@j, Gx = G@x,
       convergence = fit$fit$convergence,
       pdHess = isTRUE(fit$sdr$pdHess),
       warnings = warnings,
       version = as.character(utils::packageVersion("glmmTMB")))
}
"""


#: glmmTMB's optimizers this adapter offers
OPTIMIZERS: tuple[str, ...] = ("nlminb", "optim")
#: the configurations an audit covers, name -> keyword arguments of `fit`
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "optimizer=optim": {"optimizer": "optim"},
    "profile=true": {"profile": True},
}
#: glmmTMB fits every model family of the audit but a rank-deficient X: glmmTMB 1.1.5 does not drop
#: aliased columns as lme4 does ("negative log-likelihood is NaN at starting parameter values")
CAPABILITIES: tuple[str, ...] = tuple(c for c in capabilities.FAMILIES if c != "rank_deficient")


def control_call(optimizer: str = "nlminb", profile: bool = False) -> str:
    """The `control =` argument as a user writes it (for reports and reproducers)."""
    args = ["optimizer = optim", 'optArgs = list(method = "BFGS")'] if optimizer == "optim" else []
    if profile:
        args.append("profile = TRUE")
    return f"glmmTMBControl({', '.join(args)})"


def fit(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    optimizer: str = "nlminb",
    profile: bool = False,
    offset: Any = None,
    weights: Any = None,
) -> dict[str, Any]:
    """Fit `formula` with glmmTMB (Gaussian, REML or ML) and report it in the plug-in protocol's terms.

    optimizer: "nlminb" (glmmTMB's default) or "optim" (BFGS); profile: glmmTMBControl(profile = TRUE);
    offset: lmer's `offset=` (a column name or an array), passed as glmmTMB's `offset =`, the same model.
    weights: Unsupported.  glmmTMB's Gaussian weights multiply each observation's log-likelihood, which
    is not lme4's prior (precision) weights: on sleepstudy with weights exp(U(-1, 1)), ML, glmmTMB's sigma
    is 28.14 and logLik -1038.1 where lme4 (and nlme with varFixed) give 30.83 and -896.0.
    """
    if optimizer not in OPTIMIZERS:
        raise Unsupported(f"glmmTMB adapter: optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    if weights is not None:
        raise Unsupported(
            "glmmTMB's Gaussian weights multiply the log-likelihood; lme4's are precision weights "
            "(a different model, not passed through)"
        )
    parsed = _formula.parse(formula)
    used, frame = _formula.model_rows(data, parsed)
    off = _formula.per_row(offset, data, frame, "offset")
    ro = _r.robjects()
    _r.require("glmmTMB")
    fit_fn = _r.define(".vcheck_glmmtmb_fit", _R_FIT)
    console: list[str] = []
    out = _r.call(
        fit_fn,
        ro.StrVector([formula]),
        _r.to_r_dataframe(used[list(parsed.variables)]),
        ro.BoolVector([REML]),
        ro.StrVector([optimizer]),
        ro.BoolVector([bool(profile)]),
        ro.NULL if off is None else ro.FloatVector(off),
        what="glmmTMB",
        console=console,
    )
    res = {name: out[i] for i, name in enumerate(out.names)}
    n, q = int(res["n"][0]), int(res["q"][0])
    Z = sp.csc_matrix((_r.numeric(res["Zx"]), (_r.integer(res["Zi"]), _r.integer(res["Zj"]))), shape=(n, q))
    G = sp.csc_matrix((_r.numeric(res["Gx"]), (_r.integer(res["Gi"]), _r.integer(res["Gj"]))), shape=(q, q))
    sigma = float(res["sigma"][0])
    V = marginal_V(Z, G, sigma**2)  # sparse, or an operator when its non-zeros would be too many
    beta_r = res["beta"]
    beta = dict(zip(_r.strings(beta_r.names), _r.numeric(beta_r).tolist(), strict=True))
    blocks = []
    for group, cov, cnms in zip(_r.strings(res["groups"]), res["cov"], res["cnms"], strict=True):
        names = _r.strings(cnms)
        blocks.append(
            (group, names, np.array(cov, dtype=float, copy=True).reshape(len(names), -1, order="F"))
        )
    varcorr = _formula.varcorr_rows(blocks, _formula.varcorr_groups(parsed.terms, used))
    return {
        "beta": beta,
        "sigma": sigma,
        "varcorr": varcorr,
        "V": V,
        "criterion": float(res["criterion"][0]),
        "source": "glmmTMB",
        "REML": REML,
        "formula": formula,
        "configuration": _formula_configuration(optimizer, profile),
        "translation": f"glmmTMB({formula}, data, REML = {'TRUE' if REML else 'FALSE'}, "
        f"control = {control_call(optimizer, profile)})",
        "converged": int(res["convergence"][0]) == 0 and bool(res["pdHess"][0]),
        "warnings": _r.strings(res["warnings"]),
        "pdHess": bool(res["pdHess"][0]),
        "versions": {"glmmTMB": str(res["version"][0])},
        "n": n,
        "console": "".join(console),
    }


def _formula_configuration(optimizer: str, profile: bool) -> str:
    parts = ([] if optimizer == "nlminb" else [f"optimizer={optimizer}"]) + (
        ["profile=true"] if profile else []
    )
    return ",".join(parts) or "default"
