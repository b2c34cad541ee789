"""The built-in examples and lme4's frozen answers, read without R.

The seed note's numbers are checked against the frozen files, and every frozen record is checked for
internal consistency (Lambdat from theta and Lind, V-based GLS beta equals lme4's beta, shapes, counts).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vcheck.core.tolerances import AT_THETA
from vcheck.reference import examples

SEED_EXAMPLES = ["sleepstudy", "three_level", "star_k"]


def G_top_left(fit, k: int) -> np.ndarray:
    """G = sigma^2 Lambda Lambda' (= sigma^2 crossprod(Lambdat)), its leading k x k block."""
    L = fit.Lambdat.toarray()
    return (fit.sigma**2 * (L.T @ L))[:k, :k]


def gls_beta(fit) -> np.ndarray:
    """The seed's getFE: (X' V^-1 X)^-1 X' V^-1 y with V = sigma^2 (Z Lambda Lambda' Z' + I), dense."""
    Z = fit.Zt.T.toarray()
    L = fit.Lambdat.T.toarray()
    ZL = Z @ L
    V = fit.sigma**2 * (ZL @ ZL.T + np.eye(fit.n))
    Vi_X = np.linalg.solve(V, fit.X)
    return np.linalg.solve(fit.X.T @ Vi_X, Vi_X.T @ fit.y)


def test_names_cover_the_seed_and_a_dozen_more() -> None:
    names = examples.names()
    assert names[:3] == SEED_EXAMPLES
    assert len(names) >= 15
    assert len(set(names)) == len(names)


def test_unknown_example_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown example 'nope'"):
        examples.load("nope")


