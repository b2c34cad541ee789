"""vcheck's own `lmer` as a plug-in (`vcheck audit vcheck`): the audit run on vcheck itself.

It returns vcheck's full fit record, so the audit also checks lme4's layout (X, Zt, Lambdat, Lind, cnms)
exactly.  Conditional variances are not computed: the audit does not compare them, and for crossed
designs they cost more than the fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from vcheck.core.record import LmerFit


def fit(formula: str, data: pd.DataFrame, REML: bool, **lmer_args: Any) -> LmerFit:
    """`vcheck.lmer(formula, data, REML, **lmer_args)` without condVar (lmer_args: weights, offset,
    subset, na_action, contrasts, start, control)."""
    from vcheck.core.fit import lmer

    return lmer(formula, data, REML=REML, condVar=False, **lmer_args)
