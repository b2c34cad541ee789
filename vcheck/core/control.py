"""lme4 1.1-31's `lmerControl(...)` as a frozen dataclass, parsed from a mapping with R's names.

    LmerControl.parse({"optimizer": "bobyqa", "optCtrl": {"maxfun": 1e5},
                       "check.nobs.vs.nlev": "ignore", "check.conv.grad": "ignore"})

What each setting does (lme4 1.1-31):
- optimizer: "nloptwrap" (default; nlopt's LN_BOBYQA), "bobyqa" (minqa's BOBYQA), "Nelder_Mead"
  (lme4's own), or None (R's NULL: no optimization, the start is the answer with conv = 1000).
- optCtrl: passed to the optimizer as lme4 passes it (`vcheck.core.optimizers` says per optimizer which
  names it reads; names it does not know are ignored, with minqa's and Nelder_Mead's warning).
- restart_edge, boundary.tol: `optimizeLmer`'s restart from the boundary and boundary snap.
- calc.derivs: the finite-difference gradient and Hessian of `deriv12` (optinfo["derivs"]) and the
  convergence checks check.conv.grad / check.conv.hess that use them; check.conv.singular.
- use.last.params: the fit is taken at the devfun's last evaluated theta rather than the optimum.
- check.nlev.gtr.1, check.nobs.vs.nlev, check.nlev.gtreq.5, check.nobs.vs.nRE, check.nobs.vs.rankZ:
  the design checks, each "stop", "warning", "message" or "ignore" (`apply_check` acts on them).
- check.rankX, check.scaleX: the rank-drop and scale options of lFormula.
- check.formula.LHS, sparseX, standardize.X, mod.type: accepted as R accepts them; lmer does not use
  sparseX or standardize.X.

Names R's lmerControl does not have are refused, as R refuses them ("unused argument"); lme4 2.x's
new names (autoscale, check.conv.nobsmax, check.conv.nparmax) are refused with a message saying lme4
1.1-31 refuses them too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from vcheck.core.errors import DataError

OPTIMIZERS = ("nloptwrap", "bobyqa", "Nelder_Mead")
CHECK_LEVELS = ("message", "warning", "stop", "ignore")
RANKX = ("message+drop.cols", "silent.drop.cols", "warn+drop.cols", "stop.deficient", "ignore")
SCALEX = ("warning", "stop", "silent.rescale", "message+rescale", "warn+rescale", "ignore")
#: lme4 2.x's lmerControl arguments that lme4 1.1-31 does not have
LME4_2X_ONLY = ("autoscale", "check.conv.nobsmax", "check.conv.nparmax")


class ControlError(DataError):
    """A control setting lme4 1.1-31 would refuse (unknown name, invalid level or value), or a design
    check whose action is "stop"."""


class CheckWarning(UserWarning):
    """A design or convergence check whose action is "warning" (lme4 warns)."""


class CheckMessage(UserWarning):
    """A check whose action is "message" (lme4 prints a message; vcheck issues this warning class)."""


@dataclass(frozen=True)
class ConvCheck:
    """One `check.conv.*` setting: `.makeCC(action, tol, relTol)`."""

    action: str
    tol: float
    relTol: float | None = None


def _freeze(m: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(m))


@dataclass(frozen=True)
class LmerControl:
    """`lmerControl()` with lme4 1.1-31's defaults; R's dotted names become underscores."""

    optimizer: str | None = "nloptwrap"
    restart_edge: bool = True
    boundary_tol: float = 1e-5
    calc_derivs: bool = True
    use_last_params: bool = False
    sparseX: bool = False
    standardize_X: bool = False
    check_nobs_vs_rankZ: str = "ignore"
    check_nobs_vs_nlev: str = "stop"
    check_nlev_gtreq_5: str = "ignore"
    check_nlev_gtr_1: str = "stop"
    check_nobs_vs_nRE: str = "stop"
    check_rankX: str = "message+drop.cols"
    check_scaleX: str = "warning"
    check_formula_LHS: str = "stop"
    check_conv_grad: ConvCheck = ConvCheck("warning", 2e-3, None)
    check_conv_singular: ConvCheck = ConvCheck("message", 1e-4)
    check_conv_hess: ConvCheck = ConvCheck("warning", 1e-6)
    optCtrl: Mapping[str, Any] = field(default_factory=lambda: _freeze({}))
    mod_type: str = "lmer"

    @classmethod
    def parse(cls, control: LmerControl | Mapping[str, Any] | None = None) -> LmerControl:
        """`lmerControl(...)` from R's names (dots or underscores), an LmerControl, or None (defaults)."""
        if control is None:
            return cls()
        if isinstance(control, LmerControl):
            return control
        if not isinstance(control, Mapping):
            raise ControlError(
                f"control must be a mapping of lmerControl() settings, not {type(control).__name__}"
            )
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in control.items():
            if not isinstance(key, str):
                raise ControlError(f"control names must be strings, not {key!r}")
            if key in LME4_2X_ONLY:
                raise ControlError(
                    f"lmerControl({key} = ...) is an lme4 2.x setting; lme4 1.1-31, the reference vcheck "
                    f'reproduces, refuses it too ("unused argument ({key} = ...)")'
                )
            attr = key.replace(".", "_")
            if attr not in names or key not in (attr, _r_name(attr)):
                raise ControlError(
                    f'unknown lmerControl() setting {key!r}: lme4 1.1-31 refuses it too ("unused '
                    f'argument"); known: {", ".join(sorted(_r_name(n) for n in names))}'
                )
            values[attr] = value
        out = cls()
        return out._with(values)

    def _with(self, values: dict[str, Any]) -> LmerControl:
        kw: dict[str, Any] = {}
        for attr, value in values.items():
            kw[attr] = _validate(attr, value, getattr(self, attr))
        return replace(self, **kw)

    def action(self, check: str) -> str:
        """The action of a design check, by R's name ("check.nobs.vs.nlev") or attribute name."""
        value = getattr(self, check.replace(".", "_"))
        if not isinstance(value, str):
            raise ControlError(f"{check} is not a design check")
        return value

    def check(self, name: str) -> str:
        """The action of a design check by R's name (the name `vcheck.core.design` reads)."""
        return self.action(name)

    def as_r(self) -> dict[str, Any]:
        """The settings that differ from lmerControl()'s defaults, under R's names (what
        `vcheck.reference` passes to lmerControl)."""
        out: dict[str, Any] = {}
        default = LmerControl()
        for f in fields(self):
            v = getattr(self, f.name)
            if v == getattr(default, f.name) or (f.name == "optCtrl" and not v):
                continue
            if isinstance(v, ConvCheck):
                v = {
                    "action": v.action,
                    "tol": v.tol,
                    **({"relTol": v.relTol} if v.relTol is not None else {}),
                }
            elif f.name == "optCtrl":
                v = dict(v)
            out[_r_name(f.name)] = v
        return out


