"""vcheck.auditing.strategies, specs and cases: what the drawn cases cover, that lme4 would accept them,
that they are reproducible one by one, and that hypothesis shrinks them toward small, simple cases."""

from __future__ import annotations

import json
import pickle
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, find, given, settings

from vcheck.auditing import specs, strategies
from vcheck.auditing.cases import Case, frame_from_json, frame_to_json
from vcheck.auditing.strategies import CaseSpec, case_specs, draw_case, draw_spec

SEED = 20240611


def lme4_size_problems(case: Case) -> list[str]:
    """lme4 1.1-31's default checks on grouping factors and terms, restated in Python for drawn cases."""
    spec = CaseSpec.from_dict(case.spec or {})
    data = case.data
    n = len(data)
    problems = []
    if n > specs.MAX_ROWS:
        problems.append(f"{n} rows > {specs.MAX_ROWS}")
    factors = {name: data[name].astype(str) for name in spec.group_columns}
    if spec.family == "nested":  # lme4's factors are s and the interaction s:t, not t alone
        factors = {"s": factors["s"], "s:t": factors["s"] + ":" + factors["t"]}
    for name, values in factors.items():
        k = values.nunique()
        if not 2 <= k < n:
            problems.append(f"{name} has {k} levels for {n} rows")
    for levels, nc in specs._term_sizes(spec):
        if levels * nc >= n:
            problems.append(f"a term has {levels} x {nc} random effects for {n} rows")
    return problems


@pytest.fixture(scope="module")
def drawn() -> list[Case]:
    return [draw_case(SEED, i) for i in range(300)]


def test_drawn_cases_pass_lme4s_size_checks(drawn: list[Case]) -> None:
    for case in drawn:
        assert lme4_size_problems(case) == [], case.label


def test_case_i_of_a_seed_is_the_same_drawn_alone_or_in_a_sweep(drawn: list[Case]) -> None:
    for i in (0, 7, 123, 299):
        alone = draw_case(SEED, i)
        assert alone.formula == drawn[i].formula
        pd.testing.assert_frame_equal(alone.data, drawn[i].data)
    assert draw_case(SEED, 1).spec != draw_case(SEED, 2).spec
    assert draw_case(SEED, 1).spec != draw_case(SEED + 1, 1).spec


def test_drawn_cases_cover_every_feature_asked_for(drawn: list[Case]) -> None:
    features = Counter(f for case in drawn for f in case.features)
    for needed in (
        *strategies.FAMILIES,
        "unsorted",
        "sorted",
        "boundary",
        "rank-deficient X",
        "unbalanced",
        "inner labels reused",
        "uncorrelated terms",
        "correlated slopes",
        "str labels",
        "int labels",
        "category labels",
    ):
        assert features[needed] >= 5, needed
    formulas = {c.formula.split(" + (", 1)[1] for c in drawn}
    assert {
        "(x || g)",
        "(f | g)",
        "(0 + f | g)",
        "(1 | s/t)",
        "(1 | s) + (1 | s:t)",
        "(x | a) + (1 | b)",
    } <= {"(" + f for f in formulas}
    assert any(c.REML for c in drawn) and any(not c.REML for c in drawn)


def test_group_sizes_start_at_one(drawn: list[Case]) -> None:
    sizes = [
        min(CaseSpec.from_dict(c.spec or {}).sizes) for c in drawn if c.spec and c.spec["family"] != "crossed"
    ]
    assert min(sizes) == 1


def test_nested_inner_labels_repeat_across_outer_groups(drawn: list[Case]) -> None:
    nested = [c for c in drawn if c.spec and c.spec["family"] == "nested"]
    reused = [c for c in nested if (c.data.groupby("t", observed=True)["s"].nunique() > 1).any()]
    assert len(reused) >= len(nested) // 2


def test_categorical_levels_come_in_a_non_sorted_order(drawn: list[Case]) -> None:
    cats = [c.data["g"] for c in drawn if c.spec and c.spec["code"] == "category" and "g" in c.data]
    assert any(list(s.cat.categories) != sorted(s.cat.categories) for s in cats)


def test_random_slopes_have_nonzero_true_correlation() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        G = specs._random_cov(rng, 2)
        rho = G[0, 1] / np.sqrt(G[0, 0] * G[1, 1])
        assert 0.3 <= abs(rho) <= 0.8


