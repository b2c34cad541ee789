"""`vcheck.core.libm`: the C library's results elementwise (what R computes), R's edge cases included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vcheck.core import libm


@pytest.mark.parametrize("name", ["log", "log2", "log10", "log1p", "exp", "expm1", "sin", "cos", "tan"])
def test_every_element_is_the_c_librarys(name: str) -> None:
    x = np.random.default_rng(3).uniform(0.01, 20.0, 5000)
    ours = getattr(libm, name)(x)
    expected = np.array([getattr(math, name)(v) for v in x])
    assert np.array_equal(ours, expected)
    assert ours.shape == x.shape and ours.dtype == np.float64


def test_domain_edges_are_Rs() -> None:
    x = np.array([0.0, -1.0, np.nan, np.inf, 1000.0])
    assert np.array_equal(libm.log(x), [-np.inf, np.nan, np.nan, np.inf, math.log(1000.0)], equal_nan=True)
    assert np.array_equal(libm.log1p(np.array([-1.0, -2.0])), [-np.inf, np.nan], equal_nan=True)
    assert np.array_equal(libm.exp(x), [1.0, math.exp(-1.0), np.nan, np.inf, np.inf], equal_nan=True)


def test_power_is_R_pow() -> None:
    x = np.array([1.0, 2.0, -2.0, 0.0, np.nan, 3.7])
    assert np.array_equal(libm.power(x, 0.0), np.ones(6))  # R: NaN^0 is 1
    assert np.array_equal(libm.power(x, 2.0), x * x, equal_nan=True)
    assert np.isnan(libm.power(np.array([-2.0]), 0.5)[0])
    assert libm.power(np.array([0.0]), -1.0)[0] == np.inf
    assert libm.power(np.array([3.7]), 3.0)[0] == math.pow(3.7, 3.0)
    assert np.array_equal(libm.power(np.array([2.0, 3.0]), np.array([3.0, 0.5])), [8.0, math.sqrt(3.0)])
