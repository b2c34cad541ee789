"""Verdicts without R: classification is a pure function of measurements, the numerics-based tolerances,
lme4's construction at any theta (weights and offset included), one finding per root cause, honest
headlines, and an implementation that raises, hangs or dies is an error."""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from faults import as_mapping

from vcheck.auditing import classify as classify_module
from vcheck.auditing import construction, isolate
from vcheck.auditing.cases import Case
from vcheck.auditing.classify import Row, classify
from vcheck.auditing.comparison import compare
from vcheck.auditing.kinds import FAIL_ON_ALL, KINDS, Kind
from vcheck.auditing.measure import Diff, Measurements, readable
from vcheck.auditing.plugin import PluginError, submission
from vcheck.auditing.results import AuditResult, CaseResult, Finding, root_kind
from vcheck.auditing.run import findings_of
from vcheck.core import covariance, deviance, tolerances
from vcheck.core.design import lFormula as vcheck_lFormula
from vcheck.core.record import LmerFit
from vcheck.reference import examples


def fit(name: str) -> LmerFit:
    return examples.load(name).expected


def base(**changes: object) -> Measurements:
    """Measurements of a consistent implementation at lme4's optimum (everything agrees)."""
    m = Measurements(formula="y ~ x + (1|g)", REML=True, a="impl", b="lme4", n=50, p=2, q=5)
    m.at_parameters = [
        Diff("V", "at its parameters", 1e-16, 1e-15, 1e-13),
        Diff("beta", "at its parameters", 1e-16, 1e-15, 1e-13, cost=1e-20, cost_tol=1e-6),
        Diff("criterion", "at its parameters", 1e-16, 1e-14, 1e-13, cost=1e-14, cost_tol=1e-6),
    ]
    m.sigma_own = Diff("sigma", "at its parameters", 1e-12, 1e-12, 1e-4, "profiled sigma 1 at its theta")
    m.sigma_other = Diff(
        "sigma", "at its parameters", 1e-2, 1e-2, 1e-4, "ML profiled sigma 0.99 at its theta"
    )
    m.at_optimum = [
        Diff(q, "at optimum", 1e-9, 1e-9, 1e-6) for q in ("theta", "sigma", "beta", "criterion", "V")
    ]
    m.d_at_theta, m.optimum, m.tie = 100.0, 100.0, 1e-5
    for k, v in changes.items():
        setattr(m, k, v)
    return m


def off_optimum(delta: float, **changes: object) -> Measurements:
    """Consistent at its parameters, but at another optimum: lme4's criterion there is optimum + delta."""
    fields: dict[str, object] = {
        "at_optimum": [Diff(q, "at optimum", 1e-2, 1e-2, 1e-6) for q in ("theta", "sigma", "beta", "V")],
        "d_at_theta": 100.0 + delta,
    }
    return base(**{**fields, **changes})


def kinds(cmp: classify_module.Comparison) -> set[str]:
    return {str(r.kind) for r in cmp.findings if r.kind not in (None, Kind.NOT_AVAILABLE)}


# --- classification: a pure function of the measurements -----------------------------------------------
def test_classification_is_pure_and_repeatable() -> None:
    m = off_optimum(2.0)
    frozen = dataclasses.replace(m)
    first, second = classify(m), classify(m)
    assert [r.to_dict() for r in first.rows] == [r.to_dict() for r in second.rows]
    assert m == frozen  # classify reads its input and changes nothing


def test_everything_within_tolerance_agrees() -> None:
    cmp = classify(base())
    assert cmp.ok and cmp.findings == [] and cmp.causes == []
    assert all(r.verdict == "agrees" for r in cmp.rows)


@pytest.mark.parametrize(
    ("delta", "kind", "lower", "words"),
    [
        (2.0, Kind.OPTIMIZATION, "lme4", "lme4's optimum is lower"),
        (-2.0, Kind.REFERENCE, "impl", "lme4's optimum is the worse one"),
    ],
)
def test_which_optimum_is_lower_decides_optimization_or_reference(
    delta: float, kind: Kind, lower: str, words: str
) -> None:
    cmp = classify(off_optimum(delta))
    assert kinds(cmp) == {kind}
    assert cmp.lower == lower
    text = cmp.row("theta", "at optimum").explanation
    assert words in text and f"by {abs(delta):.3g} (" in text
    assert "102" in text or "98" in text  # both criteria are given as evidence
    assert "100" in text


def test_the_tie_tolerance_is_a_boundary_on_both_sides() -> None:
    assert classify(off_optimum(0.9e-5)).ok  # within the tie: the same (flat) optimum
    assert kinds(classify(off_optimum(1.1e-5))) == {Kind.OPTIMIZATION}
    assert kinds(classify(off_optimum(-1.1e-5))) == {Kind.REFERENCE}
    assert classify(off_optimum(-0.9e-5)).ok


