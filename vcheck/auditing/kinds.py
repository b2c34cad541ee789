"""The kind of a finding: why an implementation disagrees with lme4 on a quantity.

`Kind` is a StrEnum: a member equals its string (`Kind.MODEL == "model"`), so comparisons with plain
strings, sorting, JSON and the findings files keep working unchanged.

- construction: the implementation builds another quantity at the same parameters (a design, V, beta);
- optimization: the same model, but the optimizer stopped elsewhere (a lower or higher criterion);
- model: the implementation fits another model (cannot express lme4's, or fits ML for REML);
- not available: the implementation does not report the quantity;
- error, ill-posed, reference: the case did not run, the problem has no unique answer, lme4 itself is
  the odd one out (used by the verdicts of the comparison).
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """The kind of a finding (a string: `Kind.NOT_AVAILABLE == "not available"`)."""

    CONSTRUCTION = "construction"
    OPTIMIZATION = "optimization"
    MODEL = "model"
    NOT_AVAILABLE = "not available"
    ERROR = "error"
    ILL_POSED = "ill-posed"
    REFERENCE = "reference"


#: the kinds an audit reports findings of, in the order its summary and report list them
KINDS: tuple[Kind, ...] = (Kind.CONSTRUCTION, Kind.OPTIMIZATION, Kind.MODEL, Kind.NOT_AVAILABLE)
