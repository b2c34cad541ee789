"""The kinds of finding an audit reports, one enum used everywhere (comparison, audit, report, CLI)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a finding says went wrong, and whose it is.

    construction: at its own parameters, its V / beta / criterion is not lme4's construction there;
    optimization: consistent, but a worse optimum than lme4's (or a sigma that is no optimum);
    model: a different model (terms, fixed columns, ML for REML);
    not available: a quantity it does not give (never "passed");
    error: it raised, hung, died or returned what the protocol cannot read;
    ill-posed: no unique optimum exists (q + p >= n, sigma not identified, criterion unbounded);
    reference: lme4's optimum is the worse one.
    """

    CONSTRUCTION = "construction"
    OPTIMIZATION = "optimization"
    MODEL = "model"
    NOT_AVAILABLE = "not available"
    ERROR = "error"
    ILL_POSED = "ill-posed"
    REFERENCE = "reference"
