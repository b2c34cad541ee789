"""vcheck.core.rstats against live R: mean and var to the last bit, and so lme4's start theta."""

from __future__ import annotations

import numpy as np
import pytest

from vcheck.core.design import lFormula, start_theta

pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def r():  # type: ignore[no-untyped-def]
    from vcheck.reference import rbridge

    return rbridge.session()


@pytest.mark.parametrize("seed", range(3))
def test_r_mean_var_bitwise(r, seed: int) -> None:  # type: ignore[no-untyped-def]
    """vcheck.core.rstats against R's mean and var on drawn vectors: equal to the last bit."""
    from vcheck.core.rstats import r_mean, r_var
    from vcheck.reference import rbridge

    ri = r.ri
    rng = np.random.default_rng(seed)
    for _ in range(50):
        x = rng.normal(size=int(rng.integers(2, 200))) * 10.0 ** rng.integers(-3, 6) + 10.0 ** rng.integers(
            -2, 7
        )
        ri.globalenv["vcheck_x"] = ri.FloatSexpVector(x)
        out = rbridge.from_r(ri.baseenv.find("eval")(ri.parse("c(mean(vcheck_x), var(vcheck_x))")))
        assert [r_mean(x), r_var(x)] == [float(v) for v in out]


@pytest.mark.parametrize("name", ["dyestuff2", "penicillin", "pastes", "three_level"])
def test_start_theta_is_lme4s_bitwise(r, name: str) -> None:  # type: ignore[no-untyped-def]
    """mkLmerDevfun's variance-ratio start, bit for bit (it is the first point of every path)."""
    import vcheck.reference as ref
    from vcheck.reference import examples

    ex = examples.load(name)
    assert np.array_equal(start_theta(lFormula(ex.formula, ex.data)), ref.start_theta(ex.formula, ex.data))
