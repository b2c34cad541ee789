"""lmer's further arguments on the command line (`vcheck fit` and `vcheck compare`):

    --weights COL  --offset COL  --subset EXPR  --na-action {na.omit,na.exclude,na.fail}
    --contrasts F=contr.sum (repeatable)  --control KEY=VALUE (repeatable)

--control takes lmerControl's names (`optimizer=bobyqa`, `check.nobs.vs.nlev=ignore`,
`calc.derivs=FALSE`, `boundary.tol=0`); `optCtrl.NAME=VALUE` sets one optCtrl entry
(`optCtrl.maxeval=1000`).  Values TRUE/FALSE and NULL are R's; numbers are numbers; anything else is a
string.
"""

from __future__ import annotations

import argparse
from typing import Any

from vcheck.core.arguments import NA_ACTIONS
from vcheck.core.contrasts import CONTRASTS
from vcheck.core.errors import DataError


def add_lmer_arguments(p: argparse.ArgumentParser) -> None:
    """The options for lmer's weights, offset, subset, na.action, contrasts and control."""
    g = p.add_argument_group("lmer arguments")
    g.add_argument("--weights", metavar="COL", help="prior weights: a column of the data")
    g.add_argument("--offset", metavar="COL", help="an offset: a column of the data")
    g.add_argument(
        "--subset", metavar="EXPR", help="rows to use: an R expression, e.g. 'Days > 1 & g != \"a\"'"
    )
    g.add_argument("--na-action", choices=NA_ACTIONS, default="na.omit", help="what to do with NA rows")
    g.add_argument(
        "--contrasts",
        action="append",
        default=[],
        metavar="F=CONTR",
        help=f"contrasts for factor F, one of {', '.join(CONTRASTS)} (repeatable)",
    )
    g.add_argument(
        "--control",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an lmerControl setting, e.g. optimizer=bobyqa or optCtrl.maxeval=1000 (repeatable)",
    )


def lmer_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `vcheck.lmer` / `vcheck.reference.lmer` from the parsed options."""
    out: dict[str, Any] = {}
    if getattr(args, "weights", None):
        out["weights"] = args.weights
    if getattr(args, "offset", None):
        out["offset"] = args.offset
    if getattr(args, "subset", None):
        out["subset"] = args.subset
    if getattr(args, "na_action", "na.omit") != "na.omit":
        out["na_action"] = args.na_action
    contrasts = dict(_pair(item, "--contrasts") for item in getattr(args, "contrasts", []) or [])
    if contrasts:
        out["contrasts"] = contrasts
    control: dict[str, Any] = {}
    for item in getattr(args, "control", []) or []:
        key, text = _pair(item, "--control")
        value = _value(text)
        if key.startswith("optCtrl."):
            control.setdefault("optCtrl", {})[key[len("optCtrl.") :]] = value
        else:
            control[key] = value
    if control:
        out["control"] = control
    return out


def _pair(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise DataError(f"{flag} takes KEY=VALUE, not {item!r}")
    return key.strip(), value.strip()


def _value(text: str) -> Any:
    if text in ("TRUE", "FALSE"):
        return text == "TRUE"
    if text == "NULL":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
