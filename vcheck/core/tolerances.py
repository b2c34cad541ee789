"""Every tolerance vcheck uses, in one place (relative unless named otherwise).

Two regimes:
- at fixed parameters (construction): a quantity computed at one given theta and sigma is held to what
  its numerics allow, not to a constant.  A backward-stable computation is exact for data perturbed by a
  few units of roundoff EPS; how far that moves the answer is set by the problem's conditioning.  With
  kappa_V = an upper bound on cond(V / sigma^2) (`vcheck.auditing.construction.AtTheta.kappa`) and
  e_G the measured error of mapping the implementation's varcorr onto lme4's theta (relative, per term):
    * beta: its normwise backward error in the GLS normal equations (X'V^-1X) beta = X'V^-1(y - o),
      eta = ||X'V^-1(y - o - X beta)|| / (||X'V^-1X|| ||beta|| + ||X'V^-1(y - o)||),
      must be <= beta_tolerance(kappa_V, e_G) = ROUNDOFF * EPS * kappa_V + 2 e_G kappa_V.
      A correct beta of an ill-conditioned problem (large cond(X), large theta) has a tiny backward error
      although its forward error is large; a wrong beta (OLS, another V) has a large one.
    * V: max |V_a - V| / max |V| <= V_tolerance(m, e_G) = ROUNDOFF * EPS * (1 + m) + 2 e_G, m the most
      random effects one entry of V sums over (each entry is a sum of m products plus the residual).
    * criterion: |d_a - d(theta, sigma_a)| <= criterion_tolerance(kappa_V, n + q, e_G): the log
      determinants and the penalized residual sum of squares each carry EPS * kappa_V relative error per
      pivot, ROUNDOFF * EPS * kappa_V * (n + q) in all (absolute, deviance units), plus e_G's share.
    * sigma: sigma_a against the profiled sigma at its theta, sqrt(pwrss / nu) (nu = n - p under REML,
      n under ML).  A relative deviation delta raises the criterion by nu (log s + 1/s - 1) ~ 2 nu delta^2
      (s = (1 + delta)^2), so the deviation that costs the tie tolerance tie is
      sigma_tolerance(nu, tie) = sqrt(tie / (2 nu)): a sigma closer than that is the same optimum.
- at the optimum (optimization): AT_OPTIMUM between two optimizers' answers; two optima whose criteria
  differ by at most tie = max(CRITERION_ABS, CRITERION_REL |criterion|) are the same optimum.

A difference at fixed parameters is a construction disagreement only when it is beyond its roundoff
tolerance AND it matters at the resolution the audit judges optima with: its cost in lme4's criterion
exceeds tie.  For beta that cost is (beta - beta_GLS)' X'V^-1X (beta - beta_GLS) (the criterion at a
non-GLS beta exceeds the profiled one by exactly that), for V a first-order bound on the change of
log det V + r'V^-1 r (`vcheck.auditing.construction.AtTheta.V_cost_bound`), for the criterion its own
difference.  So an
implementation whose numbers are consistent to 1e-10 (statsmodels' beta at its reported varcorr) is not
blamed, while an OLS beta, a V without its residual or a criterion off by a constant still is.

Layouts (Zt pattern, Lind, cnms, level order) are compared exactly; X and Zt values to AT_THETA.
"""

from __future__ import annotations

import math
import sys

#: unit roundoff of IEEE double precision
EPS = sys.float_info.epsilon
#: the modest multiple of EPS a backward-stable computation may carry (summation lengths, two
#: implementations each rounding on their own): a rounding constant, not a tuning knob
ROUNDOFF = 100.0
#: relative tolerance for deterministic design values (X, Zt) that both sides read off the same data
AT_THETA = 1e-10
#: relative tolerance for quantities at the optimum (optimization)
AT_OPTIMUM = 1e-6
#: absolute floor below which differences are noise (used as atol next to the relative tolerances)
ABS_FLOOR = 1e-12
#: exact layouts (Zt pattern, Lind, Gp, cnms, level order) are compared with no tolerance at all
EXACT = 0.0
#: criterion difference (absolute, in deviance units) below which two optima are "the same optimum"
CRITERION_ABS = 1e-6
#: criterion difference relative to the criterion below which two optima are "the same optimum" (the
#: larger of this and CRITERION_ABS counts): BOBYQA stops anywhere within xtol_rel = 1e-4 of a flat
#: optimum, and a sweep of 300 drawn cases put vcheck's and lme4's optima up to 1.1e-7 apart relative
CRITERION_REL = 1e-7
#: lme4's singularity rule: a theta with lower bound 0 below this is on the boundary
SINGULAR_TOL = 1e-4
#: external implementations (glmmTMB, nlme, statsmodels) are judged at this relative tolerance at the optimum
EXTERNAL_OPTIMUM = 1e-3
#: where BOBYQA's path leaves lme4's (ulp-level criterion differences steer it on a flat optimum), both
#: runs stop within nloptwrap's xtol_rel = 1e-4 of the optimum: quantities at the optimum then agree to
#: this, while the criterion still agrees to CRITERION_ABS
PATH_DIVERGED = 1e-3


def beta_tolerance(kappa_V: float, e_G: float = 0.0) -> float:
    """Largest backward error of a correct GLS beta: ROUNDOFF * EPS * kappa_V + 2 e_G kappa_V."""
    return ROUNDOFF * EPS * kappa_V + 2.0 * e_G * kappa_V


def V_tolerance(effects_per_row: int, e_G: float = 0.0) -> float:
    """Largest max-relative difference of a correct V: ROUNDOFF * EPS * (1 + m) + 2 e_G."""
    return ROUNDOFF * EPS * (1 + effects_per_row) + 2.0 * e_G


def criterion_tolerance(kappa_V: float, size: int, e_G: float = 0.0) -> float:
    """Largest absolute difference (deviance units) of a correct criterion at fixed parameters:
    ROUNDOFF * EPS * kappa_V * size + 2 e_G * size, size = n + q."""
    return (ROUNDOFF * EPS * kappa_V + 2.0 * e_G) * max(size, 1)


def tie(criterion: float) -> float:
    """Two optima whose criteria differ by at most this are the same optimum."""
    return max(CRITERION_ABS, CRITERION_REL * abs(criterion)) if math.isfinite(criterion) else CRITERION_ABS


def sigma_tolerance(nu: int, tie_tol: float) -> float:
    """Relative deviation of sigma from the profiled sigma that raises the criterion by tie_tol:
    sqrt(tie_tol / (2 nu))."""
    return math.sqrt(tie_tol / (2.0 * max(nu, 1)))


def sigma_excess(nu: int, sigma: float, profiled: float) -> float:
    """How much a non-profiled sigma raises the criterion: nu (log s + 1/s - 1), s = (sigma/profiled)^2."""
    s = (sigma / profiled) ** 2
    return nu * (math.log(s) + 1.0 / s - 1.0)
