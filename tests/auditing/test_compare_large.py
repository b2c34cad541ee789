"""compare on many levels in bounded memory: G at the optimum as sparse matrices (`sparse_diff`), V through
the operator; `vcheck compare` on 20,000 rows with 10,000 levels far below the dense q x q size, and the
issue's 100,000 rows with 50,000 levels within 120 s and 3 GB (slow).

The data: `y ~ x + (1|g)`, every level used at least once, rows in random order (unsorted levels).
"""

from __future__ import annotations

import copy
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from measured import run_vcheck

import vcheck
from vcheck.auditing.comparison import compare
from vcheck.auditing.differences import abs_diff, relative
from vcheck.auditing.sparse_diff import sparse_diff
from vcheck.core.record import LmerFit


def many_levels(rows: int, levels: int, seed: int = 1) -> pd.DataFrame:
    """y = 1 + x / 2 + u_g + e with u ~ N(0, 0.7^2), e ~ N(0, 1); g unsorted, every level present."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, levels, rows)
    g[:levels] = np.arange(levels)
    rng.shuffle(g)
    x = rng.standard_normal(rows)
    y = 1.0 + 0.5 * x + 0.7 * rng.standard_normal(levels)[g] + rng.standard_normal(rows)
    return pd.DataFrame({"y": y, "x": x, "g": [f"L{i}" for i in g]})


# --- sparse_diff is relative / abs_diff of the dense arrays ------------------------------------------------


def _pairs() -> list[tuple[sp.csr_matrix, sp.csr_matrix, float]]:
    rng = np.random.default_rng(7)
    out = []
    for density in (0.0, 0.05, 0.3, 1.0):
        A = sp.random(30, 30, density=density, random_state=rng, format="csr")
        B = sp.random(30, 30, density=density, random_state=rng, format="csr")
        out += [(A, B, 1e-30), (A, B, 0.5), (A, A.copy(), 1e-30), (B, A, 1e3)]
    A = sp.random(20, 20, density=0.2, random_state=rng, format="csr")
    out.append((A, A * (1 + 1e-9), 1e-30))  # same pattern, values off
    out.append((-A, A, 1e-30))  # negative entries: max |.|, not max
    return out


@pytest.mark.parametrize(("A", "B", "floor"), _pairs())
def test_sparse_diff_is_the_dense_relative_and_abs_diff(
    A: sp.csr_matrix, B: sp.csr_matrix, floor: float
) -> None:
    rel, abs_d = sparse_diff(A, B, floor=floor)
    assert rel == relative(A.toarray(), B.toarray(), floor=floor)
    assert abs_d == abs_diff(A.toarray(), B.toarray())


def test_sparse_diff_edges() -> None:
    A = sp.csr_matrix(np.diag([1.0, 2.0]))
    assert sparse_diff(A, sp.csr_matrix((3, 3))) == (math.inf, math.inf)  # shapes differ
    assert sparse_diff(sp.csr_matrix((0, 0)), sp.csr_matrix((0, 0))) == (0.0, 0.0)
    assert sparse_diff(sp.csr_matrix((2, 2)), sp.csr_matrix((2, 2)), floor=1.0) == (0.0, 0.0)
    nan = sp.csr_matrix(np.diag([np.nan, 2.0]))
    rel, abs_d = sparse_diff(nan, A)
    assert rel == math.inf == relative(nan.toarray(), A.toarray()) and math.isnan(abs_d)
    assert sparse_diff(A, A * 2.0, floor=100.0) == (2.0 / 100.0, 2.0)  # the floor beats max |B| = 4


# --- compare on 10,000 levels: no q x q, no n x n --------------------------------------------------------


@pytest.fixture(scope="module")
def fit_10k() -> LmerFit:
    return vcheck.lmer("y ~ x + (1|g)", many_levels(20_000, 10_000))


def test_compare_on_10000_levels_stays_far_below_a_dense_G(fit_10k: LmerFit) -> None:
    """compare(fit, fit) allocates a few MB (measured by tracemalloc); a dense G alone is 800 MB."""
    q = fit_10k.Zt.shape[0]
    assert q == 10_000
    tracemalloc.start()
    try:
        result = compare(fit_10k, fit_10k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * q * q / 20, f"peak {peak / 1e6:.0f} MB"
    assert all(r.verdict == "agrees" for r in result.rows), [r for r in result.rows if r.verdict != "agrees"]
    assert [r.rel_diff for r in result.rows if r.quantity == "G"] == [0.0]


def test_G_on_10000_levels_measures_what_the_dense_formula_gives(fit_10k: LmerFit) -> None:
    """(1|g): G = sigma^2 theta^2 I, so the relative difference of G is known in closed form."""
    off = copy.copy(fit_10k)
    off.Lambdat = sp.csc_matrix(fit_10k.Lambdat * 1.01)
    off.theta = np.asarray(fit_10k.theta) * 1.01
    assert fit_10k.sigma is not None and fit_10k.theta is not None
    s2, t2 = fit_10k.sigma**2, float(fit_10k.theta[0]) ** 2
    expected = abs(1.01**2 - 1.0) * s2 * t2 / max(s2 * t2, s2)
    rows = [r for r in compare(off, fit_10k).rows if r.quantity == "G"]
    assert len(rows) == 1 and rows[0].verdict == "differs"
    assert rows[0].rel_diff == pytest.approx(expected, rel=1e-12)
    assert rows[0].abs_diff == pytest.approx(abs(1.01**2 - 1.0) * s2 * t2, rel=1e-12)


# --- the command, live lme4 --------------------------------------------------------------------------------


def compare_measured(path: Path) -> tuple[int, str, float, int]:
    """(exit code, stdout, wall seconds, peak RSS in bytes) of `vcheck compare 'y ~ x + (1|g)'`."""
    m = run_vcheck("compare", "y ~ x + (1|g)", "--data", str(path), keep_stdout=True)
    return m.code, m.stdout + m.stderr, m.seconds, m.rss


@pytest.mark.r
def test_vcheck_compare_on_10000_levels_in_bounded_memory(tmp_path: Path) -> None:
    """lme4 and vcheck on 20,000 rows, 10,000 levels: the whole process (R included) stays under 0.8 GB, the
    size of one dense G (measured 0.38 GB; it peaked at 3.5 GB with G dense on both sides)."""
    path = tmp_path / "levels.csv"
    many_levels(20_000, 10_000).to_csv(path, index=False)
    code, out, _, rss = compare_measured(path)
    assert code == 0, out
    assert "all 13 checks agree" in out
    assert rss < 0.8e9, f"peak RSS {rss / 1e9:.2f} GB"


@pytest.mark.r
@pytest.mark.slow
def test_vcheck_compare_on_100000_rows_and_50000_levels_within_120_s_and_3_GB(tmp_path: Path) -> None:
    """Issue 15's bound (measured 6.4 s and 0.55 GB on 2 busy cores; a dense G is 20 GB)."""
    path = tmp_path / "levels.csv"
    many_levels(100_000, 50_000).to_csv(path, index=False)
    code, out, seconds, rss = compare_measured(path)
    assert code == 0, out
    assert "G          at optimum" in out and "all 13 checks agree" in out
    assert seconds < 120, f"{seconds:.0f} s"
    assert rss < 3e9, f"peak RSS {rss / 1e9:.2f} GB"


def test_fit_document_leaves_out_a_V_beyond_5000_rows(fit_10k: LmerFit) -> None:
    """fit.json's V is an n x n list: for 20,000 rows it is left out (the audit reads it as not given),
    where writing it meant a dense 3.2 GB V and 400 million JSON numbers."""
    from vcheck.auditing import external

    assert fit_10k.Zt.shape[1] > external.FIT_V_MAX_ROWS
    tracemalloc.start()
    try:
        doc = external.fit_document(fit_10k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "V" not in doc and doc["sigma"] == fit_10k.sigma
    assert peak < 50e6, f"peak {peak / 1e6:.0f} MB"
