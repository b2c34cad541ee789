"""classify row by row, without R: what each row says, in which order, and its JSON form (the details
findings.json and the reports are made of).  `base` and `off_optimum` are test_verdicts' measurements of
a consistent implementation at lme4's optimum and at another optimum."""

from __future__ import annotations

import json
import math

import pytest
from test_verdicts import base, off_optimum

from vcheck.auditing.classify import classify
from vcheck.auditing.kinds import Kind
from vcheck.auditing.measurements import Diff


def test_a_layout_difference_leaves_no_agreeing_layout_row() -> None:
    cmp = classify(base(layout=[("Zt", "Zt is (5, 50) with another sparsity pattern", math.inf)]))
    layout = [r for r in cmp.rows if r.check == "layout"]
    assert [(r.quantity, r.verdict, r.kind) for r in layout] == [("Zt", "differs", Kind.CONSTRUCTION)]
    agreeing = [r for r in classify(base(layout=[])).rows if r.check == "layout"]
    assert [(r.quantity, r.verdict) for r in agreeing] == [("layout", "agrees")]


def _criterion_off(**changes: object):  # type: ignore[no-untyped-def]
    """Its criterion at its parameters is not lme4's there (beyond its tolerance and the tie)."""
    m = base(**changes)
    m.at_parameters = [
        *m.at_parameters[:2],
        Diff("criterion", "at its parameters", 1e-3, 0.1, 1e-13, "lme4's REML ...", cost=0.1, cost_tol=1e-6),
    ]
    return m


def test_an_inconsistent_lme4_is_blamed_only_when_its_criterion_is_the_one_lme4_reports() -> None:
    why = "lme4's reported REML criterion 100 is not its own devfun at its theta, 100.1"
    same = classify(_criterion_off(reference_inconsistent=why))
    row = same.row("criterion", "at its parameters")
    assert (row.verdict, row.kind) == ("differs", Kind.REFERENCE)
    assert why in row.explanation and "the number lme4 reports" in row.explanation
    # its criterion at the optimum is not lme4's reported number either: its own construction
    m = _criterion_off(reference_inconsistent=why)
    m.at_optimum = [d if d.quantity != "criterion" else Diff("criterion", "at optimum", 1e-3, 0.1, 1e-6)
                    for d in m.at_optimum]  # fmt: skip
    assert classify(m).row("criterion", "at its parameters").kind == Kind.CONSTRUCTION
    # a consistent lme4: its criterion is no excuse
    assert classify(_criterion_off()).row("criterion", "at its parameters").kind == Kind.CONSTRUCTION
    # lme4's inconsistency excuses its criterion only, never another quantity
    m = _criterion_off(reference_inconsistent=why)
    m.at_parameters[1] = Diff("beta", "at its parameters", 1e-3, 1e-3, 1e-13, cost=1.0, cost_tol=1e-6)
    cmp = classify(m)
    assert cmp.row("beta", "at its parameters").kind == Kind.CONSTRUCTION
    assert cmp.row("criterion", "at its parameters").kind == Kind.REFERENCE


def test_a_criterion_row_at_its_tolerance_exactly_is_lme4s_number() -> None:
    """rel == tol is within (the boundary counts as agreement) for the criterion lme4 reports."""
    why = "lme4's reported REML criterion is not its own devfun at its theta"
    m = _criterion_off(reference_inconsistent=why)
    m.at_optimum = [d if d.quantity != "criterion" else Diff("criterion", "at optimum", 1e-6, 1e-4, 1e-6)
                    for d in m.at_optimum]  # fmt: skip
    assert classify(m).row("criterion", "at its parameters").kind == Kind.REFERENCE


