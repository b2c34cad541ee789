"""theta's one home (`vcheck.core.theta`): theta <-> relative factors <-> per-term covariances."""

from __future__ import annotations

import numpy as np
import pytest

from vcheck.core.design import lFormula
from vcheck.core.errors import VcheckError
from vcheck.core.theta import (
    NotPositiveSemidefinite,
    chol_psd,
    cov_from_theta,
    lower_from_theta,
    lower_triangle_columnwise,
    relative_factor,
    theta_from_cov,
)
from vcheck.reference import examples


def test_theta_fills_the_lower_triangle_column_by_column() -> None:
    L = lower_from_theta(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 3)
    assert L.tolist() == [[1.0, 0.0, 0.0], [2.0, 4.0, 0.0], [3.0, 5.0, 6.0]]
    assert lower_triangle_columnwise(L).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_relative_factor_reads_each_terms_slice() -> None:
    ex = examples.load("sleepstudy_uncorrelated")
    design = lFormula(ex.formula, ex.data)
    theta = np.array([0.9, 0.2])
    assert [relative_factor(design, k, theta).tolist() for k in range(len(design.terms))] == [
        [[0.9]],
        [[0.2]],
    ]
    ex = examples.load("sleepstudy")
    design = lFormula(ex.formula, ex.data)
    assert relative_factor(design, 0, np.array([1.0, 0.5, 2.0])).tolist() == [[1.0, 0.0], [0.5, 2.0]]


def test_cov_and_theta_are_inverse() -> None:
    cnms = [("g", ["(Intercept)", "x"]), ("h", ["(Intercept)"])]
    theta = np.array([1.2, -0.3, 0.7, 0.5])
    cov = cov_from_theta(theta, cnms, sigma=3.0)
    assert np.allclose(cov[0], 9.0 * np.array([[1.44, -0.36], [-0.36, 0.58]]))
    assert np.allclose(cov[1], [[2.25]])
    assert np.allclose(theta_from_cov(cov, 3.0), theta)
    assert theta_from_cov([], 1.0).shape == (0,)


def test_a_boundary_gives_a_zero_column_and_a_non_psd_matrix_is_refused() -> None:
    assert np.allclose(chol_psd(np.array([[0.0, 0.0], [0.0, 4.0]])), [[0.0, 0.0], [0.0, 2.0]])
    with pytest.raises(NotPositiveSemidefinite, match="not positive semi-definite") as info:
        chol_psd(np.array([[1.0, 2.0], [2.0, 1.0]]))
    assert isinstance(info.value, VcheckError) and isinstance(info.value, ValueError)
