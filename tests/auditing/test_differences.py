"""vcheck.auditing.differences without R: the units every measurement is made of, checked on small
hand-made numbers (relative and absolute differences, V entry by entry and through probes, conditional
modes by label, a record's layout against lme4's)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from vcheck.auditing import construction, differences
from vcheck.auditing.differences import (
    abs_diff,
    alignment,
    dense,
    div,
    infinite,
    layout_differences,
    ranef_diff,
    relative,
    same_pattern,
    sorted_csc,
    v_diff,
)
from vcheck.auditing.plugin import PluginError, Submission
from vcheck.core import tolerances
from vcheck.reference import examples


def test_relative_is_max_abs_difference_over_max_abs_reference() -> None:
    assert relative([1.0, 2.0, -4.0], [1.0, 2.5, -5.0]) == 1.0 / 5.0
    assert relative([3.0], [2.0]) == 0.5
    assert relative([2.0, 5.0], [2.0, 5.0]) == 0.0
    # the floor keeps a tiny reference from blowing the ratio up
    assert relative([1e-9], [0.0], floor=1e-3) == pytest.approx(1e-6, rel=1e-12)
    assert relative([1.0], [0.5], floor=2.0) == 0.25
    assert relative([1e-20], [0.0]) == 1e-20 / tolerances.ABS_FLOOR


def test_relative_of_other_shapes_or_nan_is_infinite_and_of_nothing_is_zero() -> None:
    assert relative([1.0, 2.0], [1.0, 2.0, 3.0]) == math.inf
    assert relative([1.0, math.nan], [1.0, 2.0]) == math.inf
    assert relative(np.zeros((0, 2)), np.zeros((0, 2))) == 0.0


def test_abs_diff() -> None:
    assert abs_diff([1.0, 2.0, -4.0], [1.5, 2.0, -5.0]) == 1.0
    assert abs_diff([1.0], [1.0, 2.0]) == math.inf
    assert abs_diff([], []) == 0.0


def test_criterion_names() -> None:
    assert (differences.crit_name(True), differences.crit_name(False)) == ("REML", "ML")


def test_div_and_infinite() -> None:
    assert div(3.0, 2.0) == 1.5
    assert div(math.inf, 2.0) == math.inf and div(math.nan, 2.0) == math.inf
    assert infinite(math.inf) and infinite(-math.inf) and infinite(float("inf"))
    assert not any(infinite(x) for x in (1.0, 0, math.nan, "inf", None))


def test_same_pattern_ignores_stored_order_and_values() -> None:
    a = sp.csc_matrix(np.array([[1.0, 0.0], [2.0, 3.0]]))

    def shuffled() -> sp.csc_matrix:  # column 0 stored as rows 1, 0
        return sp.csc_matrix((a.data[::-1] * 5, np.array([1, 0, 1]), a.indptr.copy()), shape=a.shape)

    assert same_pattern(a, shuffled()) and same_pattern(shuffled(), a)
    assert not same_pattern(a, sp.csc_matrix(np.array([[1.0, 1.0], [2.0, 3.0]])))
    assert not same_pattern(a, sp.csc_matrix(np.array([[1.0, 0.0], [0.0, 3.0]])))
    # the same number of entries per column, in other rows
    assert not same_pattern(a, sp.csc_matrix(np.array([[1.0, 1.0], [2.0, 0.0]])))


def test_sorted_csc_sorts_a_copy() -> None:
    M = sp.csc_matrix((np.array([2.0, 1.0]), np.array([1, 0]), np.array([0, 2])), shape=(2, 1))
    out = sorted_csc(M)
    assert list(out.indices) == [0, 1] and list(out.data) == [1.0, 2.0]
    assert list(M.indices) == [1, 0]  # the argument is left alone


def _sub(row_index: pd.Index | None) -> Submission:
    return Submission(source="impl", beta=pd.Series({"(Intercept)": 1.0}), row_index=row_index)


def _lme4(row_index: pd.Index | None):  # type: ignore[no-untyped-def]
    return dataclasses.replace(examples.load("sleepstudy").expected, row_index=row_index)


def test_alignment_maps_lme4s_rows_into_its_rows_by_label() -> None:
    assert alignment(_sub(None), _lme4(pd.RangeIndex(3))) is None
    assert alignment(_sub(pd.Index([0, 1, 2])), _lme4(None)) is None
    assert alignment(_sub(pd.Index([5, 6, 7])), _lme4(pd.Index([5, 6, 7]))) is None
    pos = alignment(_sub(pd.Index([7, 5, 6, 9])), _lme4(pd.Index([5, 6, 7])))
    assert pos is not None and list(pos) == [1, 2, 0]
    with pytest.raises(PluginError, match="cannot be matched"):
        alignment(_sub(pd.Index([5, 6])), _lme4(pd.Index([5, 6, 7])))


def _V(n: int, seed: int = 0) -> np.ndarray:
    A = np.random.default_rng(seed).normal(size=(n, n))
    return A @ A.T + n * np.eye(n)


def test_v_diff_entry_by_entry() -> None:
    B = _V(4)
    A = B.copy()
    A[1, 2] += 0.5
    scale = float(np.abs(B).max())
    assert v_diff(A, B, None, 4) == (0.5, 0.5 / scale)
    assert v_diff(sp.csc_matrix(A), sp.csc_matrix(B), None, 4) == (0.5, 0.5 / scale)
    assert v_diff(B, B, None, 4) == (0.0, 0.0)
    assert v_diff(np.zeros((0, 0)), np.zeros((0, 0)), None, 0) == (0.0, 0.0)
    # fewer rows than lme4's, or more rows without labels to pick lme4's: infinitely different
    assert v_diff(B[:3, :3], B, None, 4) == (math.inf, math.inf)
    assert v_diff(_V(5), B, None, 4) == (math.inf, math.inf)
    assert v_diff(aslinearoperator(B[:3, :3]), B, None, 4) == (math.inf, math.inf)
    assert v_diff(aslinearoperator(B[:3, :3]), B, np.array([0, 1, 2, 3]), 4) == (math.inf, math.inf)


def test_v_diff_picks_lme4s_rows_out_of_a_larger_V_by_position() -> None:
    B = _V(3)
    A = np.full((5, 5), 99.0)
    pos = np.array([4, 0, 2])
    A[np.ix_(pos, pos)] = B
    assert v_diff(A, B, pos, 3) == (0.0, 0.0)
    A[4, 4] += 1.0
    d, rel = v_diff(A, B, pos, 3)
    assert d == pytest.approx(1.0, rel=1e-12)
    assert rel == pytest.approx(1.0 / float(np.abs(B).max()), rel=1e-12)


def test_v_diff_through_probes_beyond_the_dense_size(monkeypatch: pytest.MonkeyPatch) -> None:
    B = _V(6)
    A = B + 0.25 * np.eye(6)
    P = np.random.default_rng(0).standard_normal((6, differences.N_PROBES))
    expected = (
        float(np.abs(0.25 * P).max()),
        float(np.linalg.norm(0.25 * P) / np.linalg.norm(B @ P)),
    )
    # an operator is compared through probes whatever its size
    d, rel = v_diff(aslinearoperator(A), B, None, 6)
    assert d == pytest.approx(expected[0], rel=1e-12) and rel == pytest.approx(expected[1], rel=1e-12)
    d, rel = v_diff(A, aslinearoperator(B), None, 6)
    assert rel == pytest.approx(expected[1], rel=1e-12)
    assert v_diff(aslinearoperator(B), B, None, 6) == (0.0, 0.0)
    # dense matrices up to DENSE_V_MAX rows are compared entry by entry, beyond through probes
    monkeypatch.setattr(construction, "DENSE_V_MAX", 6)
    assert v_diff(A, B, None, 6) == (0.25, 0.25 / float(np.abs(B).max()))
    monkeypatch.setattr(construction, "DENSE_V_MAX", 5)
    d, rel = v_diff(A, B, None, 6)
    assert rel == pytest.approx(expected[1], rel=1e-12)
    # with positions: lme4's rows picked out of a larger V
    big = np.zeros((8, 8))
    pos = np.array([7, 1, 2, 3, 4, 0])
    big[np.ix_(pos, pos)] = A
    d, rel = v_diff(big, B, pos, 6)
    assert d == pytest.approx(expected[0], rel=1e-12) and rel == pytest.approx(expected[1], rel=1e-12)


def test_dense_copies_sparse_and_arrays() -> None:
    M = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert np.array_equal(dense(sp.csc_matrix(M)), M) and isinstance(dense(sp.csc_matrix(M)), np.ndarray)
    assert np.array_equal(dense([[1, 0], [0, 2]]), M)


def test_ranef_is_compared_by_group_level_label_and_coefficient_name() -> None:
    ref = {"g": pd.DataFrame({"(Intercept)": [1.0, -2.0], "x": [0.5, 0.25]}, index=["a", "b"])}
    shuffled = {"g": ref["g"].loc[["b", "a"], ["x", "(Intercept)"]]}
    assert ranef_diff(shuffled, ref) == (0.0, 0.0)
    off = {"g": ref["g"] + np.array([[0.0, 0.0], [0.2, 0.0]])}
    assert ranef_diff(off, ref) == (pytest.approx(0.1), pytest.approx(0.2))
    assert ranef_diff({}, ref) == (math.inf, math.inf)
    # relative to the largest mode, however small the modes are
    tiny = {"g": pd.DataFrame({"u": [1e-3, -2e-3]}, index=["a", "b"])}
    rel, abs_d = ranef_diff({"g": tiny["g"] + 2e-4}, tiny)
    assert rel == pytest.approx(0.1, rel=1e-9) and abs_d == pytest.approx(2e-4, rel=1e-9)
    # numeric level labels match their string spelling
    num = {"g": pd.DataFrame({"u": [1.0, 2.0]}, index=[1, 2])}
    assert ranef_diff({"g": pd.DataFrame({"u": [1.0, 2.0]}, index=["1", "2"])}, num) == (0.0, 0.0)
    # the largest difference over all groups counts
    two = {**ref, "h": pd.DataFrame({"u": [4.0]}, index=["z"])}
    assert ranef_diff({**off, "h": pd.DataFrame({"u": [3.0]}, index=["z"])}, two) == (0.25, 1.0)


def _record():  # type: ignore[no-untyped-def]
    return examples.load("sleepstudy").expected


def test_an_identical_record_has_no_layout_differences() -> None:
    assert layout_differences(_record(), _record(), 1e-10) == []


def test_each_layout_piece_is_named_when_it_differs() -> None:
    b = _record()
    names = lambda rec: [name for name, _, _ in layout_differences(rec, b, 1e-10)]  # noqa: E731
    assert names(dataclasses.replace(b, cnms=[("Subject", ["Days", "(Intercept)"])])) == ["cnms"]
    assert names(dataclasses.replace(b, X_names=["(Intercept)", "days"])) == ["X"]
    levels = b.flist["Subject"].categories
    reordered = pd.Categorical(b.flist["Subject"], categories=list(levels[::-1]))
    assert names(dataclasses.replace(b, flist={"Subject": reordered})) == ["flist"]
    assert names(dataclasses.replace(b, flist={})) == ["flist"]
    X = b.X.copy()
    X[3, 1] += 1e-6
    (row,) = layout_differences(dataclasses.replace(b, X=X), b, 1e-10)
    assert row[0] == "X" and row[2] == pytest.approx(1e-6 / max(float(np.abs(b.X).max()), 1.0), rel=1e-6)
    assert layout_differences(dataclasses.replace(b, X=X), b, 1e-5) == []
    assert layout_differences(dataclasses.replace(b, X=X), b, row[2]) == []  # at the tolerance: agrees
    assert names(dataclasses.replace(b, X=b.X[:, :1])) == ["X"]
    ((_, what, _),) = layout_differences(dataclasses.replace(b, X=b.X[:, :1]), b, 1e-10)
    assert what == "X is (180, 1), lme4's (180, 2)"
    Zt = b.Zt.copy().astype(float)
    Zt.data[5] *= 1.5
    assert names(dataclasses.replace(b, Zt=Zt)) == ["Zt"]
    assert names(dataclasses.replace(b, Zt=b.Zt[:, :-1])) == ["Zt"]
    L = sp.csc_matrix(b.Lambdat.toarray() + np.triu(np.ones(b.Lambdat.shape)))
    assert names(dataclasses.replace(b, Lambdat=L)) == ["Lambdat"]
    Lscaled = b.Lambdat.copy()
    Lscaled.data = Lscaled.data * 2  # the template's values are theta's: only its pattern counts
    assert names(dataclasses.replace(b, Lambdat=Lscaled)) == []
    Lind = np.asarray(b.Lind).copy()
    Lind[[0, 1]] = Lind[[1, 0]]
    assert names(dataclasses.replace(b, Lind=Lind)) == ["Lind"]
    # pieces the record does not carry are not compared
    assert names(dataclasses.replace(b, X=None, Zt=None, Lambdat=None, Lind=None, flist=None)) == []


def test_layout_values_are_relative_to_the_larger_of_their_largest_entry_and_one() -> None:
    """X and Zt values: max |a - b| / max(max |b|, 1), and a difference at the tolerance agrees."""
    b = _record()
    small = dataclasses.replace(b, X=b.X / 9.0, Zt=b.Zt / 9.0)  # largest entries exactly 1
    X = small.X.copy()
    X[3, 1] += 1e-6
    ((name, _, rel),) = layout_differences(dataclasses.replace(small, X=X), small, 1e-10)
    assert name == "X" and rel == pytest.approx(1e-6, rel=1e-6)
    Zt = small.Zt.copy()
    Zt.data[5] += 1e-6
    ((name, _, rel),) = layout_differences(dataclasses.replace(small, Zt=Zt), small, 1e-10)
    assert name == "Zt" and rel == pytest.approx(1e-6, rel=1e-6)
    assert layout_differences(dataclasses.replace(small, Zt=Zt), small, rel) == []
