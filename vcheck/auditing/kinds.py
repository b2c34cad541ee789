"""The kind of a finding: why an implementation disagrees with lme4 on a quantity.

`Kind` is a StrEnum: a member equals its string (`Kind.MODEL == "model"`), so comparisons with plain
strings, sorting, JSON and the findings files keep working unchanged.

- construction: the implementation builds another quantity at the same parameters (a design, V, beta);
- optimization: the same model, but the optimizer stopped elsewhere (a lower or higher criterion);
- model: the implementation fits another model (cannot express lme4's, or fits ML for REML);
- not available: the implementation does not report the quantity;
- error: the implementation raised, hung (--timeout), died, or returned what the protocol cannot read;
- ill-posed: no unique optimum exists (q + p >= n, sigma not identified, criterion unbounded): both
  sides' numbers are shown and no one is blamed;
- reference: lme4's optimum is the worse one (lme4's own criterion at the implementation's theta is
  lower than at lme4's optimum by more than the tie tolerance).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Kind(StrEnum):
    """The kind of a finding (a string: `Kind.NOT_AVAILABLE == "not available"`)."""

    CONSTRUCTION = "construction"
    OPTIMIZATION = "optimization"
    MODEL = "model"
    NOT_AVAILABLE = "not available"
    ERROR = "error"
    ILL_POSED = "ill-posed"
    REFERENCE = "reference"


#: every kind, in the order summaries and reports list them; a case's root kind is the first it has
KINDS: tuple[Kind, ...] = (
    Kind.ERROR,
    Kind.CONSTRUCTION,
    Kind.MODEL,
    Kind.OPTIMIZATION,
    Kind.REFERENCE,
    Kind.ILL_POSED,
    Kind.NOT_AVAILABLE,
)
#: what `--fail-on all` means: every kind but not available
FAIL_ON_ALL: tuple[Kind, ...] = tuple(k for k in KINDS if k != Kind.NOT_AVAILABLE)

#: where in the comparison a difference shows: the layout of the answer, lme4's construction at the
#: implementation's own parameters, the optimum, the model itself, the run (an error), or nowhere ("-")
Check = Literal["layout", "at its parameters", "at optimum", "model", "run", "-"]
