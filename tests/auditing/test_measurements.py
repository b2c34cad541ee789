"""vcheck.auditing.measurements without R: when a difference is within (its tolerance, or too small to
move lme4's criterion by the tie), and which answers the protocol refuses to read."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from vcheck.auditing.measurements import Diff, readable
from vcheck.auditing.plugin import PluginError, Submission


def test_a_difference_is_within_at_its_tolerance_or_below_the_tie_cost() -> None:
    assert Diff("V", "at its parameters", 1e-13, 1e-13, 1e-13).within  # the tolerance is inclusive
    assert not Diff("V", "at its parameters", 2e-13, 2e-13, 1e-13).within
    # beyond the tolerance, a cost at most the tie tolerance is still within
    assert Diff("beta", "at its parameters", 1e-3, 1e-3, 1e-13, cost=1e-6, cost_tol=1e-6).within
    assert Diff("beta", "at its parameters", 1e-3, 1e-3, 1e-13, cost=1e-7, cost_tol=1e-6).within
    assert not Diff("beta", "at its parameters", 1e-3, 1e-3, 1e-13, cost=2e-6, cost_tol=1e-6).within
    # a cost without its tolerance (or the other way round) excuses nothing
    assert not Diff("beta", "at its parameters", 1e-3, 1e-3, 1e-13, cost=0.0).within
    assert not Diff("beta", "at its parameters", 1e-3, 1e-3, 1e-13, cost_tol=1.0).within
    infinite = Diff("beta", "at its parameters", math.inf, math.inf, 1e-13, cost=math.inf, cost_tol=1.0)
    assert not infinite.within


def _sub(**given: object) -> Submission:
    return Submission(source="impl", **given)  # type: ignore[arg-type]


def test_an_answer_with_nothing_the_protocol_knows_is_refused() -> None:
    with pytest.raises(PluginError, match="impl gives none of beta, sigma, varcorr, V, criterion"):
        readable(_sub())
    for given in ({"sigma": 1.0}, {"criterion": 10.0}, {"V": np.eye(2)}, {"varcorr": []}):
        readable(_sub(**given))


def test_beta_may_miss_columns_but_not_be_infinite_or_all_nan() -> None:
    readable(_sub(beta=pd.Series({"a": 1.0, "b": math.nan})))  # a column it dropped (rank deficiency)
    readable(_sub(beta=pd.Series(dtype=float)))  # no fixed effects at all
    with pytest.raises(PluginError, match="beta is not finite"):
        readable(_sub(beta=pd.Series({"a": 1.0, "b": math.inf})))
    with pytest.raises(PluginError, match="beta is not finite"):
        readable(_sub(beta=pd.Series({"a": -math.inf})))
    with pytest.raises(PluginError, match="beta is not finite"):
        readable(_sub(beta=pd.Series({"a": math.nan, "b": math.nan})))


def test_varcorr_and_V_must_be_finite() -> None:
    readable(_sub(varcorr=[("g", "(Intercept)", None, 1.5)]))
    with pytest.raises(PluginError, match="varcorr"):
        readable(_sub(varcorr=[("g", "(Intercept)", None, 1.5), ("g", "x", None, math.nan)]))
    with pytest.raises(PluginError, match="varcorr"):
        readable(_sub(varcorr=[("g", "(Intercept)", None, math.inf)]))
    V = np.eye(3)
    readable(_sub(V=V))
    readable(_sub(V=sp.csc_matrix(V)))
    bad = V.copy()
    bad[0, 2] = math.nan
    with pytest.raises(PluginError, match="V has non-finite entries"):
        readable(_sub(V=bad))
    with pytest.raises(PluginError, match="V has non-finite entries"):
        readable(_sub(V=sp.csc_matrix(bad)))
    readable(_sub(V=aslinearoperator(V)))  # an operator is only ever multiplied: nothing to scan


def test_a_V_that_is_not_square_is_refused() -> None:
    for V in (np.ones((3, 2)), sp.csc_matrix(np.ones((2, 3))), aslinearoperator(np.ones((3, 2))), np.ones(3)):
        with pytest.raises(PluginError, match="V must be square"):
            readable(_sub(V=V))


def test_a_sigma_that_is_not_finite_and_positive_is_refused() -> None:
    """No theta = chol(G / sigma^2) exists for it (measuring it crashed in LinAlgError before)."""
    readable(_sub(sigma=1e-300))
    for sigma in (math.nan, math.inf, 0.0, -1.0):
        with pytest.raises(PluginError, match="sigma"):
            readable(_sub(sigma=sigma))
