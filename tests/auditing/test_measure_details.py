"""vcheck.auditing.measure without R, called directly: its defaults, lme4's own consistency, and the
numbers it hands to classify (lme4's criterion on lme4's design stands in for R)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import vcheck
from vcheck.auditing import construction
from vcheck.auditing.comparison import python_criterion
from vcheck.auditing.differences import relative
from vcheck.auditing.measure import measure
from vcheck.auditing.plugin import Submission, cov_from_theta, submission, theta_from_cov
from vcheck.core import tolerances
from vcheck.core.errors import RError
from vcheck.core.fit import fit_design
from vcheck.core.record import LmerFit
from vcheck.reference import examples


def _lme4(name: str = "sleepstudy") -> LmerFit:
    return examples.load(name).expected


def _measure(a: LmerFit, b: LmerFit, **options: object):  # type: ignore[no-untyped-def]
    return measure(submission(a), b, criterion=python_criterion(b), **options)  # type: ignore[arg-type]


def test_measure_alone_takes_a_flat_optimum_as_the_same_optimum() -> None:
    b = _lme4()
    assert _measure(b, b).flat_optimum is True
    assert _measure(b, b, flat_optimum=False).flat_optimum is False


def test_lme4_reporting_a_criterion_that_is_not_its_devfun_at_its_theta_is_recorded() -> None:
    b = _lme4()
    assert b.criterion is not None
    m = _measure(b, b)
    assert m.reference_inconsistent == "" and m.optimum == b.criterion
    off = dataclasses.replace(b, criterion=b.criterion + 0.5)
    m = _measure(b, off)
    assert "is not its own devfun at its theta" in m.reference_inconsistent
    assert f"{off.criterion:.10g}" in m.reference_inconsistent
    assert m.optimum == pytest.approx(b.criterion, abs=1e-8)  # lme4's optimum is its devfun at its theta
    # within the tie tolerance it is lme4's number
    tie = tolerances.tie(b.criterion)
    near = dataclasses.replace(b, criterion=b.criterion + 0.5 * tie)
    m = _measure(b, near)
    assert m.reference_inconsistent == "" and m.optimum == near.criterion


def _small_fit(groups: tuple[int, ...] = (3, 3, 2)) -> LmerFit:
    """vcheck's REML fit of y ~ x + (x | g) on as many rows as random and fixed effects together."""
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(len(groups)), groups)
    x = rng.normal(size=len(g))
    data = pd.DataFrame({"y": x + rng.normal(size=len(g)), "x": x, "g": g.astype(str)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_design(vcheck.lFormula("y ~ x + (x | g)", data), REML=True)


def test_as_many_effects_as_observations_is_ill_posed() -> None:
    b = _small_fit()
    m = _measure(b, b)
    assert (m.q, m.p, m.n) == (6, 2, 8)
    assert m.ill_posed == ["q + p = 6 + 2 >= n = 8: as many random and fixed effects as observations"]
    assert _measure(_lme4(), _lme4()).ill_posed == []
    more = _small_fit((3, 3, 3))
    assert _measure(more, more).ill_posed == []


def test_an_unbounded_criterion_is_ill_posed_on_whichever_side_it_shows() -> None:
    b = _lme4()
    sub = dataclasses.replace(submission(b), criterion=-math.inf)
    m = measure(sub, b, criterion=python_criterion(b))
    assert m.ill_posed == ["its criterion is -inf: the likelihood is unbounded"]
    unbounded = measure(submission(b), b, criterion=lambda theta, REML: -math.inf)
    assert unbounded.ill_posed == [
        "lme4's criterion is -inf: the likelihood is unbounded",
        "lme4's at its theta criterion is -inf: the likelihood is unbounded",
    ]


def test_an_lme4_record_without_its_criterion_is_measured_without_one() -> None:
    b = _lme4()
    m = _measure(b, dataclasses.replace(b, criterion=None))
    assert m.optimum is None and m.d_at_theta is None and m.reference_inconsistent == ""
    assert m.tie == tolerances.CRITERION_ABS
    assert [d.quantity for d in m.at_optimum if d.quantity == "criterion"] == []


def test_a_screen_that_disagrees_never_makes_lme4_inconsistent() -> None:
    """The screen may only confirm agreement; lme4's criterion decides every finding."""
    b = _lme4()
    exact = python_criterion(b)
    m = measure(submission(b), b, criterion=exact, screen=lambda theta, REML: exact(theta, REML) + 1.0)
    assert m.reference_inconsistent == "" and m.optimum == b.criterion
    (crit,) = [d for d in m.at_parameters if d.quantity == "criterion"]
    assert crit.rel <= crit.tol  # the screen's difference was checked with lme4's criterion
    assert m.d_at_theta == pytest.approx(b.criterion, abs=1e-8)
    # a criterion that differs: both criteria in the finding come from lme4's criterion
    off = dataclasses.replace(submission(b), criterion=b.criterion + 5.0)
    screened = measure(off, b, criterion=exact, screen=lambda theta, REML: exact(theta, REML) + 1.0)
    plain = measure(off, b, criterion=exact)
    for m in (screened, plain):
        assert m.criterion_other is not None
    assert screened.criterion_other.abs == pytest.approx(plain.criterion_other.abs, abs=1e-9)
    (c_screened,) = [d for d in screened.at_parameters if d.quantity == "criterion"]
    (c_plain,) = [d for d in plain.at_parameters if d.quantity == "criterion"]
    assert c_screened.abs == pytest.approx(c_plain.abs, abs=1e-9)


def _quantities(diffs) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.quantity for d in diffs]


def _quantities_of(m):  # type: ignore[no-untyped-def]
    """The criterion rows at its parameters."""
    return [d for d in m.at_parameters if d.quantity == "criterion"]


def test_a_V_over_more_rows_is_matched_to_lme4s_rows_by_label() -> None:
    """Its V over the data's 182 rows, lme4's over the 180 it kept: lined up by label, no difference."""
    b = _lme4()
    sub = submission(b)
    n = b.X.shape[0]
    labels = pd.Index([*range(n), n + 5, n + 6])[::-1]  # unsorted, two rows lme4 did not use
    pos = labels.get_indexer(b.row_index)
    big = np.eye(n + 2)
    big[np.ix_(pos, pos)] = sub.V.toarray()
    m = measure(dataclasses.replace(sub, V=big, row_index=labels), b, criterion=python_criterion(b))
    assert m.model == []
    (V,) = [d for d in m.at_parameters if d.quantity == "V"]
    assert V.rel <= V.tol


def test_quantities_of_another_model_are_not_measured_as_construction() -> None:
    b = _lme4()
    sub = submission(b)
    n = b.X.shape[0]
    other_rows = dataclasses.replace(sub, V=np.eye(n), row_index=pd.RangeIndex(1000, 1000 + n))
    m = measure(other_rows, b, criterion=python_criterion(b))
    assert [q for q, _, _ in m.model] == ["V"]
    assert "V" not in _quantities(m.at_parameters) and "V" not in _quantities(m.at_optimum)
    extra = dataclasses.replace(sub, beta=pd.concat([sub.beta, pd.Series({"Days^2": 0.1})]))
    m = measure(extra, b, criterion=python_criterion(b))
    assert [q for q, _, _ in m.model] == ["beta"]
    assert "beta" not in _quantities(m.at_parameters) and "beta" not in _quantities(m.at_optimum)


@pytest.mark.parametrize("p", [8, 7])
def test_an_ML_fit_with_as_many_fixed_effects_as_rows_is_measured_without_the_REML_sigma(p: int) -> None:
    """n - p = 0: the REML criterion and its sigma do not exist; ML's are measured, nothing raises.
    n - p = 1: the REML sigma exists."""
    b = dataclasses.replace(_small_fit(), REML=False)
    n = b.X.shape[0]
    X = np.random.default_rng(3).normal(size=(n, p))
    names = [f"c{i}" for i in range(p)]
    beta = np.linalg.lstsq(X, b.y, rcond=None)[0]
    square = dataclasses.replace(b, X=X, X_names=names, beta=beta)
    sub = dataclasses.replace(
        submission(square), beta=pd.Series(beta, index=names), sigma=0.5, criterion=None
    )
    m = measure(sub, square, criterion=python_criterion(square))
    assert (m.n, m.p) == (n, p) and m.ill_posed[0].startswith(f"q + p = 6 + {p} >= n = 8")
    assert m.sigma_own is not None
    assert (m.sigma_other is None) == (p == n)


def test_a_criterion_reported_at_its_own_sigma_is_held_to_lme4s_at_that_sigma() -> None:
    """-2 log L at (theta, sigma) with a sigma off the profile is d(theta) + nu (log s + 1/s - 1): that
    number agrees at its parameters, and the profiled d(theta) alone would not."""
    b = _lme4()
    n, p = b.X.shape
    sigma = 1.01 * b.sigma
    at_sigma = b.criterion + tolerances.sigma_excess(n - p, sigma, b.sigma)
    # its record carries lme4's theta (the same random-effect covariances relative to its sigma)
    rec = dataclasses.replace(b, sigma=sigma)
    sub = dataclasses.replace(submission(b), sigma=sigma, criterion=at_sigma, record=rec)
    m = measure(sub, b, criterion=python_criterion(b))
    (crit,) = [d for d in m.at_parameters if d.quantity == "criterion"]
    assert crit.rel <= crit.tol and crit.abs < 1e-6
    assert m.sigma_own is not None and m.sigma_own.rel == pytest.approx(0.01, rel=1e-4)
    other = b.sigma * math.sqrt((n - p) / n)  # the ML profiled sigma at the same theta
    assert m.sigma_other is not None
    assert m.sigma_other.rel == pytest.approx(abs(sigma - other) / other, rel=1e-4)
    assert m.sigma_other.abs == pytest.approx(abs(sigma - other), rel=1e-4)
    assert m.sigma_own.abs == pytest.approx(0.01 * b.sigma, rel=1e-4)
    assert m.sigma_own.tol == tolerances.sigma_tolerance(n - p, m.tie)  # each with its own divisor
    assert m.sigma_other.tol == tolerances.sigma_tolerance(n, m.tie)
    assert m.sigma_other.detail.startswith("ML profiled sigma")
    at_optimum = {d.quantity: d for d in m.at_optimum}
    assert at_optimum["sigma"].rel == pytest.approx(0.01, rel=1e-9)
    assert at_optimum["sigma"].abs == pytest.approx(0.01 * b.sigma, rel=1e-9)
    assert at_optimum["criterion"].rel == pytest.approx((at_sigma - b.criterion) / b.criterion, rel=1e-9)
    assert at_sigma - b.criterion > 1e-3  # what the profiled criterion would have called a difference


def test_the_other_criterion_is_asked_only_when_its_criterion_differs() -> None:
    b = _lme4()
    assert _measure(b, b).criterion_other is None  # no needless R round trip
    within_tie = dataclasses.replace(submission(b), criterion=b.criterion + 0.5 * tolerances.tie(b.criterion))
    m = measure(within_tie, b, criterion=python_criterion(b))
    assert m.criterion_other is None
    off = dataclasses.replace(submission(b), criterion=b.criterion + 5.0)
    m = measure(off, b, criterion=python_criterion(b))
    assert m.criterion_other is not None
    assert m.criterion_other.detail.startswith("lme4's ML at its parameters")
    # both relative to their criteria (about 1750 each): the same tolerance to 1%
    (crit,) = [d for d in m.at_parameters if d.quantity == "criterion"]
    assert m.criterion_other.tol == pytest.approx(crit.tol, rel=0.01, abs=0)


def test_an_infinite_criterion_where_lme4s_is_infinite_too_is_unbounded_not_a_difference() -> None:
    b = _lme4()
    infinite = dataclasses.replace(submission(b), criterion=None, extra={"criterion_given": -math.inf})
    (row,) = [d for d in _quantities_of(measure(infinite, b, criterion=python_criterion(b)))]
    assert (row.rel, row.abs, row.tol, row.cost) == (math.inf, math.inf, 0.0, math.inf)
    sub = dataclasses.replace(submission(b), criterion=None, extra={"criterion_given": math.inf})
    m = measure(sub, b, criterion=lambda theta, REML: math.inf)
    assert "criterion" not in _quantities(m.at_parameters)
    assert any(text.endswith("the criterion is unbounded") for text in m.ill_posed)


def test_an_answer_without_sigma_is_measured_on_what_it_gives() -> None:
    b = _lme4()
    beta_only = Submission(source="impl", beta=submission(b).beta)
    m = measure(beta_only, b, criterion=python_criterion(b))
    assert _quantities(m.at_optimum) == ["beta"]
    assert dict(m.missing) == {
        "sigma": "impl does not give sigma",
        "varcorr": "impl does not give varcorr",
        "theta": "impl gives no varcorr and sigma to map onto lme4's theta",
        "criterion": "impl does not give criterion",
        "V": "impl does not give V",
        "ranef": "impl does not give ranef",
    }
    no_modes = measure(submission(b), dataclasses.replace(b, ranef=None), criterion=python_criterion(b))
    assert no_modes.missing == [("ranef", "lme4's record has no conditional modes to compare with")]
    with_varcorr = Submission(source="impl", beta=submission(b).beta, varcorr=submission(b).varcorr)
    m = measure(with_varcorr, b, criterion=python_criterion(b))
    assert _quantities(m.at_optimum) == ["beta"] and {q for q, _ in m.missing} >= {"sigma", "theta"}


def test_criterion_differences_are_relative_to_the_larger_of_the_criterion_and_one() -> None:
    """|its - lme4's| / max(|lme4's|, 1), the tolerance scaled alike; an infinite criterion of lme4's
    gives an infinite difference against the unscaled tolerance (here lme4's criterion is a constant
    0.5, or +inf, so that the scale is 1)."""
    b = _lme4()
    sub = dataclasses.replace(submission(b), criterion=0.75)
    small = measure(sub, b, criterion=lambda theta, REML: 0.5)
    unbounded = measure(sub, b, criterion=lambda theta, REML: math.inf)
    (c_small,) = [d for d in small.at_parameters if d.quantity == "criterion"]
    (c_inf,) = [d for d in unbounded.at_parameters if d.quantity == "criterion"]
    assert c_small.rel == c_small.abs == pytest.approx(0.25, abs=0.05)
    assert c_inf.rel == math.inf and c_inf.tol == c_small.tol
    o_small, o_inf = small.criterion_other, unbounded.criterion_other
    assert o_small is not None and o_inf is not None
    assert o_small.rel == o_small.abs == pytest.approx(0.25, abs=0.05) and o_small.tol == c_small.tol
    assert o_inf.rel == math.inf and o_inf.tol == c_small.tol


def test_lme4s_other_fit_is_asked_for_only_when_the_optima_differ() -> None:
    b = _lme4()
    asked: list[bool] = []

    def refit(REML: bool) -> LmerFit:
        asked.append(REML)
        return _lme4("sleepstudy_ml")

    m = measure(submission(b), b, criterion=python_criterion(b), refit=refit)
    assert asked == [] and m.other_reml is None
    # every row exactly at its tolerance (0 here) still agrees: no refit
    same = dataclasses.replace(submission(b), V=None)
    m = measure(same, b, criterion=python_criterion(b), refit=refit, tol_optimum=0.0)
    assert asked == [] and {d.rel for d in m.at_optimum} == {0.0}
    ml = _lme4("sleepstudy_ml")
    m = measure(submission(ml), b, criterion=python_criterion(b), refit=refit)
    assert asked == [False] and m.other_reml is True


def test_a_records_own_warnings_are_kept_and_the_answers_words_win() -> None:
    b = _lme4()
    rec = dataclasses.replace(b, extra={"converged": False, "warnings": ["boundary (singular) fit"]})
    m = _measure(rec, b)
    assert m.warnings == ["converged = False", "boundary (singular) fit"]
    sub = dataclasses.replace(submission(rec), extra={"warnings": "Hessian is singular"})
    m = measure(sub, b, criterion=python_criterion(b))
    assert m.warnings == ["converged = False", "Hessian is singular"]


def test_REML_with_no_more_rows_than_fixed_effects_is_ill_posed() -> None:
    """n = p under REML: the REML criterion does not exist (lme4's criterion is given as a constant
    here, vcheck's refuses such a design)."""
    b = _small_fit()
    n = b.X.shape[0]
    X = np.random.default_rng(3).normal(size=(n, n))
    names = [f"c{i}" for i in range(n)]
    beta = pd.Series(np.linalg.solve(X, b.y), index=names)
    square = dataclasses.replace(b, X=X, X_names=names, beta=beta)
    m = measure(submission(square), square, criterion=lambda theta, REML: 10.0)
    assert f"n = {n} <= p = {n}: the REML criterion is not defined" in m.ill_posed
    # n - p = 1 under REML: its sigma is held to the REML profiled sigma
    X7 = X[:, :-1]
    beta7 = pd.Series(np.linalg.lstsq(X7, b.y, rcond=None)[0], index=names[:-1])
    seven = dataclasses.replace(b, X=X7, X_names=names[:-1], beta=beta7)
    m7 = measure(submission(seven), seven, criterion=lambda theta, REML: 10.0)
    assert m7.sigma_own is not None and not any("REML criterion" in t for t in m7.ill_posed)
    # ... and a criterion reported at its own sigma is lme4's at that sigma, nu = 1
    own = construction.OnLmeDesign(seven).sigma(np.asarray(seven.theta), True)
    at_2 = 10.0 + tolerances.sigma_excess(1, 2 * own, own)
    rec = dataclasses.replace(seven, sigma=2 * own)
    sub = dataclasses.replace(submission(seven), sigma=2 * own, criterion=at_2, record=rec)
    (crit,) = [
        d for d in measure(sub, seven, criterion=lambda t, R: 10.0).at_parameters if d.quantity == "criterion"
    ]
    assert crit.abs < 1e-9
    ml = dataclasses.replace(square, REML=False)
    assert not any(
        "REML criterion" in t for t in measure(submission(ml), ml, criterion=lambda t, R: 10.0).ill_posed
    )


def test_a_record_with_its_own_theta_gets_roundoff_tolerances_only() -> None:
    """No varcorr -> theta round trip for a record that carries theta: a V off by 1e-8 relative is far
    beyond the roundoff of its construction."""
    b = _lme4()
    sub = submission(b)
    m = measure(dataclasses.replace(sub, V=sub.V * (1 + 1e-8)), b, criterion=python_criterion(b))
    (V,) = [d for d in m.at_parameters if d.quantity == "V"]
    assert V.rel == pytest.approx(1e-8, rel=1e-3) and V.tol < 1e-11


def test_a_zero_response_has_no_profiled_sigma_and_is_measured_without_one() -> None:
    """y = 0: pwrss = 0 at every theta, the criterion is -inf and there is no profiled sigma."""
    b = _small_fit()
    zero = dataclasses.replace(b, y=np.zeros_like(b.y))
    m = measure(dataclasses.replace(submission(zero), sigma=0.5), zero, criterion=python_criterion(zero))
    assert m.sigma_own is None and m.sigma_other is None
    (crit,) = [d for d in m.at_parameters if d.quantity == "criterion"]
    assert crit.rel == math.inf


def test_a_term_lme4_does_not_have_leaves_its_parameters_unmapped() -> None:
    b = _lme4()
    sub = submission(b)
    assert _measure(b, b).unmapped is False
    extra_term = dataclasses.replace(
        sub, varcorr=[*sub.varcorr, ("Night", "(Intercept)", None, 4.0)], record=None
    )
    m = measure(extra_term, b, criterion=python_criterion(b))
    assert m.unmapped is True and m.at_parameters == [] and m.d_at_theta is None


def test_lme4s_criterion_refusing_a_theta_is_answered_on_lme4s_design() -> None:
    """lme4's devfun refuses some thetas ("Downdated VtV is not positive definite"): the same formula
    on lme4's own design answers instead."""
    b = _lme4()

    def refusing(theta: np.ndarray, REML: bool) -> float:
        raise RError("Downdated VtV is not positive definite")

    m = measure(submission(b), b, criterion=refusing)
    assert m.d_at_theta == pytest.approx(b.criterion, abs=1e-7) and m.reference_inconsistent == ""


def test_the_criterion_at_its_theta_comes_from_lme4s_criterion_not_the_screen() -> None:
    """At another optimum the screen's number is checked with lme4's criterion, which is reported."""
    b, ml = _lme4(), _lme4("sleepstudy_ml")
    exact = python_criterion(b)
    m = measure(submission(ml), b, criterion=exact, screen=lambda theta, REML: exact(theta, REML) + 1.0)
    assert m.d_at_theta == pytest.approx(exact(np.asarray(ml.theta), True), abs=1e-9)


def test_a_beta_off_by_more_than_roundoff_but_costing_nothing_is_within() -> None:
    """beta 1e-9 relative off lme4's GLS beta: beyond the backward-error tolerance, but it moves the
    criterion by (beta - beta_GLS)' X'V^-1X (beta - beta_GLS), far below the tie."""
    b = _lme4()
    sub = submission(b)
    m = measure(dataclasses.replace(sub, beta=sub.beta * (1 + 1e-9)), b, criterion=python_criterion(b))
    (beta,) = [d for d in m.at_parameters if d.quantity == "beta"]
    assert beta.rel > beta.tol and beta.within
    assert beta.cost is not None and 0 < beta.cost < 1e-10


def test_the_criterion_tolerance_counts_n_plus_q_terms() -> None:
    """The criterion sums n + q terms (log det L and the residuals), each with its roundoff."""
    b = _lme4()
    m = _measure(b, b)
    (crit,) = [d for d in m.at_parameters if d.quantity == "criterion"]
    lme = construction.require_design(b)
    kappa = construction.AtTheta(lme, lme.theta, lme.sigma).kappa()
    expected = tolerances.criterion_tolerance(kappa, lme.n + lme.q) / max(abs(b.criterion), 1.0)
    assert crit.tol == pytest.approx(expected, rel=1e-6, abs=0)  # approx has abs=1e-12 by default


def test_lme4s_criterion_is_compared_with_its_own_number_not_its_negative() -> None:
    b = dataclasses.replace(_lme4(), criterion=2.0)
    m = measure(submission(b), b, criterion=lambda theta, REML: -2.0)
    text = m.reference_inconsistent
    assert "lme4's reported REML criterion 2 is not its own devfun at its theta, -2" in text


@pytest.mark.parametrize(("shift", "other"), [(0.5e-5, True), (1.5e-5, False)])
def test_lme4s_other_optimum_is_recognised_within_ten_times_the_optimum_tolerance(
    shift: float, other: bool
) -> None:
    b, ml = _lme4(), _lme4("sleepstudy_ml")
    theta = np.asarray(ml.theta, dtype=float) + np.array([shift, 0.0, 0.0])
    near = dataclasses.replace(ml, theta=theta, sigma=ml.sigma * (1 + 0.5e-5))
    m = measure(submission(near), b, criterion=python_criterion(b), refit=lambda REML: ml)
    assert m.other_reml is other


def test_differences_at_the_optimum_are_relative_to_the_larger_of_their_size_and_one() -> None:
    """theta (all below 1 here) and a criterion below 1: relative = absolute difference."""
    b, ml = _lme4(), _lme4("sleepstudy_ml")
    m = _measure(ml, b)
    (theta,) = [d for d in m.at_optimum if d.quantity == "theta"]
    assert max(abs(np.asarray(b.theta))) < 1 and theta.rel == theta.abs > 0
    small = dataclasses.replace(b, criterion=0.5)
    m = measure(dataclasses.replace(submission(b), criterion=0.75), small, criterion=python_criterion(b))
    (crit,) = [d for d in m.at_optimum if d.quantity == "criterion"]
    assert crit.rel == crit.abs == 0.25


def test_G_at_the_optimum_is_relative_to_the_larger_of_its_largest_entry_and_sigma_squared() -> None:
    b = _lme4()
    rec = dataclasses.replace(b, Lambdat=b.Lambdat * 1.001)  # the same layout, another G
    m = _measure(rec, b)
    (G,) = [d for d in m.at_optimum if d.quantity == "G"]
    Gb = (b.sigma**2 * (b.Lambdat.T @ b.Lambdat)).toarray()
    Ga = (b.sigma**2 * (rec.Lambdat.T @ rec.Lambdat)).toarray()
    assert np.abs(Gb).max() < b.sigma**2  # sleepstudy: sigma^2 is the larger
    assert G.rel == pytest.approx(np.abs(Ga - Gb).max() / b.sigma**2, rel=1e-9)


def test_lme4_within_exactly_the_tie_of_its_reported_criterion_is_consistent() -> None:
    """The screen says otherwise; lme4's criterion is exactly the tie (1e-6) away: consistent."""
    b = dataclasses.replace(_lme4(), criterion=0.0)
    m = measure(submission(b), b, criterion=lambda theta, REML: 1e-6, screen=lambda theta, REML: 5.0)
    assert m.reference_inconsistent == "" and m.optimum == 0.0


def test_a_criterion_equally_near_both_readings_is_held_to_the_profiled_one() -> None:
    """Halfway between d(theta) and d(theta) + nu (log s + 1/s - 1): lme4's convention, the profiled
    d(theta), is the number it is compared with (here lme4's criterion is 0 at every theta)."""
    b = _lme4()
    n, p = b.X.shape
    sigma = 1.5 * b.sigma
    own = construction.OnLmeDesign(b).sigma(np.asarray(b.theta), True)
    half = tolerances.sigma_excess(n - p, sigma, own) / 2.0
    rec = dataclasses.replace(b, sigma=sigma)
    sub = dataclasses.replace(submission(b), sigma=sigma, criterion=half, record=rec)
    (crit,) = _quantities_of(measure(sub, b, criterion=lambda theta, REML: 0.0))
    assert crit.detail.startswith("lme4's REML at its parameters is 0, ")


@pytest.mark.parametrize("what", ["theta", "sigma"])
def test_lme4s_other_optimum_at_exactly_the_tolerance_is_recognised(what: str) -> None:
    """|theta - theta_ML| / max(|theta_ML|, 1) or |sigma - sigma_ML| / sigma_ML equal to the tolerance
    (passed as tol_optimum) still counts as lme4's ML optimum."""
    b, ml = _lme4(), _lme4("sleepstudy_ml")
    theta, sigma = np.asarray(ml.theta, dtype=float), float(ml.sigma)
    if what == "theta":
        theta = theta + np.array([3e-5, 0.0, 0.0])
    else:
        sigma = sigma * (1 + 3e-5)
    cnms = construction.require_design(b).cnms
    theta_ml = theta_from_cov(cov_from_theta(np.asarray(ml.theta), cnms, ml.sigma), ml.sigma)
    tol = relative(theta, theta_ml, floor=1.0) if what == "theta" else abs(sigma - ml.sigma) / ml.sigma
    near = dataclasses.replace(ml, theta=theta, sigma=sigma)
    m = measure(submission(near), b, criterion=python_criterion(b), refit=lambda REML: ml, tol_optimum=tol)
    assert tol > 1e-5 and m.other_reml is True