def test_a_flat_optimum_agrees_only_when_allowed_and_says_so() -> None:
    flat = classify(off_optimum(0.0))
    assert flat.ok and flat.lower == "tie"
    assert "same optimum" in flat.row("theta", "at optimum").explanation
    strict = classify(off_optimum(0.0, flat_optimum=False))
    assert kinds(strict) == {Kind.OPTIMIZATION}
    assert "flat or multiple optimum" in strict.row("theta", "at optimum").explanation


def test_an_unmeasured_lower_side_is_optimization_with_the_reason() -> None:
    cmp = classify(off_optimum(0.0, d_at_theta=None))
    assert kinds(cmp) == {Kind.OPTIMIZATION}
    assert "cannot be mapped" in cmp.row("theta", "at optimum").explanation
    assert cmp.lower is None


def test_a_nan_criterion_at_its_theta_is_not_a_tie() -> None:
    cmp = classify(off_optimum(0.0, d_at_theta=math.nan))
    assert kinds(cmp) == {Kind.OPTIMIZATION}


def test_ill_posed_blames_no_one_and_shows_both_numbers() -> None:
    cmp = classify(off_optimum(2.0, ill_posed=["q + p = 6 >= n = 5"]))
    assert kinds(cmp) == {Kind.ILL_POSED}
    text = cmp.row("theta", "at optimum").explanation
    assert "no unique optimum" in text and "102" in text and "100" in text
    # a case that agrees is no finding, ill-posed or not
    assert classify(base(ill_posed=["q + p = 6 >= n = 5"])).ok


def test_construction_at_its_parameters_is_the_root_of_every_difference_at_the_optimum() -> None:
    wrong_V = Diff("V", "at its parameters", 0.3, 0.3, 1e-13, "max |V_a - V| / max |V|")
    m = off_optimum(2.0)
    m.at_parameters = [wrong_V, *m.at_parameters[1:]]
    cmp = classify(m)
    assert kinds(cmp) == {Kind.CONSTRUCTION}
    (cause,) = cmp.causes
    assert (cause.kind, cause.quantity, cause.check) == ("construction", "V", "at its parameters")
    assert {c["quantity"] for c in cause.consequences} == {"theta", "sigma", "beta", "V"}
    assert "follows from its construction disagreement in V" in cmp.row("theta", "at optimum").explanation


@pytest.mark.parametrize("quantity", ["beta", "criterion"])
def test_a_difference_beyond_roundoff_but_below_the_tie_cost_is_no_construction(quantity: str) -> None:
    m = base()
    m.at_parameters = [
        Diff(
            d.quantity,
            d.check,
            1e-10,
            1e-10,
            1e-13,
            cost=1e-8 if d.quantity == quantity else d.cost,
            cost_tol=1e-6,
        )
        if d.quantity == quantity
        else d
        for d in m.at_parameters
    ]
    assert classify(m).ok
    m.at_parameters = [
        dataclasses.replace(d, cost=1e-5) if d.quantity == quantity else d for d in m.at_parameters
    ]
    assert kinds(classify(m)) == {Kind.CONSTRUCTION}
    # without a cost, roundoff alone decides
    m.at_parameters = [
        dataclasses.replace(d, cost=None) if d.quantity == quantity else d for d in m.at_parameters
    ]
    assert kinds(classify(m)) == {Kind.CONSTRUCTION}


def test_its_criterion_being_the_other_criterion_is_model() -> None:
    m = base()
    m.at_parameters[2] = Diff("criterion", "at its parameters", 0.05, 5.0, 1e-13, "REML 100", 5.0, 1e-6)
    m.criterion_other = Diff("criterion", "at its parameters", 1e-15, 1e-13, 1e-13, "ML 105")
    cmp = classify(m)
    assert kinds(cmp) == {Kind.MODEL}
    assert "lme4's ML at its parameters" in cmp.row("criterion").explanation
    m.criterion_other = Diff("criterion", "at its parameters", 0.01, 1.0, 1e-13, "ML 101")
    assert kinds(classify(m)) == {Kind.CONSTRUCTION}


