"""compare(a, b) on lme4's frozen fits, without R: every row, verdict and kind on hand-made mistakes.

lme4's criterion at a theta comes from vcheck.core.deviance on lme4's own design (compare's default); the
live suite (test_audit, test_properties) checks the same verdicts with lme4's own deviance function.
"""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from faults import as_mapping, term_covs, varcorr_rows

from vcheck.auditing import construction
from vcheck.auditing.comparison import compare, python_criterion
from vcheck.auditing.plugin import (
    PluginError,
    chol_psd,
    cov_from_theta,
    submission,
    term_covariances,
    theta_from_cov,
    unique_group_names,
)
from vcheck.core import covariance, deviance
from vcheck.core.record import LmerFit
from vcheck.core.theta import lower_triangle_columnwise
from vcheck.reference import examples

# vcheck exports the function `compare` under the module's name, so reach the module through importlib
compare_module = importlib.import_module("vcheck.auditing.comparison")
differences = importlib.import_module("vcheck.auditing.differences")


def fit(name: str) -> LmerFit:
    return examples.load(name).expected


def kinds(cmp: compare_module.Comparison) -> set[str]:
    """The kinds of disagreement found, "not available" left out."""
    return {r.kind for r in cmp.findings if r.kind not in (None, "not available")}


def at_theta(b: LmerFit, theta: np.ndarray) -> dict[str, object]:
    """A consistent plug-in answer at a theta that is not lme4's optimum: beta, sigma, V and criterion
    all computed at that theta by lme4's construction (vcheck.core.deviance on lme4's design)."""
    crit = python_criterion(b)
    lme = compare_module.require_design(b)
    d = crit(theta, b.REML)
    # sigma is profiled out: sigma^2 = pwrss / (n - p) under REML; the PLS factor holds pwrss
    design_fn = deviance.devfun(compare_module.reference_design(b), REML=b.REML)
    f = design_fn.factor(theta)
    sigma = deviance.sigma(f, lme.n, lme.X.shape[1], b.REML)
    Lt = compare_module.lambdat_at(lme, theta)
    covs = cov_from_theta(theta, lme.cnms, sigma)
    rows = []
    for group, (_, names), G in zip(
        unique_group_names([g for g, _ in lme.cnms]), lme.cnms, covs, strict=True
    ):
        rows += [(group, names[i], None, float(G[i, i])) for i in range(len(names))]
        rows += [
            (group, names[i], names[j], float(G[j, i]))
            for i in range(len(names))
            for j in range(i + 1, len(names))
        ]
    return {
        "beta": dict(zip(lme.X_names, f.beta, strict=True)),
        "sigma": sigma,
        "varcorr": rows,
        "V": covariance.V(lme.Zt, Lt, sigma).toarray(),
        "criterion": d,
    }


# --- lme4 against itself -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", examples.names())
def test_lme4_record_against_itself_agrees_on_every_row(name: str) -> None:
    b = fit(name)
    cmp = compare(b, b, flat_optimum=False)  # no "same optimum" excuse
    assert cmp.ok, str(cmp)
    assert cmp.findings == [], str(cmp)
    for r in cmp.rows:  # every row within its own tolerance
        assert r.verdict == "agrees" and r.rel_diff is not None and r.tol is not None, str(cmp)
        assert r.rel_diff <= r.tol, str(cmp)
    assert cmp.lower == "tie"  # lme4's criterion at its own theta is its optimum
    quantities = {r.quantity for r in cmp.rows}
    assert {"layout", "V", "beta", "criterion", "theta", "sigma", "varcorr", "G", "ranef"} <= quantities


@pytest.mark.parametrize(
    "name", ["sleepstudy", "three_level", "penicillin", "sleepstudy_uncorrelated", "cake"]
)
def test_lme4_as_a_mapping_is_missing_only_ranef(name: str) -> None:
    b = fit(name)
    cmp = compare(as_mapping(b), b)
    assert [(r.quantity, r.kind) for r in cmp.findings] == [("ranef", "not available")], str(cmp)
    assert cmp.ok


def test_a_mapping_without_criterion_says_not_available_never_passed() -> None:
    b = fit("sleepstudy")
    cmp = compare(as_mapping(b, with_criterion=False), b)
    assert {r.quantity for r in cmp.findings} == {"ranef", "criterion"}
    assert all(r.verdict == "not available" for r in cmp.findings)
    assert not any(r.quantity == "criterion" and r.verdict == "agrees" for r in cmp.rows)