def test_rows_as_json_keep_kind_null_when_it_agrees_and_a_string_when_not() -> None:
    cmp = classify(off_optimum(2.0))
    rows = json.loads(json.dumps(cmp.to_dict()))["rows"]
    assert {r["kind"] for r in rows if r["verdict"] == "agrees"} == {None}
    assert {r["kind"] for r in rows if r["verdict"] == "differs"} == {"optimization"}
    assert all(r["kind"] is None for r in (row.to_dict() for row in cmp.rows) if r["verdict"] == "agrees")


def test_the_other_criterions_sigma_makes_every_difference_at_the_optimum_a_model_difference() -> None:
    """Its sigma is lme4's ML sigma where REML was asked: one cause (model), the rows at the optimum its
    consequences, never an optimization finding on top."""
    far = Diff("sigma", "at its parameters", 1e-2, 1e-2, 1e-4, "profiled sigma 1 at its theta")
    near = Diff("sigma", "at its parameters", 1e-12, 1e-12, 1e-4, "ML profiled sigma 0.99 at its theta")
    cmp = classify(off_optimum(2.0, sigma_own=far, sigma_other=near))
    assert {str(r.kind) for r in cmp.findings} == {"model"}
    assert cmp.row("sigma", "model").verdict == "differs"
    assert "(the ML divisor n: sqrt(pwrss / n))" in cmp.row("sigma", "model").explanation
    ml = classify(off_optimum(2.0, REML=False, sigma_own=far, sigma_other=near))
    assert "(the REML divisor n - p: sqrt(pwrss / n - p))" in ml.row("sigma", "model").explanation
    text = cmp.row("theta", "at optimum").explanation
    assert "a different model: its sigma is the ML profiled sigma" in text
    (cause,) = cmp.causes
    assert cause.quantity == "sigma" and {c["quantity"] for c in cause.consequences} >= {"theta", "beta"}


def test_a_criterion_exactly_the_tie_tolerance_away_is_a_tie() -> None:
    """'Lower by more than the tie tolerance': a difference of exactly the tolerance is still a tie (the
    numbers are chosen so that d_at_theta - optimum is exactly 0.5 in floating point)."""
    for d_at_theta in (100.5, 99.5):
        cmp = classify(off_optimum(0.0, d_at_theta=d_at_theta, optimum=100.0, tie=0.5))
        assert cmp.lower == "tie" and cmp.ok
        assert "same optimum" in cmp.row("theta", "at optimum").explanation


def test_rows_as_json_keep_finite_numbers_and_spell_infinite_ones() -> None:
    m = base(layout=[("Lind", "Lind differs from lme4's", math.inf)])
    rows = {(r["quantity"], r["check"]): r for r in classify(m).to_dict()["rows"]}
    assert rows[("Lind", "layout")]["rel_diff"] == "inf" and rows[("Lind", "layout")]["tol"] == 0.0
    beta = rows[("beta", "at its parameters")]
    assert (beta["rel_diff"], beta["abs_diff"], beta["tol"]) == (1e-16, 1e-15, 1e-13)
    assert json.loads(json.dumps(rows[("beta", "at optimum")]))["rel_diff"] == 1e-9


def test_parameters_at_lme4s_other_optimum_name_both_criteria() -> None:
    for REML, other in ((True, "ML"), (False, "REML")):
        cmp = classify(off_optimum(2.0, other_reml=True, REML=REML))
        assert {str(r.kind) for r in cmp.findings} == {"model"}
        asked = "REML" if REML else "ML"
        assert cmp.row("REML", "model").explanation == (
            f"its parameters are lme4's {other} optimum: it fitted {other} where {asked} was asked"
        )


def test_its_criterion_being_the_other_criterion_roots_every_difference_at_the_optimum_in_the_model() -> None:
    m = _criterion_off()
    m.at_optimum = off_optimum(2.0).at_optimum
    m.d_at_theta = 102.0
    m.criterion_other = Diff("criterion", "at its parameters", 1e-14, 1e-12, 1e-13, "lme4's ML ... is 98")
    cmp = classify(m)
    assert {str(r.kind) for r in cmp.findings} == {"model"}
    assert (
        "its criterion is lme4's ML at its parameters"
        in cmp.row("criterion", "at its parameters").explanation
    )
    assert "a different model: its criterion is lme4's ML" in cmp.row("theta", "at optimum").explanation


