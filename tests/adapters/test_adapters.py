"""The adapters (statsmodels MixedLM, glmmTMB, nlme::lme) on the seed's examples, against lme4's numbers.

Reference values are lme4's frozen answers (`vcheck.reference.examples`) and the seed note's printed
numbers.  V is
checked against its own construction: rebuilt from the adapter's own varcorr and sigma with the grouping
of the (shuffled) data, entry by entry, so a V in the wrong row order cannot pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from vcheck import adapters
from vcheck.adapters import statsmodels as sm_adapter
from vcheck.auditing import formula_terms as _formula
from vcheck.core.errors import DataError, FormulaError
from vcheck.core.tolerances import EXTERNAL_OPTIMUM
from vcheck.reference import examples

SLEEP = "Reaction ~ Days + (Days|Subject)"
THREE = "y ~ x1 + (1|sch.cl/tch.cl)"
STAR = "read ~ cltype + sx + (sx|sch/tch)"


# --- helpers ----------------------------------------------------------------------------------------


def shuffled(data: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """The rows in a random order (labels kept), so nothing can rely on sorted groups."""
    return data.iloc[np.random.default_rng(seed).permutation(len(data))]


def vc_dict(varcorr: Any) -> dict[tuple[str, str, str | None], float]:
    """Plug-in rows or lme4's varcorr DataFrame -> {(grp, var1, var2): vcov}, residual dropped."""
    if isinstance(varcorr, pd.DataFrame):
        rows = [
            (r.grp, r.var1, None if r.var2 is None or pd.isna(r.var2) else r.var2, r.vcov)
            for r in varcorr.itertuples()
        ]
    else:
        rows = list(varcorr)
    return {(g, v1, v2): float(c) for g, v1, v2, c in rows if g != "Residual"}


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def term_columns(data: pd.DataFrame, names: list[str]) -> np.ndarray:
    """A term's model-matrix columns by R name: (Intercept), a numeric column, or a factor dummy `fB`."""
    cols = []
    for name in names:
        if name == "(Intercept)":
            cols.append(np.ones(len(data)))
        elif name in data.columns:
            cols.append(data[name].to_numpy(dtype=float))
        else:
            factor = next(
                c for c in data.columns if name.startswith(c) and name[len(c) :] in set(data[c].astype(str))
            )
            cols.append((data[factor].astype(str) == name[len(factor) :]).to_numpy(dtype=float))
    return np.column_stack(cols)


def V_from_varcorr(formula: str, data: pd.DataFrame, fit: Mapping[str, Any]) -> np.ndarray:
    """V = sum over terms of [same level] z_i' G_t z_j + sigma^2 I, from the fit's own varcorr, data order."""
    parsed = _formula.parse(formula)
    vc = vc_dict(fit["varcorr"])
    V = fit["sigma"] ** 2 * np.eye(len(data))
    for term, label in _formula.varcorr_groups(parsed.terms, data):
        names = list(dict.fromkeys(v1 for (g, v1, _) in vc if g == label))
        if not names:
            continue
        G = np.zeros((len(names), len(names)))
        for (g, v1, v2), c in vc.items():
            if g == label:
                i, j = names.index(v1), names.index(v2 if v2 is not None else v1)
                G[i, j] = G[j, i] = c
        Zt = term_columns(data, names)
        codes = _formula.group_codes(data, term.factors).to_numpy()
        same = codes[:, None] == codes[None, :]
        V += same * (Zt @ G @ Zt.T)
    return V


def dense(V: Any) -> np.ndarray:
    return V.toarray() if sp.issparse(V) else np.asarray(V)


def gls_beta(V: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The seed's getFE: (X' V^-1 X)^-1 X' V^-1 y."""
    VinvX = np.linalg.solve(V, X)
    return np.linalg.solve(X.T @ VinvX, VinvX.T @ y)


def check_V(formula: str, data: pd.DataFrame, fit: Mapping[str, Any], X: np.ndarray, y: np.ndarray) -> None:
    """V is n x n, symmetric, equals its construction from the fit's own parameters in data order, and
    the GLS beta at V is the fit's beta."""
    V = dense(fit["V"])
    assert V.shape == (len(data), len(data))
    np.testing.assert_allclose(V, V.T, rtol=0, atol=1e-12 * np.abs(V).max())
    np.testing.assert_allclose(V, V_from_varcorr(formula, data, fit), rtol=1e-9, atol=1e-9 * np.abs(V).max())
    beta = np.array(list(fit["beta"].values()))
    np.testing.assert_allclose(gls_beta(V, X, y), beta, rtol=1e-6)


