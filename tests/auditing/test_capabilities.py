"""Capabilities: what a case needs, what an implementation declares, and Unsupported before the call."""

from __future__ import annotations

import sys
import types
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings

import vcheck
from vcheck.auditing import capabilities as caps
from vcheck.auditing.configurations import Audited
from vcheck.auditing.strategies import cases_within, draw_case, draw_spec, drawn_within
from vcheck.reference import examples


def test_spec_needs_agree_with_needs_of_the_data() -> None:
    for i in range(120):
        case, spec = draw_case(4, i), draw_spec(4, i)
        assert caps.spec_needs(spec) == caps.needs_of(case.formula, case.data, case.REML), case.formula


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("sleepstudy", {"intercept", "slopes", "correlated_slopes", "REML"}),
        ("sleepstudy_uncorrelated", {"intercept", "slopes", "REML"}),
        ("penicillin", {"intercept", "crossed", "REML"}),
        ("pastes", {"intercept", "nested", "REML"}),
        ("factor_slope_0", {"factor_slopes", "correlated_slopes", "REML"}),
        ("rank_deficient", {"intercept", "rank_deficient", "REML"}),
        ("sleepstudy_ml", {"intercept", "slopes", "correlated_slopes", "ML"}),
    ],
)
def test_needs_of_builtin_examples(name: str, needs: set[str]) -> None:
    ex = examples.load(name)
    assert caps.needs_of(ex.formula, ex.data, ex.REML) == needs


def test_arguments_given_are_needs() -> None:
    ex = examples.load("sleepstudy")
    need = caps.needs_of(ex.formula, ex.data, True, {"weights": "Days", "offset": None})
    assert "weights" in need and "offset" not in need


def test_parse_families_spellings_and_errors() -> None:
    both = {"intercept", "correlated_slopes", "REML", "ML"}
    assert caps.parse_families("intercept, Correlated-Slopes") == both
    assert caps.parse_families(["intercept", "ML"]) == {"intercept", "ML"}
    with pytest.raises(caps.CapabilityError, match="unknown capability 'splines'"):
        caps.parse_families("intercept,splines")
    with pytest.raises(caps.CapabilityError):
        caps.parse_families(" , ")


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(module, k, v)
        if callable(v):
            v.__module__ = name
    sys.modules[name] = module
    return module


def test_declared_from_module_or_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    def fit(formula: str, data: pd.DataFrame, REML: bool) -> dict[str, Any]:
        raise AssertionError("not called")

    def fit_weighted(formula: str, data: pd.DataFrame, REML: bool, *, weights: Any = None) -> Any:
        raise AssertionError("not called")

    mod = _module("toy_caps_plugin", fit=fit, CAPABILITIES=["intercept", "REML", "ML"])
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    assert caps.declared(fit) == {"intercept", "REML", "ML"}
    fit_weighted.__module__ = "no_such_module_here"
    assert caps.declared(fit_weighted) == set(caps.FAMILIES) | {"weights"}
    fit_weighted.CAPABILITIES = ["nonsense"]  # type: ignore[attr-defined]
    with pytest.raises(caps.CapabilityError):
        caps.declared(fit_weighted)


def test_audited_raises_unsupported_before_calling_an_intercept_only_impl() -> None:
    calls = []

    def fit(formula: str, data: pd.DataFrame, REML: bool) -> dict[str, Any]:
        calls.append(formula)
        return {}

    audited = Audited(fit, target="toy", capabilities=frozenset({"intercept", "REML", "ML"}))
    ex = examples.load("sleepstudy")
    with pytest.raises(vcheck.Unsupported, match="needs slopes, correlated_slopes"):
        audited(ex.formula, ex.data, ex.REML)
    assert calls == []
    assert issubclass(vcheck.Unsupported, NotImplementedError)
    dyes = examples.load("dyestuff2")
    audited(dyes.formula, dyes.data, dyes.REML)
    assert calls == [dyes.formula]


def test_drawn_within_keeps_addresses_and_capabilities() -> None:
    intercept_only = {"intercept", "REML", "ML"}
    drawn = drawn_within(0, 30, intercept_only)
    assert len(drawn) == 30
    assert [c.index for c in drawn] == sorted({c.index for c in drawn})
    for case in drawn:
        assert case.origin == "drawn" and case.data.equals(draw_case(0, case.index).data)
        assert caps.needs_of(case.formula, case.data, case.REML) <= intercept_only
    assert {c.formula.split("+ (")[-1] for c in drawn} == {"1 | g)"}
    with pytest.raises(caps.CapabilityError, match="no drawn case"):
        drawn_within(0, 1, {"rank_deficient", "REML"})


@settings(max_examples=15)
@given(case=cases_within(["intercept", "slopes", "ML"]))
def test_hypothesis_cases_within(case: Any) -> None:
    assert caps.needs_of(case.formula, case.data, case.REML) <= {"intercept", "slopes", "ML"}
