"""vcheck: validation and cross-check of linear mixed models against R's lme4.

The core (design, deviance, fit, covariance, compare) needs no R; `vcheck.reference` and the R-side
adapters import rpy2 only when called.  Public names are loaded lazily so `import vcheck` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from vcheck.core.errors import DataError, FormulaError, RError, RNotAvailableError, Unsupported, VcheckError
from vcheck.core.record import Design, LmerFit, RandomTerm

__version__ = "0.1.0"

_LAZY = {
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
    "Design",
    "FormulaError",
    "LmerFit",
    "RError",
    "RNotAvailableError",
    "RandomTerm",
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
