"""vcheck.lFormula against live lme4 (`vcheck.reference.lFormula`, lme4 1.1-31 via rpy2): identical layouts.

Data come in unsorted and shuffled, with nested factors whose inner labels repeat across outer groups,
crossed factors, random slopes, factor slopes, `||`, ordered factors, transformed variables, NA rows, and
string, categorical, integer, float and logical group codes.  Every quantity of lme4's lFormula must be
identical (X to the last bit too: contr.poly is recomputed with R's own arithmetic).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from designs import assert_same_design, quiet_lFormula
from hypothesis import given, settings

from vcheck.auditing.strategies import cases, shuffle_rows
from vcheck.core.design import start_theta
from vcheck.core.errors import DataError, RError
from vcheck.core.model_matrix import contr_poly
from vcheck.reference import examples

pytestmark = pytest.mark.r


def lme4_lFormula(formula: str, data: pd.DataFrame) -> Any:
    from vcheck import reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reference.lFormula(formula, data)


def r_eval(code: str) -> Any:
    """An R value from code (for what vcheck.reference does not expose: datasets, mkLmerDevfun's start)."""
    import rpy2.robjects as ro

    from vcheck.reference import rbridge

    rbridge.session()  # R started, lme4 loaded
    return ro.r(code)


def synthetic(seed: int = 0) -> pd.DataFrame:
    """Unbalanced nested data (district/school/class; class labels "1", "2", "10" reused in every school;
    mixed-case school codes), crossed factors, every column type, NA in w and h, shuffled rows with string
    row labels."""
    rng = np.random.default_rng(seed)
    districts = ["a", "B", "c"]
    schools = ["sA", "Sb", "s_c", "s-d", "S10", "s2"]
    rows = [
        (d, s, c)
        for i, d in enumerate(districts)
        for s in schools[: 4 + i]
        for c in ["1", "2", "10"]
        for _ in range(3 + len(s) % 2)
    ]
    df = pd.DataFrame(rows, columns=["district", "school", "class"])
    n = len(df)
    df["x"] = rng.normal(size=n).round(3)
    df["z"] = rng.uniform(0.5, 3, size=n).round(3)
    df["f"] = pd.Categorical(rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"])
    df["o"] = pd.Categorical(rng.choice(["n", "s", "m", "l"], n), ["n", "s", "m", "l"], ordered=True)
    df["b"] = rng.random(n) < 0.4
    df["h"] = pd.Series(rng.choice(["Q", "p", "R", "q"], n), dtype="str")
    df["gi"] = rng.choice(np.array([3, 10, 200, -4, 100000]), n)
    df["gb"] = rng.random(n) < 0.5
    df["gf"] = rng.choice(np.array([1.5, 10.0, 1e5, 0.25]), n)
    df["gc"] = pd.Categorical(rng.choice(["u", "v", "w"], n), categories=["w", "zz", "v", "u"])
    df["t1"] = pd.Series(rng.choice(["k1", "k2", "k3"], n), dtype="str")
    df["t2"] = rng.choice(np.array([5, 6, 7]), n)
    df["my x"] = df["x"] * 2
    df["my g"] = df["school"]
    df["w"] = rng.normal(size=n)
    df.loc[rng.choice(n, 5, replace=False), "w"] = np.nan
    df.loc[rng.choice(n, 2, replace=False), "h"] = None
    df["y"] = (df["x"] * 0.5 + df["school"].str.len() * 0.3 + rng.normal(size=n)).round(4)
    perm = rng.permutation(n)
    df = df.iloc[perm]
    df.index = pd.Index([f"r{i}" for i in perm])
    return df


SYNTHETIC_FORMULAS = [
    # random intercepts and slopes, unsorted string groups
    "y ~ x + (1|school)",
    "y ~ x + (x|school)",
    "y ~ x + (-1 + x|school)",
    "y ~ x + (0 + x|school)",
    # nested, inner labels reused; interactions either way round
    "y ~ x + (1|school/class)",
    "y ~ x + (1|district/school/class)",
    "y ~ x + (x|school/class)",
    "y ~ x + (x | district/school)",
    "y ~ x + (1|school:class)",
    "y ~ x + (1|class:school)",
    "y ~ x + (1 + x | school:class)",
    "y ~ x + (1|h/school)",
    "y ~ x + (1|school:class:district)",
    "y ~ x + (1|district/school:class)",
    "y ~ x + (x || school/class)",
    "y ~ f + (1 | f:school)",
    "y ~ x + (1|gf:gc)",
    # crossed, mixed term sizes, reordering with ties
    "y ~ x + (1|school) + (1|h)",
    "y ~ x + (x|school) + (1|h)",
    "y ~ x + (1|t1) + (1|school) + (1|t2)",
    "y ~ x + (1|t1) + (1|t2)",
    "y ~ x + (1|t2) + (1|t1)",
    "y ~ x + (1|school) + (0 + x|school) + (1|district)",
    "y ~ x + (1|school) + (1|school)",
    "y ~ x + (1 + x|school) + (1|school)",
    "y ~ x + ((1|school) + (1|h))",
    # uncorrelated, factor slopes
    "y ~ x + (x||school)",
    "y ~ x + (f||school)",
    "y ~ x + (f + x||school)",
    "y ~ x + (0 + f + x||school)",
    "y ~ x + (f|school)",
    "y ~ x + (0+f|school)",
    "y ~ x + (0 + o|school)",
    "y ~ x + (f:x | school)",
    "y ~ x + (x + I(x^2) | school)",
    "y ~ x + (o|school)",
    "y ~ b + (b|school)",
    # fixed part: contrasts, ordered, transforms, interactions, no intercept
    "y ~ o + x + (1|school)",
    "y ~ I(x^2) + log(z) + (1|school)",
    "y ~ log(z, base = 2) + exp(x) + sqrt(z) + (1|school)",
    "y ~ I(2*x + 1) + I(-x) + (1|school)",
    "y ~ x + I(x > 0) + (1|school)",
    "y ~ scale(x) + (1|school)",
    "y ~ f*x + (1|school)",
    "y ~ f*b + (1|school)",
    "y ~ f:o + (1|school)",
    "y ~ f:x + (1|school)",
    "y ~ f/x + (1|school)",
    "y ~ x %in% f + (1|school)",
    "y ~ (f + o + x)^2 + (1|school)",
    "y ~ f*o - f + (1|school)",
    "y ~ x*z*f + (1|school)",
    "y ~ 0 + f + x + (1|school)",
    "y ~ -1 + x + f + (1|school)",
    "y ~ 0 + x + (1|school)",
    "y ~ -1 + (1|school)",
    "y ~ (1|school)",
    "y ~ x:z + (1|school)",
    "y ~ o*f + (1|school)",
    "y ~ x - 1 + o + (1|school)",
    "y ~ x + gc + (1|school)",
    # non-syntactic names
    "y ~ `my x` + (`my x`|`my g`)",
    "y ~ x + (1|`my g`/class)",
    # responses
    "log(z) ~ x + (1|school)",
    "b ~ x + (1|school)",
    # group code types
    "y ~ x + (1|gi)",
    "y ~ x + (1|gb)",
    "y ~ x + (1|gf)",
    "y ~ x + (1|gc)",
    "y ~ x + factor(gi) + (1|school)",
    "y ~ x + (1|gi:gb)",
    # NA rows (w, h), NaN produced by log of negatives
    "y ~ w + (1|school)",
    "y ~ x + (1|h)",
    "y ~ log(x) + (1|school)",
]


@pytest.fixture(scope="module")
def synthetic_frame() -> pd.DataFrame:
    return synthetic()


@pytest.mark.parametrize("formula", SYNTHETIC_FORMULAS)
def test_synthetic_design_identical_to_lme4(synthetic_frame: pd.DataFrame, formula: str) -> None:
    assert_same_design(quiet_lFormula(formula, synthetic_frame), lme4_lFormula(formula, synthetic_frame))


@pytest.mark.parametrize("name", ["sleepstudy", "three_level", "star_k", "nested3", "cake", "no_intercept"])
def test_examples_identical_to_live_lme4(name: str) -> None:
    ex = examples.load(name)
    assert_same_design(quiet_lFormula(ex.formula, ex.data), lme4_lFormula(ex.formula, ex.data))


def test_star_kindergarten_sample_drawn_in_R() -> None:
    """The seed's sample, drawn here in R (mlmRev star, gr == 'K', set.seed(123); sample_frac(.2))."""
    from vcheck.reference import rbridge

    frame = r_eval(
        "local({ star <- mlmRev::star; set.seed(123);"
        " k <- dplyr::sample_frac(dplyr::filter(star, gr == 'K'), .2);"
        " k[, c('sch', 'tch', 'cltype', 'sx', 'read')] })"
    )
    data = rbridge.frame_from_r(frame)
    formula = "read ~ cltype + sx + (sx|sch/tch)"
    ours = quiet_lFormula(formula, data)
    assert_same_design(ours, lme4_lFormula(formula, data))
    shuffled = data.sample(frac=1.0, random_state=7)
    assert_same_design(quiet_lFormula(formula, shuffled), lme4_lFormula(formula, shuffled))


@settings(max_examples=25)
@given(case=cases(), shuffle_seed=...)
def test_generated_cases_identical_to_lme4(case: Any, shuffle_seed: int) -> None:
    """Unsorted, nested (reused inner labels), crossed, random-slope, `||`, factor-slope cases."""
    shuffled, _ = shuffle_rows(case, shuffle_seed % 2**32)
    for c in (case, shuffled):
        assert_same_design(quiet_lFormula(c.formula, c.data), lme4_lFormula(c.formula, c.data))


def test_instEval_crossed_design_identical_to_lme4() -> None:
    from vcheck.reference import rbridge

    data = rbridge.frame_from_r(r_eval("lme4::InstEval[, c('y', 's', 'd', 'dept', 'service')]"))
    formula = "y ~ service + (1|s) + (1|d) + (1|dept:service)"
    ours = quiet_lFormula(formula, data)
    assert [g for g, _ in ours.cnms] == ["s", "d", "dept:service"]
    assert_same_design(ours, lme4_lFormula(formula, data))


def test_string_levels_follow_Rs_collation() -> None:
    rng = np.random.default_rng(11)
    alphabet = list("aAbBzZ019_-. ,;:!?'\"()[]{}@*/\\&#%`^+<=>|~$")
    labels = sorted(
        {"".join(rng.choice(alphabet, size=rng.integers(1, 4))).strip() or "q" for _ in range(40)}
    )
    n = 4 * len(labels)
    codes = pd.Series(list(rng.permutation(labels * 4)), dtype="str")
    data = pd.DataFrame({"y": rng.normal(size=n), "g": codes})
    ours = quiet_lFormula("y ~ (1|g)", data)
    theirs = lme4_lFormula("y ~ (1|g)", data)
    assert ours.terms[0].levels == theirs.terms[0].levels


def test_contr_poly_is_Rs_to_the_last_bit() -> None:
    for k in range(2, 26):
        r_matrix = np.array(r_eval(f"as.vector(contr.poly({k}))"), copy=True).reshape(k, k - 1, order="F")
        ours, names = contr_poly(k)
        np.testing.assert_array_equal(ours, r_matrix, err_msg=f"contr.poly({k})")
        assert names == list(r_eval(f"colnames(contr.poly({k}))"))


START_CASES = [
    ("penicillin", None),
    ("pastes", None),
    ("three_level", None),
    ("dyestuff2", None),
    ("nested3", None),
    ("sleepstudy", None),
    ("sleepstudy_uncorrelated", None),
    ("synthetic", "y ~ x + (1|school) + (1|h)"),
    ("synthetic", "y ~ x + (1|district/school/class)"),
    ("synthetic", "y ~ x + (1|school) + (0 + x|school)"),
]


@pytest.mark.parametrize(("name", "formula"), START_CASES)
def test_start_theta_is_lmers(name: str, formula: str | None, synthetic_frame: pd.DataFrame) -> None:
    """lmer's starting theta (set in mkLmerDevfun), not lFormula's."""
    from vcheck.reference import rbridge

    if name == "synthetic":
        data, f = synthetic_frame, formula
    else:
        ex = examples.load(name)
        data, f = ex.data, ex.formula
    assert f is not None
    start = r_eval(
        "function(formula, data) { lf <- lme4::lFormula(as.formula(formula), data = data);"
        " as.numeric(environment(do.call(lme4::mkLmerDevfun, lf))$pp$theta) }"
    )(f, rbridge.frame_to_r(data))
    np.testing.assert_allclose(start_theta(quiet_lFormula(f, data)), np.array(start, copy=True), rtol=1e-13)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ x + (1|one)", "grouping factors must have > 1 sampled level"),
        ("y ~ x + (1|id)", "number of levels of each grouping factor must be < number of observations"),
        ("y ~ x + (x|pair)", "number of random effects"),
    ],
)
def test_lme4_refuses_what_we_refuse(formula: str, message: str) -> None:
    n = 20
    data = pd.DataFrame(
        {
            "y": np.arange(n, dtype=float) % 7,
            "x": np.linspace(0, 1, n),
            "one": ["a"] * n,
            "id": [f"i{i}" for i in range(n)],
            "pair": [i // 2 for i in range(n)],
        }
    )
    with pytest.raises(DataError, match=message):
        quiet_lFormula(formula, data)
    with pytest.raises(RError, match=message.split(" (")[0][:30]):
        lme4_lFormula(formula, data)
