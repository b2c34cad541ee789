"""lmer's `control`: a mapping read like `lmerControl(...)` (lme4 1.1-31), and the optimizer it selects.

Keys (R's names; an underscore may stand for a dot, `restart_edge` is R's own spelling):

- `optimizer`: "nloptwrap" (default), "bobyqa", "Nelder_Mead" (run by `vcheck.core.optimize`);
- `optCtrl`: a mapping of the optimizer's settings (nloptwrap: maxeval, xtol_abs, ftol_abs, xtol_rel,
  ftol_rel; bobyqa: maxfun, rhobeg, rhoend, npt; Nelder_Mead: maxfun, FtolAbs, FtolRel, XtolRel, ...);
- `restart_edge` (TRUE), `boundary.tol` (1e-5), `calc.derivs` (TRUE);
- `check.*`: actions "ignore", "warning", "message" or "stop".  The design checks
  `check.nlev.gtr.1`, `check.nobs.vs.nlev`, `check.nobs.vs.nRE` act in `lFormula`; the convergence
  checks (`check.conv.*`) belong to the optimizer layer.

Unknown keys are refused as lmerControl refuses them ("unused argument").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vcheck.core.errors import DataError

OPTIMIZERS = ("nloptwrap", "bobyqa", "Nelder_Mead")
ACTIONS = ("ignore", "warning", "message", "stop")

#: lmerControl()'s check.* arguments and their defaults in lme4 1.1-31
CHECKS: dict[str, Any] = {
    "check.nobs.vs.rankZ": "ignore",
    "check.nobs.vs.nlev": "stop",
    "check.nlev.gtr.5": "ignore",
    "check.nlev.gtr.1": "stop",
    "check.nobs.vs.nRE": "stop",
    "check.rankX": "message+drop.cols",
    "check.scaleX": "warning",
    "check.formula.LHS": "stop",
    "check.conv.grad": "warning",
    "check.conv.singular": "message",
    "check.conv.hess": "warning",
}
_OTHER = {"optimizer", "optCtrl", "restart_edge", "boundary.tol", "calc.derivs", "use.last.params"}


@dataclass(frozen=True)
class Control:
    """lmerControl's settings (defaults are lme4 1.1-31's)."""

    optimizer: str = "nloptwrap"
    optCtrl: dict[str, Any] = field(default_factory=dict)
    restart_edge: bool = True
    boundary_tol: float = 1e-5
    calc_derivs: bool = True
    use_last_params: bool = False
    checks: dict[str, Any] = field(default_factory=lambda: dict(CHECKS))

    def check(self, name: str) -> Any:
        """The action of check `name` (e.g. "check.nobs.vs.nlev")."""
        return self.checks[name]

    def as_r(self) -> dict[str, Any]:
        """The settings that differ from lmerControl()'s defaults, under R's argument names."""
        out: dict[str, Any] = {}
        if self.optimizer != "nloptwrap":
            out["optimizer"] = self.optimizer
        if self.optCtrl:
            out["optCtrl"] = dict(self.optCtrl)
        if not self.restart_edge:
            out["restart_edge"] = False
        if self.boundary_tol != 1e-5:
            out["boundary.tol"] = self.boundary_tol
        if not self.calc_derivs:
            out["calc.derivs"] = False
        if self.use_last_params:
            out["use.last.params"] = True
        out.update({k: v for k, v in self.checks.items() if CHECKS[k] != v})
        return out


def _key(name: str) -> str:
    """R's argument name for a key written with underscores (`check_nobs_vs_nlev`, `calc_derivs`)."""
    if name in _OTHER or name in CHECKS:
        return name
    dotted = name.replace("_", ".")
    if dotted in CHECKS or dotted in _OTHER:
        return dotted
    if name in ("restart.edge",):
        return "restart_edge"
    return name


def parse_control(control: Mapping[str, Any] | Control | None) -> Control:
    """A `Control` from an lmerControl-like mapping (module docstring), refusing unknown keys/values."""
    if control is None:
        return Control()
    if isinstance(control, Control):
        return control
    if not isinstance(control, Mapping):
        raise DataError(f"control must be a mapping like lmerControl(...), not {type(control).__name__}")
    settings: dict[str, Any] = {}
    checks = dict(CHECKS)
    for raw, value in control.items():
        key = _key(str(raw))
        if key in CHECKS:
            if key.startswith("check.conv.") or key in ("check.rankX", "check.scaleX"):
                checks[key] = value
            elif value not in ACTIONS:
                raise DataError(f"control {key}={value!r}: the action must be one of {', '.join(ACTIONS)}")
            else:
                checks[key] = value
        elif key == "optimizer":
            if value not in OPTIMIZERS:
                raise DataError(f"control optimizer={value!r}: vcheck runs {', '.join(OPTIMIZERS)}")
            settings["optimizer"] = value
        elif key == "optCtrl":
            if not isinstance(value, Mapping):
                raise DataError(f"control optCtrl must be a mapping, not {type(value).__name__}")
            settings["optCtrl"] = dict(value)
        elif key == "restart_edge":
            settings["restart_edge"] = _bool(key, value)
        elif key == "calc.derivs":
            settings["calc_derivs"] = _bool(key, value)
        elif key == "use.last.params":
            settings["use_last_params"] = _bool(key, value)
        elif key == "boundary.tol":
            try:
                settings["boundary_tol"] = float(value)
            except (TypeError, ValueError):
                raise DataError(f"control boundary.tol={value!r} is not a number") from None
        else:
            known = ", ".join(sorted(_OTHER | set(CHECKS)))
            raise DataError(f"control: unused argument {raw!r} (lmerControl takes {known})")
    return Control(checks=checks, **settings)


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.upper() in ("TRUE", "FALSE", "T", "F"):
        return value.upper() in ("TRUE", "T")
    raise DataError(f"control {key}={value!r} must be TRUE or FALSE")
