"""Audits over configurations and within capabilities, against live lme4 (issue 13's done-when)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from vcheck.auditing.capabilities import needs_of
from vcheck.auditing.configured import CapablePlan, audit_configurations

pytestmark = pytest.mark.r

CALLS: list[str] = []
CAPABILITIES = ["intercept", "REML", "ML"]


def intercepts_only(formula: str, data: pd.DataFrame, REML: bool) -> Any:
    """A random-intercept implementation (lme4 itself); anything else would come out wrong."""
    from vcheck import reference

    CALLS.append(formula)
    if not needs_of(formula, data, REML) <= set(CAPABILITIES):
        return {"beta": {"(Intercept)": 0.0}, "sigma": 1.0, "varcorr": []}  # wrong on purpose
    fit = reference.lmer(formula, data, REML=REML, extras=False)
    return {"beta": fit.beta, "sigma": fit.sigma, "varcorr": fit.varcorr, "criterion": fit.criterion}


def test_intercept_only_implementation_is_audited_on_intercept_cases_only() -> None:
    CALLS.clear()
    plan = CapablePlan(target="x", seed=0, examples=12, capabilities=tuple(CAPABILITIES))
    cases = plan.cases()
    assert len([c for c in cases if c.origin == "drawn"]) == 12
    result = audit_configurations("test_configured:intercepts_only", seed=0, examples=12, workers=0)
    assert len(result.cases) == len(cases) and not result.errors, result.summary()
    assert set(result.by_kind()) <= {"not available"}, result.summary()
    assert len(CALLS) == len(cases)  # every case it was given is one it declared
    assert all(needs_of(c.formula, c.data, c.REML) <= set(CAPABILITIES) for c in cases)
    assert result.capabilities == CAPABILITIES
    assert {"slopes", "crossed", "nested"} & set(result.outside)
    assert any("not audited, outside the declared capabilities" in n for n in result.notes)


def test_statsmodels_lbfgs_has_a_beta_finding_named_by_its_configuration() -> None:
    result = audit_configurations("statsmodels[method=lbfgs]", seed=0, examples=60, builtin=False, workers=0)
    beta = [f for f in result.findings if f.quantity == "beta" and f.kind == "construction"]
    assert beta, result.summary()  # statsmodels#10239: fixed effects set to 0 at a variance's bound
    assert {f.configuration for f in result.findings} == {"method=lbfgs"}
    assert all(c.configuration == "method=lbfgs" for c in result.cases)
    assert "rank_deficient" in result.outside  # statsmodels declares no rank-deficient X