# --- construction --------------------------------------------------------------------------------------
def test_V_without_residual_is_construction() -> None:
    b = fit("sleepstudy")
    V = b.V().toarray() - b.sigma**2 * np.eye(b.n)
    cmp = compare(as_mapping(b, V=V), b)
    row = cmp.row("V", "at its parameters")
    assert (row.verdict, row.kind) == ("differs", "construction")
    assert kinds(cmp) == {"construction"}


def test_sd_written_as_variance_is_construction() -> None:
    b = fit("sleepstudy")
    rows = [(g, v1, v2, 0.0 if c != c else c) for g, v1, v2, c in varcorr_rows(b, "sdcor")]
    cmp = compare(as_mapping(b, varcorr=rows), b)
    assert cmp.row("V", "at its parameters").kind == "construction"
    assert kinds(cmp) == {"construction"}


def test_ols_beta_is_construction_on_beta_only_at_its_parameters() -> None:
    b = fit("three_level")
    beta = np.linalg.lstsq(b.X, b.y, rcond=None)[0]
    cmp = compare(as_mapping(b, beta=dict(zip(b.X_names, beta, strict=True))), b)
    assert cmp.row("beta", "at its parameters").kind == "construction"
    assert cmp.row("V", "at its parameters").verdict == "agrees"
    assert kinds(cmp) == {"construction"}


def test_G_without_correlation_is_construction() -> None:
    b = fit("sleepstudy")
    (G,) = term_covs(b)
    lme = compare_module.require_design(b)
    theta = theta_from_cov([np.diag(np.diag(G))], b.sigma)
    V = covariance.V(lme.Zt, compare_module.lambdat_at(lme, theta), b.sigma).toarray()
    cmp = compare(as_mapping(b, V=V), b)  # reports the full varcorr, builds V without the covariance
    assert cmp.row("V", "at its parameters").kind == "construction"


def test_criterion_not_lme4s_at_its_theta_is_construction() -> None:
    b = fit("penicillin")
    cmp = compare(as_mapping(b, criterion=b.criterion + 0.5), b)
    assert cmp.row("criterion", "at its parameters").kind == "construction"


def test_not_positive_semidefinite_varcorr_is_construction() -> None:
    b = fit("sleepstudy")
    rows = [(g, v1, v2, c if v2 is None else 1e6) for g, v1, v2, c in varcorr_rows(b)]
    cmp = compare(as_mapping(b, varcorr=rows), b)
    assert cmp.row("varcorr", "at its parameters").kind == "construction"


# --- row order -----------------------------------------------------------------------------------------
def test_V_in_sorted_order_on_unsorted_data_is_construction_but_labelled_rows_are_matched() -> None:
    ex = examples.load("sleepstudy_shuffled")
    b = ex.expected
    order = np.argsort(ex.data["Subject"].astype(str).to_numpy(), kind="stable")
    V = b.V().toarray()
    V_sorted = V[np.ix_(order, order)]
    wrong = compare(as_mapping(b, V=V_sorted), b, data_index=ex.data.index)
    assert wrong.row("V", "at its parameters").kind == "construction"
    # the same V with its rows labelled (the implementation saw the data sorted, labels and all) is right
    right = compare(as_mapping(b, V=V_sorted), b, data_index=ex.data.index[order])
    assert right.ok, str(right)


def test_V_of_the_rows_used_when_lme4_drops_rows_with_NA() -> None:
    b = fit("star_k")
    assert b.n_na_dropped > 0
    cmp = compare(as_mapping(b), b, data_index=examples.load("star_k").data.index)
    assert cmp.ok, str(cmp)


def test_V_with_other_rows_than_lme4_used_is_model() -> None:
    b = fit("star_k")
    V = np.eye(b.n + 3)
    cmp = compare(as_mapping(b, V=V), b)
    assert cmp.row("V", "model").kind == "model"


def test_large_V_is_compared_through_probe_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(construction, "DENSE_V_MAX", 50)
    b = fit("sleepstudy")
    seen = []
    real = differences.dense

    def no_dense(M: object) -> np.ndarray:
        seen.append(M)
        return real(M)

    monkeypatch.setattr(differences, "dense", no_dense)
    ok = compare(as_mapping(b, V=b.V()), b)
    assert ok.ok, str(ok)
    bad = compare(as_mapping(b, V=b.V() - b.sigma**2 * covariance.sp.identity(b.n)), b)
    assert bad.row("V", "at its parameters").kind == "construction"
    assert seen == []  # never a dense n x n


