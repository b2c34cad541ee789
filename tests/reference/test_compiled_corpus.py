"""The compiled dense kernel on every dense design of lme4's test corpus (no R needed: the corpus is
stored): Lambda' Z'Z Lambda by Lambda's columns equals numpy's two GEMMs bit for bit."""

from __future__ import annotations

import warnings

import numpy as np

from vcheck.core.blocks import DENSE_Q_MAX
from vcheck.core.dense_pls import DensePLS
from vcheck.core.design import lFormula
from vcheck.core.errors import VcheckError
from vcheck.core.threads import blas_threads
from vcheck.reference import corpus

DESIGN_ARGS = ("weights", "offset", "subset", "na_action", "contrasts")


def test_dense_kernel_on_the_corpus_is_the_matrix_product() -> None:
    checked = 0
    rng = np.random.default_rng(0)
    for name in corpus.names():
        entry = corpus.load(name)
        if entry.data is None:
            continue
        args = {k: v for k, v in entry.args.items() if k in DESIGN_ARGS}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                design = lFormula(entry.formula, entry.data, **args)
        except (VcheckError, TypeError, ValueError):
            continue  # lme4 itself refuses some of them; the design tests cover those
        if design.q > DENSE_Q_MAX:
            continue
        pls = DensePLS(design)
        for _ in range(3):
            theta = np.asarray(design.theta) * rng.uniform(0.1, 3.0, size=len(design.theta))
            Lam = np.zeros((pls.q, pls.q))
            Lam[pls.lam_rows, pls.lam_cols] = theta[pls.lam_theta]
            with blas_threads(1):
                A, H = pls.products(theta)
                assert np.array_equal(A, Lam.T @ pls.ZtZ @ Lam), name
                assert np.array_equal(H, Lam.T @ pls.ZtXr), name
        checked += 1
    assert checked >= 150  # about 200 of the corpus's designs are dense
