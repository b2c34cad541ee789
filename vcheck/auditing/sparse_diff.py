"""Differences of two sparse matrices without densifying them (G at the optimum: q x q, q up to 10^5+).

For A, B of one shape, with D = A - B formed sparse (its stored entries are the union of A's and B's):

    abs  = max |D_ij|                         (0 where nothing is stored: the unstored entries are 0)
    rel  = abs / max(max |B_ij|, floor)

the same numbers `vcheck.auditing.differences.relative` and `abs_diff` give on the dense arrays (inf when
the shapes differ or D holds NaN), in O(nnz(A) + nnz(B)) memory instead of 8 q^2 bytes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from vcheck.core import tolerances


def _max_abs(M: sp.csr_matrix) -> float:
    """max |M_ij| over the stored entries (NaN when one is NaN), 0 when none is stored."""
    if M.nnz == 0:
        return 0.0
    return float(np.max(np.abs(M.data)))


def sparse_diff(A: Any, B: Any, floor: float = tolerances.ABS_FLOOR) -> tuple[float, float]:
    """(relative, absolute) difference of sparse A against sparse B: max |A - B| / max(max |B|, floor)
    and max |A - B|, entry by entry as on dense arrays; (inf, inf) when shapes differ, inf relative when
    the difference holds NaN (NaN absolute then, as numpy's max gives on the dense arrays)."""
    a: sp.csr_matrix = sp.csr_matrix(A).astype(float)
    b: sp.csr_matrix = sp.csr_matrix(B).astype(float)
    if a.shape != b.shape:
        return math.inf, math.inf
    if a.shape[0] * a.shape[1] == 0:
        return 0.0, 0.0
    d = _max_abs(sp.csr_matrix(a - b))
    if math.isnan(d):
        return math.inf, d
    return d / max(_max_abs(b), floor), d
