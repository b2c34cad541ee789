"""The factorization behind penalized least squares: which kernel factors a design's PLS system.

For theta, with Lambda = Lambdat' and the OLS-shifted response r (`vcheck.core.pls`):

    A(theta) = Lambda' Z'Z Lambda + I_q = L L',   M(theta) = [X r]'[X r] - H' A^-1 H = R'R,
    ldL2 = log det A,  ldRX2 = 2 sum log diag RX,  beta = b0 + RX^-1 R[:p, p],  pwrss = R[p, p]^2.

One kernel per block structure, as MixedModels.jl has one per matrix type:

- `DensePLS` (`vcheck.core.dense_pls`): A dense, for q <= DENSE_Q_MAX;
- `BlockedPLS` (`vcheck.core.blocked_pls`): the grouping factor with the most levels as a uniform block
  diagonal (`vcheck.core.batched`: scalar blocks are the diagonal case), the other terms through their
  Schur complement, dense or sparse (`vcheck.core.schur`).

Every kernel computes Z'Z, Z'[X r] and [X r]'[X r] once, at set-up; an evaluation (`factor(theta)`)
costs the factorization and little else.
"""

from __future__ import annotations

from vcheck.core.blocked_pls import BlockedPLS
from vcheck.core.dense_pls import DensePLS
from vcheck.core.pls import Factor, PLSBase
from vcheck.core.record import Design
from vcheck.core.schur import DenseSchur, NotPositiveDefinite, Schur, SparseSchur

#: A is formed and factored dense, without blocks, when q is at most this
DENSE_Q_MAX = 100

__all__ = [
    "DENSE_Q_MAX",
    "BlockedPLS",
    "DensePLS",
    "DenseSchur",
    "Factor",
    "NotPositiveDefinite",
    "PLSBase",
    "Schur",
    "SparseSchur",
    "make_pls",
]


def make_pls(design: Design) -> DensePLS | BlockedPLS:
    """The PLS kernel for a design: all-dense for small q (numpy's per-call overhead dominates there),
    else blocked."""
    return DensePLS(design) if design.q <= DENSE_Q_MAX else BlockedPLS(design)