def _r_name(attr: str) -> str:
    return attr if attr in ("restart_edge", "optCtrl", "sparseX") else attr.replace("_", ".")


def _validate(attr: str, value: Any, default: Any) -> Any:
    name = _r_name(attr)
    if attr == "optimizer":
        if value is None:
            return None
        if value == "none":
            raise ControlError("deprecated use of optimizer=='none'; use NULL instead (optimizer=None)")
        if value in ("nlminbwrap", "optimx", "optim"):
            raise ControlError(
                f"optimizer {value!r}: lme4 1.1-31 can call it (getOptfun), but vcheck reproduces only "
                f"lme4's {', '.join(OPTIMIZERS)} (or None for no optimization)"
            )
        if value not in OPTIMIZERS:
            raise ControlError(
                f"couldn't find optimizer function {value!r}: vcheck has lme4's {', '.join(OPTIMIZERS)} "
                "(or None for no optimization)"
            )
        return str(value)
    if attr == "optCtrl":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ControlError("optCtrl must be a mapping from option names to values (R: is.list(optCtrl))")
        return _freeze({k: _r_value(v) for k, v in value.items()})
    if attr in ("check_conv_grad", "check_conv_singular", "check_conv_hess"):
        return _conv_check(name, value, default)
    if attr == "check_rankX":
        return _match_arg(name, value, RANKX)
    if attr == "check_scaleX":
        return _match_arg(name, value, SCALEX)
    if attr == "mod_type":
        if value != "lmer":
            raise ControlError(f"mod.type = {value!r}: vcheck fits lmer models only")
        return value
    if attr == "check_formula_LHS":
        if value not in CHECK_LEVELS:
            raise ControlError(_level_message(name, value, CHECK_LEVELS))
        return value
    if attr.startswith("check_"):
        levels: tuple[str, ...] = CHECK_LEVELS
        if attr == "check_nobs_vs_rankZ":
            levels = (*CHECK_LEVELS, *(f"{lv}Small" for lv in CHECK_LEVELS))
        if value not in levels:
            raise ControlError(_level_message(name, value, levels))
        return value
    if isinstance(default, bool):
        if isinstance(value, str) and value.upper() in ("TRUE", "FALSE", "T", "F"):  # from the CLI
            return value.upper() in ("TRUE", "T")
        if not isinstance(value, bool):
            raise ControlError(f"{name} must be TRUE or FALSE (a bool), not {value!r}")
        return value
    if attr == "boundary_tol":
        if isinstance(value, str):  # from the CLI
            try:
                value = float(value)
            except ValueError:
                raise ControlError(f"boundary.tol must be a number, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ControlError(f"boundary.tol must be a finite number, not {value!r}")
        return float(value)
    raise ControlError(f"unhandled control setting {name}")  # pragma: no cover


def _r_value(value: Any) -> Any:
    """An optCtrl value as R would hold it: text from the CLI that reads as a number or TRUE/FALSE
    becomes one ("1e5" -> 100000.0); anything else is kept for the optimizer to judge."""
    if isinstance(value, str):
        if value.upper() in ("TRUE", "FALSE", "T", "F"):
            return value.upper() in ("TRUE", "T")
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _level_message(name: str, value: Any, levels: tuple[str, ...]) -> str:
    return (
        f"invalid control level {value!r} in {name}: valid options are {{{', '.join(map(repr, levels))}}} "
        "(the check's action)"
    )


def _match_arg(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """R's match.arg: an exact name, or a prefix of exactly one choice."""
    if isinstance(value, str):
        if value in choices:
            return value
        hits = [c for c in choices if c.startswith(value)] if value else []
        if len(hits) == 1:
            return hits[0]
    raise ControlError(f"{name}: 'arg' should be one of {', '.join(map(repr, choices))}, not {value!r}")


def _conv_check(name: str, value: Any, default: ConvCheck) -> ConvCheck:
    """A string sets the action and keeps the default tol (chk.cconv); a mapping is `.makeCC(...)`."""
    if isinstance(value, ConvCheck):
        value = {"action": value.action, "tol": value.tol, "relTol": value.relTol}
    if isinstance(value, str):
        value = {"action": value, "tol": default.tol, "relTol": default.relTol}
    if not isinstance(value, Mapping):
        raise ControlError(f"check.conv* option {name} must be a list (a mapping with action and tol)")
    extra = set(value) - {"action", "tol", "relTol"}
    if extra:
        raise ControlError(f"check.conv* option {name}: unknown component(s) {sorted(extra)}")
    action = value.get("action")
    if not isinstance(action, str):
        raise ControlError(f"check.conv* option {name} has no 'action' string")
    if action not in CHECK_LEVELS:
        raise ControlError(_level_message(name, action, CHECK_LEVELS))
    tol = value.get("tol", default.tol)
    if isinstance(tol, bool) or not isinstance(tol, int | float):
        raise ControlError(f"check.conv* option {name} must have a numeric 'tol' component")
    if not tol >= 0:
        raise ControlError(f"check.conv* option {name}$tol must be number >= 0")
    rel = value.get("relTol")
    if rel is not None and (isinstance(rel, bool) or not isinstance(rel, int | float) or not rel >= 0):
        raise ControlError(f"check.conv* option {name}$relTol must be a number >= 0")
    return ConvCheck(action, float(tol), None if rel is None else float(rel))


def apply_check(action: str, message: str, error: type[Exception] = ControlError) -> str | None:
    """Act on a failed check as lme4 does: "stop" raises `error(message)`, "warning" warns
    (CheckWarning), "message" issues CheckMessage, "ignore" does nothing.  Returns the message lme4
    records (None for "ignore")."""
    if action == "ignore":
        return None
    if action in ("stop", "stopSmall"):
        raise error(message)
    if action in ("warning", "warningSmall"):
        warnings.warn(message, CheckWarning, stacklevel=3)
    else:
        warnings.warn(message, CheckMessage, stacklevel=3)
    return message


#: the names `vcheck.core.design`, `vcheck.core.fit` and `vcheck.reference` use
Control = LmerControl


def parse_control(control: LmerControl | Mapping[str, Any] | None = None) -> LmerControl:
    """`LmerControl.parse`: lmerControl(...) from a mapping with R's names (module docstring)."""
    return LmerControl.parse(control)


def start_vector(start: Any, lower: Any) -> Any:
    """lme4's `getStart(start, pp)` for lmer: a numeric theta vector, or a mapping with "theta" (and
    optionally "fixef", which lmer does not use); the length must be theta's."""
    import numpy as np

    ntheta = len(lower)
    if isinstance(start, Mapping):
        bad = [str(k) for k in start if k not in ("theta", "fixef")]
        if bad:
            raise ControlError(f"incorrect components in start list: {', '.join(bad)}")
        if "theta" not in start:
            raise ControlError("start has no 'theta' component")
        start = start["theta"]
    try:
        theta = np.array(start, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ControlError("'start' must be NULL, a numeric vector or named list of such vectors") from None
    if len(theta) != ntheta:
        raise ControlError(f"incorrect number of theta components (!={ntheta})")
    if not np.all(np.isfinite(theta)):
        raise ControlError(f"start theta must be finite, not {theta.tolist()}")
    return theta
