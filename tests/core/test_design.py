"""vcheck.lFormula without R: identical to lme4's frozen construction, lme4's layout rules, bad input.

lme4's layout (lme4 1.1-31, mkReTrms): y = X beta + Z b + e, b = Lambda u;
Zt[Gp_i + l*nc_i + j, r] = M_i[r, j] when row r is in level l of term i's grouping factor;
Lambdat = bdiag over levels of T_i' with T_i lower triangular, filled column-wise from theta.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from vcheck.core.design import RankDeficiencyWarning, ScaleWarning, lFormula, start_theta
from vcheck.core.errors import DataError, FormulaError
from vcheck.core.record import Design
from vcheck.core.tolerances import EXACT
from vcheck.reference import examples


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


# --- against the frozen lme4 references -----------------------------------------------------------------


@pytest.mark.parametrize("name", examples.names())
def test_design_equals_frozen_lme4_lFormula(name: str) -> None:
    ex = examples.load(name)
    assert ex.design is not None
    assert_same_design(quiet_lFormula(ex.formula, ex.data), ex.design)


@pytest.mark.parametrize("name", examples.names())
def test_design_equals_frozen_lme4_fit_layout(name: str) -> None:
    """The fit's layout (Zt, Lind, lower, cnms, Gp, X) is the design's; its Lambdat is ours at its theta."""
    ex = examples.load(name)
    fit = ex.expected
    ours = quiet_lFormula(ex.formula, ex.data)
    assert ours.X_names == fit.X_names
    np.testing.assert_array_equal(ours.X, fit.X)
    assert fit.Zt is not None and fit.Lambdat is not None
    assert_same_sparse(ours.Zt, fit.Zt, "Zt")
    np.testing.assert_array_equal(ours.Lind, fit.Lind)
    np.testing.assert_array_equal(ours.lower, fit.lower)
    np.testing.assert_array_equal(ours.Gp, fit.Gp)
    assert ours.cnms == fit.cnms
    assert fit.theta is not None and len(fit.theta) == len(ours.theta)
    assert_same_sparse(ours.Lambdat_at(fit.theta), sp.csc_matrix(fit.Lambdat), "Lambdat at the fitted theta")


def test_seed_examples_shapes() -> None:
    sleep = quiet_lFormula("Reaction ~ Days + (Days|Subject)", examples.load("sleepstudy").data)
    assert sleep.Zt.shape == (36, 180) and sleep.cnms == [("Subject", ["(Intercept)", "Days"])]
    np.testing.assert_array_equal(sleep.Lind[:6], [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(sleep.theta, [1, 0, 1])
    three = quiet_lFormula("y ~ x1 + (1|sch.cl/tch.cl)", examples.load("three_level").data)
    assert [t.group for t in three.terms] == ["tch.cl:sch.cl", "sch.cl"]
    assert three.Zt.shape == (40, 150)
    star = quiet_lFormula("read ~ cltype + sx + (sx|sch/tch)", examples.load("star_k").data)
    assert star.X_names == ["(Intercept)", "cltypereg", "cltypereg+A", "sxF"]
    assert [g for g, _ in star.cnms] == ["tch:sch", "sch"]


# --- lme4's layout rules, checked directly --------------------------------------------------------------


def nested_frame(seed: int = 1) -> pd.DataFrame:
    """Schools with teachers "1", "2", "3" in every school (inner labels reused), rows shuffled."""
    rng = np.random.default_rng(seed)
    rows = [(s, t) for s in ["s3", "S1", "s2", "s10"] for t in ["1", "2", "3"] for _ in range(4)]
    d = pd.DataFrame(rows, columns=["sch", "tch"])
    d["x"] = rng.normal(size=len(d))
    d["y"] = rng.normal(size=len(d))
    return d.iloc[rng.permutation(len(d))].reset_index(drop=True)


def test_Zt_is_level_major_within_each_term() -> None:
    d = nested_frame()
    D = quiet_lFormula("y ~ x + (x | sch/tch)", d)
    Z = D.Zt.toarray()
    for i, term in enumerate(D.terms):
        codes = np.asarray(D.flist[term.group].codes)
        start = D.Gp[i]
        for r in range(D.n):
            block = Z[start : D.Gp[i + 1], r].reshape(term.nlevels, term.nc)
            expected = np.zeros((term.nlevels, term.nc))
            expected[codes[r]] = [1.0, d["x"].iloc[r]]
            np.testing.assert_array_equal(block, expected)


def test_interaction_levels_are_observed_pairs_in_lme4_order() -> None:
    D = quiet_lFormula("y ~ x + (1 | sch/tch)", nested_frame())
    assert [t.group for t in D.terms] == ["tch:sch", "sch"]
    # levels ordered by (tch level, sch level); sch sorts as this R does: S1, s10, s2, s3
    assert D.terms[0].levels[:4] == ("1:S1", "1:s10", "1:s2", "1:s3")
    assert D.terms[1].levels == ("S1", "s10", "s2", "s3")


def test_Lambdat_is_block_diagonal_with_theta_filled_columnwise() -> None:
    D = quiet_lFormula("y ~ x + (x | sch) + (1 | tch)", nested_frame())
    theta = np.array([2.0, 0.5, 3.0, 7.0])  # (x|sch): T = [[2, 0], [0.5, 3]]; (1|tch): 7
    L = D.Lambdat_at(theta).toarray()
    T = np.array([[2.0, 0.0], [0.5, 3.0]])
    expected = sp.block_diag([sp.kron(sp.eye(4), T.T), 7.0 * sp.eye(3)]).toarray()
    np.testing.assert_array_equal(L, expected)
    np.testing.assert_array_equal(D.lower, [0, -np.inf, 0, 0])
    assert D.Lambdat.has_sorted_indices


def test_terms_reorder_only_when_needed_and_ties_reverse() -> None:
    rng = np.random.default_rng(3)
    n = 60
    d = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "a": rng.choice(["a1", "a2", "a3"], n),
            "b": rng.choice(["b1", "b2", "b3"], n),
            "c": [f"c{i % 10}" for i in range(n)],
        }
    )
    # decreasing (3, 3): no reordering at all
    assert [g for g, _ in quiet_lFormula("y ~ (1|a) + (1|b)", d).cnms] == ["a", "b"]
    # (3, 10, 3): rev(order(nl)) puts c first and reverses the tie between a and b
    assert [g for g, _ in quiet_lFormula("y ~ (1|a) + (1|c) + (1|b)", d).cnms] == ["c", "b", "a"]


@given(seed=st.integers(0, 2**32 - 1))
def test_row_order_only_permutes_Zt_columns(seed: int) -> None:
    d = nested_frame()
    perm = np.random.default_rng(seed).permutation(len(d))
    formula = "y ~ x + (x | sch/tch) + (1 | tch)"
    a = quiet_lFormula(formula, d)
    b = quiet_lFormula(formula, d.iloc[perm])
    assert a.cnms == b.cnms and [t.levels for t in a.terms] == [t.levels for t in b.terms]
    assert_same_sparse(a.Lambdat, b.Lambdat, "Lambdat")
    np.testing.assert_array_equal(a.Lind, b.Lind)
    assert_same_sparse(a.Zt[:, perm], b.Zt, "Zt columns")
    np.testing.assert_array_equal(a.X[perm], b.X)
    assert b.row_index.equals(d.index[perm])


def test_group_code_types_follow_R_factor() -> None:
    d = pd.DataFrame(
        {
            "y": np.arange(8.0),
            "gi": [10, 2, 10, 2, -1, -1, 100000, 100000],
            "gb": [True, False, True, False, True, False, True, False],
            "gf": [1e5, 0.5, 1e5, 0.5, 2.0, 2.0, 0.5, 1e5],
            "gs": ["b", "B", "a", "_", "b", "B", "a", "_"],
            "gc": pd.Categorical(list("xyzxyzxy"), categories=["z", "unused", "y", "x"]),
        }
    )
    levels = {g: quiet_lFormula(f"y ~ (1|{g})", d).terms[0].levels for g in ["gi", "gb", "gf", "gs", "gc"]}
    assert levels == {
        "gi": ("-1", "2", "10", "100000"),
        "gb": ("FALSE", "TRUE"),
        "gf": ("0.5", "2", "1e+05"),
        "gs": ("_", "a", "b", "B"),
        "gc": ("z", "y", "x"),
    }


def test_fixed_part_names_and_codings() -> None:
    rng = np.random.default_rng(5)
    n = 40
    d = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "age": rng.uniform(5, 10, n),
            "cltype": pd.Categorical(rng.choice(["small class", "regular"], n), ["regular", "small class"]),
            "o": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), ["lo", "mid", "hi"], ordered=True),
            "b": rng.random(n) < 0.5,
            "g": [f"g{i % 5}" for i in range(n)],
        }
    )
    D = quiet_lFormula("y ~ cltype + I(age^2) + log(age) + o + b + cltype:age + (1|g)", d)
    assert D.X_names == [
        "(Intercept)", "cltypesmall class", "I(age^2)", "log(age)", "o.L", "o.Q", "bTRUE",
        "cltyperegular:age", "cltypesmall class:age",
    ]  # fmt: skip
    np.testing.assert_allclose(D.X[:, 2], d["age"] ** 2)
    D0 = quiet_lFormula("y ~ 0 + cltype + age + (1|g)", d)
    assert D0.X_names == ["cltyperegular", "cltypesmall class", "age"]


# --- start theta ----------------------------------------------------------------------------------------


def test_start_theta_for_scalar_intercepts_is_lme4s_rule() -> None:
    ex = examples.load("penicillin")
    D = quiet_lFormula(ex.formula, ex.data)
    y = D.y
    v = []
    for name in D.flist:
        codes = np.asarray(D.flist[name].codes)
        means = pd.Series(y).groupby(codes).transform("mean").to_numpy()
        v.append(np.var(means, ddof=1))
    v_e = np.var(y, ddof=1) - sum(v)
    np.testing.assert_allclose(start_theta(D), np.sqrt(np.array(v) / v_e), rtol=1e-14)
    # a random slope anywhere: the rule does not apply
    sleep = quiet_lFormula("Reaction ~ Days + (Days|Subject)", examples.load("sleepstudy").data)
    np.testing.assert_array_equal(start_theta(sleep), sleep.theta)


# --- bad input ------------------------------------------------------------------------------------------


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 30
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "g": [f"g{i % 6}" for i in range(n)],
            "s": ["a"] * n,
            "label": [f"id{i}" for i in range(n)],
            "h": [i % 15 for i in range(n)],
        }
    )


@pytest.mark.parametrize(
    ("formula", "error", "message"),
    [
        ("y ~ x + (1|nope)", DataError, "column 'nope' .* not in the data"),
        ("y ~ x + z1 + (1|g) + (1|z2)", DataError, "columns 'z1', 'z2' .* not in the data"),
        ("label ~ x + (1|g)", DataError, "response 'label' must be numeric"),
        ("y ~ x + (1|s)", DataError, "grouping factors must have > 1 sampled level: 's' has 1 level"),
        ("y ~ x + (1|label)", DataError, r"< number of observations \(problems: 'label' has 30 levels"),
        (
            "y ~ x + (x|h)",
            DataError,
            r"observations \(=30\) <= number of random effects \(=30\) for term \(x \| h\)",
        ),
        ("y ~ x + (1 + x + I(x^2) + I(x^3) + I(x^4)|g)", DataError, r"\(=30\) for term \(1 \+ x"),
        ("y ~ x + ", FormulaError, "malformed formula"),
        ("y ~ x", FormulaError, "no random effects terms"),
        ("y ~ x + (1|factor(g))", FormulaError, "not .factor\\(g\\)."),
        ("y ~ s + (1|g)", DataError, "factor 's' has 1 level \\(a\\) in the rows used; contrasts need 2"),
        ("y ~ x + (0|g)", FormulaError, r"random-effects term \(0 \| g\) has no columns"),
    ],
)
def test_bad_input_names_the_problem(frame: pd.DataFrame, formula: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        lFormula(formula, frame)


def test_infinite_values_are_refused_naming_the_column(frame: pd.DataFrame) -> None:
    frame.loc[3, "x"] = np.inf
    with pytest.raises(DataError, match="'x' has 1 infinite value"):
        lFormula("y ~ x + (1|g)", frame)
    frame.loc[3, "x"] = 0.0
    with pytest.raises(DataError, match=r"'log\(x\)' has 1 infinite value"):
        lFormula("y ~ log(x) + (1|g)", frame.assign(x=frame["x"].abs()))


def test_nan_from_an_expression_drops_the_row_as_na_omit_does(frame: pd.DataFrame) -> None:
    negative = int((frame["x"] < 0).sum())
    D = lFormula("y ~ log(x) + (1|g)", frame)
    assert D.n_na_dropped == negative and D.n == 30 - negative


def test_na_rows_are_dropped_and_counted(frame: pd.DataFrame) -> None:
    frame.loc[[2, 7], "x"] = np.nan
    frame.loc[11, "g"] = None
    frame.loc[5, "label"] = None  # not in the model: keeps its row
    D = lFormula("y ~ x + (1|g)", frame)
    assert D.n_na_dropped == 3 and D.n == 27
    assert list(D.row_index) == [i for i in range(30) if i not in (2, 7, 11)]
    assert D.Zt.shape == (6, 27)


def test_all_rows_na_is_a_clear_error(frame: pd.DataFrame) -> None:
    frame["x"] = np.nan
    with pytest.raises(DataError, match="0 \\(non-NA\\) cases"):
        lFormula("y ~ x + (1|g)", frame)


def test_non_dataframe_and_mixed_columns(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="must be a pandas DataFrame"):
        lFormula("y ~ x + (1|g)", frame.to_dict())  # type: ignore[arg-type]
    frame["g"] = pd.Series([1, "a"] * 15, dtype=object)
    with pytest.raises(DataError, match="column 'g' mixes value types"):
        lFormula("y ~ x + (1|g)", frame)


def test_rank_deficiency_drops_columns_with_a_warning_naming_them(frame: pd.DataFrame) -> None:
    frame["x2"] = 2 * frame["x"]
    with pytest.warns(RankDeficiencyWarning, match="dropping 1 column / coefficient: x2"):
        D = lFormula("y ~ x + x2 + (1|g)", frame)
    assert D.X_names == ["(Intercept)", "x"] and D.dropped_columns == ["x2"] and D.p == 2


def test_badly_scaled_X_warns(frame: pd.DataFrame) -> None:
    frame["big"] = np.arange(30) * 1e5
    with pytest.warns(ScaleWarning, match="Some predictor variables are on very different scales"):
        lFormula("y ~ x + big + (1|g)", frame)


# --- the formula language in the design: offset(), '.', matrix terms ---------------------------------------


def test_offset_terms_are_summed_into_the_design(frame: pd.DataFrame) -> None:
    # R: model.offset(model.frame(y ~ x + offset(x) + offset(2 * x), d)) is 3 x; X has no offset column
    d = lFormula("y ~ x + offset(x) + offset(2 * x) + (1|g)", frame)
    assert d.X_names == ["(Intercept)", "x"]
    np.testing.assert_array_equal(d.offset, frame["x"].to_numpy() + 2 * frame["x"].to_numpy())
    assert lFormula("y ~ x + (1|g)", frame).offset is None


def test_dot_is_every_other_column_in_data_order(frame: pd.DataFrame) -> None:
    # R: terms(y ~ . + (1|g), data = d) puts every column but y in the fixed part (the grouping column too)
    small = frame[["g", "y", "x"]]
    d = lFormula("y ~ . + (1|g)", small)
    assert d.X_names == ["(Intercept)", "gg1", "gg2", "gg3", "gg4", "gg5", "x"]
    assert lFormula("y ~ . - g + (1|g)", small).X_names == ["(Intercept)", "x"]


def test_matrix_terms_in_random_effects(frame: pd.DataFrame) -> None:
    d = lFormula("y ~ 1 + (poly(x, 2)|g)", frame)
    assert d.terms[0].cnms == ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2")
    assert d.Zt.shape == (6 * 3, len(frame))