def test_layout_rows_carry_exact_numbers() -> None:
    (ok,) = [r for r in classify(base(layout=[])).rows if r.check == "layout"]
    assert (ok.rel_diff, ok.tol) == (0.0, 0.0)
    (bad,) = [
        r for r in classify(base(layout=[("Zt", "other pattern", math.inf)])).rows if r.check == "layout"
    ]
    assert (bad.rel_diff, bad.tol) == (math.inf, 0.0)


def test_a_row_at_the_optimum_exactly_at_its_tolerance_agrees() -> None:
    at_tol = [Diff(q, "at optimum", 1e-6, 1e-6, 1e-6) for q in ("theta", "sigma", "beta", "V")]
    cmp = classify(base(at_optimum=at_tol, model=[("beta", "model", "extra ['z']")], other_reml=True))
    assert [r.quantity for r in cmp.findings] == [
        "beta"
    ]  # the model row; no REML row, nothing at the optimum


def test_a_sigma_off_its_profile_leads_the_explanation_at_the_optimum_and_only_then() -> None:
    far = Diff("sigma", "at its parameters", 1e-2, 1e-2, 1e-4, "profiled sigma 1 at its theta")
    far_other = Diff("sigma", "at its parameters", 2e-2, 2e-2, 1e-4, "ML profiled sigma 0.99 at its theta")
    text = (
        classify(off_optimum(2.0, sigma_own=far, sigma_other=far_other))
        .row("theta", "at optimum")
        .explanation
    )
    assert text.startswith(
        "theta differs from lme4's optimum (rel diff 1.0e-02); its sigma is not the profiled"
    )
    assert "so its (theta, sigma) is no optimum; lme4's optimum is lower" in text
    plain = classify(off_optimum(2.0)).row("theta", "at optimum").explanation
    assert plain.startswith("theta differs from lme4's optimum (rel diff 1.0e-02); lme4's optimum is lower")


def test_an_ill_posed_case_names_the_side_with_the_lower_criterion() -> None:
    for delta, lower in ((2.0, "lme4 1.1-31"), (-2.0, "impl 0.1")):
        m = off_optimum(delta, ill_posed=["q + p = 6 >= n = 5"], a="impl 0.1", b="lme4 1.1-31")
        assert classify(m).lower == lower


def test_a_sigma_off_after_a_construction_difference_follows_from_it() -> None:
    far = Diff("sigma", "at its parameters", 1e-2, 1e-2, 1e-4, "profiled sigma 1 at its theta")
    far_other = Diff("sigma", "at its parameters", 2e-2, 2e-2, 1e-4, "ML profiled sigma 0.99 at its theta")
    m = base(sigma_own=far, sigma_other=far_other)
    m.at_parameters[0] = Diff("V", "at its parameters", 0.3, 0.3, 1e-13, "max |V_a - V| / max |V|")
    row = classify(m).row("sigma", "at its parameters")
    assert row.kind == Kind.CONSTRUCTION
    assert row.explanation.startswith("follows from its construction disagreement in V: its sigma is not")


def test_a_missing_row_is_a_key_error_naming_it() -> None:
    cmp = classify(base())
    with pytest.raises(KeyError, match=r"no row for 'G' \(at optimum\)"):
        cmp.row("G", "at optimum")
    with pytest.raises(KeyError, match="no row for 'G'"):
        cmp.row("G")


def test_the_printed_table_explains_what_differs_and_only_that() -> None:
    cmp = classify(off_optimum(2.0))
    text = str(cmp)
    assert "lme4's optimum is lower" in text
    agreeing = [line for line in text.splitlines() if "agrees" in line]
    assert agreeing and all(line.rstrip().endswith("agrees") for line in agreeing)