def test_sigma_the_other_criterions_is_model_and_any_other_sigma_is_optimization() -> None:
    m = base()
    m.sigma_own = Diff("sigma", "at its parameters", 1e-2, 1e-2, 1e-4, "profiled sigma 1 at its theta")
    m.sigma_other = Diff("sigma", "at its parameters", 1e-12, 1e-12, 1e-4, "ML profiled sigma 0.99")
    cmp = classify(m)
    assert kinds(cmp) == {Kind.MODEL}
    assert "sqrt(pwrss / n)" in cmp.row("sigma", "model").explanation
    m.sigma_other = Diff("sigma", "at its parameters", 2e-2, 2e-2, 1e-4, "ML profiled sigma 0.98")
    cmp = classify(m)
    assert kinds(cmp) == {Kind.OPTIMIZATION}
    assert "no optimum" in cmp.row("sigma", "at its parameters").explanation
    # no flat optimum excuses it, even when the thetas tie
    m.at_optimum = [Diff("sigma", "at optimum", 1e-2, 1e-2, 1e-6)]
    assert kinds(classify(m)) == {Kind.OPTIMIZATION}
    # on an ill-posed case it is ill-posed, under a model difference model
    assert kinds(classify(dataclasses.replace(m, ill_posed=["q + p >= n"]))) == {Kind.ILL_POSED}
    mm = dataclasses.replace(m, model=[("beta", "model", "its fixed effects are not lme4's")])
    assert kinds(classify(mm)) == {Kind.MODEL}


def test_a_model_difference_is_the_root_and_the_other_reml_optimum_is_named() -> None:
    m = off_optimum(2.0, model=[("varcorr", "model", "lme4's term (1 | s) is not in its model")])
    cmp = classify(m)
    assert kinds(cmp) == {Kind.MODEL}
    assert "a different model" in cmp.row("theta", "at optimum").explanation
    ml = classify(off_optimum(2.0, other_reml=True))
    assert kinds(ml) == {Kind.MODEL}
    assert "ML where REML was asked" in ml.row("REML", "model").explanation
    assert ml.lower is None
    # a tie on a flat optimum is not blamed on the other criterion
    assert classify(off_optimum(0.0, other_reml=True)).ok


def test_layout_differences_are_construction_and_an_agreeing_layout_is_one_row() -> None:
    ok = classify(base(layout=[]))
    assert ok.row("layout", "layout").verdict == "agrees"
    bad = classify(base(layout=[("Lind", "Lind differs from lme4's", math.inf)]))
    assert bad.row("Lind", "layout").kind == Kind.CONSTRUCTION
    assert classify(base()).rows[0].check != "layout"  # no record: no layout rows


def test_no_theta_for_its_varcorr_is_construction() -> None:
    cmp = classify(base(theta_error="covariance matrix is not positive semi-definite"))
    assert cmp.row("varcorr", "at its parameters").kind == Kind.CONSTRUCTION


def test_not_available_rows_never_count_against_it() -> None:
    cmp = classify(base(missing=[("ranef", "it does not give ranef")]))
    assert cmp.ok
    assert [(c.kind, c.quantity) for c in cmp.causes] == [("not available", "ranef")]


def test_rows_and_causes_are_plain_json() -> None:
    cmp = classify(off_optimum(2.0, warnings=["converged = False"], versions={"impl": "1.0"}))
    d = cmp.to_dict()
    assert d["warnings"] == ["converged = False"] and d["versions"] == {"impl": "1.0"}
    assert all(isinstance(r["kind"], str | type(None)) for r in d["rows"])
    assert Row("x", "-", "differs", None, math.inf).to_dict()["rel_diff"] == "inf"
    assert "theta" in str(cmp) and "optimization" in str(cmp)
    assert cmp.kinds()["optimization"] == 4
    with pytest.raises(KeyError, match="no row for 'nothing'"):
        cmp.row("nothing")


# --- the tolerances ------------------------------------------------------------------------------------
def test_tolerance_formulas() -> None:
    eps = tolerances.EPS
    assert tolerances.beta_tolerance(10.0) == pytest.approx(100 * eps * 10)
    assert tolerances.beta_tolerance(10.0, 1e-12) == pytest.approx(100 * eps * 10 + 2e-11)
    assert tolerances.V_tolerance(3) == pytest.approx(100 * eps * 4)
    assert tolerances.V_tolerance(3, 1e-12) == pytest.approx(100 * eps * 4 + 2e-12)
    assert tolerances.criterion_tolerance(5.0, 200) == pytest.approx(100 * eps * 5 * 200)
    assert tolerances.criterion_tolerance(5.0, 0, 1e-12) == pytest.approx(100 * eps * 5 + 2e-12)
    assert tolerances.tie(10.0) == 1e-6 and tolerances.tie(1e4) == pytest.approx(1e-3)
    assert tolerances.tie(-1e4) == pytest.approx(1e-3) and tolerances.tie(math.inf) == 1e-6
    assert tolerances.sigma_tolerance(50, 1e-6) == pytest.approx(math.sqrt(1e-6 / 100))
    assert tolerances.sigma_tolerance(0, 1e-6) == pytest.approx(math.sqrt(1e-6 / 2))
    # the excess of a sigma off by delta is nu (log s + 1/s - 1) ~ 2 nu delta^2
    assert tolerances.sigma_excess(100, 1.0, 1.0) == 0.0
    assert tolerances.sigma_excess(100, 1.001, 1.0) == pytest.approx(2 * 100 * 1e-6, rel=1e-2)
    s = 1.1**2
    assert tolerances.sigma_excess(7, 1.1, 1.0) == pytest.approx(7 * (math.log(s) + 1 / s - 1))