# --- model ---------------------------------------------------------------------------------------------
def test_missing_school_term_is_model_and_its_submodel_is_consistent() -> None:
    b = fit("three_level")
    lme = compare_module.require_design(b)
    rows = [r for r in varcorr_rows(b) if r[0] != "sch.cl"]
    covs = term_covs(b)
    school = [g for g, _ in lme.cnms].index("sch.cl")
    covs[school] = np.zeros_like(covs[school])
    theta = theta_from_cov(covs, b.sigma)
    Lt = compare_module.lambdat_at(lme, theta)
    V = covariance.V(lme.Zt, Lt, b.sigma).toarray()
    beta = dict(zip(lme.X_names, covariance.gls_beta(lme.X, lme.y, lme.Zt, Lt, b.sigma), strict=True))
    cmp = compare(as_mapping(b, varcorr=rows, V=V, beta=beta, criterion=None), b)
    assert cmp.row("varcorr", "model").kind == "model"
    assert "sch.cl" in cmp.row("varcorr", "model").explanation
    assert cmp.row("V", "at its parameters").verdict == "agrees"  # a consistent sub-model
    assert kinds(cmp) == {"model"}


def test_a_random_term_lme4_does_not_have_is_model_with_no_construction_check() -> None:
    b = fit("sleepstudy")
    rows = [*varcorr_rows(b), ("Days", "(Intercept)", None, 3.0)]
    cmp = compare(as_mapping(b, varcorr=rows), b)
    assert cmp.row("varcorr", "model").kind == "model"
    assert not any(r.check == "at its parameters" for r in cmp.rows)


def test_fixed_effects_other_than_lme4s_columns_are_model() -> None:
    b = fit("rank_deficient")
    assert b.extra["dropped_columns"]  # lme4 dropped an aliased column
    beta = {**dict(b.beta.items()), b.extra["dropped_columns"][0]: 1.5}
    cmp = compare(as_mapping(b, beta=beta), b)
    assert cmp.row("beta", "model").kind == "model"
    # the aliased column reported as NaN (R's NA) is lme4's own convention: fine
    nan_beta = {**dict(b.beta.items()), b.extra["dropped_columns"][0]: math.nan}
    assert compare(as_mapping(b, beta=nan_beta), b).ok


def test_ML_when_REML_asked_is_model_from_its_parameters() -> None:
    reml, ml = fit("sleepstudy"), fit("sleepstudy_ml")
    cmp = compare(as_mapping(ml, with_criterion=False), reml, refit=lambda REML: ml if not REML else reml)
    assert kinds(cmp) == {"model"}, str(cmp)
    assert "ML where REML was asked" in cmp.row("REML", "model").explanation


def test_ML_when_REML_asked_is_model_from_its_criterion() -> None:
    reml, ml = fit("sleepstudy"), fit("sleepstudy_ml")
    cmp = compare(as_mapping(ml), reml)  # no refit: its criterion is lme4's ML deviance at its theta
    assert cmp.row("criterion", "at its parameters").kind == "model"
    assert kinds(cmp) == {"model"}


def test_a_record_that_says_it_fitted_ML_is_model() -> None:
    reml, ml = fit("sleepstudy"), fit("sleepstudy_ml")
    cmp = compare(ml, reml)
    assert cmp.row("REML", "model").kind == "model"


# --- optimization --------------------------------------------------------------------------------------
def test_a_consistent_fit_away_from_the_optimum_is_optimization_and_lme4_is_lower() -> None:
    b = fit("sleepstudy")
    theta = np.asarray(b.theta) * np.array([1.3, 1.0, 0.8])
    cmp = compare(at_theta(b, theta), b)
    assert kinds(cmp) == {"optimization"}, str(cmp)
    assert cmp.lower == b.source
    assert "lme4's optimum is lower" in cmp.row("theta", "at optimum").explanation
    for quantity in ("theta", "sigma", "criterion", "varcorr", "V"):  # each measured at the optimum
        assert cmp.row(quantity, "at optimum").verdict == "differs", quantity
    assert all(r.verdict == "agrees" for r in cmp.rows if r.check == "at its parameters")


