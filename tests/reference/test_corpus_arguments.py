"""lme4's own test-suite calls with weights, offset, subset, na.action, contrasts, start and control
(`vcheck.reference.corpus`, lme4's answers frozen), run by vcheck without R.

Where lme4 fitted, vcheck fits too and agrees: criterion to CRITERION_ABS (or CRITERION_REL), theta,
beta and sigma to PATH_DIVERGED.  Where lme4 raised, vcheck raises a VcheckError.  The one other outcome
allowed is named: a control that asks for an optimizer vcheck does not have (optimx, nlminbwrap, a
user's function), which vcheck refuses with a ControlError naming it.  Calls that switch off lme4's
identifiability checks are compared on the criterion alone (theta and sigma are not determined).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import vcheck
from vcheck.core import tolerances
from vcheck.core.control import OPTIMIZERS, ControlError
from vcheck.reference import corpus

ARGUMENTS = {"weights", "offset", "subset", "na_action", "contrasts", "start", "control"}


def _entries() -> list[str]:
    out = []
    for e in corpus.load_all():
        if e.data is None or not set(e.args) & ARGUMENTS or set(e.args) - ARGUMENTS:
            continue
        out.append(e.name)
    return out


NAMES = _entries()


def _args(e: corpus.CorpusEntry) -> dict[str, Any]:
    args = dict(e.args)
    if args.get("control") == []:  # R's list() (no settings) arrives from JSON as []
        args["control"] = {}
    if isinstance(args.get("contrasts"), dict) and "expr" in args["contrasts"]:  # contrasts = NULL
        args["contrasts"] = args["contrasts"]["value"]
    return args


def _other_optimizer(args: dict[str, Any]) -> bool:
    ctrl = args.get("control")
    return isinstance(ctrl, dict) and "optimizer" in ctrl and ctrl["optimizer"] not in (*OPTIMIZERS, None)


def _unidentified(args: dict[str, Any]) -> bool:
    """Calls that switch off lme4's identifiability checks (a grouping factor with a level per row):
    sigma and theta trade off along a flat ridge, so only the criterion is determined."""
    ctrl = args.get("control") or {}
    return isinstance(ctrl, dict) and "ignore" in (
        ctrl.get("check.nobs.vs.nlev"),
        ctrl.get("check.nobs.vs.nRE"),
    )


def rel(a: Any, b: Any, floor: float = 1e-8) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), floor))


def test_the_corpus_has_argument_calls() -> None:
    kinds = {k for n in NAMES for k in corpus.load(n).args}
    assert kinds == ARGUMENTS and len(NAMES) >= 200


@pytest.mark.parametrize("name", NAMES)
def test_corpus_call_with_arguments(name: str) -> None:
    e = corpus.load(name)
    args = _args(e)
    assert e.data is not None
    if not e.fitted:
        with pytest.raises(vcheck.VcheckError), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vcheck.lmer(e.formula, e.data, e.REML, condVar=False, **args)
        return
    if _other_optimizer(args):
        with pytest.raises(ControlError, match="optimizer"):
            vcheck.lmer(e.formula, e.data, e.REML, condVar=False, **args)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = vcheck.lmer(e.formula, e.data, e.REML, condVar=False, **args)
    lme = e.lme4
    crit = float(np.ravel(lme["criterion"])[0])
    assert (
        abs(fit.criterion - crit) < max(tolerances.CRITERION_ABS, tolerances.CRITERION_REL * abs(crit)) * 10
    )
    if _unidentified(args):
        return
    # theta is sigma-relative and O(1): an absolute floor of 1 (near-zero components of a flat optimum,
    # where BOBYQA's path parts from lme4's in the last digits, differ by ~3e-4)
    assert rel(fit.theta, lme["theta"], floor=1.0) < tolerances.PATH_DIVERGED
    assert rel(fit.beta, lme["beta"]) < tolerances.PATH_DIVERGED
    assert rel(fit.sigma, lme["sigma"]) < tolerances.PATH_DIVERGED