# --- lme4's construction at any theta: weights, offset, Woodbury -------------------------------------
def weighted_sleepstudy() -> LmerFit:
    b = fit("sleepstudy")
    rng = np.random.default_rng(5)
    out = LmerFit(**{**b.__dict__})
    out.weights = rng.uniform(0.5, 2.0, b.n)
    out.offset = rng.normal(size=b.n)
    return out


@pytest.mark.parametrize("name", ["sleepstudy", "three_level", "penicillin", "star_k"])
def test_woodbury_criterion_and_sigma_are_vcheck_deviance_on_lme4s_design(name: str) -> None:
    b = fit(name)
    lme = construction.require_design(b)
    theta = np.asarray(b.theta) * 1.3 + 0.05
    fn = deviance.devfun(construction.reference_design(b), REML=b.REML)
    at = construction.AtTheta(lme, theta, 1.0)
    assert at.criterion(b.REML) == pytest.approx(fn(theta), rel=1e-11)
    assert at.criterion(not b.REML) == pytest.approx(
        deviance.devfun(construction.reference_design(b), REML=not b.REML)(theta), rel=1e-11
    )
    f = fn.factor(theta)
    assert at.profiled_sigma(b.REML) == pytest.approx(deviance.sigma(f, lme.n, lme.p, b.REML), rel=1e-11)
    assert at.pwrss() == pytest.approx(f.pwrss, rel=1e-11)
    on = construction.OnLmeDesign(b)
    assert on.sigma(theta, b.REML) == pytest.approx(at.profiled_sigma(b.REML), rel=1e-13)


def test_V_and_gls_with_weights_and_offset_are_covariances() -> None:
    b = weighted_sleepstudy()
    lme = construction.require_design(b)
    theta, sigma = np.asarray(b.theta) * 0.7, 3.0
    at = construction.AtTheta(lme, theta, sigma)
    Lt = construction.lambdat_at(lme, theta)
    V = covariance.V(lme.Zt, Lt, sigma, weights=b.weights).toarray()
    assert np.allclose(at.V(), V, rtol=1e-13, atol=0)
    v = np.random.default_rng(0).normal(size=(lme.n, 2))
    assert np.allclose(at.Vinv(v), np.linalg.solve(V, v), rtol=1e-9, atol=1e-12)
    assert np.allclose(at.Vinv(v[:, 0]), np.linalg.solve(V, v[:, 0]), rtol=1e-9, atol=1e-12)
    A, c, beta = at.gls()
    ref = covariance.gls_beta(lme.X, lme.y, lme.Zt, Lt, sigma, weights=b.weights, offset=b.offset)
    assert np.allclose(beta, ref, rtol=1e-10)
    assert np.allclose(A, lme.X.T @ np.linalg.solve(V, lme.X), rtol=1e-9)
    assert np.allclose(c, lme.X.T @ np.linalg.solve(V, lme.y - b.offset), rtol=1e-9)
    assert at.backward_error(beta, A, c) < 1e-14
    assert at.backward_error(beta * 1.01, A, c) > 1e-4
    assert at.backward_error(beta + np.nan, A, c) == math.inf
    # kappa bounds cond(V / sigma^2) from above
    assert at.kappa() >= np.linalg.cond(V / sigma**2) * (1 - 1e-12)
    assert at.max_effects_per_row() == 2


def test_the_woodbury_criterion_with_weights_includes_log_det_W() -> None:
    b = weighted_sleepstudy()
    lme = construction.require_design(b)
    theta = np.asarray(b.theta)
    at = construction.AtTheta(lme, theta, 1.0)
    V = covariance.V(lme.Zt, construction.lambdat_at(lme, theta), 1.0, weights=b.weights).toarray()
    # ML deviance by its definition: -2 log L at the profiled sigma and GLS beta
    r = lme.y - b.offset - lme.X @ at.gls()[2]
    n = lme.n
    s2 = float(r @ np.linalg.solve(V, r)) / n
    _, logdet = np.linalg.slogdet(V)
    ml = n * math.log(2 * math.pi * s2) + logdet + n
    assert at.criterion(False) == pytest.approx(ml, rel=1e-11)
    reml = ml - n * math.log(2 * math.pi * s2) - n
    p = lme.p
    s2r = s2 * n / (n - p)
    reml = (n - p) * math.log(2 * math.pi * s2r) + logdet + (n - p)
    reml += np.linalg.slogdet(lme.X.T @ np.linalg.solve(V, lme.X))[1]
    assert at.criterion(True) == pytest.approx(reml, rel=1e-11)


