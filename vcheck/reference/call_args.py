"""lmer's further arguments, sent to R as R code passes them (bridge.R's `vcheck_call_args`).

`weights`, `offset` and `subset` become expressions evaluated in the data, as in
`lmer(f, data, weights = w, subset = Days > 2)`: a column name or an R expression is passed as such, and
an array becomes a column of the data sent to R (".vcheck_weights", ".vcheck_offset", ".vcheck_subset")
named in the call.  `na_action` is passed as the function name, `contrasts` as a named list, `start` as
a vector or list(theta = ), `control` as `lmerControl(...)` of the settings that differ from its
defaults.  Everything is checked on the Python side first (vcheck.core.arguments, .control, .subset),
so a bad argument gets the same VcheckError whichever side runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vcheck.core import arguments
from vcheck.core.contrasts import check_contrasts
from vcheck.core.control import Control, ControlError, parse_control, start_vector
from vcheck.core.rexpr import parse, symbols
from vcheck.core.subset import subset_mask


@dataclass
class CallArgs:
    """The data to send (with any array arguments as columns), the extra columns R must receive, and
    the JSON of the arguments for bridge.R ("" when all are defaults)."""

    data: pd.DataFrame
    columns: list[str]
    json: str


def call_args(
    data: pd.DataFrame,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    start: object = None,
    control: Mapping[str, Any] | Control | None = None,
) -> CallArgs:
    """Prepare lmer's arguments for R (module docstring)."""
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    columns: list[str] = []
    for key, spec in (("weights", weights), ("offset", offset)):
        if spec is None:
            continue
        values = arguments.column_or_array(spec, data, key)  # checks name / length / type
        if isinstance(spec, str):
            out[key] = spec
            columns.append(spec)
        else:
            name = f".vcheck_{key}"
            extra[name] = values
            out[key] = name
            columns.append(name)
    if subset is not None:
        if isinstance(subset, str):
            subset_mask(subset, data)  # refuses what vcheck does not evaluate, before R sees it
            out["subset"] = subset
            columns.extend(s for s in symbols(parse(subset)) if s in data.columns)
        else:
            mask = subset_mask(subset, data)
            extra[".vcheck_subset"] = mask
            out["subset"] = ".vcheck_subset"
            columns.append(".vcheck_subset")
    if arguments.check_na_action(na_action) != "na.omit":
        out["na.action"] = na_action
    contr = check_contrasts(contrasts)
    if contr:
        out["contrasts"] = contr
    if start is not None:
        theta = _start_theta(start)
        out["start"] = {"theta": theta} if isinstance(start, Mapping) else theta
    ctrl = parse_control(control).as_r()
    if ctrl:
        out["control"] = ctrl
    if extra:
        data = data.assign(**extra)
    return CallArgs(data=data, columns=columns, json=json.dumps(out) if out else "")


def _start_theta(start: object) -> list[float]:
    """start's theta as floats, checked as vcheck checks it (its length is checked against the model by
    lme4 and by vcheck's fit)."""
    theta = start.get("theta") if isinstance(start, Mapping) else start
    if isinstance(start, Mapping) and (theta is None or set(start) - {"theta", "fixef"}):
        start_vector(start, [])  # raises ControlError naming what is wrong
    try:
        values = np.asarray(theta, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ControlError("'start' must be NULL, a numeric vector or named list of such vectors") from None
    return [float(t) for t in values]
