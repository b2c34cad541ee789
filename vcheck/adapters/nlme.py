"""nlme::lme as a plug-in: nested models only, fitted by R's nlme through rpy2.

Translation: the random terms' grouping factors must form a chain, each nested in the one before
(`(1|a/b)` -> `random = ~1|a/b`, `(x|g)` -> `random = ~x|g`, `(sx|sch/tch)` -> `~sx|sch/tch`).
The adapter writes the list form `random = list(g1 = pdSymm(~lhs), g2 = ...)`, outermost first, with
each level's grouping column the observed interaction of the lme4 term's factors (nlme nests each
level in the previous ones, so `tch` reused across schools is still `tch:sch`).  Several terms on one
factor, all scalar (`(x||g)` = `(1|g) + (0+x|g)`), become one `pdDiag`.  Crossed factors, or a
correlated term beside another term on the same factor, raise NotImplementedError.

Reported, all nlme's own: beta = `fixef(fit)`, sigma = `fit$sigma`, criterion = -2 `logLik(fit)`
(REML: nlme's restricted likelihood uses lme4's constants; sleepstudy gives lme4's 1743.628);
varcorr from each level's `pdMatrix` times sigma^2, split back into lme4's terms.

V: nlme sorts the data by its groups internally.  For one level of grouping V is assembled from
`getVarCov(fit, type = "marginal", individuals = ...)`, each block placed at its individual's rows
(nlme's row names map its order back to the data's).  getVarCov refuses more than one level
("not implemented for multiple levels of nesting"), so there V = sum over levels of
Z_k (I %x% G_k) Z_k' + sigma^2 I, with Z_k = `model.matrix(formula(pd_k), data)` and G_k =
`pdMatrix(pd_k) * sigma^2` from the fitted reStruct, levels from `fit$groups`, in data order.  For one
level both are computed and their largest relative difference is returned as `V_check`.

Configurations (`CONFIGURATIONS`): `default` (`lmeControl(opt = "nlminb")`, nlme's default) and
`opt=optim` (`lmeControl(opt = "optim")`, optim's BFGS).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vcheck.adapters import _r
from vcheck.auditing import capabilities
from vcheck.auditing import formula_terms as _formula
from vcheck.auditing.formula_terms import Formula, Term
from vcheck.core.errors import Unsupported

NOT_EXPRESSIBLE = "model not expressible in nlme::lme"

_R_FIT = r"""
function(fixed, random_text, data, REML, opt, weighted) {
  warnings <- character(0)
  random <- eval(parse(text = random_text))
  rownames(data) <- as.character(seq_len(nrow(data)))
  fit <- withCallingHandlers(
    nlme::lme(stats::as.formula(fixed), data = data, random = random,
              weights = if (weighted) nlme::varFixed(~ .vcheck_inv_w) else NULL,
              method = if (REML) "REML" else "ML",
              control = nlme::lmeControl(returnObject = TRUE, opt = opt)),
    warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  pos <- match(rownames(fit$groups), rownames(data))  # nlme's row i is data row pos[i]
  if (anyNA(pos)) stop("cannot map nlme's rows back to the data")
  s2 <- fit$sigma^2
  re <- fit$modelStruct$reStruct
  lv <- names(fit$groups)  # outermost first
  levels <- lapply(lv, function(k) {
    pd <- re[[k]]
    G <- unclass(nlme::pdMatrix(pd)) * s2
    Zk <- stats::model.matrix(stats::formula(pd), data)
    codes <- integer(nrow(data))
    labels <- as.character(fit$groups[[k]])
    codes[pos] <- as.integer(factor(labels, levels = unique(labels)))
    list(G = G, cnms = colnames(G), Z = Zk, codes = codes)
  })
  names(levels) <- lv
  blocks <- NULL
  if (length(lv) == 1 && !weighted) {
    g <- as.character(fit$groups[[1]])
    ids <- unique(g)
    vc <- nlme::getVarCov(fit, individuals = ids, type = "marginal")
    blocks <- lapply(seq_along(ids), function(k)
      list(rows = pos[g == ids[k]], V = unclass(vc[[k]])))
  }
  list(beta = nlme::fixef(fit), sigma = fit$sigma,
       criterion = -2 * as.numeric(stats::logLik(fit)),
       levels = levels, blocks = blocks,
       warnings = warnings,
       version = as.character(utils::packageVersion("nlme")))
}
"""


def translate(formula: Formula, data: pd.DataFrame) -> tuple[list[tuple[str, list[Term], str]], str]:
    """The nesting chain [(lme4 group, its terms, pd call), ...] outermost first, and the R `random` list."""
    by_group: dict[str, list[Term]] = {}
    for term in formula.terms:
        by_group.setdefault(term.group, []).append(term)
    codes = {g: _formula.group_codes(data, ts[0].factors) for g, ts in by_group.items()}
    chain = sorted(by_group, key=lambda g: codes[g].nunique())
    for outer, inner in itertools.pairwise(chain):
        if not _formula.nested_in(codes[inner], codes[outer]):
            raise Unsupported(
                f"{NOT_EXPRESSIBLE}: grouping factors {outer} and {inner} are crossed, "
                "lme fits nested grouping only"
            )
    levels = []
    for group in chain:
        levels.append((group, by_group[group], _pd_call(group, by_group[group])))
    random = "list(" + ", ".join(f".vcheck_g{k} = {pd_}" for k, (_, _, pd_) in enumerate(levels)) + ")"
    return levels, random


def _pd_call(group: str, terms: list[Term]) -> str:
    if len(terms) == 1:
        return f"nlme::pdSymm(~ {terms[0].lhs})"
    if any(len(t.slopes) + int(t.intercept) != 1 for t in terms):
        raise Unsupported(
            f"{NOT_EXPRESSIBLE} by this adapter: {len(terms)} terms on {group} with a correlated one "
            "(it writes one pdSymm, or one pdDiag of scalar terms, per level)"
        )
    intercept = any(t.intercept for t in terms)
    slopes = [s for t in terms for s in t.slopes]
    return f"nlme::pdDiag(~ {' + '.join((['1'] if intercept else ['0']) + slopes)})"


#: lmeControl(opt = ...) choices
OPTS: tuple[str, ...] = ("nlminb", "optim")
#: the configurations an audit covers, name -> keyword arguments of `fit`
CONFIGURATIONS: dict[str, dict[str, Any]] = {"default": {}, "opt=optim": {"opt": "optim"}}
#: nlme::lme fits nested grouping only (no crossed factors), and a full-rank X only ("Singularity in
#: backsolve" where lme4 drops an aliased column)
CAPABILITIES: tuple[str, ...] = tuple(
    c for c in capabilities.FAMILIES if c not in ("crossed", "rank_deficient")
)


def fit(
    formula: str, data: pd.DataFrame, REML: bool = True, *, opt: str = "nlminb", weights: Any = None
) -> dict[str, Any]:
    """Fit `formula` (lme4 syntax) with nlme::lme (REML or ML), reported in the plug-in protocol's terms.

    opt: lmeControl(opt = "nlminb") (nlme's default) or "optim".  weights: lmer's prior weights w (a
    column name or an array), passed as `weights = varFixed(~ 1/w)`: residual variance sigma^2 / w, the
    same model (V = Z G Z' + sigma^2 W^-1).  nlme::lme has no offset."""
    if opt not in OPTS:
        raise Unsupported(f"nlme adapter: lmeControl(opt = {opt!r}) is not one of {', '.join(OPTS)}")
    parsed = _formula.parse(formula)
    used, model = _formula.model_rows(data, parsed)
    w = _formula.per_row(weights, data, model, "weights")
    levels, random = translate(parsed, used)
    frame = used[list(parsed.variables)].copy()
    if w is not None:
        frame[".vcheck_inv_w"] = 1.0 / w
    for k, (_, terms, _) in enumerate(levels):
        labels = _formula.group_codes(used, terms[0].factors)
        frame[f".vcheck_g{k}"] = pd.Categorical(labels, categories=sorted(labels.unique()))
    ro = _r.robjects()
    _r.require("nlme")
    fit_fn = _r.define(".vcheck_nlme_fit", _R_FIT)
    console: list[str] = []
    out = _r.call(
        fit_fn,
        ro.StrVector([f"{parsed.response} ~ {parsed.fixed}"]),
        ro.StrVector([random]),
        _r.to_r_dataframe(frame),
        ro.BoolVector([REML]),
        ro.StrVector([opt]),
        ro.BoolVector([w is not None]),
        what="nlme::lme",
        console=console,
    )
    res = {name: out[i] for i, name in enumerate(out.names)}
    n = len(used)
    sigma = float(res["sigma"][0])

    pieces = []
    for level in res["levels"]:
        lv = {name: level[i] for i, name in enumerate(level.names)}
        cnms = _r.strings(lv["cnms"])
        G = np.array(lv["G"], dtype=float, copy=True).reshape(len(cnms), len(cnms), order="F")
        Z = np.array(lv["Z"], dtype=float, copy=True).reshape(n, -1, order="F")
        pieces.append((cnms, G, Z, _r.integer(lv["codes"]) - 1))
    V_levels = _V_from_levels(pieces, sigma, n, w)
    extra: dict[str, Any] = {}
    if res["blocks"] is not ro.NULL and len(res["blocks"]):
        V = _V_from_blocks(res["blocks"], n)
        diff = abs(V - V_levels).max()
        extra["V_check"] = float(diff / abs(V).max())
    else:
        V = V_levels

    blocks = [(group, cnms, G) for (group, _, _), (cnms, G, _, _) in zip(levels, pieces, strict=True)]
    varcorr = _formula.varcorr_rows(blocks, _formula.varcorr_groups(parsed.terms, used))
    beta_r = res["beta"]
    method = '"REML"' if REML else '"ML"'
    return {
        "beta": dict(zip(_r.strings(beta_r.names), _r.numeric(beta_r).tolist(), strict=True)),
        "sigma": sigma,
        "varcorr": varcorr,
        "V": V,
        "criterion": float(res["criterion"][0]),
        "source": "nlme",
        "REML": REML,
        "formula": formula,
        "translation": f"lme({parsed.response} ~ {parsed.fixed}, random = {random}, "
        f"method = {method}, control = lmeControl(opt = {opt!r}))",
        "configuration": "default" if opt == "nlminb" else f"opt={opt}",
        "warnings": _r.strings(res["warnings"]),
        "converged": not any("converge" in w for w in _r.strings(res["warnings"])),
        "versions": {"nlme": str(res["version"][0])},
        "n": n,
        "console": "".join(console),
        **extra,
    }


def _V_from_blocks(blocks: Any, n: int) -> sp.csc_matrix:
    """getVarCov's per-individual marginal blocks placed at their rows of the data."""
    rows, cols, vals = [], [], []
    for block in blocks:
        idx = _r.integer(block[0]) - 1
        m = np.array(block[1], dtype=float, copy=True).reshape(len(idx), len(idx), order="F")
        rows.append(np.repeat(idx, len(idx)))
        cols.append(np.tile(idx, len(idx)))
        vals.append(m.ravel())
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def _V_from_levels(
    pieces: list[tuple[list[str], np.ndarray, np.ndarray, np.ndarray]],
    sigma: float,
    n: int,
    weights: np.ndarray | None = None,
) -> sp.csc_matrix:
    """V = sum_k Z_k (I %x% G_k) Z_k' + sigma^2 W^-1 (W = diag(weights), I without), Z_k's columns spread
    over its level's groups."""
    inv_w = np.ones(n) if weights is None else 1.0 / np.asarray(weights, dtype=float)
    V = sigma**2 * sp.diags(inv_w, format="csc")
    for _, G, Z, codes in pieces:
        nl, nc = int(codes.max()) + 1, Z.shape[1]
        rows = np.repeat(np.arange(n), nc)
        cols = (codes[:, None] * nc + np.arange(nc)[None, :]).ravel()
        Zk = sp.csc_matrix((Z.ravel(), (rows, cols)), shape=(n, nl * nc))
        Gk = sp.kron(sp.identity(nl), sp.csr_matrix(G), format="csc")
        V = V + Zk @ Gk @ Zk.T
    return sp.csc_matrix(V)