def test_when_the_implementation_finds_a_lower_criterion_it_is_reference_with_evidence() -> None:
    b = fit("sleepstudy")
    stopped = at_theta(b, np.asarray(b.theta) * np.array([1.3, 1.0, 0.8]))
    # a "reference" that stopped short, against the true optimum: the other side is the better one
    short = LmerFit(**{**b.__dict__})
    lme = compare_module.require_design(b)
    theta_short = theta_from_cov(
        term_covariances(stopped["varcorr"], lme.cnms).cov,
        float(stopped["sigma"]),  # type: ignore[arg-type]
    )
    short.theta, short.sigma = theta_short, float(stopped["sigma"])  # type: ignore[arg-type]
    short.Lambdat = compare_module.lambdat_at(lme, theta_short)
    short.beta = pd.Series(stopped["beta"])
    short.criterion = float(stopped["criterion"])  # type: ignore[arg-type]
    short.source = "lme4 stopped short"
    cmp = compare(as_mapping(b), short)
    assert kinds(cmp) == {"reference"}, str(cmp)
    assert cmp.lower == "plugin"
    text = cmp.row("theta", "at optimum").explanation
    assert "lme4's optimum is the worse one" in text
    # the evidence: lme4's own criterion at its theta and at lme4's optimum, both numbers
    assert f"{short.criterion:.10g}" in text and f"{b.criterion:.10g}" in text


def test_a_flat_optimum_is_the_same_optimum_unless_asked_to_be_strict() -> None:
    b = fit("sleepstudy")
    theta = np.asarray(b.theta) * (1 + 2e-5)
    flat = compare(at_theta(b, theta), b)
    assert flat.ok, str(flat)
    assert flat.lower == "tie"
    assert flat.row("theta", "at optimum").rel_diff > 1e-6  # type: ignore[operator]
    strict = compare(at_theta(b, theta), b, flat_optimum=False)
    assert kinds(strict) == {"optimization"}


def test_a_sigma_that_is_not_profiled_at_its_theta_is_optimization_and_no_flat_optimum_excuses_it() -> None:
    b = fit("sleepstudy")
    off = LmerFit(**{**b.__dict__})
    off.sigma = float(b.sigma) * 1.01  # type: ignore[arg-type]
    off.source = "sigma 1% off"
    cmp = compare(off, b)  # theta, beta, criterion and layout are lme4's: only sigma (and V, G) move
    assert kinds(cmp) == {"optimization"}, str(cmp)
    row = cmp.row("sigma", "at its parameters")
    assert row.kind == "optimization" and "not the profiled sigma" in row.explanation
    assert cmp.row("sigma", "at optimum").verdict == "differs"
    assert cmp.row("theta", "at optimum").verdict == "agrees"
    assert cmp.row("V", "at its parameters").verdict == "agrees"  # its V is built from its own sigma


def test_a_profiled_sigma_agrees_at_its_parameters_on_every_example() -> None:
    for name in examples.names():
        b = fit(name)
        assert cmp_ok(compare(b, b)), name
        assert compare(b, b).row("sigma", "at its parameters").rel_diff < 1e-10  # type: ignore[operator]


def cmp_ok(cmp: compare_module.Comparison) -> bool:
    return cmp.ok and not cmp.findings


def test_ML_sigma_at_a_REML_theta_is_model() -> None:
    b = fit("sleepstudy")
    lme = compare_module.require_design(b)
    n, p = lme.n, lme.X.shape[1]
    sigma_ml = float(b.sigma) * math.sqrt((n - p) / n)  # type: ignore[arg-type]
    scale = (sigma_ml / float(b.sigma)) ** 2  # type: ignore[arg-type]
    rows = [(g, v1, v2, c * scale) for g, v1, v2, c in varcorr_rows(b)]  # the same theta
    V = covariance.V(lme.Zt, lme.Lambdat, sigma_ml).toarray()
    cmp = compare(as_mapping(b, V=V, with_criterion=False, sigma=sigma_ml, varcorr=rows), b)
    assert kinds(cmp) == {"model"}, str(cmp)
    assert "sqrt(pwrss / n)" in cmp.row("sigma", "model").explanation