def test_large_n_uses_an_operator_and_sparse_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    b = fit("sleepstudy")
    lme = construction.require_design(b)
    dense = construction.AtTheta(lme, lme.theta, lme.sigma)
    V_dense = dense.V()
    monkeypatch.setattr(construction, "DENSE_V_MAX", 10)
    monkeypatch.setattr(construction, "DENSE_M_MAX", 3)
    big = construction.AtTheta(lme, lme.theta, lme.sigma)
    V = big.V()
    assert not isinstance(V, np.ndarray)
    P = np.eye(lme.n)[:, :3]
    assert np.allclose(V @ P, V_dense[:, :3], rtol=1e-13)
    assert np.allclose(V @ P[:, 0], V_dense[:, 0], rtol=1e-13)
    assert big.criterion(True) == pytest.approx(dense.criterion(True), rel=1e-12)
    assert np.allclose(big.gls()[2], dense.gls()[2], rtol=1e-11)


def test_without_random_effects_V_is_the_residual() -> None:
    b = fit("sleepstudy")
    lme = construction.require_design(b)
    zero = construction.AtTheta(lme, np.zeros_like(lme.theta), 2.0)
    assert np.allclose(zero.V(), 4.0 * np.eye(lme.n))
    assert np.allclose(zero.Vinv(np.ones(lme.n)), np.ones(lme.n) / 4.0)
    assert zero.log_det_M() == pytest.approx(0.0, abs=1e-12)


def test_require_design_names_what_is_missing() -> None:
    b = fit("sleepstudy")
    partial = LmerFit(**{**b.__dict__})
    partial.Zt = None
    with pytest.raises(ValueError, match="Zt"):
        construction.require_design(partial)
    lme = construction.require_design(b)
    assert lme.unit_weights and np.all(lme.offset == 0) and lme.q == b.Zt.shape[0]


def test_a_weighted_record_without_its_weights_is_caught() -> None:
    b = weighted_sleepstudy()
    b.beta = pd.Series(
        covariance.gls_beta(b.X, b.y, b.Zt, b.Lambdat, b.sigma, weights=b.weights, offset=b.offset),
        index=b.X_names,
    )
    assert (
        compare(as_mapping(b, V=b.V().toarray(), with_criterion=False), b)
        .row("beta", "at its parameters")
        .verdict
        == "agrees"
    )
    plain = LmerFit(**{**b.__dict__})
    plain.weights = plain.offset = None
    cmp = compare(as_mapping(b, V=b.V().toarray(), with_criterion=False), plain)
    assert cmp.row("beta", "at its parameters").kind == Kind.CONSTRUCTION
    assert cmp.row("V", "at its parameters").kind == Kind.CONSTRUCTION


# --- readable answers ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("output", "message"),
    [
        ({"source": "x"}, "gives none of"),
        ({"beta": {"(Intercept)": math.inf}}, "beta is not finite"),
        ({"beta": {"(Intercept)": math.nan, "x": math.nan}}, "beta is not finite"),
        ({"varcorr": [("g", "(Intercept)", None, math.nan)]}, "non-finite covariances"),
        ({"V": np.array([[1.0, math.nan], [math.nan, 1.0]])}, "non-finite entries"),
        ({"V": sp.csc_matrix(np.array([[1.0, 0.0], [0.0, math.inf]]))}, "non-finite entries"),
    ],
)
def test_unreadable_answers_are_refused(output: dict[str, object], message: str) -> None:
    with pytest.raises(PluginError, match=message):
        readable(submission(output))


def test_a_readable_answer_with_an_aliased_column_passes() -> None:
    readable(submission({"beta": {"(Intercept)": 1.0, "x": math.nan}, "V": np.eye(2)}))


def test_compare_refuses_nan_output() -> None:
    b = fit("sleepstudy")
    with pytest.raises(PluginError):
        compare({"beta": {"(Intercept)": math.nan, "Days": math.nan}, "sigma": 1.0}, b)


# --- the implementation's own words --------------------------------------------------------------------
def test_its_warnings_and_versions_are_kept() -> None:
    b = fit("sleepstudy")
    out = as_mapping(b, converged=False, pdHess=False, warnings=["singular fit"], versions={"impl": "0.1"})
    cmp = compare(out, b)
    assert cmp.warnings == [
        "converged = False",
        "pdHess = FALSE (Hessian not positive definite)",
        "singular fit",
    ]
    assert cmp.versions == {"impl": "0.1"}
    single = compare(as_mapping(b, warnings="one warning"), b)
    assert single.warnings == ["one warning"]
    assert compare(as_mapping(b, converged=True), b).warnings == []


