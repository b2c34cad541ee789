"""vcheck.auditing.run against live lme4: the planted faults are caught with their kind, the controls pass.

Each audit runs the built-in examples plus AUDIT_EXAMPLES drawn cases (profile ci: 20, dev: 8, thorough:
100), the same cases for the same seed.  A fault must be found, and found as nothing but its own kind
("not available" aside): the audit says what went wrong, not just that something did.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

import pandas as pd
import pytest
from faults import CONTROLS, FAULTS, Lme4Mapping, Plugin, SloppyOptimizer

from vcheck import audit
from vcheck.auditing.cases import Case
from vcheck.auditing.kinds import KINDS
from vcheck.auditing.results import AuditResult
from vcheck.auditing.run import audit_case, audit_cases

pytestmark = pytest.mark.r

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
AUDIT_EXAMPLES = {"ci": 20, "dev": 8, "thorough": 100}.get(PROFILE, 8)
SEED = 0


@pytest.mark.parametrize("control", CONTROLS, ids=lambda p: p.name)
def test_correct_implementations_yield_nothing_but_not_available(control: Plugin) -> None:
    result = audit(control, examples=AUDIT_EXAMPLES, seed=SEED)
    assert not result.errors, result.summary()
    assert set(result.by_kind()) <= {"not available"}, result.summary()
    assert len(result.cases) == len(audit_cases(SEED, AUDIT_EXAMPLES))


@pytest.mark.parametrize("fault", FAULTS, ids=lambda p: p.name)
def test_planted_fault_is_caught_with_its_kind(fault: Plugin) -> None:
    result = audit(fault, examples=AUDIT_EXAMPLES, seed=SEED)
    assert not result.errors, result.summary()
    found = {kind for kind in result.by_kind() if kind != "not available"}
    assert found == {fault.kind}, result.summary()
    for f in result.findings:
        assert f.case.formula and f.quantity and f.explanation and "\n" not in f.explanation
        assert f.kind in KINDS
    for case in result.cases:  # one finding per case and root cause
        kinds = [f.kind for f in case.findings]
        assert len(kinds) == len(set(kinds)), [(f.quantity, f.kind) for f in case.findings]
        assert case.root_kind in (fault.kind, "not available"), case.findings


def test_the_sloppy_optimizer_is_told_that_lme4_found_the_lower_criterion() -> None:
    result = audit(SloppyOptimizer(), examples=2, seed=SEED, builtin=False)
    theta = [f for f in result.findings if f.quantity == "theta"]
    assert theta and all("lme4's optimum is lower" in f.explanation for f in theta)


def test_lme4s_devfun_and_vcheck_deviance_as_the_criterion_give_the_same_findings() -> None:
    by_lme4 = audit(SloppyOptimizer(), examples=3, seed=SEED, builtin=False, criterion="lme4")
    by_vcheck = audit(SloppyOptimizer(), examples=3, seed=SEED, builtin=False, criterion="vcheck")
    assert summary_of(by_lme4) == summary_of(by_vcheck)


def summary_of(result: AuditResult) -> list[tuple[str, str, str, str]]:
    return [(f.case.label, f.quantity, f.kind, f.check) for f in result.findings]


def test_same_seed_same_cases_and_same_findings() -> None:
    a, b = audit_cases(7, 4), audit_cases(7, 4)
    assert [c.formula for c in a] == [c.formula for c in b]
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x.data, y.data)
    first = audit(Lme4Mapping(), examples=4, seed=7, builtin=False)
    again = audit(Lme4Mapping(), examples=4, seed=7, builtin=False)
    assert summary_of(first) == summary_of(again)


def test_cases_run_alone_give_what_the_sweep_gives() -> None:
    sweep = audit(Lme4Mapping(), examples=3, seed=11, builtin=False)
    alone = [audit_case(Lme4Mapping(), c, source=sweep.impl) for c in audit_cases(11, 3, builtin=False)]
    assert [[(f.quantity, f.kind) for f in c.findings] for c in sweep.cases] == [
        [(f.quantity, f.kind) for f in c.findings] for c in alone
    ]


class Partial(Plugin):
    """Refuses nested models, crashes on crossed ones, and is lme4 otherwise."""

    name = "partial"

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        if "/" in formula or "s:t" in formula:
            raise NotImplementedError("nested random effects")
        if "(1 | b)" in formula:
            raise RuntimeError("singular matrix\nin solve()")
        return Lme4Mapping()(formula, data, REML)


def test_not_implemented_is_unsupported_not_a_finding_and_a_crash_is_that_cases_error() -> None:
    cases = [
        Case("y ~ x + (1 | s/t)", origin="drawn", seed=1, index=0, _data=frame(nested=True)),
        Case("y ~ x + (1 | a) + (1 | b)", origin="drawn", seed=1, index=1, _data=frame(crossed=True)),
        Case("y ~ x + (1 | a)", origin="drawn", seed=1, index=2, _data=frame(crossed=True)),
    ]
    result = audit(Partial(), cases=cases)
    nested, crossed, simple = result.cases
    assert nested.findings == [] and nested.error is None
    assert nested.unsupported == "nested random effects"  # it says so: not a finding against it
    assert result.unsupported == [nested]
    assert crossed.error is not None and "RuntimeError: singular matrix in solve()" in crossed.error
    assert [(f.quantity, f.kind) for f in crossed.findings] == [("raised", "error")]
    assert simple.error is None and {f.kind for f in simple.findings} == {"not available"}
    assert not result.ok()
    assert "did not run" in result.summary()
    assert "agrees" not in result.headline()


def frame(nested: bool = False, crossed: bool = False) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(3)
    n = 40
    out = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n)})
    if nested:
        out["s"] = np.repeat(["a", "b", "c", "d"], 10)
        out["t"] = np.tile(np.repeat([1, 2], 5), 4)
        out["y"] += np.repeat(rng.normal(size=8), 5)
    if crossed:
        out["a"] = np.tile(["p", "q", "r", "s", "u"], 8)
        out["b"] = np.repeat(["k", "l", "m", "n"], 10)
        out["y"] += np.tile(rng.normal(size=5), 8)
    return out


def test_audit_results_pickle_and_round_trip_through_json() -> None:
    result = audit(SloppyOptimizer(), examples=2, seed=SEED, builtin=False)
    back = AuditResult.from_dict(json.loads(result.to_json()))
    assert summary_of(back) == summary_of(result)
    assert back.findings[0].case.data.equals(result.findings[0].case.data)  # rebuilt from (seed, index)
    unpickled = pickle.loads(pickle.dumps(result))
    assert summary_of(unpickled) == summary_of(result)


def test_the_summary_gives_kinds_quantities_and_the_rate() -> None:
    result = audit(Lme4Mapping(), examples=2, seed=SEED, builtin=False)
    text = result.summary()
    assert "cases/s" in text and "not available" in text and "ranef" in text
    assert result.rate > 0
