"""Large models in the audit (`vcheck.auditing.large`): V compared by its cluster blocks, random probes
and its diagonal, never as a dense (or sparse) n x n matrix; the InstEval and random-slope audits against lme4
on scaled-down data (20,000 and 2,500 rows, above `compare.DENSE_V_MAX`: V goes through the operator,
the same code path as the full-size runs of `nox -s bench`).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from vcheck.adapters import own
from vcheck.auditing import large, large_models
from vcheck.auditing.plan import SweepPlan
from vcheck.auditing.run import audit_case
from vcheck.auditing.sweep import run_sweep
from vcheck.core import covariance, vdiff
from vcheck.core.record import LmerFit


@pytest.fixture
def no_n_by_n_V(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to build V as an n x n matrix fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an n x n V was built")

    monkeypatch.setattr(covariance, "V", refuse)


def slope_fit(rows: int = 2000, groups: int = 20, seed: int = 3) -> LmerFit:
    return own.fit(large_models.SLOPE_FORMULA, large_models.slope_data(rows, groups, seed), True)


def test_slope_data_is_seeded_unsorted_and_balanced() -> None:
    a = large_models.slope_data(2000, 20, seed=1)
    pd.testing.assert_frame_equal(a, large_models.slope_data(2000, 20, seed=1))
    assert not a.equals(large_models.slope_data(2000, 20, seed=2))
    assert list(a.columns) == ["y", "x", "g"] and len(a) == 2000
    assert list(a["g"].cat.categories[:2]) == ["g01", "g02"]
    assert set(a["g"].value_counts()) == {100}
    assert not a["g"].cat.codes.is_monotonic_increasing  # rows come in random order
    with pytest.raises(ValueError, match="2 rows per group"):
        large_models.slope_data(30, 20, seed=1)


def test_one_wrong_cluster_is_found_by_blocks_and_diagonal_where_probes_dilute_it(no_n_by_n_V: None) -> None:
    a = slope_fit()
    assert vdiff.V_block_diff(a, a) == (0.0, 20)
    assert vdiff.V_diagonal_diff(a, a) == 0.0 and vdiff.V_probe_diff(a, a) == 0.0
    b = copy.copy(a)
    Zt = sp.csc_matrix(a.Zt, copy=True)
    Zt.data[Zt.indptr[0] : Zt.indptr[1]] *= 1.5  # row 0's random-effect columns: only its cluster changes
    b.Zt = Zt
    blocks = vdiff.V_block_diff(b, a)
    assert blocks is not None and blocks[1] == 20
    probes = vdiff.V_probe_diff(b, a)
    assert blocks[0] > 1e-3 and vdiff.V_diagonal_diff(b, a) > 1e-3
    assert 0 < probes < blocks[0] / 3  # a norm over all 2,000 rows dilutes one cluster's error
    rows = large.V_rows(b, a)
    assert [(r.quantity, r.verdict, r.kind) for r in rows] == [
        ("V diagonal", "differs", "optimization"),
        ("V blocks", "differs", "optimization"),
    ]


def test_crossed_rows_form_one_cluster_compared_by_diagonal_and_probes(no_n_by_n_V: None) -> None:
    rng = np.random.default_rng(5)
    n = 6000  # one crossed cluster larger than covariance.MAX_BLOCK_ROWS
    data = pd.DataFrame(
        {
            "y": rng.standard_normal(n),
            "a": pd.Categorical([f"a{i:02d}" for i in rng.integers(0, 60, n)]),
            "b": pd.Categorical([f"b{i:02d}" for i in rng.integers(0, 50, n)]),
        }
    )
    data["y"] += data["a"].cat.codes * 0.05 + data["b"].cat.codes * 0.03
    fit = own.fit("y ~ 1 + (1|a) + (1|b)", data, True)
    assert vdiff.V_block_diff(fit, fit) is None
    assert [r.quantity for r in large.V_rows(fit, fit)] == ["V diagonal"]


def _rows(comparison: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    return {(r["quantity"], r["check"]): r for r in comparison["rows"]}  # type: ignore[index, union-attr]


@pytest.mark.r
def test_random_slope_model_through_the_sweep_agrees_with_lme4(no_n_by_n_V: None) -> None:
    plan = SweepPlan(target="vcheck", examples=0, builtin=False, large=("slope20k",))
    result = run_sweep(plan)  # in this process, so the fixture sees every V built
    (one,) = result.cases
    assert one.error is None, one.error
    assert {f.kind for f in one.findings} == {"not available"}  # lme4's ranef is not fetched for large fits
    assert one.comparison is not None
    rows = _rows(one.comparison)
    for key in [
        ("layout", "layout"),
        ("V", "at its parameters"),
        ("criterion", "at its parameters"),
        ("theta", "at optimum"),
        ("beta", "at optimum"),
        ("sigma", "at optimum"),
        ("criterion", "at optimum"),
        ("V", "at optimum"),
        ("V diagonal", "at optimum"),
        ("V blocks", "at optimum"),
    ]:
        assert rows[key]["verdict"] == "agrees", rows[key]
    assert "worst of 200 clusters" in str(rows[("V blocks", "at optimum")]["explanation"])
    summary = result.summary()
    assert "large model slope20k" in summary and "V blocks" in summary


@pytest.mark.r
def test_instEval_sample_agrees_with_lme4_without_blocks(no_n_by_n_V: None) -> None:
    case = large.case("instEval10k", rows=2500)
    assert case.formula == large_models.INSTEVAL_FORMULA and len(case.data) == 2500
    one = audit_case(own.fit, case, source="vcheck")
    assert one.error is None, one.error
    assert {f.kind for f in one.findings} == {"not available"}
    assert one.comparison is not None
    rows = _rows(one.comparison)
    assert ("V blocks", "at optimum") not in rows  # students and lecturers crossed: one cluster
    for key in [
        ("V", "at its parameters"),
        ("theta", "at optimum"),
        ("V", "at optimum"),
        ("V diagonal", "at optimum"),
    ]:
        assert rows[key]["verdict"] == "agrees", rows[key]
