"""R's mean/var/ave to the last bit (vcheck.core.rstats): long-double, left-to-right, two-pass."""

from __future__ import annotations

import numpy as np

from vcheck.core.rstats import r_ave, r_mean, r_var


def test_r_mean_var_known_values() -> None:
    """Values R 4.2.2 prints with sprintf('%.17g'): mean(c(0.1, 0.2, 0.3)) and var of the same."""
    x = np.array([0.1, 0.2, 0.3])
    assert r_mean(x) == 0.2  # R: 0.20000000000000001 (a naive double sum gives 0.20000000000000004)
    assert sum(x) / 3 != 0.2
    assert r_var(x) == 0.0099999999999999985  # R's value, one ulp below 0.01
    assert np.isnan(r_var(np.array([1.0])))


def test_r_ave_is_the_group_mean_per_row() -> None:
    y = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    codes = np.array([0, 1, 0, 1, 2])
    assert np.array_equal(r_ave(y, codes, 3), [2.0, 6.0, 2.0, 6.0, 20.0])


def test_r_ave_is_r_mean_per_level_bit_for_bit() -> None:
    """The vectorized ave (short levels position by position, long ones one at a time) equals R's mean
    computed level by level, on levels short and long, empty ones, and values that cancel."""
    rng = np.random.default_rng(4)
    for trial in range(60):
        n, nl = int(rng.integers(1, 2000)), int(rng.integers(1, 300))
        scale = 10.0 ** int(rng.integers(-5, 8))
        x = rng.standard_normal(n) * scale + rng.standard_normal() * scale * int(rng.integers(0, 1000))
        codes = rng.integers(0, nl, n)
        if trial % 3 == 0:
            codes[: n // 2] = 0  # one level far longer than LONG_GROUP
        if trial % 4 == 0:
            codes = np.minimum(codes, nl // 2)  # empty levels
        expected = np.array([r_mean(x[codes == k]) if np.any(codes == k) else np.nan for k in range(nl)])
        assert np.array_equal(r_ave(x, codes, nl), expected[codes], equal_nan=True), trial
