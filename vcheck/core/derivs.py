"""lme4's finite-difference derivatives at the optimum (`deriv12`) and its convergence checks (`checkConv`).

deriv12(fn, x, delta = 1e-4), central differences in the order lme4 evaluates them (fx = fn(x) first;
then per j: fn(x + delta e_j), fn(x - delta e_j), and per i < j the four corners):

    g_j    = (f(x + d e_j) - f(x - d e_j)) / (2 d)
    H_jj   = f(x + d e_j) / d^2 - 2 f(x) / (d d) + f(x - d e_j) / d^2
    H_ij   = [f(++) - f(+-) - f(-+) + f(--)] / (2 d)^2

checkConv(derivs, theta, ctrl, lower): singular (any theta with lower bound 0 below check.conv.singular's
tol) -> "boundary (singular) fit: see help('isSingular')" and nothing else is checked; otherwise the
scaled gradient solve(chol(H), g): max(pmin(|scaled|, |g|)) > check.conv.grad's tol -> code -1 "Model
failed to converge with max|grad| = %g (tol = %g, component 1)" (lme4 always names component 1); relTol
-> code -2; then check.conv.hess on H's eigenvalues (codes -3, -4, 2, 3).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vcheck.core.control import CheckWarning, ControlError, LmerControl

SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"


def deriv12(fn: Callable[[np.ndarray], float], x: np.ndarray, delta: float = 1e-4) -> dict[str, np.ndarray]:
    """lme4:::deriv12 without bounds (as optwrap calls it): {"gradient": g, "Hessian": H}."""
    x = np.asarray(x, dtype=float)
    nx = len(x)
    fx = float(fn(x.copy()))
    H = np.full((nx, nx), np.nan)
    g = np.zeros(nx)
    xadd, xsub = x + delta, x - delta

    def at(pos: dict[int, float]) -> float:
        y = x.copy()
        for i, v in pos.items():
            y[i] = v
        return float(fn(y))

    d2 = delta * delta
    two = (delta + delta) * (delta + delta)
    for j in range(nx):
        fadd = at({j: xadd[j]})
        fsub = at({j: xsub[j]})
        H[j, j] = fadd / d2 - 2 * fx / (delta * delta) + fsub / d2
        g[j] = (fadd - fsub) / (delta + delta)
        for i in range(j):
            faa = at({i: xadd[i], j: xadd[j]})
            fas = at({i: xadd[i], j: xsub[j]})
            fsa = at({i: xsub[i], j: xadd[j]})
            fss = at({i: xsub[i], j: xsub[j]})
            H[i, j] = H[j, i] = faa / two - fas / two - fsa / two + fss / two
    return {"gradient": g, "Hessian": H}


@dataclass
class ConvResult:
    """What lme4 stores in optinfo$conv$lme4: codes and messages (empty when nothing was flagged)."""

    code: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def _act(action: str, message: str) -> None:
    if action == "stop":
        raise ControlError(message)
    if action == "warning":
        warnings.warn(message, CheckWarning, stacklevel=3)
    # "message": recorded in optinfo (lme4 prints it); no Python warning, so every singular fit is quiet


def check_conv(
    derivs: dict[str, np.ndarray] | None, theta: np.ndarray, control: LmerControl, lower: np.ndarray
) -> ConvResult | None:
    """lme4's `checkConv` (module docstring); None where lme4 returns NULL (no derivatives)."""
    res = ConvResult()
    theta, lower = np.asarray(theta, dtype=float), np.asarray(lower, dtype=float)
    sing = control.check_conv_singular
    is_singular = bool(np.any(theta[lower == 0] < sing.tol))
    if sing.action != "ignore" and is_singular:
        res.messages.append(SINGULAR_MESSAGE)
        _act(sing.action, SINGULAR_MESSAGE)
    if is_singular:
        return res
    if derivs is None:
        return None
    g, H = np.asarray(derivs["gradient"]), np.asarray(derivs["Hessian"])
    if np.any(np.isnan(g)):
        return ConvResult([-5], ["Gradient contains NAs"])
    grad = control.check_conv_grad
    if grad.action != "ignore":
        msg = None
        try:
            R = np.linalg.cholesky(H).T  # R's chol: upper triangular, H = R'R
            scgrad = np.linalg.solve(R, g)
            ok = not np.any(np.isnan(scgrad))
        except np.linalg.LinAlgError:
            ok = False
        if not ok:
            msg = "unable to evaluate scaled gradient"
            res.code = [-1]
        else:
            maxmingrad = float(np.max(np.minimum(np.abs(scgrad), np.abs(g))))
            if maxmingrad > grad.tol:
                res.code = [-1]
                msg = (
                    f"Model failed to converge with max|grad| = {maxmingrad:g} "
                    f"(tol = {grad.tol:g}, component 1)"
                )
        if msg is not None:
            res.messages = [msg]
            _act(grad.action, msg)
        if grad.relTol is not None:
            max_rel = float(np.max(np.abs(g / theta)))
            if max_rel > grad.relTol:
                res.code = [-2]
                msg = (
                    f"Model failed to converge with max|relative grad| = {max_rel:g} (tol = {grad.relTol:g})"
                )
                res.messages = [msg]
                _act(grad.action, msg)
    hess = control.check_conv_hess
    if hess.action != "ignore":
        codes, messages = check_hess(H, hess.tol)
        if any(c != 0 for c in codes):
            res.code = codes
            res.messages = [*res.messages, *messages]
            _act(hess.action, ";".join(messages))
    return res


def check_hess(H: np.ndarray, tol: float, hesstype: str = "") -> tuple[list[int], list[str]]:
    """lme4's `checkHess`: codes and messages from H's eigenvalues (the code list is [0] when fine)."""
    codes: list[int] = []
    messages: list[str] = []
    try:
        if not np.all(np.isfinite(H)):
            raise np.linalg.LinAlgError
        evd = np.linalg.eigvalsh(H)[::-1]
    except np.linalg.LinAlgError:
        return [-6], ["Problem with Hessian check (infinite or missing values?)"]
    negative = int(np.sum(evd < -tol))
    if negative:
        return [-3], [
            f"Model failed to converge: degenerate {hesstype} Hessian with {negative} negative eigenvalues"
        ]
    zero = int(np.sum(np.abs(evd) < tol))
    chol_fails = False
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        chol_fails = True
    if zero or chol_fails:
        return [-4], [f"{hesstype} Hessian is numerically singular: parameters are not uniquely determined"]
    if evd.max() * tol > 1:
        codes.append(2)
        messages.append("Model is nearly unidentifiable: very large eigenvalue\n - Rescale variables?")
    if evd.min() / evd.max() < tol:
        codes.append(3)
        messages.append("Model is nearly unidentifiable: large eigenvalue ratio\n - Rescale variables?")
    return (codes or [0]), messages
