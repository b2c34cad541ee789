"""pandas <-> R conversions of the bridge: every column type round-trips, NA included, and R's NA rows
are dropped by lme4 and counted.

The column-type rules are tested without R; the round trips go through the embedded R (marked `r`).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vcheck.core.errors import DataError
from vcheck.reference import rbridge


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "num": [1.5, np.nan, -2.25, 1e-300, 3.0],
            "int": np.array([3, -1, 0, 2**31 - 1, 7], dtype=np.int64),
            "int_na": pd.array([1, None, 3, 4, None], dtype="Int64"),
            "flag": np.array([True, False, True, True, False]),
            "flag_na": pd.array([True, None, False, True, None], dtype="boolean"),
            "text": pd.array(["b", "a", None, "B", "é"], dtype="str"),
            "obj": pd.Series(["x", None, "y", "x", "z"], dtype=object),
            "cat": pd.Categorical(["lo", "hi", None, "mid", "hi"], categories=["lo", "mid", "hi", "unused"]),
            "ord": pd.Categorical(["K", "3", "1", None, "K"], categories=["K", "1", "2", "3"], ordered=True),
        }
    )


def as_list(s: pd.Series) -> list:
    """Values with every kind of missing value as None."""
    return [None if pd.isna(v) else v for v in s.astype(object)]


# ---- column kinds (no R) ---------------------------------------------------------------------------------


def test_column_kinds() -> None:
    df = mixed_frame()
    kinds = {c: rbridge.column_kind(df[c], c) for c in df.columns}
    assert kinds == {
        "num": "float",
        "int": "int",
        "int_na": "int",
        "flag": "bool",
        "flag_na": "bool",
        "text": "string",
        "obj": "string",
        "cat": "factor",
        "ord": "ordered",
    }
    assert rbridge.column_kind(pd.Series([2**40, 1]), "big") == "float"
    assert rbridge.column_kind(pd.Series([1, None], dtype=object), "o") == "int"
    assert rbridge.column_kind(pd.Series([1.5, None], dtype=object), "o") == "float"


def test_unsupported_columns_are_data_errors() -> None:
    with pytest.raises(DataError, match="column 'when' has dtype"):
        rbridge.column_kind(pd.Series(pd.to_datetime(["2024-01-01"])), "when")
    with pytest.raises(DataError, match="column 'mix' holds values of mixed"):
        rbridge.column_kind(pd.Series(["a", 1.5], dtype=object), "mix")


def test_referenced_columns() -> None:
    cols = ["y", "x1", "sch.cl", "tch.cl", "other"]
    assert rbridge.referenced_columns("y ~ x1 + (1|sch.cl/tch.cl)", cols) == cols[:4]
    assert rbridge.referenced_columns("y ~ . + (1|g)", cols) == cols
    assert rbridge.referenced_columns("log(y) ~ I(x1^2) + (1|other)", cols) == ["y", "x1", "other"]


def test_r_reference_dir_holds_the_r_code() -> None:
    d = rbridge.r_reference_dir()
    for f in ("bridge.R", "examples.R", "freeze.R"):
        assert (d / f).is_file()


# ---- round trips through R ---------------------------------------------------------------------------------


@pytest.mark.r
def test_every_column_type_round_trips() -> None:
    df = mixed_frame()
    back = rbridge.frame_from_r(rbridge.frame_to_r(df))
    assert list(back.columns) == list(df.columns)
    np.testing.assert_array_equal(back["num"].to_numpy(), df["num"].to_numpy())  # NaN -> NA -> NaN
    assert back["int"].tolist() == df["int"].tolist()
    assert back["int_na"].tolist() == [1, pd.NA, 3, 4, pd.NA]
    assert back["flag"].tolist() == [True, False, True, True, False]
    assert back["flag_na"].tolist() == [True, pd.NA, False, True, pd.NA]
    assert as_list(back["text"]) == ["b", "a", None, "B", "é"]
    assert as_list(back["obj"]) == ["x", None, "y", "x", "z"]
    assert list(back["cat"].cat.categories) == ["lo", "mid", "hi", "unused"]  # order and unused levels kept
    assert not back["cat"].cat.ordered
    assert as_list(back["cat"]) == ["lo", "hi", None, "mid", "hi"]
    assert back["ord"].cat.ordered and list(back["ord"].cat.categories) == ["K", "1", "2", "3"]
    assert back["ord"].isna().tolist() == [False, False, False, True, False]


@pytest.mark.r
def test_r_sees_types_levels_and_na() -> None:
    s = rbridge.session()
    frame = rbridge.frame_to_r(mixed_frame())
    probe = s.ri.evalr(
        "function(d) list(classes = vapply(d, function(x) class(x)[[1]], ''),"
        " n_na = vapply(d, function(x) sum(is.na(x)), 0L),"
        " nan = sum(is.nan(d$num)), cat = levels(d$cat), ord = levels(d$ord),"
        " ord_lt = as.logical(d$ord[1] < d$ord[2]), int_max = d$int[4])"
    )
    out = rbridge.from_r(probe(frame))
    assert out["classes"] == [
        "numeric",
        "integer",
        "integer",
        "logical",
        "logical",
        "character",
        "character",
        "factor",
        "ordered",
    ]
    assert out["n_na"].tolist() == [1, 0, 2, 0, 2, 1, 1, 1, 1]
    assert int(out["nan"][0]) == 0  # NaN arrives as NA_real_, not NaN
    assert out["cat"] == ["lo", "mid", "hi", "unused"] and out["ord"] == ["K", "1", "2", "3"]
    assert bool(out["ord_lt"][0]) is True  # "K" < "3" in the ordered factor's order (not alphabetical)
    assert int(out["int_max"][0]) == 2**31 - 1


@pytest.mark.r
def test_r_integer_na_and_copies() -> None:
    s = rbridge.session()
    ri = s.ri
    ints = rbridge.from_r(ri.evalr("c(1L, NA, 3L)"))
    assert ints.dtype == np.float64 and np.isnan(ints[1]) and ints[[0, 2]].tolist() == [1.0, 3.0]
    assert rbridge.from_r(ri.evalr("c(TRUE, NA)")).tolist() == [True, None]
    assert rbridge.from_r(ri.evalr("c('a', NA)")) == ["a", None]
    assert rbridge.from_r(ri.evalr("NULL")) is None
    vec = ri.evalr("vcheck_probe <- c(1, 2, 3); vcheck_probe")
    got = rbridge.from_r(vec)
    got[0] = 99.0  # a copy, not a view into R's memory
    assert list(ri.evalr("vcheck_probe")) == [1.0, 2.0, 3.0]
    ri.evalr("rm(vcheck_probe)")


@pytest.mark.r
def test_na_rows_are_dropped_and_counted() -> None:
    from vcheck import reference
    from vcheck.reference import examples

    data = examples.load("sleepstudy").data.copy()
    data.index = pd.Index([f"r{i}" for i in range(len(data))])
    data.loc["r3", "Reaction"] = np.nan
    data.loc["r10", "Days"] = np.nan
    data["unused"] = np.nan  # not in the formula: never makes a row drop
    fit = reference.lmer("Reaction ~ Days + (Days|Subject)", data, extras=False)
    assert fit.n == 178 and fit.n_na_dropped == 2
    assert "r3" not in fit.row_index and "r10" not in fit.row_index
    assert list(fit.row_index) == [r for r in data.index if r not in ("r3", "r10")]


@pytest.mark.r
def test_string_and_integer_group_codes_fit_like_factors() -> None:
    from vcheck import reference
    from vcheck.reference import examples

    ex = examples.load("sleepstudy")
    codes = ex.data.assign(Subject=ex.data["Subject"].astype(str).astype(object))
    ints = ex.data.assign(Subject=ex.data["Subject"].astype(str).astype(int))
    for data in (codes, ints):
        fit = reference.lmer(ex.formula, data, extras=False)
        assert list(fit.flist["Subject"].categories) == list(ex.expected.flist["Subject"].categories)
        assert fit.criterion == pytest.approx(ex.expected.criterion, rel=1e-10)


@pytest.mark.r
def test_string_levels_follow_r_collation() -> None:
    """R's factor() sorts strings with its collation (ICU root under C.UTF-8 here, byte order under C)."""
    from vcheck import reference

    rng = np.random.default_rng(1)
    g = np.repeat(["b", "B", "a", "A", "_z", "10", "9"], 6)
    data = pd.DataFrame({"y": rng.normal(size=len(g)), "g": g})
    design = reference.lFormula("y ~ 1 + (1|g)", data)
    levels = list(design.flist["g"].categories)
    collation = reference.versions()["collation"]
    if collation == "C (byte order)":
        assert levels == sorted(set(g))
    else:
        assert levels == ["_z", "10", "9", "a", "A", "b", "B"]
    assert design.terms[0].levels == tuple(levels)


