"""The compiled dense kernels on every dense design of lme4's test corpus (no R needed: the corpus is
stored): Lambda' Z'Z Lambda by Lambda's columns equals numpy's two GEMMs bit for bit, and the one-call
factorization (`vcheck.core.compiled_lapack`) gives the numpy and f2py LAPACK path's Factor bit for bit."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from designs import factor_both_ways

from vcheck.core.blocks import DENSE_Q_MAX
from vcheck.core.dense_pls import DensePLS
from vcheck.core.design import lFormula
from vcheck.core.deviance import weighted_design
from vcheck.core.errors import VcheckError
from vcheck.core.pls import Factor
from vcheck.core.record import Design
from vcheck.core.threads import blas_threads
from vcheck.reference import corpus

DESIGN_ARGS = ("weights", "offset", "subset", "na_action", "contrasts")


def dense_designs() -> Iterator[tuple[str, Design]]:
    """(name, design) for every corpus entry whose design vcheck builds and whose q <= DENSE_Q_MAX."""
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
        if design.q <= DENSE_Q_MAX:
            yield name, design


def test_dense_kernel_on_the_corpus_is_the_matrix_product() -> None:
    checked = 0
    rng = np.random.default_rng(0)
    for name, design in dense_designs():
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


def test_compiled_dense_factor_on_the_corpus_is_the_numpy_path() -> None:
    """At lme4's start, at drawn thetas and with a theta on its bound: L, H, RX, beta, the log
    determinants and pwrss of the compiled call are the numpy path's, bit for bit (weights included)."""
    checked = 0
    rng = np.random.default_rng(1)
    for name, design in dense_designs():
        pls = DensePLS(weighted_design(design))
        theta0 = np.asarray(design.theta, dtype=float)
        thetas = [theta0, theta0 * rng.uniform(0.0, 4.0, size=len(theta0)), theta0 * 1e-6]
        thetas[1][np.argmax(np.asarray(design.lower) == 0)] = 0.0  # a variance on its bound
        for theta in thetas:
            got, want = factor_both_ways(pls, theta)
            for g, w in zip(fields(got), fields(want), strict=True):
                assert g.strides == w.strides and np.array_equal(g, w), name
        checked += 1
    assert checked >= 150


def fields(f: Factor) -> list[np.ndarray]:
    assert f.schur is not None and f.H2 is not None and f.RX is not None and f.beta is not None
    return [np.asarray(f.schur.L), f.H2, f.RX, f.beta, np.array([f.ldL2, f.ldRX2, f.pwrss])]  # type: ignore[attr-defined]