# --- findings: one per case and root cause -------------------------------------------------------------
CASE = Case("y ~ x + (1 | g)", origin="drawn", seed=0, index=0)


def test_one_finding_per_root_cause_with_consequences_and_warnings() -> None:
    cmp = classify(off_optimum(2.0, missing=[("ranef", "no ranef"), ("criterion", "no criterion")]))
    findings = findings_of(cmp, CASE, ["converged = False"])
    assert [(f.kind, f.quantity) for f in findings] == [("optimization", "theta"), ("not available", "ranef")]
    opt = findings[0]
    assert [c["quantity"] for c in opt.consequences] == ["sigma", "beta", "V"]
    assert opt.implementation_warnings == ["converged = False"] and not opt.silent
    assert findings_of(cmp, CASE, [])[0].silent
    back = Finding.from_dict(opt.to_dict())
    assert (
        back.consequences == opt.consequences and back.implementation_warnings == opt.implementation_warnings
    )
    assert opt.to_dict()["silent"] is False


def test_root_kind_order_puts_errors_first_and_not_available_last() -> None:
    def f(kind: str) -> Finding:
        return Finding(CASE, "q", kind, None, "x")

    assert root_kind([]) is None
    assert root_kind([f("not available"), f("optimization")]) == "optimization"
    assert root_kind([f("reference"), f("construction")]) == "construction"
    assert root_kind([f("ill-posed"), f("error")]) == "error"
    assert KINDS[0] == Kind.ERROR and KINDS[-1] == Kind.NOT_AVAILABLE
    assert Kind.NOT_AVAILABLE not in FAIL_ON_ALL and len(FAIL_ON_ALL) == len(KINDS) - 1


def result_of(*cases: CaseResult, **kw: object) -> AuditResult:
    return AuditResult(impl="impl", seed=0, examples=len(cases), cases=list(cases), **kw)  # type: ignore[arg-type]


def one(kind: str | None, warned: bool = False, error: str | None = None) -> CaseResult:
    c = CaseResult(case=CASE, error=error, warnings=["w"] if warned else [])
    if kind:
        c.findings.append(Finding(CASE, "theta", kind, 0.1, "x"))
    return c


def test_headlines_never_claim_agreement_when_something_went_wrong() -> None:
    assert "agrees with lme4" in result_of(one(None), one("not available")).headline()
    assert "some quantities not available" in result_of(one("not available")).headline()
    every = result_of(one("error", error="boom"), one(None, error="boom"))
    assert "every case failed" in every.headline() and not every.ok()
    mixed = result_of(one("optimization"), one("construction", warned=True), one(None))
    text = mixed.headline()
    assert "findings in 2 of 3 cases" in text and "1 of them silent" in text
    assert "1 construction" in text and "1 optimization" in text
    cut = result_of(one(None), planned=5, interrupted=True)
    assert "INTERRUPTED: 4 of 5" in cut.headline() and not cut.ok() and cut.not_run == 4
    assert "no case ran" in result_of().headline()


def test_cases_by_root_kind_silent_and_warned_and_fail_on() -> None:
    r = result_of(one("optimization"), one("optimization", warned=True), one(None), one(None, error="x"))
    assert r.by_root_kind() == {
        "optimization": {"silent": 1, "warned": 1},
        "agrees": {"silent": 1, "warned": 0},
        "error": {"silent": 1, "warned": 0},
    }
    assert r.failing() == ["error", "optimization"]
    assert r.failing(["model"]) == []
    assert not r.ok() and result_of(one("not available")).ok()
    back = AuditResult.from_dict(r.to_dict())
    assert back.by_root_kind() == r.by_root_kind()
    d = r.to_dict()
    assert d["headline"] == r.headline() and d["by_root_kind"] == r.by_root_kind()


def test_versions_of_the_audited_implementation_are_collected() -> None:
    a, b = one(None), one(None)
    a.versions, b.versions = {"statsmodels": "0.14.1"}, {"statsmodels": "0.14.1", "numpy": "2"}
    assert result_of(a, b).versions == {"statsmodels": "0.14.1", "numpy": "2"}
    assert CaseResult.from_dict(a.to_dict()).versions == a.versions


# --- an implementation in a process of its own ---------------------------------------------------------
def answer(x: int) -> dict[str, int]:
    import warnings

    warnings.warn("careful", stacklevel=1)
    return {"x": x}