# ---- without rpy2 ----------------------------------------------------------------------------------------


def run_without_rpy2(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter where `import rpy2` fails, as on a machine without it."""
    prelude = "import sys; sys.modules['rpy2'] = None; sys.modules['rpy2.rinterface'] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, check=False)


def test_import_does_not_need_rpy2() -> None:
    out = run_without_rpy2(
        "import vcheck, vcheck.reference, vcheck.reference.rbridge, vcheck.reference.examples\n"
        "assert not any(m.startswith('rpy2') and sys.modules[m] is not None for m in sys.modules)\n"
        "print('ok')"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_missing_rpy2_says_what_to_install() -> None:
    out = run_without_rpy2(
        "import pandas as pd\n"
        "from vcheck import reference\n"
        "from vcheck.core.errors import RNotAvailableError\n"
        "try:\n"
        "    reference.lmer('y ~ 1 + (1|g)', pd.DataFrame({'y': [1.0, 2.0], 'g': ['a', 'b']}))\n"
        "except RNotAvailableError as e:\n"
        "    print(e)\n"
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'vcheck[r]'" in out.stdout
    assert "r-base-core" in out.stdout and "r-cran-lme4" in out.stdout


@pytest.mark.r
def test_reading_R_vectors_keeps_Pythons_None_alive() -> None:
    """rpy2 3.5.17's `memoryview()` dropped a reference to None on every call: after ~15,000 reads Python
    aborted at exit ("none_dealloc").  Reading through numpy's array interface is reference-neutral."""
    import sys

    import rpy2.robjects as ro

    from vcheck.reference import rbridge

    rbridge.session()
    vectors = [ro.r("c(TRUE, NA, FALSE)"), ro.r("c(1L, NA, 3L)"), ro.r("c(1.5, NA, 3)")]
    before = sys.getrefcount(None)
    for _ in range(2000):
        for v in vectors:
            rbridge.from_r(v)
    assert sys.getrefcount(None) - before > -100  # memoryview() lost 6,000 here