def test_sleepstudy_seed_numbers_frozen() -> None:
    ex = examples.load("sleepstudy")
    fit = ex.expected
    assert ex.formula == "Reaction ~ Days + (Days|Subject)" and ex.REML
    assert fit.source == "lme4 (frozen)"
    np.testing.assert_allclose(fit.beta.to_numpy(), [251.40510, 10.46729], atol=5e-6)
    assert list(fit.beta.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(G_top_left(fit, 2), [[612.100158, 9.604409], [9.604409, 35.071714]], atol=5e-7)
    assert fit.criterion == pytest.approx(1743.628, abs=5e-4)
    assert not fit.singular
    assert fit.n == 180 and fit.Zt.shape == (36, 180)


def test_three_level_seed_numbers_frozen() -> None:
    ex = examples.load("three_level")
    fit = ex.expected
    assert ex.formula == "y ~ x1 + (1|sch.cl/tch.cl)"
    np.testing.assert_allclose(fit.beta.to_numpy(), [0.3758945, 0.3587507], atol=5e-8)
    assert fit.criterion == pytest.approx(490.1123, abs=5e-5)
    assert [g for g, _ in fit.cnms] == ["tch.cl:sch.cl", "sch.cl"]
    assert fit.Zt.shape == (40, 150)
    # the data are the note's: its first rows, to the printed digits
    np.testing.assert_allclose(ex.data["y"].to_numpy()[:3], [0.40529698, 1.11089492, 0.60751986], atol=5e-9)
    assert ex.data["sch.cl"].tolist()[:16] == ["a"] * 15 + ["b"]
    assert ex.data["tch.cl"].dtype == np.int64


def test_star_sample_seed_numbers_frozen() -> None:
    ex = examples.load("star_k")
    fit = ex.expected
    assert ex.formula == "read ~ cltype + sx + (sx|sch/tch)"
    np.testing.assert_allclose(fit.beta.to_numpy(), [438.908738, -5.923652, -2.209975, 2.045771], atol=5e-7)
    assert list(fit.beta.index) == ["(Intercept)", "cltypereg", "cltypereg+A", "sxF"]
    assert fit.singular
    assert "boundary (singular) fit: see help('isSingular')" in fit.optinfo["lme4_messages"]
    assert len(ex.data) == 1265 and fit.n == 1150 and fit.n_na_dropped == 115
    assert list(ex.data["cltype"].cat.categories) == ["small", "reg", "reg+A"]


@pytest.mark.parametrize("name", SEED_EXAMPLES)
def test_frozen_gls_beta_equals_lme4_beta(name: str) -> None:
    """The seed's identity, on lme4's frozen matrices: GLS beta at V is lme4's beta."""
    fit = examples.load(name).expected
    np.testing.assert_allclose(gls_beta(fit), fit.beta.to_numpy(), rtol=1e-8)


@pytest.mark.parametrize("name", examples.names())
def test_frozen_record_is_consistent(name: str) -> None:
    ex = examples.load(name)
    fit, design = ex.expected, ex.design
    assert design is not None
    n, q = fit.n, fit.Zt.shape[0]
    assert fit.X.shape == (n, len(fit.X_names)) and fit.y.shape == (n,)
    assert fit.Zt.shape == (q, n) and fit.Lambdat.shape == (q, q)
    assert fit.Gp[0] == 0 and fit.Gp[-1] == q and len(fit.Gp) == len(fit.cnms) + 1
    # Lind: Lambdat.data[k] = theta[Lind[k]], 0-based
    assert fit.Lind.min() == 0 and fit.Lind.max() == len(fit.theta) - 1
    np.testing.assert_array_equal(fit.Lambdat.data, fit.theta[fit.Lind])
    # lFormula's template at the fitted theta is the fit's Lambdat; both share X, y, Zt exactly
    np.testing.assert_array_equal(design.Lambdat_at(fit.theta).toarray(), fit.Lambdat.toarray())
    np.testing.assert_array_equal(design.X, fit.X)
    np.testing.assert_array_equal(design.y, fit.y)
    assert (design.Zt != fit.Zt).nnz == 0
    assert design.cnms == fit.cnms
    np.testing.assert_array_equal(design.Gp, fit.Gp)
    np.testing.assert_array_equal(design.lower, fit.lower)
    # rows: NA rows dropped and counted, the rest kept in data order
    assert len(fit.row_index) == n and n + fit.n_na_dropped == len(ex.data)
    assert fit.row_index.is_monotonic_increasing
    # grouping factors: one code per kept row, levels as R orders them
    for group, _ in fit.cnms:
        assert group in fit.flist and len(fit.flist[group]) == n
    # G is symmetric positive semi-definite; the sizes of ranef/condVar agree with the terms
    G = G_top_left(fit, q)
    assert np.allclose(G, G.T) and np.linalg.eigvalsh(G).min() > -1e-8 * max(1.0, np.abs(G).max())
    assert fit.ranef is not None and fit.condVar is not None
    for group, modes in fit.ranef.items():
        assert fit.condVar[group].shape == (len(modes), modes.shape[1], modes.shape[1])
    assert fit.vcov is not None and list(fit.vcov.index) == fit.X_names
    assert fit.varcorr is not None and fit.varcorr["grp"].iloc[-1] == "Residual"
    assert fit.varcorr["vcov"].iloc[-1] == pytest.approx(fit.sigma**2, rel=AT_THETA)
    assert fit.logLik == pytest.approx(-fit.criterion / 2, rel=AT_THETA)
    for key in ("R", "lme4", "Matrix", "locale", "LC_COLLATE", "collation"):
        assert ex.versions[key] and fit.versions[key] == ex.versions[key]
    assert fit.optinfo["optimizer"] == "nloptwrap" and fit.optinfo["feval"] > 0


@pytest.mark.parametrize("name", examples.names())
def test_data_columns_follow_the_spec(name: str) -> None:
    ex = examples.load(name)
    assert [c["name"] for c in ex.columns] == list(ex.data.columns)
    for spec in ex.columns:
        col = ex.data[spec["name"]]
        assert int(col.isna().sum()) == spec["n_na"]
        kind = spec["kind"]
        if kind in ("factor", "ordered"):
            assert isinstance(col.dtype, pd.CategoricalDtype)
            assert list(col.cat.categories) == spec["levels"]
            assert col.cat.ordered == (kind == "ordered")
        elif kind == "float":
            assert col.dtype == np.float64
        elif kind == "int":
            assert pd.api.types.is_integer_dtype(col.dtype)
        elif kind == "bool":
            assert pd.api.types.is_bool_dtype(col.dtype)
        else:
            assert pd.api.types.is_string_dtype(col.dtype)


def test_examples_cover_the_syntax() -> None:
    formulas = {n: examples.load(n).formula for n in examples.names()}
    joined = " ".join(formulas.values())
    for piece in ["||", "/", "0 +", "I(", "log(", "*", "recipe:replicate", "(0 + f|g)", "(f|g)"]:
        assert piece in joined, piece
    assert not examples.load("sleepstudy_ml").REML
    assert examples.load("dyestuff2").expected.singular
    assert examples.load("rank_deficient").expected.extra["dropped_columns"] == ["x2"]
    kinds = {c["kind"] for n in examples.names() for c in examples.load(n).columns}
    assert kinds == {"float", "int", "bool", "string", "factor", "ordered"}


def test_frozen_strings_sort_in_the_recorded_collation() -> None:
    """nested3's codes are mixed case: R's factor() sorted them with the recorded collation.

    Debian's R is built with ICU, so under LC_COLLATE=C.UTF-8 it sorts with ICU's root collator
    (a < B < c < D), not in byte order (B < D < a < c), which only the C/POSIX collation gives.
    """
    ex = examples.load("nested3")
    levels = list(ex.expected.flist["district"].categories)
    codes = sorted(set(ex.data["district"]))
    collation = ex.versions["collation"]
    if collation == "C (byte order)":
        assert levels == codes
    else:
        assert collation == "ICU root"
        assert levels == ["a", "B", "c", "D"]
        assert list(ex.design.flist["class:(school:district)"].categories)[:3] == [
            "1:s1:a",
            "1:s1:B",
            "1:s1:c",
        ]


def test_examples_load_without_rpy2() -> None:
    code = (
        "import sys; sys.modules['rpy2'] = None\n"
        "from vcheck import examples\n"
        "ex = examples.load('star_k'); assert ex.expected.singular\n"
        "assert 'rpy2' not in sys.modules or sys.modules['rpy2'] is None\n"
        "print(len(examples.names()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout.strip()) >= 15


@pytest.mark.parametrize("name", ["three_level", "penicillin", "dyestuff2", "cake"])
def test_theta_start_for_scalar_intercepts(name: str) -> None:
    """lmer starts at sqrt(v_f / v_e), v_f = var(ave(y, f)), v_e = var(y) - sum(v_f), when every term is
    a scalar intercept on its own factor; lFormula's theta stays 1."""
    ex = examples.load(name)
    fit = ex.expected
    y = pd.Series(fit.y)
    v = np.array([y.groupby(np.asarray(fit.flist[g].codes)).transform("mean").var() for g, _ in fit.cnms])
    v_e = y.var() - v.sum()
    assert ex.design is not None and np.all(ex.design.theta == 1.0)
    np.testing.assert_allclose(ex.theta_start, np.sqrt(v / v_e), rtol=1e-12)