def design(data: pd.DataFrame, fixed: list[str]) -> np.ndarray:
    return np.column_stack([np.ones(len(data)), *(term_columns(data, [c]).ravel() for c in fixed)])


@pytest.fixture(scope="module")
def sleep() -> examples.Example:
    return examples.load("sleepstudy")


@pytest.fixture(scope="module")
def three() -> examples.Example:
    return examples.load("three_level")


@pytest.fixture(scope="module")
def star() -> examples.Example:
    return examples.load("star_k")


# --- the registry -----------------------------------------------------------------------------------


def test_builtin_names_resolve_to_callables() -> None:
    assert adapters.names() == ["statsmodels", "statsmodels_naive", "glmmtmb", "nlme", "vcheck"]
    for name in adapters.names():
        assert callable(adapters.get(name))
        assert adapters.resolve(name) is adapters.get(name)
    assert adapters.get("GLMMTMB") is adapters.get("glmmtmb")
    assert adapters.get("statsmodels") is sm_adapter.fit
    assert adapters.get("statsmodels_naive") is sm_adapter.fit_naive


def test_user_plugin_loads_by_module_and_callable() -> None:
    assert adapters.load("vcheck.adapters.statsmodels:fit") is sm_adapter.fit
    assert adapters.resolve("vcheck.adapters.statsmodels:Translation.call") is sm_adapter.Translation.call


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:fit", "cannot import plug-in module 'no_such_module_xyz'"),
        ("vcheck.adapters:no_such_callable", "has no attribute 'no_such_callable'"),
        ("vcheck.adapters:BUILTIN", "is not callable"),
        ("vcheck.adapters", "not of the form MODULE:CALLABLE"),
        (":fit", "not of the form MODULE:CALLABLE"),
    ],
)
def test_bad_plugin_spec_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(adapters.AdapterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        adapters.resolve(spec) if ":" in spec else adapters.load(spec)


def test_unknown_adapter_name() -> None:
    expected = r"unknown adapter 'lme5'.*statsmodels, statsmodels_naive"
    with pytest.raises(adapters.AdapterError, match=expected):
        adapters.get("lme5")


def test_importing_adapters_needs_neither_rpy2_nor_statsmodels() -> None:
    code = (
        "import sys, vcheck, vcheck.adapters, vcheck.adapters.statsmodels, vcheck.adapters.glmmtmb, "
        "vcheck.adapters.nlme\n"
        "bad = [m for m in ('rpy2', 'statsmodels') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    # R, once embedded (conftest checks for it), sets LD_LIBRARY_PATH to its own and the system's lib
    # directories, where a child python can pick up another libpython: start the child without it
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# --- formula handling -------------------------------------------------------------------------------


def test_terms_of_the_seed_formulas_in_lme4_order(three: examples.Example, star: examples.Example) -> None:
    p = _formula.parse(THREE)
    assert [(t.group, t.factors, t.scalar_intercept) for t in p.terms] == [
        ("tch.cl:sch.cl", ("tch.cl", "sch.cl"), True),
        ("sch.cl", ("sch.cl",), True),
    ]
    assert [g for _, g in _formula.varcorr_groups(p.terms, three.data)] == ["tch.cl:sch.cl", "sch.cl"]
    p = _formula.parse(STAR)
    assert [(t.group, t.intercept, t.slopes) for t in p.terms] == [
        ("tch:sch", True, ("sx",)),
        ("sch", True, ("sx",)),
    ]
    assert p.response == "read" and p.fixed == "cltype + sx"
    assert p.variables == ("read", "cltype", "sx", "tch", "sch")


def test_double_bar_terms_get_lme4_varcorr_names(sleep: examples.Example) -> None:
    p = _formula.parse("Reaction ~ Days + (Days||Subject)")
    assert [g for _, g in _formula.varcorr_groups(p.terms, sleep.data)] == ["Subject", "Subject.1"]
    assert _formula.make_unique(["g", "g", "g.1", "g"]) == ["g", "g.2", "g.1", "g.3"]


def test_lme4_term_order_puts_more_levels_first() -> None:
    data = pd.DataFrame({"a": list("aabbccdd"), "b": list("xyxyxyxy")})
    terms = _formula.parse("y ~ (1|b) + (1|a)").terms
    assert [t.group for t in _formula.lme4_order(terms, data)] == ["a", "b"]
    terms = _formula.parse("y ~ (1|a) + (1|b)").terms  # already decreasing: kept
    assert [t.group for t in _formula.lme4_order(terms, data)] == ["a", "b"]


def test_diagonal_block_is_split_into_lme4_terms(sleep: examples.Example) -> None:
    labelled = _formula.varcorr_groups(_formula.parse("Reaction ~ Days + (Days||Subject)").terms, sleep.data)
    block = ("Subject", ["(Intercept)", "Days"], np.array([[600.0, 0.0], [0.0, 35.0]]))
    assert _formula.varcorr_rows([block], labelled) == [
        ("Subject", "(Intercept)", None, 600.0),
        ("Subject.1", "Days", None, 35.0),
    ]
    # a non-zero covariance between the split terms is a different model: it must stay visible
    block = ("Subject", ["(Intercept)", "Days"], np.array([[600.0, 9.0], [9.0, 35.0]]))
    assert ("Subject", "(Intercept)", "Days", 9.0) in _formula.varcorr_rows([block], labelled)


def test_missing_column_and_bad_formula_are_clear_errors(sleep: examples.Example) -> None:
    with pytest.raises(DataError, match="Weeks"):
        sm_adapter.fit("Reaction ~ Weeks + (1|Subject)", sleep.data, True)
    with pytest.raises(FormulaError):
        sm_adapter.fit("Reaction ~ Days", sleep.data, True)
    with pytest.raises(FormulaError):
        sm_adapter.fit("Reaction ~ Days + (1|Subject", sleep.data, True)


# --- statsmodels ------------------------------------------------------------------------------------


def test_statsmodels_sleepstudy_against_lme4(sleep: examples.Example) -> None:
    fit = adapters.get("statsmodels")(SLEEP, sleep.data, True)
    assert set(fit) >= {"beta", "sigma", "varcorr", "V", "criterion"}
    call = "MixedLM.from_formula('Reaction ~ Days', groups='Subject', re_formula='Days')"
    assert fit["translation"] == call
    # the seed note's numbers
    assert fit["beta"] == pytest.approx({"(Intercept)": 251.40510, "Days": 10.46729}, abs=5e-6)
    vc = vc_dict(fit["varcorr"])
    assert list(vc) == [
        ("Subject", "(Intercept)", None),
        ("Subject", "Days", None),
        ("Subject", "(Intercept)", "Days"),
    ]
    lme4 = vc_dict(sleep.expected.varcorr)
    for key, value in lme4.items():
        assert rel(vc[key], value) < 1e-4, key  # measured: 6.0e-6, 2.6e-6, 2.0e-5
    assert rel(fit["sigma"] ** 2, 654.94) < 1e-5
    # -2 llf is on lme4's scale: the REML criterion to ~1e-12 relative at (nearly) the same optimum
    assert fit["criterion"] == pytest.approx(sleep.expected.criterion, abs=1e-6)


def test_statsmodels_ml_criterion_is_lme4_deviance() -> None:
    ex = examples.load("sleepstudy_ml")
    fit = sm_adapter.fit(ex.formula, ex.data, ex.REML)
    assert not ex.REML
    assert fit["criterion"] == pytest.approx(ex.expected.criterion, abs=1e-6)  # 1751.93934


def test_statsmodels_three_level_uses_re_formula_1(three: examples.Example) -> None:
    fit = sm_adapter.fit(THREE, three.data, True)
    assert (
        "groups='sch.cl', re_formula='1', vc_formula={'tch.cl:sch.cl': '0 + C(tch.cl:sch.cl)'}"
        in (fit["translation"])
    )
    vc, lme4 = vc_dict(fit["varcorr"]), vc_dict(three.expected.varcorr)
    assert list(vc) == list(lme4) == [("tch.cl:sch.cl", "(Intercept)", None), ("sch.cl", "(Intercept)", None)]
    for key in lme4:
        assert rel(vc[key], lme4[key]) < 1e-3, key  # measured: 4.5e-5 and 2.2e-5
    assert fit["criterion"] == pytest.approx(three.expected.criterion, abs=1e-6)  # 490.112274
    assert fit["beta"] == pytest.approx(three.expected.beta.to_dict(), rel=1e-4)


def test_statsmodels_trap_naive_translation_drops_the_school_intercept(three: examples.Example) -> None:
    fit = adapters.get("statsmodels_naive")(THREE, three.data, True)
    assert "re_formula" not in fit["translation"]
    vc, lme4 = vc_dict(fit["varcorr"]), vc_dict(three.expected.varcorr)
    assert ("sch.cl", "(Intercept)", None) not in vc  # the school variance is gone ...
    assert list(vc) == [("tch.cl:sch.cl", "(Intercept)", None)]
    teacher = vc[("tch.cl:sch.cl", "(Intercept)", None)]
    assert teacher > 1.5 > lme4[("tch.cl:sch.cl", "(Intercept)", None)]  # ... absorbed by the teachers
    assert fit["criterion"] > three.expected.criterion + 1.0  # a worse (different) model: 491.45 vs 490.11
    # V says the same: two pupils of one school but different teachers are uncorrelated
    data = three.data
    V = dense(fit["V"])
    same_school = (data["sch.cl"] == data["sch.cl"][0]) & (data["tch.cl"] != data["tch.cl"][0])
    i, j = 0, int(np.flatnonzero(same_school)[0])
    assert V[i, j] == 0.0
    assert dense(sm_adapter.fit(THREE, data, True)["V"])[i, j] == pytest.approx(0.42, abs=0.01)


def test_statsmodels_cannot_express_nested_random_slopes(star: examples.Example) -> None:
    for impl in (sm_adapter.fit, sm_adapter.fit_naive):
        expected = r"model not expressible in statsmodels: \(sx \| tch:sch\)"
        with pytest.raises(NotImplementedError, match=expected):
            impl(STAR, star.data, True)


def test_statsmodels_crossed_factors_are_variance_components_of_one_group() -> None:
    ex = examples.load("penicillin")
    fit = sm_adapter.fit(ex.formula, ex.data, ex.REML)
    assert "groups='<one group: all rows>'" in fit["translation"] and "re_formula" not in fit["translation"]
    vc, lme4 = vc_dict(fit["varcorr"]), vc_dict(ex.expected.varcorr)
    assert list(vc) == list(lme4)
    for key in lme4:
        assert rel(vc[key], lme4[key]) < 1e-3, key
    assert fit["criterion"] == pytest.approx(ex.expected.criterion, abs=1e-4)
    check_V(ex.formula, ex.data, fit, np.ones((len(ex.data), 1)), ex.data["diameter"].to_numpy(float))


def test_statsmodels_uncorrelated_slope(sleep: examples.Example) -> None:
    ex = examples.load("sleepstudy_uncorrelated")
    fit = sm_adapter.fit(ex.formula, ex.data, ex.REML)
    vc, lme4 = vc_dict(fit["varcorr"]), vc_dict(ex.expected.varcorr)
    assert list(vc) == list(lme4) == [("Subject", "(Intercept)", None), ("Subject.1", "Days", None)]
    for key in lme4:
        assert rel(vc[key], lme4[key]) < 1e-3, key
    assert fit["criterion"] == pytest.approx(ex.expected.criterion, abs=1e-4)


@pytest.mark.parametrize("impl", [sm_adapter.fit, sm_adapter.fit_naive])
def test_statsmodels_V_in_data_row_order(impl: Any, sleep: examples.Example, three: examples.Example) -> None:
    data = shuffled(sleep.data)
    fit = impl(SLEEP, data, True)
    check_V(SLEEP, data, fit, design(data, ["Days"]), data["Reaction"].to_numpy(float))
    data = shuffled(three.data)
    fit = impl(THREE, data, True)
    check_V(THREE, data, fit, design(data, ["x1"]), data["y"].to_numpy(float))
    assert sp.issparse(fit["V"])


def test_statsmodels_shuffling_rows_permutes_V(sleep: examples.Example) -> None:
    order = np.random.default_rng(3).permutation(len(sleep.data))
    V = dense(sm_adapter.fit(SLEEP, sleep.data, True)["V"])
    V_shuffled = dense(sm_adapter.fit(SLEEP, sleep.data.iloc[order], True)["V"])
    np.testing.assert_allclose(V_shuffled, V[np.ix_(order, order)], rtol=1e-5, atol=1e-5 * np.abs(V).max())


# --- glmmTMB and nlme through R -----------------------------------------------------------------------

R_ADAPTERS = [
    pytest.param("glmmtmb", 3e-5, id="glmmtmb"),  # sleepstudy G measured within 1.5e-5 of lme4's
    pytest.param("nlme", 6e-5, id="nlme"),  # measured within 3.4e-5
]


@pytest.mark.r
@pytest.mark.parametrize(("name", "g_tol"), R_ADAPTERS)
def test_r_adapter_sleepstudy_against_lme4(name: str, g_tol: float, sleep: examples.Example) -> None:
    fit = adapters.get(name)(SLEEP, sleep.data, True)
    assert fit["beta"] == pytest.approx({"(Intercept)": 251.40510, "Days": 10.46729}, abs=5e-6)
    vc, lme4 = vc_dict(fit["varcorr"]), vc_dict(sleep.expected.varcorr)
    assert list(vc) == list(lme4)
    for key in lme4:
        assert rel(vc[key], lme4[key]) < (g_tol if key[2] is None else 10 * g_tol), key
    assert rel(fit["sigma"] ** 2, 654.94) < 1e-5
    assert fit["criterion"] == pytest.approx(sleep.expected.criterion, abs=1e-6)  # 1743.628272
    assert fit["converged"]


@pytest.mark.r
@pytest.mark.parametrize("name", ["glmmtmb", "nlme"])
def test_r_adapter_three_level_against_lme4(name: str, three: examples.Example) -> None:
    fit = adapters.get(name)(THREE, three.data, True)
    vc, lme4 = vc_dict(fit["varcorr"]), vc_dict(three.expected.varcorr)
    assert list(vc) == list(lme4) == [("tch.cl:sch.cl", "(Intercept)", None), ("sch.cl", "(Intercept)", None)]
    for key in lme4:
        assert rel(vc[key], lme4[key]) < EXTERNAL_OPTIMUM, key  # measured: up to 2.0e-4 (nlme, schools)
    assert fit["criterion"] == pytest.approx(three.expected.criterion, abs=1e-5)
    assert fit["beta"] == pytest.approx(three.expected.beta.to_dict(), rel=1e-5)


@pytest.mark.r
@pytest.mark.parametrize("name", ["glmmtmb", "nlme"])
def test_r_adapter_star_nested_slopes(name: str, star: examples.Example) -> None:
    fit = adapters.get(name)(STAR, star.data, True)
    vc, lme4 = vc_dict(fit["varcorr"]), vc_dict(star.expected.varcorr)
    assert list(vc) == list(lme4)
    # lme4's fit is singular (correlations -1): the slope variances are barely determined, the
    # intercept variances and the criterion are
    for key in [("tch:sch", "(Intercept)", None), ("sch", "(Intercept)", None)]:
        assert rel(vc[key], lme4[key]) < 1e-3, key
    assert fit["criterion"] == pytest.approx(star.expected.criterion, abs=1e-4)  # 10990.388155
    assert fit["beta"] == pytest.approx(star.expected.beta.to_dict(), rel=1e-3)
    data = star.data.dropna(subset=["read"])
    check_V(STAR, data, fit, design(data, ["cltypereg", "cltypereg+A", "sxF"]), data["read"].to_numpy(float))


@pytest.mark.r
@pytest.mark.parametrize("name", ["glmmtmb", "nlme"])
def test_r_adapter_V_in_data_row_order(name: str, sleep: examples.Example, three: examples.Example) -> None:
    impl = adapters.get(name)
    data = shuffled(sleep.data)
    fit = impl(SLEEP, data, True)
    check_V(SLEEP, data, fit, design(data, ["Days"]), data["Reaction"].to_numpy(float))
    data = shuffled(three.data)
    fit = impl(THREE, data, True)
    check_V(THREE, data, fit, design(data, ["x1"]), data["y"].to_numpy(float))


@pytest.mark.r
def test_nlme_getvarcov_blocks_match_own_assembly(sleep: examples.Example) -> None:
    fit = adapters.get("nlme")(SLEEP, shuffled(sleep.data), True)
    assert fit["V_check"] < 1e-12


@pytest.mark.r
@pytest.mark.parametrize("name", ["glmmtmb", "nlme"])
def test_r_adapter_double_bar_maps_to_lme4_terms(name: str) -> None:
    ex = examples.load("sleepstudy_uncorrelated")
    fit = adapters.get(name)(ex.formula, ex.data, ex.REML)
    vc, lme4 = vc_dict(fit["varcorr"]), vc_dict(ex.expected.varcorr)
    assert list(vc) == list(lme4) == [("Subject", "(Intercept)", None), ("Subject.1", "Days", None)]
    for key in lme4:
        assert rel(vc[key], lme4[key]) < 1e-4, key
    assert fit["criterion"] == pytest.approx(ex.expected.criterion, abs=1e-5)


@pytest.mark.r
def test_nlme_refuses_crossed_factors() -> None:
    ex = examples.load("penicillin")
    with pytest.raises(NotImplementedError, match=r"model not expressible in nlme::lme: .*crossed"):
        adapters.get("nlme")(ex.formula, ex.data, ex.REML)


@pytest.mark.r
def test_glmmtmb_ml_criterion_is_lme4_deviance() -> None:
    ex = examples.load("sleepstudy_ml")
    fit = adapters.get("glmmtmb")(ex.formula, ex.data, ex.REML)
    assert fit["criterion"] == pytest.approx(ex.expected.criterion, abs=1e-5)


def test_statsmodels_evaluates_r_functions_the_r_way() -> None:
    ex = examples.load("sleepstudy_transformed")  # log(Reaction) ~ Days + I(Days^2) + (1|Subject)
    fit = sm_adapter.fit(ex.formula, ex.data, ex.REML)
    assert list(fit["beta"]) == list(ex.expected.beta.index) == ["(Intercept)", "Days", "I(Days^2)"]
    assert fit["beta"] == pytest.approx(ex.expected.beta.to_dict(), rel=1e-5)
    assert fit["criterion"] == pytest.approx(ex.expected.criterion, abs=1e-5)


def test_statsmodels_refuses_a_rank_deficient_X() -> None:
    ex = examples.load("rank_deficient")  # lme4 drops the aliased column; MixedLM cannot
    with pytest.raises(NotImplementedError, match="rank 2 < 3 columns"):
        sm_adapter.fit(ex.formula, ex.data, ex.REML)


def test_rows_with_missing_values_are_dropped_as_lme4_does() -> None:
    ex = examples.load("nested3")  # three NA covariates
    fit = sm_adapter.fit(ex.formula, ex.data, ex.REML)
    used = ex.data.dropna(subset=["x"])
    assert fit["n"] == len(used) == ex.expected.n == len(ex.data) - 3
    check_V(ex.formula, used, fit, design(used, ["x"]), used["y"].to_numpy(float))
    assert fit["criterion"] == pytest.approx(ex.expected.criterion, abs=1e-4)


@pytest.mark.r
@pytest.mark.parametrize(
    ("name", "message"),
    [("glmmtmb", "NaN at starting parameter values"), ("nlme", "Singularity in backsolve")],
)
def test_r_failure_is_an_rerror_with_r_message(name: str, message: str) -> None:
    from vcheck.core.errors import RError

    ex = examples.load("rank_deficient")
    with pytest.raises(RError, match=message) as info:
        adapters.get(name)(ex.formula, ex.data, ex.REML)
    assert message in info.value.r_message


PLUGIN_SOURCE = '''
"""A user's plug-in: statsmodels on the rows in reverse order, V mapped back to the data's order."""
from vcheck.adapters import statsmodels as sm


def fit(formula, data, REML):
    out = dict(sm.fit(formula, data.iloc[::-1], REML))
    n = out["V"].shape[0]
    back = list(range(n))[::-1]
    out["V"] = out["V"][back][:, back]
    return out
'''


def test_user_plugin_from_a_file_runs_the_protocol(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_lmm_plugin.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    impl = adapters.resolve("my_lmm_plugin:fit")
    ex = examples.load("sleepstudy")
    fit = impl(SLEEP, ex.data, True)
    check_V(SLEEP, ex.data, fit, design(ex.data, ["Days"]), ex.data["Reaction"].to_numpy(float))


def test_user_plugin_in_the_working_directory_without_it_on_sys_path(tmp_path: Any) -> None:
    (tmp_path / "my_lmm_plugin.py").write_text(PLUGIN_SOURCE)
    code = "from vcheck import adapters; print(adapters.resolve('my_lmm_plugin:fit').__module__)"
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    # -I: no working directory on sys.path, as for the `vcheck` console script
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "my_lmm_plugin"


def test_statsmodels_codes_ordered_factors_as_r_does() -> None:
    ex = examples.load("cake")  # temperature is an ordered factor: R's contr.poly, patsy's Poly
    fit = sm_adapter.fit(ex.formula, ex.data, ex.REML)
    assert "'angle ~ recipe * C(temperature, Poly)'" in fit["translation"]
    assert list(fit["beta"]) == list(ex.expected.beta.index)  # temperature.L, ..., recipeC:temperature^5
    assert fit["beta"] == pytest.approx(ex.expected.beta.to_dict(), rel=1e-6, abs=1e-9)
    # the REML criterion depends on X's parametrization: equal only with R's contrasts
    assert fit["criterion"] == pytest.approx(ex.expected.criterion, abs=1e-5)
