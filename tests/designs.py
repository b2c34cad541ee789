"""Shared by the design tests (tests/core, tests/reference): two designs compared bit for bit, and data
of InstEval's shape."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from vcheck.core.design import RankDeficiencyWarning, ScaleWarning, lFormula
from vcheck.core.record import Design
from vcheck.core.tolerances import EXACT


def assert_same_sparse(a: sp.spmatrix, b: sp.spmatrix, what: str) -> None:
    """Same shape, same stored pattern (CSC, sorted), same values: bit for bit."""
    A, B = sp.csc_matrix(a), sp.csc_matrix(b)
    A.sort_indices()
    B.sort_indices()
    assert A.shape == B.shape, f"{what}: shape {A.shape} != {B.shape}"
    assert np.array_equal(A.indptr, B.indptr), f"{what}: column counts differ"
    assert np.array_equal(A.indices, B.indices), f"{what}: row indices differ"
    assert np.array_equal(A.data, B.data), f"{what}: values differ (max {np.abs(A.data - B.data).max():.3g})"


def assert_same_design(ours: Design, lme4: Design) -> None:
    """Every quantity of lme4's lFormula, exactly (tolerance EXACT = 0)."""
    assert ours.X_names == lme4.X_names
    np.testing.assert_allclose(ours.X, lme4.X, rtol=EXACT, atol=EXACT)
    np.testing.assert_array_equal(ours.y, lme4.y)
    assert_same_sparse(ours.Zt, lme4.Zt, "Zt")
    assert_same_sparse(ours.Lambdat, lme4.Lambdat, "Lambdat")
    np.testing.assert_array_equal(ours.Lind, lme4.Lind)
    np.testing.assert_array_equal(ours.theta, lme4.theta)
    np.testing.assert_array_equal(ours.lower, lme4.lower)
    np.testing.assert_array_equal(ours.Gp, lme4.Gp)
    assert ours.cnms == lme4.cnms
    assert list(ours.flist) == list(lme4.flist)
    for name in ours.flist:
        assert list(ours.flist[name].categories) == list(lme4.flist[name].categories), name
        np.testing.assert_array_equal(ours.flist[name].codes, lme4.flist[name].codes)
    assert [t.levels for t in ours.terms] == [t.levels for t in lme4.terms]
    assert ours.row_index.equals(lme4.row_index)
    assert ours.n_na_dropped == lme4.n_na_dropped
    assert ours.dropped_columns == lme4.dropped_columns


def quiet_lFormula(formula: str, data: pd.DataFrame) -> Design:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)
        warnings.simplefilter("ignore", ScaleWarning)
        return lFormula(formula, data)


def departments(seed: int = 5, ns: int = 1500, nd: int = 360, ndept: int = 8, per: int = 6) -> pd.DataFrame:
    """InstEval's shape, small: students rate `per` lecturers of their own department, and 15% of them
    one lecturer of any department; rows shuffled."""
    rng = np.random.default_rng(seed)
    dept_of = np.arange(nd) % ndept
    home = rng.integers(0, ndept, ns)
    s = np.repeat(np.arange(ns), per)
    d = np.concatenate([rng.choice(np.flatnonzero(dept_of == h), per, replace=False) for h in home])
    cross = np.flatnonzero(rng.random(ns) < 0.15) * per
    d[cross] = rng.integers(0, nd, len(cross))
    order = rng.permutation(len(s))
    s, d = s[order], d[order]
    y = rng.normal(size=ns)[s] * 0.5 + rng.normal(size=nd)[d] + rng.normal(size=len(s))
    cat = pd.Categorical.from_codes
    return pd.DataFrame(
        {
            "y": y,
            "x": rng.normal(size=len(s)),
            "s": cat(s, pd.Index([f"s{i}" for i in range(ns)])),
            "d": cat(d, pd.Index([f"d{i}" for i in range(nd)])),
        }
    )


def factor_both_ways(pls: Any, theta: np.ndarray) -> tuple[Any, Any]:
    """A DensePLS's factor at theta from the one compiled call and from the numpy/f2py path."""
    from vcheck.core import dense_pls
    from vcheck.core.threads import blas_threads

    with blas_threads(1):
        got = pls.factor(theta)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dense_pls, "dense_factor_kernel", lambda: None)
            want = pls.factor(theta)
    return got, want
