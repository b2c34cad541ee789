"""R's formula language beyond columns and arithmetic: poly(), ns(), bs(), dummy(), '.', offset(),
as.numeric(f), pkg:: prefixes, TRUE/FALSE/T/F/pi, reserved words, escaped backticks, lme4 2.x syntax.

Expected values were printed by R 4.2.2 (stats, splines 4.2.2, lme4 1.1-31) on this machine:
x = c(0.3, 1.7, 2.2, 5, 3.1, 4.4, 0.9); poly(x, 2), ns(x, 3), bs(x, df = 4), ns(x, knots = 2,
intercept = TRUE), sprintf("%.17g").  The live tests at the end compare X's names and values with lme4's.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import vcheck
from vcheck.core.basis import poly
from vcheck.core.errors import DataError, FormulaError
from vcheck.core.parse import parse_formula
from vcheck.core.rexpr import deparse, parse
from vcheck.core.splines import bs, ns
from vcheck.core.terms import terms

X = np.array([0.3, 1.7, 2.2, 5, 3.1, 4.4, 0.9])
POLY2 = [
    [-0.51693094337014844, 0.5471589868560659],
    [-0.19009718562644157, -0.29539820125163352],
    [-0.073370843575117778, -0.4276550772743245],
    [0.58029667191229561, 0.47211187626781331],
    [0.13673657211726511, -0.44202580057845786],
    [0.44022506145070711, 0.044961034898897488],
    [-0.37685933290855977, 0.1008471810816387],
]
POLY2_ALPHA = [2.5142857142857142, 2.8756551141166522]
POLY2_NORM2 = [1, 7.0000000000000009, 18.348571428571432, 31.727914792899405]
NS3 = [
    [0, 0, 0],
    [-0.055410478295451843, 0.55926451170670144, -0.35491786319848356],
    [0.14817759753902193, 0.54621760242057038, -0.34143496364069326],
    [-0.1509388541165142, 0.41309581126624934, 0.7378430428502647],
    [0.5139434592519172, 0.38065194354794468, -0.12734846534015831],
    [0.20158901830559356, 0.35745932374382328, 0.43362192161748736],
    [-0.10220452690671439, 0.31180394735106359, -0.19787558197279037],
]
BS4 = [
    [0, 0, 0, 0],
    [0.55042530025513603, 0.36597199319329521, 0.065378475614114515, 0],
    [0.35491172476233585, 0.48166591217745586, 0.16342236306020827, 0],
    [0, 0, 0, 1],
    [0.11089374636228415, 0.41501776129193191, 0.44087967310380149, 0.033208819241982504],
    [0.0034922072042941153, 0.06922053565654411, 0.44222894810126057, 0.48505830903790098],
    [0.57662727284787263, 0.097917233578573709, 0.0051464106168544969, 0],
]
NS_KNOT2_INTERCEPT = [
    [-0.43252554082239103, 0.58917092768255763, -0.35962381300104174],
    [0.2964532108245892, 0.4299073352849101, -0.21780976483517106],
    [0.42773840604770874, 0.39301233011330144, -0.1286075998582342],
    [-0.14746799580622266, 0.38930849773055498, 0.76237013774888196],
    [0.43109853949473048, 0.36267274271292249, 0.10154441687772528],
    [0.080911409726095618, 0.37382483063588334, 0.54004447336980754],
    [-0.080425336913181031, 0.5147707756769605, -0.31069985109628756],
]
TOL = 1e-12


def test_poly_matches_r_and_its_coefficients_rebuild_it() -> None:
    basis = poly(X, 2)
    np.testing.assert_allclose(basis.values, POLY2, rtol=0, atol=TOL)
    np.testing.assert_allclose(basis.coefs["alpha"], POLY2_ALPHA, rtol=1e-14)
    np.testing.assert_allclose(basis.coefs["norm2"], POLY2_NORM2, rtol=1e-14)
    assert basis.colnames == ("1", "2")
    # predict-safe: the three-term recurrence with the fit's coefficients gives the same columns
    np.testing.assert_allclose(poly(X, 2, coefs=basis.coefs).values, POLY2, rtol=0, atol=TOL)
    np.testing.assert_array_equal(poly(X, 3, raw=True).values, np.column_stack([X, X**2, X**3]))
    with pytest.raises(DataError, match="missing values are not allowed in 'poly'"):
        poly(np.array([1.0, np.nan, 2.0]), 1)
    with pytest.raises(DataError, match="'degree' must be less than number of unique points"):
        poly(np.array([1.0, 2.0, 1.0]), 2)


def test_splines_match_r() -> None:
    np.testing.assert_allclose(ns(X, df=3).values, NS3, rtol=0, atol=TOL)
    np.testing.assert_allclose(ns(X, df=3).coefs["knots"], [1.7, 3.1], rtol=1e-15)
    np.testing.assert_allclose(bs(X, df=4).values, BS4, rtol=0, atol=TOL)
    np.testing.assert_allclose(ns(X, knots=[2.0], intercept=True).values, NS_KNOT2_INTERCEPT, atol=TOL)
    # NA rows stay NA (R's ns/bs compute on the non-NA x)
    with_na = np.r_[X, np.nan]
    out = ns(with_na, df=3).values
    assert np.isnan(out[-1]).all()
    np.testing.assert_allclose(out[:-1], NS3, atol=TOL)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 60
    g = rng.permutation(np.repeat(["a", "b", "c", "d", "e", "f"], 10))
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.uniform(0, 10, size=n),
            "sex": pd.Categorical(rng.choice(["Female", "Male"], size=n)),
            "g": g,
        }
    )


def quiet(formula: str, data: pd.DataFrame) -> vcheck.Design:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vcheck.lFormula(formula, data)


@pytest.mark.parametrize(
    ("formula", "names"),
    [
        ("y ~ poly(x, 2) + (1|g)", ["(Intercept)", "poly(x, 2)1", "poly(x, 2)2"]),
        (
            "y ~ poly(x, 2, raw = TRUE) + (1|g)",
            ["(Intercept)", "poly(x, 2, raw = TRUE)1", "poly(x, 2, raw = TRUE)2"],
        ),
        ("y ~ stats::poly(x, 1) + (1|g)", ["(Intercept)", "stats::poly(x, 1)"]),
        ("y ~ splines::ns(x, 3) + (1|g)", ["(Intercept)"] + [f"splines::ns(x, 3){j}" for j in (1, 2, 3)]),
        (
            "y ~ splines::bs(x, df = 4) + (1|g)",
            ["(Intercept)"] + [f"splines::bs(x, df = 4){j}" for j in (1, 2, 3, 4)],
        ),
        ('y ~ dummy(sex, "Female") + (1|g)', ["(Intercept)", 'dummy(sex, "Female")']),
        ("y ~ dummy(sex) + (1|g)", ["(Intercept)", "dummy(sex)"]),
        ("y ~ . + (1|g)", ["(Intercept)", "x", "sexMale", "gb", "gc", "gd", "ge", "gf"]),
        ("y ~ as.numeric(sex) + (1|g)", ["(Intercept)", "as.numeric(sex)"]),
        ("y ~ TRUE + x + (1|g)", ["(Intercept)", "x"]),
        ("y ~ FALSE + x + (1|g)", ["x"]),
        ("y ~ x + offset(x) + offset(2 * x) + (1|g)", ["(Intercept)", "x"]),
    ],
)
def test_x_column_names(frame: pd.DataFrame, formula: str, names: list[str]) -> None:
    assert quiet(formula, frame).X_names == names


def test_values_in_x(frame: pd.DataFrame) -> None:
    d = quiet("y ~ poly(x, 2) + (1|g)", frame)
    np.testing.assert_allclose(d.X[:, 1:], poly(frame["x"].to_numpy(), 2).values, atol=TOL)
    d = quiet('y ~ 0 + dummy(sex, "Female") + (1|g)', frame)
    np.testing.assert_array_equal(d.X[:, 0], (frame["sex"] == "Female").to_numpy(dtype=float))
    d = quiet("y ~ as.numeric(sex) + (1|g)", frame)
    np.testing.assert_array_equal(d.X[:, 1], frame["sex"].cat.codes.to_numpy() + 1.0)
    d = quiet("y ~ x + offset(x) + offset(2 * x) + (1|g)", frame)
    np.testing.assert_array_equal(d.offset, 3 * frame["x"].to_numpy())
    assert quiet("y ~ x + (1|g)", frame).offset is None
    # dummy() in a random-effects term: lme4's cnms is the call
    d = quiet('y ~ 1 + (0 + dummy(sex, "Female")|g)', frame)
    assert d.terms[0].cnms == ('dummy(sex, "Female")',)


def test_offset_rows_follow_na_omit(frame: pd.DataFrame) -> None:
    data = frame.copy()
    data.loc[3, "x"] = np.nan
    d = quiet("y ~ 1 + offset(x) + (1|g)", data)
    np.testing.assert_array_equal(d.offset, data["x"].drop(index=3).to_numpy())


def test_constants_and_reserved_words(frame: pd.DataFrame) -> None:
    assert deparse(parse("y ~ TRUE")) == "y ~ TRUE"
    assert terms(parse("x + FALSE")).intercept is False
    # a column named TRUE must be backticked, and then it is the column
    data = frame.assign(**{"TRUE": frame["x"] * 2})
    assert quiet("y ~ `TRUE` + (1|g)", data).X_names == ["(Intercept)", "`TRUE`"]
    for name in ("T", "F", "pi"):
        with pytest.raises(FormulaError, match=rf"variable lengths differ \(found for '{name}'\)"):
            quiet(f"y ~ x + {name} + (1|g)", frame)
    # any variable that uses no column is one value in R: "variable lengths differ" (R 4.2.2, lme4 1.1-31)
    for term in ("I(T)", "log(2)", "offset(2)"):
        with pytest.raises(FormulaError, match=re.escape(f"variable lengths differ (found for '{term}')")):
            quiet(f"y ~ x + {term} + (1|g)", frame)
    # ... but inside an expression they are base R's values, and a data column of that name wins
    np.testing.assert_allclose(quiet("y ~ I(pi * x) + (1|g)", frame).X[:, 1], np.pi * frame["x"])
    assert quiet("y ~ pi + (1|g)", frame.assign(pi=frame["x"])).X_names == ["(Intercept)", "pi"]
    with pytest.raises(FormulaError, match="'function' is a reserved word in R"):
        parse_formula("y ~ x + (1|function)")
    assert parse_formula("y ~ x + (1|`function`)").bars[0].group_name == "function"
    # R's escaped backtick inside a backticked name
    data = frame.assign(**{"a`b": frame["x"]})
    assert quiet("y ~ `a\\`b` + (1|g)", data).X_names == ["(Intercept)", "`a\\`b`"]


def test_refusals_say_what(frame: pd.DataFrame) -> None:
    for fn in ("us", "cs", "ar1"):
        with pytest.raises(
            FormulaError, match=rf'lme4 1.1-31 rejects it too \(could not find function "{fn}"\)'
        ):
            parse_formula(f"y ~ x + {fn}(1|g)")
    with pytest.raises(FormulaError, match=r"lme4 1\.1-31 has no such structure either"):
        parse_formula("y ~ x + diag(1|g)")
    with pytest.raises(FormulaError, match=r"mgcv::s\(\) is not supported by vcheck"):
        quiet("y ~ mgcv::s(x) + (1|g)", frame)
    with pytest.raises(FormulaError, match=r"'\.' only in the fixed part"):
        parse_formula("y ~ x + (.|g)", ["y", "x", "g"])
    # bad arguments are named, never a traceback (R fails on each of these too)
    bad = [
        ("y ~ splines::ns(x, knots = 100) + (1|g)", DataError, r"knots \[100.0\] outside Boundary.knots"),
        ("y ~ splines::ns(x, Boundary.knots = 3) + (1|g)", DataError, "Boundary.knots must be two numbers"),
        ('y ~ poly(x, 2, raw = "yes") + (1|g)', FormulaError, "argument is not interpretable as logical"),
        ("y ~ poly(x, 2.5) + (1|g)", FormulaError, "poly\\(\\)'s degree must be a whole number"),
        ("y ~ poly(sex, 2) + (1|g)", FormulaError, "'sex' is a factor, not a number"),
        ('y ~ dummy(sex, "Other") + (1|g)', DataError, "at least some of the levels in f"),
    ]
    for formula, error, message in bad:
        with pytest.raises(error, match=message):
            quiet(formula, frame)
    with pytest.raises(FormulaError, match="unused argument foo in poly"):
        quiet("y ~ poly(x, foo = 2) + (1|g)", frame)


# --- live: lme4's X for the same formulas ------------------------------------------------------------


LIVE = [
    "y ~ poly(x, 2) + (1|g)",
    "y ~ poly(x, 3, raw = TRUE) + (1|g)",
    "y ~ splines::ns(x, 3) + (1|g)",
    "y ~ splines::ns(x, knots = c(2, 5), intercept = TRUE) + (1|g)",
    "y ~ splines::bs(x, df = 5) + (1|g)",
    "y ~ splines::bs(x, degree = 2, knots = 4) + (1|g)",
    'y ~ dummy(sex, "Female") + (0 + dummy(sex, "Female")|g)',
    "y ~ . + (1|g)",
    "y ~ as.numeric(sex) + as.integer(g2) + (1|g)",
    "y ~ TRUE + x + (1|g)",
    'y ~ dummy(g, c("b", "c")) + (1|sex)',
    "y ~ stats::poly(x, 2, raw = TRUE) + (splines::ns(x, 2)|g)",
    "y ~ x + splines::ns(x) + (1|g)",
    "y ~ splines::bs(x, knots = c(2, 2)) + (1|g)",
    "y ~ x + offset(x) + offset(2 * x) + (1|g)",
]


@pytest.mark.r
@pytest.mark.parametrize("formula", LIVE)
def test_x_matches_lme4(frame: pd.DataFrame, formula: str) -> None:
    from vcheck import reference

    data = frame.assign(g2=pd.Categorical(frame["g"]))
    data.loc[5, "x"] = np.nan  # NA rows: the bases are computed on all rows, then the row is dropped
    if formula.startswith("y ~ ."):
        data = data.drop(columns="g2")
    if "poly(x, 2)" in formula:  # R's orthogonal poly() refuses NA (before na.action); so does vcheck
        from vcheck.core.errors import RError

        with pytest.raises(DataError, match="missing values are not allowed in 'poly'"):
            quiet(formula, data)
        with pytest.raises(RError, match="missing values are not allowed in 'poly'"):
            reference.lFormula(formula, data)
        data = data.drop(index=5)
    ours = quiet(formula, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = reference.lFormula(formula, data)
    assert ours.X_names == list(theirs.X_names)
    np.testing.assert_allclose(ours.X, theirs.X, rtol=0, atol=1e-12)
    assert [t.cnms for t in ours.terms] == [t.cnms for t in theirs.terms]


def test_r_arithmetic_to_the_last_bit() -> None:
    from vcheck.core.rmath import r_pow

    # R 4.2.2: sprintf("%.17g", c(0.3, 1.7, -2.2, 5, 3.1)^3), and ^0.5
    x = np.array([0.3, 1.7, -2.2, 5, 3.1])
    cubes = [0.026999999999999996, 4.9129999999999994, -10.648000000000003, 125, 29.791000000000004]
    np.testing.assert_array_equal(r_pow(x, np.full(5, 3.0)), cubes)
    roots = r_pow(x, np.full(5, 0.5))
    np.testing.assert_array_equal(
        roots[[0, 1, 3, 4]], [0.54772255750516607, 1.3038404810405297, 2.2360679774997898, 1.7606816861659009]
    )
    assert np.isnan(roots[2])
    np.testing.assert_array_equal(r_pow(x, np.full(5, 2.0)), x * x)
    np.testing.assert_array_equal(r_pow(np.array([1.0, np.nan]), np.array([np.nan, 0.0])), [1.0, 1.0])


@pytest.mark.r
def test_arithmetic_in_x_is_lme4s_to_the_last_bit(frame: pd.DataFrame) -> None:
    from vcheck import reference

    formula = "y ~ scale(x) + exp(x/3) + log(x) + I(x^3) + I(x^2) + sin(x) + poly(x, 3) + (1|g)"
    ours = quiet(formula, frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = reference.lFormula(formula, frame)
    assert ours.X_names == list(theirs.X_names)
    np.testing.assert_array_equal(ours.X, theirs.X)


# --- properties of the bases (any data) ----------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_subnormal=False), min_size=8, max_size=60
)


@settings(deadline=None)
@given(
    st.integers(min_value=8, max_value=60),
    st.floats(min_value=-100, max_value=100),
    st.floats(min_value=1, max_value=100),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=4),
)
def test_poly_is_orthonormal_and_its_coefficients_rebuild_it(
    n: int, start: float, width: float, rnd: Any, degree: int
) -> None:
    # spread-out x, unsorted: on ill-conditioned x (a far outlier among ties) the three-term recurrence
    # drifts, in R exactly as here (x = c(0, 0, 0, 0, 1, 2, 116, 1.125), degree 4: 1.209395 in both)
    x = np.array([start + width * (i + 0.8 * rnd.random()) / n for i in range(n)])
    rnd.shuffle(x)
    basis = poly(x, degree)
    Z = basis.values
    np.testing.assert_allclose(Z.T @ Z, np.eye(degree), atol=1e-9)
    np.testing.assert_allclose(Z.sum(axis=0), 0.0, atol=1e-9)  # orthogonal to the intercept
    np.testing.assert_allclose(poly(x, degree, coefs=basis.coefs).values, Z, atol=1e-8)


@settings(deadline=None)
@given(_values, st.integers(min_value=4, max_value=7))  # df >= degree + 1 with the intercept
def test_bsplines_with_intercept_sum_to_one(values: list[float], df: int) -> None:
    x = np.array(values)
    if np.ptp(x) == 0:
        return
    B = bs(x, df=df, intercept=True).values
    assert B.shape == (len(x), df)
    np.testing.assert_allclose(B.sum(axis=1), 1.0, atol=1e-12)  # a partition of unity
    assert (B >= -1e-15).all()


def test_poly_recurrence_drifts_as_rs_does() -> None:
    # R 4.2.2: x <- c(0, 0, 0, 0, 1, 2, 116, 1.125); p <- poly(x, 4); max(abs(predict(p, x) - p)) is 1.209395
    x = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 116.0, 1.125])
    basis = poly(x, 4)
    drift = np.abs(poly(x, 4, coefs=basis.coefs).values - basis.values).max()
    assert drift == pytest.approx(1.209395, abs=5e-7)


def test_true_as_a_term_is_the_intercept_in_the_fit() -> None:
    # R 4.2.2 / lme4 1.1-31: REMLcrit(lmer(Reaction ~ Days + TRUE + (1|Subject), sleepstudy)) is 1786.465,
    # the same model as without TRUE (vcheck once read TRUE as a column: a 6% criterion difference)
    from vcheck.reference import examples

    data = examples.load("sleepstudy").data
    with_true = vcheck.lmer("Reaction ~ Days + TRUE + (1|Subject)", data)
    without = vcheck.lmer("Reaction ~ Days + (1|Subject)", data)
    assert with_true.criterion == pytest.approx(1786.465, abs=5e-4)
    assert with_true.criterion == without.criterion
    assert list(with_true.X_names) == ["(Intercept)", "Days"]
