"""The audit's result types (`vcheck.auditing.results`) and kinds (`vcheck.auditing.kinds`): plain JSON
both ways, the summary text of `vcheck.report.text`, and Kind working as the strings it replaces."""

from __future__ import annotations

import json
import math

from vcheck.auditing.cases import Case
from vcheck.auditing.kinds import KINDS, Kind
from vcheck.auditing.plan import SweepResult
from vcheck.auditing.results import AuditResult, CaseResult, Finding, one_line


def toy() -> AuditResult:
    case = Case(formula="y ~ 1 + (1|g)", origin="drawn", seed=3, index=1)
    bad = Case(formula="y ~ x + (1|g)", origin="drawn", seed=3, index=2)
    return AuditResult(
        impl="toy",
        seed=3,
        examples=2,
        cases=[
            CaseResult(
                case=case,
                findings=[
                    Finding(case, "V", Kind.CONSTRUCTION, 0.25, "V is off", check="at its parameters"),
                    Finding(case, "ranef", Kind.NOT_AVAILABLE, None, "not reported", check="-"),
                    Finding(case, "theta", Kind.OPTIMIZATION, math.inf, "elsewhere", check="at optimum"),
                ],
                seconds=1.0,
                impl_seconds=0.5,
            ),
            CaseResult(case=bad, error="toy raised RuntimeError: no"),
        ],
        seconds=2.0,
    )


def test_kind_is_the_string_it_replaces() -> None:
    assert Kind.NOT_AVAILABLE == "not available" and Kind("ill-posed") is Kind.ILL_POSED
    assert json.dumps({Kind.MODEL: Kind.MODEL}) == '{"model": "model"}'
    assert {"model": 1}[Kind.MODEL] == 1 and f"{Kind.MODEL:<7}|" == "model  |"
    assert [str(k) for k in KINDS] == [  # every kind; a case's root kind is the first it has
        "error",
        "construction",
        "model",
        "optimization",
        "reference",
        "ill-posed",
        "not available",
    ]
    assert {k.value for k in Kind} >= {"error", "reference"}


def test_results_round_trip_through_json() -> None:
    result = toy()
    text = result.to_json()
    back = AuditResult.from_dict(json.loads(text))
    assert back.to_dict() == json.loads(text)
    assert [(f.quantity, f.kind, f.check) for f in back.findings] == [
        ("V", "construction", "at its parameters"),
        ("ranef", "not available", "-"),
        ("theta", "optimization", "at optimum"),
    ]
    assert back.findings[2].rel_diff == math.inf  # written as the string "inf"
    assert back.by_kind() == {"construction": 1, "not available": 1, "optimization": 1}
    assert [c.case.label for c in back.errors] == ["drawn(seed=3, index=2)"]
    assert not back.ok() and back.ok(kinds=()) is False  # a case error fails whatever the kinds


def test_the_summary_text() -> None:
    text = toy().summary()
    assert text.splitlines()[0].startswith("audit of toy: 2 cases (0 built-in examples, 2 drawn with seed 3)")
    assert "  construction      1 findings in 1 cases" in text
    assert "1 cases did not run:" in text and "drawn(seed=3, index=2): toy raised RuntimeError: no" in text
    assert "[construction] V on drawn(seed=3, index=1) y ~ 1 + (1|g): V is off" in text
    assert "[not available]" not in text  # not a finding worth showing first
    sweep = SweepResult(impl="toy", seed=3, examples=2, cases=toy().cases, executor="processes", workers=2)
    first = sweep.summary().splitlines()[0]
    assert "2 drawn with seed 3) 2 worker processes in" in first


def test_one_line() -> None:
    assert one_line(ValueError("a\n  b\tc")) == "a b c"
    assert len(one_line(ValueError("x" * 1000))) == 300
