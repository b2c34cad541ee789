"""Every tolerance vcheck uses, in one place (relative unless named otherwise).

Two regimes, as the brief sets them:
- AT_THETA: deterministic quantities computed at one given theta (X, Zt, Lambdat, G, V, beta, the
  REML/ML criterion).  Construction differences live here; lme4 and vcheck agree to ~1e-12.
- AT_OPTIMUM: quantities at an optimizer's answer (theta, sigma, beta, G, V, criterion).  lme4 itself
  moves by ~4e-10 relative when the rows are shuffled (the optimizer path changes in the last digits);
  the same BOBYQA on the same deviance reaches lme4's theta to ~8 digits.  A larger gap is a finding.
"""

from __future__ import annotations

#: relative tolerance for quantities at a fixed theta (construction)
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
