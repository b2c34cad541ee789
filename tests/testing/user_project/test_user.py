"""A user's project: an LMM implementation checked against lme4 with vcheck.testing, one test per case.

`my_fit` is vcheck's own lmer (it must agree); `faulty_fit` makes the classic mistake of leaving the
residual variance out of V (V = Z G Z' instead of Z G Z' + sigma^2 I), which must fail with a table.
Run by tests/testing/test_user_project.py in a subprocess (`pytest --junitxml`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

import vcheck
from vcheck.testing import assert_agrees, cases


def my_fit(formula, data, REML):
    return vcheck.lmer(formula, data, REML=REML)


def faulty_fit(formula, data, REML):
    fit = vcheck.lmer(formula, data, REML=REML)
    Z = sp.csr_matrix(fit.Zt).T
    G = fit.G
    rows = fit.varcorr[fit.varcorr["grp"] != "Residual"]
    return {
        "beta": dict(zip(fit.X_names, fit.beta, strict=True)),
        "sigma": fit.sigma,
        "varcorr": [
            (r.grp, r.var1, None if r.var2 is None or r.var2 != r.var2 else r.var2, r.vcov)
            for r in rows.itertuples(index=False)
        ],
        "V": np.asarray((Z @ G @ Z.T).todense()),  # the residual sigma^2 I forgotten
    }


@cases(examples=3, seed=0, families=("intercept", "slope"))
def test_against_lme4(case):
    assert_agrees(my_fit, case)


@cases(examples=1, seed=0, families=("intercept",))
def test_faulty_against_lme4(case):
    assert_agrees(faulty_fit, case)
