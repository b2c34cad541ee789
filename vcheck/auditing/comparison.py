"""Two fit records -> measured differences -> verdicts: `compare(a, b)`.

`compare(a, b)` judges `a` (any implementation: an `LmerFit`, or a plug-in's mapping, see
`vcheck.auditing.plugin`) against `b`, lme4's fit of the same model with its design (X, y, Zt, Lambdat,
Lind, cnms, prior weights, offset).  It is two steps with nothing passed between them but numbers:

- `vcheck.auditing.measure.measure`: every difference, each with the tolerance its numerics allow
  (`vcheck.core.tolerances`: beta by its backward error in the GLS normal equations scaled by cond(V),
  V and the criterion by roundoff times conditioning, sigma by the criterion it costs), the model and
  layout facts, lme4's criterion at a's theta, ill-posedness, a's own warnings;
- `vcheck.auditing.classify.classify`: the verdicts, a pure function of those measurements, as rows
  (quantity x check) and root causes (`Comparison.causes`), of the kinds in `vcheck.auditing.kinds.Kind`.

A flat optimum is not a disagreement: parameters that differ beyond AT_OPTIMUM while lme4's criterion at
a's theta equals lme4's optimum within the tie tolerance agree; `flat_optimum=False` makes every
difference count.  V is compared densely for n <= DENSE_V_MAX, else through random probe vectors; compare
never forms a dense n x n matrix beyond that (GLS through Woodbury's identity, q x q).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

from vcheck.auditing.classify import Cause, Comparison, Row, classify
from vcheck.auditing.construction import (
    DENSE_V_MAX,
    Lme,
    OnLmeDesign,
    lambdat_at,
    reference_design,
    require_design,
)
from vcheck.auditing.kinds import KINDS, Kind
from vcheck.auditing.measure import Criterion, Measurements, Refit, measure
from vcheck.auditing.plugin import Output, Submission, submission
from vcheck.core import tolerances
from vcheck.core.record import LmerFit

__all__ = [
    "DENSE_V_MAX",
    "KINDS",
    "Cause",
    "Comparison",
    "Criterion",
    "Kind",
    "Lme",
    "Measurements",
    "OnLmeDesign",
    "Refit",
    "Row",
    "compare",
    "lambdat_at",
    "python_criterion",
    "reference_design",
    "require_design",
    "summarize",
]


def compare(
    a: Output | Submission,
    b: LmerFit,
    *,
    criterion: Criterion | None = None,
    screen: Criterion | None = None,
    refit: Refit | None = None,
    data_index: pd.Index | None = None,
    tol_at_theta: float = tolerances.AT_THETA,
    tol_optimum: float = tolerances.AT_OPTIMUM,
    flat_optimum: bool = True,
) -> Comparison:
    """Judge implementation `a` against lme4's fit `b`: `classify(measure(...))`.

    criterion: lme4's criterion at (theta, REML); default: `vcheck.core.deviance` on lme4's own design.
    screen: a faster criterion tried first (e.g. vcheck.core.deviance on lme4's design when `criterion` calls
        into R): an agreement it finds stands, and every number in a finding comes from `criterion`.
    refit: lme4's fit with the other REML flag, to recognise "ML where REML was asked" (optional).
    data_index: the index of the data `a` was fitted to (V's row labels) when `a` is a mapping.
    tol_at_theta: design values (X, Zt) of a full record; tol_optimum: quantities at the optimum.
    flat_optimum: parameters that differ beyond tol_optimum while lme4's criterion at a's theta ties with
        lme4's optimum are the same optimum; False: any difference counts.
    Raises PluginError when a's answer cannot be read (non-finite numbers, nothing the protocol knows).
    """
    sub = submission(a, data_index=data_index)
    m = measure(
        sub,
        b,
        criterion=criterion or python_criterion(b),
        screen=screen,
        refit=refit,
        tol_at_theta=tol_at_theta,
        tol_optimum=tol_optimum,
        flat_optimum=flat_optimum,
    )
    return classify(m)


def python_criterion(b: LmerFit) -> Criterion:
    """lme4's criterion at theta computed by vcheck.core.deviance on lme4's own design (no R needed)."""
    return OnLmeDesign(b).criterion


def summarize(comparisons: Sequence[Comparison]) -> Counter[tuple[str, str]]:
    """(kind, root quantity) counts over many comparisons' causes."""
    out: Counter[tuple[str, str]] = Counter()
    for c in comparisons:
        for cause in c.causes:
            out[(cause.kind, cause.quantity)] += 1
    return out
