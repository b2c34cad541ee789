"""vcheck: validation and cross-check of linear mixed models against R's lme4.

The core (design, deviance, fit, covariance, compare) needs no R; `vcheck.reference` and the R-side
adapters import rpy2 only when called.  Public names are loaded lazily (PEP 562 `__getattr__`) so
`import vcheck` and `vcheck --version` load neither numpy nor pandas nor scipy: the records (`Design`,
`LmerFit`, `RandomTerm`) come with the first use of their name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vcheck.core.errors import DataError, FormulaError, RError, RNotAvailableError, Unsupported, VcheckError

if TYPE_CHECKING:
    from vcheck.core.record import Design as Design
    from vcheck.core.record import LmerFit as LmerFit
    from vcheck.core.record import RandomTerm as RandomTerm

#: pyproject.toml's version, read from the package metadata once installed (vcheck._version)
__version__: str = importlib.import_module("vcheck._version").version()

_LAZY = {
    "Design": ("vcheck.core.record", "Design"),
    "LmerFit": ("vcheck.core.record", "LmerFit"),
    "RandomTerm": ("vcheck.core.record", "RandomTerm"),
    "lFormula": ("vcheck.core.design", "lFormula"),
    "devfun": ("vcheck.core.deviance", "devfun"),
    "lmer": ("vcheck.core.fit", "lmer"),
    "compare": ("vcheck.auditing.comparison", "compare"),
    "audit": ("vcheck.auditing.run", "audit"),
    "reference": ("vcheck.reference", None),
    "examples": ("vcheck.reference.examples", None),
    "strategies": ("vcheck.auditing.strategies", None),
    "covariance": ("vcheck.core.covariance", None),
}

__all__ = [
    "DataError",
    "FormulaError",
    "RError",
    "RNotAvailableError",
    "Unsupported",
    "VcheckError",
    "__version__",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vcheck' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