def test_rank_deficient_x_is_exactly_aliased(drawn: list[Case]) -> None:
    case = next(c for c in drawn if c.spec and c.spec["fixed"] == "x + x2")
    x, x2 = case.data["x"].to_numpy(), case.data["x2"].to_numpy()
    X = np.column_stack([np.ones_like(x), x, x2])
    assert np.linalg.matrix_rank(X) == 2


def test_sorted_cases_are_sorted_by_their_first_grouping_factor_in_r_level_order(drawn: list[Case]) -> None:
    for case in drawn:
        spec = CaseSpec.from_dict(case.spec or {})
        if spec.shuffled:
            continue
        rank = specs._r_level_rank(case.data[spec.group_columns[0]])
        assert (np.diff(rank) >= 0).all(), case.label


@given(case_specs())
@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
def test_hypothesis_cases_pass_lme4s_size_checks(spec: CaseSpec) -> None:
    case = strategies.case_from_spec(spec)
    assert lme4_size_problems(case) == []


def test_hypothesis_shrinks_toward_a_small_simple_case() -> None:
    smallest = find(case_specs(), lambda s: s.family == "nested" and s.shuffled)
    assert smallest.shape == (1, 1)  # two schools, one teacher each
    assert smallest.code == "str" and smallest.fixed == "x" and not smallest.boundary
    assert smallest.n <= 4
    simplest = find(case_specs(), lambda s: True)
    # 4 rows: the fewest with room for every level of the factor columns (f has 3 levels)
    assert (simplest.family, simplest.shuffled, simplest.n, simplest.sizes) == ("intercept", False, 4, (2, 2))


def test_case_json_round_trip_is_exact(drawn: list[Case]) -> None:
    for case in drawn[:40]:
        back = Case.from_dict(json.loads(json.dumps(case.to_dict(with_data=True))))
        pd.testing.assert_frame_equal(back.data, case.data)
        assert back.formula == case.formula and back.REML == case.REML


def test_frame_json_keeps_category_order_and_integer_codes() -> None:
    df = pd.DataFrame(
        {
            "y": [0.1, 1 / 3, np.nan],
            "g": pd.Categorical(["b", "a", "b"], categories=["b", "a"]),
            "k": np.array([10, 9, 10]),
            "s": pd.Series(["10", "9", "10"], dtype="str"),
        }
    )
    back = frame_from_json(json.loads(json.dumps(frame_to_json(df))))
    pd.testing.assert_frame_equal(back, df)


def test_cases_pickle_without_their_data_and_rebuild_it(drawn: list[Case]) -> None:
    case = drawn[3]
    blob = pickle.dumps(case)
    assert len(blob) < 2000
    back = pickle.loads(blob)
    assert back._data is None
    pd.testing.assert_frame_equal(back.data, case.data)
    inline = case.inline()
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(inline)).data, case.data)


def test_spec_round_trip_and_drawn_spec_matches_the_case() -> None:
    spec = draw_spec(SEED, 5)
    assert CaseSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert draw_case(SEED, 5).spec == spec.to_dict()


def test_shuffled_rows_keep_their_labels_and_relabelled_levels_keep_the_grouping(drawn: list[Case]) -> None:
    case = next(c for c in drawn if c.spec and c.spec["family"] == "nested")
    shuffled, perm = strategies.shuffle_rows(case, 1)
    assert list(shuffled.data.index) == list(case.data.index[perm])
    pd.testing.assert_frame_equal(shuffled.data.loc[case.data.index], case.data)
    relabelled = strategies.relabel_levels(case, 2)
    for name in ("s", "t"):
        old = case.data[name].astype(str).to_numpy()
        new = relabelled.data[name].astype(str).to_numpy()
        pairs = set(zip(old, new, strict=True))
        assert len(pairs) == len(set(old)) == len(set(new))  # a one-to-one renaming
    assert relabelled.data["s"].dtype == case.data["s"].dtype


def test_grouping_columns_from_a_formula() -> None:
    case = Case("y ~ x + (x || g) + (1 | s/t) + (1 | a:b)", _data=pd.DataFrame({"y": [1.0]}))
    assert strategies.grouping_columns(case) == ("g", "s", "t", "a", "b")
