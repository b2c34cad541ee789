"""V compared without a dense n x n matrix: two fits' V by probes, by its diagonal and by its blocks.

An n x n V for InstEval (n = 73,421) would need 43 GB, so a large model's V is compared the way one can:

- by probes: ||V_a P - V_b P||_F / ||V_b P||_F for a few Gaussian probe vectors P (n x k), both V as
  operators (`vcheck.core.covariance.V_operator`);
- by its diagonal: max_i |V_a[i, i] - V_b[i, i]| / V_b[i, i], V[i, i] = sigma^2 (sum_j W[j, i]^2 + 1/w_i),
  W = Lambdat Zt, w the prior weights (`vcheck.core.covariance.V_diagonal`); every row counts alone, so
  one wrong row cannot hide in a norm over all of them;
- by blocks, when the rows fall into clusters small enough to hold (`vcheck.core.covariance.V_blocks`):
  max over clusters c of ||V_a,c - V_b,c||_F / ||V_b,c||_F, the worst cluster alone.
"""

from __future__ import annotations

import math

import numpy as np

from vcheck.core import covariance, tolerances
from vcheck.core.errors import VcheckError
from vcheck.core.record import LmerFit

#: V's blocks are compared only when every cluster has at most this many rows (a 2,000-row block is 32 MB)
BLOCK_ROWS = 2000


def V_diagonal_diff(a: LmerFit, b: LmerFit) -> float:
    """max_i |V_a[i, i] - V_b[i, i]| / V_b[i, i] over the data rows (both in the data's row order)."""
    da = covariance.V_diagonal(a._need("Zt"), a._need("Lambdat"), a._need("sigma"), a.weights)
    db = covariance.V_diagonal(b._need("Zt"), b._need("Lambdat"), b._need("sigma"), b.weights)
    if da.shape != db.shape:
        return math.inf
    return float(np.max(np.abs(da - db) / db)) if len(db) else 0.0


def V_probe_diff(a: LmerFit, b: LmerFit, probes: int = 8, seed: int = 0) -> float:
    """||V_a P - V_b P||_F / ||V_b P||_F for `probes` Gaussian columns P, both V as operators."""
    Va, Vb = a.V_operator(), b.V_operator()
    if Va.shape != Vb.shape:
        return math.inf
    P = np.random.default_rng(seed).standard_normal((Vb.shape[0], probes))
    BP = Vb @ P
    return float(np.linalg.norm(Va @ P - BP) / max(float(np.linalg.norm(BP)), tolerances.ABS_FLOOR))


def V_block_diff(a: LmerFit, b: LmerFit, max_rows: int = BLOCK_ROWS) -> tuple[float, int] | None:
    """(max over clusters of ||V_a,c - V_b,c||_F / ||V_b,c||_F, number of clusters), or None when lme4's
    largest cluster has more than `max_rows` rows, or all of them (one crossed cluster, as in InstEval:
    its block would be the dense V).

    Different clusterings of the rows (a's random effects join other rows than lme4's) give inf.
    """
    Zt_b = b._need("Zt")
    limit = min(max_rows, Zt_b.shape[1] - 1)
    try:
        blocks_b = covariance.V_blocks(
            Zt_b, b._need("Lambdat"), b._need("sigma"), max_rows=limit, weights=b.weights
        )
    except VcheckError:
        return None
    try:
        blocks_a = covariance.V_blocks(
            a._need("Zt"), a._need("Lambdat"), a._need("sigma"), max_rows=limit, weights=a.weights
        )
    except VcheckError:
        return math.inf, len(blocks_b)
    if len(blocks_a) != len(blocks_b):
        return math.inf, len(blocks_b)
    worst = 0.0
    for (rows_a, Va), (rows_b, Vb) in zip(blocks_a, blocks_b, strict=True):
        if not np.array_equal(rows_a, rows_b):
            return math.inf, len(blocks_b)
        worst = max(
            worst, float(np.linalg.norm(Va - Vb) / max(float(np.linalg.norm(Vb)), tolerances.ABS_FLOOR))
        )
    return worst, len(blocks_b)