def boom(x: int) -> None:
    raise RuntimeError("bad\nthing")


def not_implemented(x: int) -> None:
    raise NotImplementedError("nested terms")


def sleeps(x: int) -> None:
    time.sleep(60)


def aborts(x: int) -> None:
    os.abort()


def test_isolated_calls_answer_raise_time_out_and_die() -> None:
    assert isolate.call(answer, (1,), None) == ({"x": 1}, ["careful"])
    assert isolate.call(answer, (2,), 20.0) == ({"x": 2}, ["careful"])
    with pytest.raises(isolate.Raised, match="RuntimeError: bad thing"):
        isolate.call(boom, (1,), 20.0)
    with pytest.raises(NotImplementedError, match="nested terms"):
        isolate.call(not_implemented, (1,), 20.0)
    t = time.monotonic()
    with pytest.raises(isolate.Timeout, match=r"within 0\.5 s"):
        isolate.call(sleeps, (1,), 0.5)
    assert time.monotonic() - t < 10
    with pytest.raises(isolate.Died, match="SIGABRT"):
        isolate.call(aborts, (1,), 20.0)
    # the next call after a death or a timeout gets a fresh process
    assert isolate.call(answer, (3,), 0.5 + 0.0)[0] == {"x": 3}


def test_an_infinite_likelihood_is_a_finding_not_a_missing_criterion() -> None:
    b = fit("sleepstudy")
    sub = submission(as_mapping(b, with_criterion=False), source="statsmodels")
    sub.extra["criterion_given"] = -math.inf  # -2 log L of a likelihood of +inf
    cmp = compare(sub, b)
    row = cmp.row("criterion", "at its parameters")
    assert (row.verdict, row.kind) == ("differs", Kind.CONSTRUCTION)
    assert "-inf" in row.explanation and "1743.6" in row.explanation
    assert not any(r.quantity == "criterion" and r.verdict == "not available" for r in cmp.rows)


def test_an_answer_without_beta_or_V_is_judged_on_the_rest() -> None:
    b = fit("sleepstudy")
    out = as_mapping(b)
    del out["beta"], out["V"]
    cmp = compare(out, b)
    assert cmp.ok, str(cmp)
    assert {r.quantity for r in cmp.findings} == {"beta", "V", "ranef"}
    assert all(r.verdict == "not available" for r in cmp.findings)


def test_a_small_V_is_compared_entry_by_entry() -> None:
    b = fit("sleepstudy")
    V = b.V().toarray()
    V[0, 1] += 1.0
    V[1, 0] += 1.0
    row = compare(as_mapping(b, V=V), b).row("V", "at its parameters")
    assert row.kind == Kind.CONSTRUCTION
    assert row.abs_diff == pytest.approx(1.0, rel=1e-9)  # the entry's own difference, not a probe's
    assert row.rel_diff == pytest.approx(1.0 / np.abs(b.V().toarray()).max(), rel=1e-9)


def test_the_woodbury_criterion_at_a_small_pwrss() -> None:
    b = fit("sleepstudy")
    small = LmerFit(**{**b.__dict__})
    small.y = np.asarray(b.y) * 1e-3  # pwrss ~ 0.1: a criterion like any other
    small.sigma = float(b.sigma) * 1e-3
    lme = construction.require_design(small)
    at = construction.AtTheta(lme, lme.theta, 1.0)
    assert 0 < at.pwrss() < 1
    fn = deviance.devfun(construction.reference_design(small), REML=True)
    assert at.criterion(True) == pytest.approx(fn(lme.theta), rel=1e-11)


def test_backward_error_without_fixed_effects_is_zero() -> None:
    b = fit("sleepstudy")
    lme = dataclasses.replace(construction.require_design(b), X=np.zeros((b.n, 0)), X_names=[])
    at = construction.AtTheta(lme, lme.theta, lme.sigma)
    A, c, beta = at.gls()
    assert A.shape == (0, 0) and beta.shape == (0,)
    assert at.backward_error(beta, A, c) == 0.0


# --- measurements, value by value ----------------------------------------------------------------------
def test_the_tie_tolerance_scales_with_lme4s_criterion() -> None:
    from vcheck.auditing.comparison import python_criterion
    from vcheck.auditing.measure import measure

    b = fit("sleepstudy")
    m = measure(submission(b), b, criterion=python_criterion(b))
    assert m.tie == pytest.approx(1e-7 * b.criterion)
    assert m.optimum == b.criterion and m.d_at_theta == pytest.approx(b.criterion, rel=1e-12)


