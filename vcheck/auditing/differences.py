"""Differences between two numbers, arrays, V's, layouts and conditional modes (the measurements' units).

`relative(a, b)` is max |a - b| / max(max |b|, floor); `v_diff` compares V entry by entry for n <= DENSE_V_MAX
and through N_PROBES random probe vectors beyond (never as a dense n x n matrix); `layout_differences`
holds a full record's layout to lme4's exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from vcheck.auditing import construction as cons
from vcheck.auditing.plugin import PluginError, Submission
from vcheck.core import tolerances
from vcheck.core.record import LmerFit

#: random probe vectors for a V too large to compare entry by entry
N_PROBES = 8


def crit_name(REML: bool) -> str:
    return "REML" if REML else "ML"


def infinite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isinf(x)


def div(d: float, scale: float) -> float:
    return d / scale if math.isfinite(d) else math.inf


def relative(a: Any, b: Any, floor: float = tolerances.ABS_FLOOR) -> float:
    """max |a - b| / max(max |b|, floor); inf when shapes differ or a has NaN where b has numbers."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    diff = np.abs(a - b)
    if np.isnan(diff).any():
        return math.inf
    return float(diff.max() / max(float(np.abs(b).max()), floor))


def abs_diff(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return math.inf
    return float(np.abs(a - b).max()) if a.size else 0.0


def same_pattern(m: sp.spmatrix, r: sp.spmatrix) -> bool:
    m, r = sp.csc_matrix(m), sp.csc_matrix(r)
    m.sort_indices()
    r.sort_indices()
    return bool(np.array_equal(m.indptr, r.indptr) and np.array_equal(m.indices, r.indices))


def sorted_csc(M: sp.spmatrix) -> sp.csc_matrix:
    out = sp.csc_matrix(M, copy=True)
    out.sort_indices()
    return out


def alignment(sub: Submission, b: LmerFit) -> np.ndarray | None:
    """Positions in a's V of lme4's rows (lme4 keeps the data's order, minus NA rows); None = identity."""
    if sub.row_index is None or b.row_index is None or sub.row_index.equals(b.row_index):
        return None
    pos = sub.row_index.get_indexer(b.row_index)
    if (pos < 0).any():
        raise PluginError("V's rows cannot be matched to lme4's rows (labels of the data rows differ)")
    return np.asarray(pos)


def v_diff(Va: Any, Vb: Any, pos: np.ndarray | None, n: int) -> tuple[float, float]:
    """(max abs diff, relative diff) of a's V (data rows, aligned by pos) and lme4's V (n x n).

    Entry by entry when both are small matrices; otherwise through N_PROBES Gaussian probe vectors
    (||(Va - Vb) P|| / ||Vb P||: any non-zero difference shows, with probability 1), never n x n dense.
    """
    if Va.shape[0] < n:
        return math.inf, math.inf
    if n <= cons.DENSE_V_MAX and not isinstance(Va, LinearOperator) and not isinstance(Vb, LinearOperator):
        A = dense(Va)
        if pos is not None:
            A = A[np.ix_(pos, pos)]
        elif A.shape[0] != n:
            return math.inf, math.inf
        B = dense(Vb)
        d = float(np.abs(A - B).max()) if n else 0.0
        return d, d / max(float(np.abs(B).max()) if n else 0.0, tolerances.ABS_FLOOR)
    rng = np.random.default_rng(0)
    P = rng.standard_normal((n, N_PROBES))
    opA = aslinearoperator(Va)
    if pos is not None:
        Pd = np.zeros((Va.shape[0], N_PROBES))
        Pd[pos] = P
        AP = (opA @ Pd)[pos]
    else:
        AP = opA @ P
    BP = aslinearoperator(Vb) @ P
    d = float(np.abs(AP - BP).max())
    rel = float(np.linalg.norm(AP - BP) / max(float(np.linalg.norm(BP)), tolerances.ABS_FLOOR))
    return d, rel


def dense(M: Any) -> np.ndarray:
    """A dense copy of an ndarray or scipy.sparse matrix (small V only)."""
    toarray = getattr(M, "toarray", None)
    return np.asarray(toarray()) if toarray is not None else np.asarray(M, dtype=float)


def ranef_diff(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> tuple[float, float]:
    """Conditional modes aligned by group, level label and coefficient name (not by position)."""
    rel, abs_d = 0.0, 0.0
    for g, ref in b.items():
        mine = a.get(g)
        if mine is None:
            return math.inf, math.inf
        ref = ref.copy()
        ref.index = ref.index.astype(str)
        mine = mine.copy()
        mine.index = mine.index.astype(str)
        aligned = mine.reindex(index=ref.index, columns=ref.columns)
        scale = max(float(np.abs(ref.to_numpy()).max()) if ref.size else 0.0, 1e-8)
        rel = max(rel, relative(aligned.to_numpy(dtype=float), ref.to_numpy(dtype=float), floor=scale))
        abs_d = max(abs_d, abs_diff(aligned.to_numpy(dtype=float), ref.to_numpy(dtype=float)))
    return rel, abs_d


def layout_differences(rec: LmerFit, b: LmerFit, tol: float) -> list[tuple[str, str, float]]:
    """A full record's layout against lme4's: cnms, X columns, level order, Lind and the sparsity patterns
    exactly, X and Zt values to `tol`; (name, what differs, relative size) for each difference."""
    out: list[tuple[str, str, float]] = []

    def exact(name: str, ok: bool, what: str) -> None:
        if not ok:
            out.append((name, what, math.inf))

    exact("cnms", rec.cnms == b.cnms, f"terms {rec.cnms} vs lme4's {b.cnms}")
    exact("X", list(rec.X_names or []) == list(b.X_names or []), f"X columns {rec.X_names} vs {b.X_names}")
    if rec.flist is not None and b.flist is not None:
        for g, f in b.flist.items():
            mine = rec.flist.get(g)
            same = mine is not None and [str(c) for c in mine.categories] == [str(c) for c in f.categories]
            exact("flist", same, f"levels of {g} are not in lme4's order")
    if rec.X is not None and b.X is not None and rec.X.shape == b.X.shape:
        rel = relative(rec.X, b.X, floor=1.0)
        if rel > tol:
            out.append(("X", f"X values differ (max rel {rel:.1e})", rel))
    elif rec.X is not None:
        exact("X", False, f"X is {rec.X.shape}, lme4's {None if b.X is None else b.X.shape}")
    for name in ("Zt", "Lambdat"):
        mine, ref = getattr(rec, name), getattr(b, name)
        if mine is None:
            continue
        if mine.shape != ref.shape or not same_pattern(mine, ref):
            exact(
                name,
                False,
                f"{name} is {mine.shape} with another sparsity pattern than lme4's {ref.shape}",
            )
        elif name == "Zt":
            rel = relative(sorted_csc(mine).data, sorted_csc(ref).data, 1.0)
            if rel > tol:
                out.append(("Zt", f"Zt values differ (max rel {rel:.1e})", rel))
    if rec.Lind is not None:
        exact("Lind", np.array_equal(np.asarray(rec.Lind), np.asarray(b.Lind)), "Lind differs from lme4's")
    return out
