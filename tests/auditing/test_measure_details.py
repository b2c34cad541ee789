"""vcheck.auditing.measure without R, called directly: its defaults, lme4's own consistency, and the
numbers it hands to classify (lme4's criterion on lme4's design stands in for R)."""

from __future__ import annotations

import dataclasses

import pytest

from vcheck.auditing.comparison import python_criterion
from vcheck.auditing.measure import measure
from vcheck.auditing.plugin import submission
from vcheck.core import tolerances
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
