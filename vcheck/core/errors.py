"""vcheck's exceptions: one base class, one per kind of problem, each message naming the problem."""

from __future__ import annotations


class VcheckError(Exception):
    """Base class of every error vcheck raises on purpose."""


class FormulaError(VcheckError, ValueError):
    """A malformed model formula, or syntax vcheck does not support (yet)."""


class DataError(VcheckError, ValueError):
    """The data cannot make this model: a missing column, NaN/inf, non-numeric response, too few levels."""


class ArgumentError(VcheckError, ValueError):
    """An argument vcheck cannot use (an unknown option value, a negative seed); the message lists the
    values it takes."""


class NotAvailableError(VcheckError, ValueError):
    """A fit record lacks a quantity the caller asked for (the implementation did not report it)."""


class RNotAvailableError(VcheckError, ImportError):
    """R, lme4 or rpy2 is not installed; the message says what to install."""


class RError(VcheckError, RuntimeError):
    """An error raised inside R (lme4, glmmTMB, nlme); `r_message` carries R's own message."""

    def __init__(self, r_message: str, call: str = "") -> None:
        self.r_message = r_message.strip()
        self.call = call
        super().__init__(f"R error{' in ' + call if call else ''}: {self.r_message}")

    def __reduce__(self) -> tuple[type[RError], tuple[str, str]]:
        return (type(self), (self.r_message, self.call))  # pickles (to and from worker processes) intact


class Unsupported(VcheckError, NotImplementedError):
    """An implementation (or vcheck itself) does not support an argument or feature a case needs.

    In an audit it is not a finding: the report lists it once, outside the implementation's
    capabilities (a NotImplementedError from a plug-in is treated the same way)."""