def test_a_record_with_other_X_names_or_shape_is_a_layout_difference() -> None:
    b = fit("sleepstudy")
    renamed = LmerFit(**{**b.__dict__})
    renamed.X_names = ["(Intercept)", "days"]
    assert compare(renamed, b).row("X", "layout").kind == Kind.CONSTRUCTION
    shorter = LmerFit(**{**b.__dict__})
    shorter.X = np.asarray(b.X)[:, :1]
    row = compare(shorter, b).row("X", "layout")
    assert row.kind == Kind.CONSTRUCTION and "(180, 1)" in row.explanation


def test_a_record_without_Lambdat_is_judged_on_its_other_pieces() -> None:
    b = fit("sleepstudy")
    rec = LmerFit(**{**b.__dict__})
    rec.Lambdat = None
    cmp = compare(rec, b)
    assert cmp.row("layout", "layout").verdict == "agrees"
    assert not any(r.quantity == "G" for r in cmp.rows)  # G needs its Lambdat


def test_differences_at_the_optimum_are_measured_exactly() -> None:
    b = fit("sleepstudy")
    lme = construction.require_design(b)
    out = as_mapping(b)
    out["beta"] = {k: v + 0.5 for k, v in out["beta"].items()}
    G = [np.array([[612.0, 10.0], [10.0, 35.0]])]
    out["varcorr"] = [("Subject", "(Intercept)", None, 612.0), ("Subject", "Days", None, 35.0)]
    out["varcorr"].append(("Subject", "(Intercept)", "Days", 10.0))
    cmp = compare(out, b)
    assert cmp.row("beta", "at optimum").abs_diff == pytest.approx(0.5)
    from vcheck.auditing.plugin import cov_from_theta

    Gb = cov_from_theta(lme.theta, lme.cnms, lme.sigma)[0]
    expected = np.abs(G[0] - Gb).max() / max(np.abs(Gb).max(), lme.sigma**2)
    assert cmp.row("varcorr", "at optimum").rel_diff == pytest.approx(expected, rel=1e-9)


def test_only_both_theta_and_sigma_of_lme4s_other_optimum_make_it_the_other_criterion() -> None:
    reml, ml = fit("sleepstudy"), fit("sleepstudy_ml")
    from test_compare import at_theta

    away = at_theta(reml, np.asarray(reml.theta) * np.array([1.3, 1.0, 0.8]))
    same_sigma = LmerFit(**{**ml.__dict__})
    same_sigma.sigma = float(away["sigma"])  # type: ignore[arg-type]
    cmp = compare(away, reml, refit=lambda REML: same_sigma)
    assert kinds(cmp) == {Kind.OPTIMIZATION}, str(cmp)


def test_a_V_off_by_roundoff_its_criterion_cannot_see_agrees_and_a_wrong_V_does_not() -> None:
    """V is construction only when beyond its roundoff tolerance AND able to move lme4's criterion by the
    tie tolerance (`AtTheta.V_cost_bound`): nlme's V at its own varcorr was 7.5e-13 off (tolerance
    6.2e-13), a criterion change of at most 3.5e-8; a V 0.1% off is a finding."""
    b = fit("sleepstudy")
    V = b.V().toarray()
    noise = 1.0 + 2e-12 * np.random.default_rng(0).standard_normal(V.shape)
    close = compare(as_mapping(b, V=V * (noise + noise.T) / 2.0), b)
    row = close.row("V", "at its parameters")
    assert row.rel_diff is not None and row.rel_diff > row.tol  # beyond roundoff...
    assert row.verdict == "agrees"  # ...but invisible to the criterion
    wrong = compare(as_mapping(b, V=V * 1.001), b)
    assert wrong.row("V", "at its parameters").kind == Kind.CONSTRUCTION


def test_a_singular_terms_factor_is_compared_in_canonical_form() -> None:
    """With a zero diagonal in a term's relative factor, (L21, L22) on a circle give one G: thetas that
    differ only so are the same fit (lme4 on shuffled rows returned such a theta, 8.6e-6 off, with G, V
    and the criterion equal to the bit); one that changes G is not."""
    from vcheck.core.deviance import devfun
    from vcheck.core.fit import fit_at

    ex = examples.load("sleepstudy")
    design = vcheck_lFormula(ex.formula, ex.data)
    fn = devfun(design, REML=True)
    b = fit_at(fn, np.array([0.0, 0.3, 0.2]))
    a = fit_at(fn, np.array([0.0, float(np.hypot(0.3, 0.2)), 0.0]))
    same = compare(a, b, flat_optimum=False)  # no "same optimum" excuse: the rows themselves agree
    assert same.row("theta", "at optimum").verdict == "agrees", str(same)
    assert same.ok, str(same)
    other = compare(fit_at(fn, np.array([0.0, 0.3, 0.25])), b, flat_optimum=False)
    assert other.row("theta", "at optimum").verdict != "agrees"