# --- varcorr -> theta ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", examples.names())
def test_varcorr_maps_back_onto_lme4s_theta(name: str) -> None:
    b = fit(name)
    lme = compare_module.require_design(b)
    mapping = term_covariances(varcorr_rows(b), lme.cnms)
    assert mapping.problems == []
    theta = theta_from_cov(mapping.cov, b.sigma)
    canonical = theta_from_cov(cov_from_theta(lme.theta, lme.cnms, b.sigma), b.sigma)
    assert np.allclose(theta, canonical, rtol=1e-9, atol=1e-9)
    if not b.singular:  # off the boundary the Cholesky factor is unique: lme4's own theta
        assert np.allclose(theta, lme.theta, rtol=1e-7, atol=1e-9)


def test_uncorrelated_terms_map_by_name_whatever_their_order() -> None:
    b = fit("sleepstudy_uncorrelated")
    rows = varcorr_rows(b)
    assert [r[0] for r in rows] == ["Subject", "Subject.1"]
    swapped = [("Subject", "Days", None, rows[1][3]), ("Subject.1", "(Intercept)", None, rows[0][3])]
    a = term_covariances(rows, b.cnms)
    c = term_covariances(swapped, b.cnms)
    assert c.problems == []
    assert all(np.array_equal(x, y) for x, y in zip(a.cov, c.cov, strict=True))


def test_interaction_names_match_whatever_their_spelling() -> None:
    cnms = [("class:(school:district)", ["(Intercept)"]), ("school:district", ["(Intercept)"])]
    m = term_covariances(
        [("class:school:district", "(Intercept)", None, 2.0), ("district:school", "(Intercept)", None, 1.0)],
        cnms,
    )
    assert m.problems == []
    assert [float(G[0, 0]) for G in m.cov] == [2.0, 1.0]


def test_a_correlated_term_without_covariances_is_a_different_model() -> None:
    b = fit("sleepstudy")
    rows = [r for r in varcorr_rows(b) if r[2] is None]
    m = term_covariances(rows, b.cnms)
    assert any("uncorrelated" in p for p in m.problems)


def test_theta_is_the_column_wise_lower_triangle_of_the_cholesky_factor() -> None:
    L = np.array([[2.0, 0, 0], [0.5, 1.0, 0], [-0.3, 0.2, 0.7]])
    assert lower_triangle_columnwise(L).tolist() == [2.0, 0.5, -0.3, 1.0, 0.2, 0.7]
    sigma = 1.7
    assert np.allclose(theta_from_cov([sigma**2 * L @ L.T], sigma), [2.0, 0.5, -0.3, 1.0, 0.2, 0.7])


def test_boundary_covariances_give_zero_columns_and_non_psd_is_refused() -> None:
    G = np.array([[0.0, 0.0], [0.0, 4.0]])
    assert np.allclose(chol_psd(G), [[0.0, 0.0], [0.0, 2.0]])
    with pytest.raises(PluginError, match="not positive semi-definite"):
        chol_psd(np.array([[1.0, 2.0], [2.0, 1.0]]))


# --- the plug-in protocol ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("output", "message"),
    [
        ([1, 2, 3], "must return an LmerFit or a mapping"),
        ({"beta": [1.0]}, "beta must map"),
        ({"beta": {"x": "a"}}, "beta values must be numbers"),
        ({"sigma": -1.0}, "sigma must be a positive"),
        ({"V": np.zeros((3, 4))}, "V must be square"),
        ({"varcorr": [("g", "(Intercept)", None)]}, "a varcorr row is"),
    ],
)
def test_broken_plugin_output_is_a_clear_error(output: object, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        submission(output)  # type: ignore[arg-type]


def test_residual_row_in_varcorr_is_dropped() -> None:
    sub = submission({"varcorr": [("g", "(Intercept)", None, 1.0), ("Residual", None, None, 2.0)]})
    assert sub.varcorr == [("g", "(Intercept)", None, 1.0)]


def test_comparison_is_plain_json_and_prints_a_table() -> None:
    b = fit("sleepstudy")
    cmp = compare(as_mapping(b, beta={k: v + 1 for k, v in b.beta.items()}), b)
    text = json.dumps(cmp.to_dict())
    assert "construction" in text
    table = str(cmp)
    assert "beta" in table and "at its parameters" in table and "construction" in table
    assert cmp.to_frame().shape[0] == len(cmp.rows)
