"""lmerControl's check.rankX and check.scaleX on the fixed-effects matrix X (lme4 1.1-31's lFormula).

check.rankX (`chkRank.drop.cols`, tol = 1e-7):
- "message+drop.cols" (default), "warn+drop.cols", "silent.drop.cols": keep qr(X, tol)$pivot[1:rank]
  and say "fixed-effect model matrix is rank deficient so dropping k column(s) / coefficient(s)" as a
  message, a warning, or not at all;
- "stop.deficient": refuse a rank-deficient X ("the fixed-effects model matrix is column rank deficient
  (rank(X) = r < p = p); the fixed effects will be jointly unidentifiable");
- "ignore": X as it is (lme4 then fails in its PLS on a rank-deficient X).

check.scaleX (`checkScaleX`, tol = 1000): among columns not all 0/1, a column sd or a ratio of sds beyond
tol is a scale problem.  "warning" (default) warns, "stop" refuses, "ignore" does not look; the
"*rescale" kinds divide those columns by their sd (X's attribute "scaled:scale"), and only
"warn+rescale" says so ("... auto-rescaled (results NOT adjusted)"); lme4's mkMerMod then multiplies
those coefficients by the sd and warns "auto(un)scaling not yet finished/tested".
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from vcheck.core.control import RANKX, SCALEX, CheckMessage, CheckWarning, ControlError, apply_check
from vcheck.core.model_matrix import drop_rank_deficient, qr_rank, scale_problem

SCALE_TOL = 1000.0
RANK_TOL = 1e-7


def check_rankX(
    X: np.ndarray, names: list[str], kind: str = "message+drop.cols", tol: float = RANK_TOL
) -> tuple[np.ndarray, list[str], list[str], str | None]:
    """(X, names, dropped names, message) after lme4's check.rankX `kind` (module docstring)."""
    if kind not in RANKX:
        raise ControlError(f"undefined option for 'kind': {kind}")
    if kind == "ignore" or X.shape[1] == 0:
        return X, names, [], None
    p = X.shape[1]
    if kind == "stop.deficient":
        rank, _ = qr_rank(X, tol)
        if rank < p:
            raise ControlError(
                f"the fixed-effects model matrix is column rank deficient (rank(X) = {rank} < {p} = p);\n"
                "the fixed effects will be jointly unidentifiable"
            )
        return X, names, [], None
    X2, names2, dropped = drop_rank_deficient(X, names, tol=tol)
    if not dropped:
        return X, names, [], None
    k = len(dropped)
    msg = (
        f"fixed-effect model matrix is rank deficient so dropping {k} column{'s' if k > 1 else ''} / "
        f"coefficient{'s' if k > 1 else ''}"
    )
    if kind == "warn+drop.cols":
        warnings.warn(msg, CheckWarning, stacklevel=2)
    elif kind == "message+drop.cols":
        warnings.warn(msg, CheckMessage, stacklevel=2)
    return X2, names2, dropped, msg


def check_scaleX(
    X: np.ndarray, names: list[str], kind: str = "warning", tol: float = SCALE_TOL
) -> tuple[np.ndarray, dict[str, float] | None, str | None]:
    """(X, scaled:scale or None, message) after lme4's check.scaleX `kind` (module docstring)."""
    if kind not in SCALEX:
        raise ControlError(f"unknown check-scale option: {kind}")
    if kind == "ignore":
        return X, None, None
    problem = scale_problem(X, names, tol)
    if problem is None:
        return X, None, None
    if kind in ("warning", "stop"):
        if kind == "stop":
            raise ControlError(problem)
        warnings.warn(problem, CheckWarning, stacklevel=2)
        return X, None, problem
    cont = ~np.all((X == 0) | (X == 1), axis=0)
    sd = X[:, cont].std(axis=0, ddof=1)
    X = X.copy()
    X[:, cont] = X[:, cont] / sd
    msg = "Some predictor variables are on very different scales: auto-rescaled (results NOT adjusted)"
    if kind == "warn+rescale":
        warnings.warn(msg, CheckWarning, stacklevel=2)
    scale = {
        nm: float(s) for nm, s in zip([n for n, c in zip(names, cont, strict=True) if c], sd, strict=True)
    }
    return X, scale, msg


def unscale_beta(beta: np.ndarray, names: list[str], scale: dict[str, float] | None) -> np.ndarray:
    """mkMerMod's `beta2[names(sc)] <- sc * beta2[names(sc)]` (lme4 multiplies, as it does)."""
    if not scale:
        return beta
    out = np.array(beta, dtype=float)
    for i, nm in enumerate(names):
        if nm in scale and math.isfinite(scale[nm]):
            out[i] = scale[nm] * out[i]
    return out


#: checkZrank's size above which the "*Small" actions skip the rank computation
RANKZ_NONSMALL = 1e6
#: vcheck computes rank(Z) densely; above this many entries it refuses rather than allocate
RANKZ_DENSE_MAX = 2e7


def check_rankZ(Zt: Any, n: int, action: str = "ignore") -> str | None:
    """lme4's checkZrank (check.nobs.vs.rankZ): n <= rank(Z) makes the random effects and the residual
    variance unidentifiable.  "*Small" actions skip matrices with more than 1e6 entries.  Returns the
    message when the check fires (after `apply_check`'s action), else None."""
    if action == "ignore":
        return None
    q, nobs = Zt.shape
    if action.endswith("Small") and q * nobs > RANKZ_NONSMALL:
        return None
    if q * nobs > RANKZ_DENSE_MAX:
        raise ControlError(
            f"check.nobs.vs.rankZ = {action!r}: rank(Z) of a {nobs} x {q} Z is beyond vcheck's dense rank "
            "computation; use 'ignore' (lme4's default) or the '...Small' actions"
        )
    dense = Zt.toarray() if hasattr(Zt, "toarray") else np.asarray(Zt)
    rank = int(np.linalg.matrix_rank(dense))
    if n > rank:
        return None
    msg = (
        f"number of observations (={n}) <= rank(Z) (={rank}); the random-effects parameters and the "
        "residual variance (or scale parameter) are probably unidentifiable"
    )
    return apply_check(action.removesuffix("Small"), msg, ControlError)


def check_nlev_gtreq_5(nlevels: dict[str, int], action: str = "ignore") -> str | None:
    """lme4's check.nlev.gtreq.5: a grouping factor with fewer than 5 levels."""
    if action == "ignore" or all(k >= 5 for k in nlevels.values()):
        return None
    return apply_check(
        action, "grouping factors with < 5 sampled levels may give unreliable estimates", ControlError
    )
