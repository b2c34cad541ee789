"""What measurement produces: `Diff` (one difference against its tolerance) and `Measurements` (every
number `vcheck.auditing.classify.classify` reads), and `readable` (an answer the protocol can read)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from vcheck.auditing.plugin import PluginError, Submission
from vcheck.core import tolerances


@dataclass
class Diff:
    """One measured difference: relative (and absolute) size against the tolerance its numerics allow."""

    quantity: str
    check: str  # "at its parameters" or "at optimum"
    rel: float
    abs: float
    tol: float
    detail: str = ""  # the numbers behind it, for the explanation
    cost: float | None = None  # what the difference costs in lme4's criterion (deviance units)
    cost_tol: float | None = None  # the tie tolerance: a smaller cost cannot change any verdict

    @property
    def within(self) -> bool:
        """Within its numerical tolerance, or too small to move lme4's criterion by the tie tolerance."""
        if self.rel <= self.tol:
            return True
        return self.cost is not None and self.cost_tol is not None and self.cost <= self.cost_tol


@dataclass
class Measurements:
    """Everything `classify` needs, as plain numbers and facts (see the module docstring)."""

    formula: str
    REML: bool
    a: str
    b: str
    n: int
    p: int
    q: int
    flat_optimum: bool = True
    model: list[tuple[str, str, str]] = field(default_factory=list)  # (quantity, check, what differs)
    unmapped: bool = False
    theta_error: str | None = None
    layout: list[tuple[str, str, float]] | None = None  # None: no full record; []: every layout agrees
    at_parameters: list[Diff] = field(default_factory=list)
    criterion_other: Diff | None = None  # its criterion against lme4's OTHER criterion at its parameters
    sigma_own: Diff | None = None  # its sigma against the profiled sigma at its theta
    sigma_other: Diff | None = None  # ... against the other criterion's profiled sigma
    at_optimum: list[Diff] = field(default_factory=list)
    d_at_theta: float | None = None  # lme4's criterion at its theta
    optimum: float | None = None  # lme4's criterion at lme4's optimum
    tie: float = tolerances.CRITERION_ABS
    other_reml: bool | None = None  # True: its parameters are lme4's optimum of the other criterion
    reference_inconsistent: str = ""  # lme4's reported criterion is not its devfun at its own theta
    missing: list[tuple[str, str]] = field(default_factory=list)  # (quantity, why not available)
    ill_posed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def readable(sub: Submission) -> None:
    """PluginError when the answer gives nothing the protocol knows, carries non-finite numbers, a sigma
    that is not positive or a V that is not square (a Submission built by hand skips
    `plugin.submission`'s checks)."""
    given = [sub.beta, sub.sigma, sub.varcorr, sub.V, sub.criterion, sub.record]
    if all(x is None for x in given):
        raise PluginError(f"{sub.source} gives none of beta, sigma, varcorr, V, criterion")
    if sub.beta is not None:
        values = sub.beta.to_numpy(dtype=float)
        if np.isinf(values).any() or (values.size and np.isnan(values).all()):
            raise PluginError(f"its beta is not finite: {dict(sub.beta.items())}")
    if sub.sigma is not None and not (math.isfinite(sub.sigma) and sub.sigma > 0):
        raise PluginError(f"its sigma is {sub.sigma}: it must be finite and positive")
    if sub.varcorr is not None and not all(math.isfinite(r[3]) for r in sub.varcorr):
        raise PluginError("its varcorr has non-finite covariances")
    V: Any = sub.V
    if V is not None and (len(V.shape) != 2 or V.shape[0] != V.shape[1]):
        raise PluginError(f"V must be square (n x n), not of shape {V.shape}")
    if V is not None and not isinstance(V, LinearOperator):
        data = V.data if sp.issparse(V) else np.asarray(V)  # type: ignore[attr-defined]
        if not np.all(np.isfinite(data)):
            raise PluginError("its V has non-finite entries")
