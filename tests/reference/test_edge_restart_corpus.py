"""vcheck's edge restart on lme4's tests/test-isSingular.R model (the stored corpus, no R needed): the
restart is kept, its answer is at least as good as lme4's, and the fit has optwrap's derivatives at
the kept answer only (the first run's deriv12 is not taken)."""

from __future__ import annotations

import warnings

import numpy as np

import vcheck
from vcheck.core.derivs import deriv12
from vcheck.core.threads import blas_threads
from vcheck.reference import corpus

NAME = "test-isSingular_L75_a92bf7"


def test_edge_restart_keeps_the_lower_answer_with_its_own_derivatives() -> None:
    entry = corpus.load(NAME)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = vcheck.lmer(entry.formula, entry.data, REML=bool(entry.REML), condVar=False)
        design = vcheck.lFormula(entry.formula, entry.data)
    info = fit.optinfo
    assert info["edge_restart"] > 0 and not info["restarted"] and info["snapped"] == []
    assert fit.criterion is not None and fit.criterion <= entry.lme4["criterion"]
    k = len(info["val"])
    n_deriv12 = 1 + 2 * k + 4 * k * (k - 1) // 2
    # the optimizer's two runs, one deriv12 (at the kept answer) and optwrap's closing fn(par) of each
    assert info["evaluations"] == info["feval"] + n_deriv12 + 2
    devfun = vcheck.devfun(design, REML=bool(entry.REML))
    with blas_threads():
        want = deriv12(devfun, np.asarray(info["val"]))
    for key, value in want.items():
        assert np.array_equal(np.asarray(info["derivs"][key]), value), key
