"""The benchmark (`python -m vcheck.bench`): its fixed cases, its report and one live case."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from vcheck import bench, bench_cases, bench_compare, bench_report
from vcheck.bench_cases import Case, scaling_cases, scaling_data
from vcheck.bench_timing import Timing, time_case


def test_scaling_series_spans_rows_and_levels() -> None:
    cases = scaling_cases()
    rows = {c.size for c in cases if c.series == "rows"}
    levels = {c.levels for c in cases}
    assert rows == {10**3, 10**4, 10**5, 10**6}
    assert min(levels) == 10 and max(levels) == 10**5
    assert {c.model for c in cases} == {"(1|g)", "(x|g)", "crossed"}
    assert max(c.size for c in scaling_cases(max_rows=10**5)) == 10**5


@pytest.mark.parametrize("model", ["(1|g)", "(x|g)", "crossed"])
def test_scaling_data_uses_every_level_on_unsorted_rows(model: str) -> None:
    data = scaling_data(model, 2000, 200)
    assert len(data) == 2000 and data["g"].cat.categories.size == 200
    assert data["g"].value_counts().min() == 10  # balanced: every level used
    codes = data["g"].cat.codes.to_numpy()
    assert (np.diff(codes) < 0).any()  # not sorted by group
    assert ("h" in data) == (model == "crossed")


def test_every_set_is_in_the_run_and_quick_only_shortens_it() -> None:
    full, quick = bench.all_cases(), bench.all_cases(quick=True)
    assert {c.group for c in full} == {"corpus", "headline", "scaling"}
    assert {c.name for c in full if c.group == "headline"} == set(bench_cases.HEADLINE_GOALS)
    assert {c.name for c in quick if c.group != "scaling"} == {c.name for c in full if c.group != "scaling"}
    assert all(c.repeats == 1 for c in quick if c.group == "headline")


def _timing(group: str, name: str, v: float, r: float, diff: float = 0.0, **kw: object) -> Timing:
    case = Case(group, name, "y ~ x + (1|g)", lambda _: None, **kw)  # type: ignore[arg-type,return-value]
    return Timing(
        case, n=100, vcheck_s=v, vcheck_1t_s=v, lme4_s=r, vcheck_feval=10, lme4_feval=10,
        criterion=100.0, criterion_diff=diff, vcheck_mb=1.0, lme4_mb=2.0,
    )  # fmt: skip


def test_report_gives_median_and_worst_ratio_and_flags_a_worse_criterion(tmp_path: Path) -> None:
    timings = [
        _timing("corpus", "a", 1.0, 4.0),
        _timing("corpus", "b", 3.0, 4.0),
        _timing("corpus", "c", 2.0, 4.0, diff=1e-3),  # worse optimum than lme4's
        _timing("headline", "sleepstudy", 0.1, 1.0),
        _timing("scaling", "(1|g) n=1,000", 0.1, 1.0, series="rows", model="(1|g)", size=1000),
        _timing("scaling", "(1|g) n=10,000", 0.5, 2.0, series="rows", model="(1|g)", size=10000),
    ]
    failed = _timing("corpus", "d", math.nan, math.nan)
    failed.error = "RuntimeError: lme4's lmer failed on this case"
    timings.append(failed)
    plot = tmp_path / "bench_scaling.png"
    bench_report.plot_scaling([t for t in timings if t.case.group == "scaling"], plot)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    text = bench_report.render(timings, plot, (1.0, 1.0), {"R": "4.2.2"}, 60.0)
    assert "3 of 4 cases ran; median ratio 0.500, worst 0.750 (b)" in text
    assert "criterion as good as lme4's on 2 of 3 (not: c)" in text
    assert "(1\\|g) n=1,000" in text  # a formula's bar does not split the table cell
    assert "error: RuntimeError" in text
    assert "![time against rows](bench_scaling.png)" in text


@pytest.mark.r
def test_one_live_case_both_sides() -> None:
    case = Case(
        "corpus", "dyestuff", "Yield ~ 1 + (1 | Batch)", bench_cases._from_r("lme4::Dyestuff"), repeats=1
    )
    t = time_case(case)
    assert not t.error, t.error
    assert t.n == 30 and t.vcheck_feval == t.lme4_feval
    assert t.vcheck_s > 0 and t.lme4_s >= 0 and t.vcheck_mb > 0 and t.lme4_mb > 0
    assert bench_report.criterion_ok(t)


def test_compare_section_states_the_goal_on_the_issues_case() -> None:
    """The `vcheck compare` table: the goal is judged on 100,000 rows and 50,000 levels only, and a run
    that is too slow, too large or not in agreement is marked as missing it."""
    small = bench_compare.CompareRun(20_000, 10_000, 0, True, 2.0, int(0.4e9))
    good = bench_compare.CompareRun(100_000, 50_000, 0, True, 4.5, int(0.6e9))
    assert good.met and "< 120 s, < 3 GB (yes)" in bench_compare.compare_markdown([small, good])
    for bad in (
        bench_compare.CompareRun(100_000, 50_000, 0, True, 130.0, int(0.6e9)),
        bench_compare.CompareRun(100_000, 50_000, 0, True, 4.5, int(3.2e9)),
        bench_compare.CompareRun(100_000, 50_000, 1, False, 4.5, int(0.6e9)),
    ):
        text = bench_compare.compare_markdown([small, bad])
        assert not bad.met and "(**no**)" in text
    assert "| 20,000 | 10,000 | 0 | yes | 2.0 s | 0.40 GB | - |" in bench_compare.compare_markdown([small])


@pytest.mark.r
def test_compare_measured_live(tmp_path: Path) -> None:
    """One small `vcheck compare` run through the launcher: every check agrees, wall and peak RSS set."""
    run = bench_compare.measure_compare(2_000, 500, tmp_path)
    assert run.code == 0 and run.agree
    assert 0 < run.seconds < bench_compare.GOAL_SECONDS and 50e6 < run.rss < bench_compare.GOAL_BYTES
