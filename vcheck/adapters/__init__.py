"""Other LMM implementations as plug-ins for the audit: `impl(formula, data, REML) -> record or mapping`.

A plug-in is any callable `impl(formula: str, data: pandas.DataFrame, REML: bool)` that returns a
`vcheck.core.record.LmerFit` or a mapping with

- `beta`: {R column name: estimate}, e.g. {"(Intercept)": 251.4, "Days": 10.47}
- `sigma`: the residual standard deviation
- `varcorr`: [(group, var1, var2 or None, covariance), ...] as `as.data.frame(VarCorr(fit))` writes
  them in lme4, without the residual row; group names as lme4 prints them (`tch:sch`)
- `V`: the marginal covariance of y, n x n (numpy array, scipy.sparse, or a scipy LinearOperator when
  its non-zeros would be too many: `vcheck.adapters.marginal`), in the row order of `data`
- `criterion` (optional): REML criterion or ML deviance on lme4's scale, -2 log-likelihood at the optimum

and it raises `vcheck.Unsupported("model not expressible in ...")` (a NotImplementedError) for a model
it cannot fit.  Each adapter declares `CONFIGURATIONS` (its optimizers and control settings, audited one
by one: `statsmodels[method=lbfgs]`) and `CAPABILITIES` (the model families it fits; see
`vcheck.auditing.capabilities`).

The built-in adapters return such a mapping.  Rows with a missing value in a model variable are dropped
first, as lme4 does, so V covers the rows used, in the data's order.  Besides the protocol's keys they
give `source`, `REML`, `formula`, `n`, `converged`, `warnings` and, where it applies, `translation` (the
call the model became), `versions`, `console` (R's console output) and `V_check` (nlme).  An error
inside R arrives as `vcheck.core.errors.RError` carrying R's message.

Built in (each imports its implementation only when called):

| name                | callable                                  | implementation                  |
|---------------------|-------------------------------------------|---------------------------------|
| `statsmodels`       | `vcheck.adapters.statsmodels:fit`         | statsmodels `MixedLM`           |
| `statsmodels_naive` | `vcheck.adapters.statsmodels:fit_naive`   | the same, with the nested trap  |
| `glmmtmb`           | `vcheck.adapters.glmmtmb:fit`             | R glmmTMB through rpy2          |
| `nlme`              | `vcheck.adapters.nlme:fit`                | R nlme::lme through rpy2        |
| `vcheck`            | `vcheck.adapters.own:fit`                 | vcheck's own `lmer` (a record)  |
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from vcheck.auditing.plugin import Impl
from vcheck.core.errors import VcheckError

__all__ = ["BUILTIN", "AdapterError", "Impl", "MissingDependencyError", "get", "load", "names", "resolve"]

#: built-in adapters: name -> "module:callable"
BUILTIN: dict[str, str] = {
    "statsmodels": "vcheck.adapters.statsmodels:fit",
    "statsmodels_naive": "vcheck.adapters.statsmodels:fit_naive",
    "glmmtmb": "vcheck.adapters.glmmtmb:fit",
    "nlme": "vcheck.adapters.nlme:fit",
    "vcheck": "vcheck.adapters.own:fit",
}


class AdapterError(VcheckError, ValueError):
    """An unknown adapter name, or a `MODULE:CALLABLE` that cannot be imported or is not callable."""


class MissingDependencyError(VcheckError, ImportError):
    """The implementation an adapter wraps is not installed (statsmodels); R-side ones raise
    `vcheck.core.errors.RNotAvailableError`."""


def names() -> list[str]:
    """The built-in adapter names."""
    return list(BUILTIN)


def get(name: str) -> Impl:
    """The built-in adapter `name` ("statsmodels", "statsmodels_naive", "glmmtmb", "nlme", "vcheck")."""
    key = name.strip().lower()
    if key not in BUILTIN:
        raise AdapterError(
            f"unknown adapter {name!r}: choose one of {', '.join(BUILTIN)} or give MODULE:CALLABLE"
        )
    return load(BUILTIN[key])


def load(spec: str) -> Impl:
    """A user plug-in from `"package.module:callable"` (a dotted attribute path after the colon works too)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise AdapterError(f"plug-in {spec!r} is not of the form MODULE:CALLABLE")
    try:
        obj: Any = _import(module_name.strip())
    except Exception as exc:  # ImportError, or the module failing while it loads (SyntaxError, ...)
        raise AdapterError(
            f"cannot import plug-in module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.strip().split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise AdapterError(f"plug-in module {module_name!r} has no attribute {attr!r}") from exc
    if not callable(obj):
        raise AdapterError(f"plug-in {spec!r} is not callable (it is a {type(obj).__name__})")
    impl: Impl = obj
    return impl


def _import(module_name: str) -> Any:
    """Import a plug-in module; a module in the current directory is found too (as `python -m` would),
    also when `vcheck` runs as a console script, whose sys.path does not hold the working directory."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if exc.name != module_name.split(".")[0] or cwd in sys.path or "" in sys.path:
            raise
        sys.path.insert(0, cwd)
        try:
            return importlib.import_module(module_name)
        finally:
            sys.path.remove(cwd)


def resolve(target: str) -> Impl:
    """A built-in name or a `MODULE:CALLABLE` plug-in: what `vcheck audit TARGET` accepts.

    `TARGET[CONFIG]` (`statsmodels[method=lbfgs]`) is the implementation with that configuration and
    its declared capabilities bound (`vcheck.auditing.configurations.Audited`)."""
    from vcheck.auditing import configurations

    base, config = configurations.split_target(target)
    impl = load(base) if ":" in base else get(base)
    if config is None:
        return impl
    return configurations.Audited(impl, target=base, configuration=configurations.parse(config, impl))
