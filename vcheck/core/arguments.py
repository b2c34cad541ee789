"""lmer's arguments besides formula, data and REML, read as lme4 1.1-31 reads them.

- `weights`, `offset`: a column name of the data or an array of len(data) (before `subset`), numeric.
  They are columns "(weights)" / "(offset)" of the model frame, so their NAs drop rows like any
  variable's.  lme4 refuses negative weights (`all(weights >= 0)`); a zero weight makes lme4's
  criterion infinite (-sum(log w)), so vcheck refuses zero weights too.
- `na_action`: "na.omit" (drop rows with NA), "na.exclude" (drop them, but fitted() and residuals()
  are padded back with NA at those rows), "na.fail" (an NA in a variable of the model is an error).
  R's "na.pass" keeps NA rows, which lmer cannot fit: refused.
`start` and `control` are read by `vcheck.core.control` (start_vector, LmerControl).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vcheck.core.errors import DataError

NA_ACTIONS = ("na.omit", "na.exclude", "na.fail")


def column_or_array(spec: object, data: pd.DataFrame, what: str) -> np.ndarray | None:
    """`weights`/`offset` as a float array of len(data) (NaN for NA), from a column name or an array."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in data.columns:
            raise DataError(
                f"{what}={spec!r} is not a column of the data (it has {', '.join(map(str, data.columns))})"
            )
        series = data[spec]
        source = f"column {spec!r}"
    else:
        values = spec.to_numpy() if isinstance(spec, pd.Series) else np.asarray(spec)
        source = "the array"
        if values.ndim != 1 or len(values) != len(data):
            raise DataError(f"{what}: {source} has length {values.size}, the data has {len(data)} rows")
        series = pd.Series(values)
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        raise DataError(f"{what}: {source} must be numeric, it has dtype {series.dtype}")
    return series.astype("float64").to_numpy(dtype=float, na_value=np.nan)


def check_weights(w: np.ndarray) -> None:
    """lme4's mkRespMod: `all(weights >= 0)`; and no zero weights (lme4's criterion would be Inf)."""
    if np.any(w < 0):
        raise DataError(
            f"weights must be >= 0 (lme4: all(weights >= 0) is not TRUE); {int(np.sum(w < 0))} are negative"
        )
    if np.any(w == 0):
        raise DataError(
            f"{int(np.sum(w == 0))} weights are 0: lme4's criterion has -sum(log(weights)) and is infinite "
            "then; drop those rows (subset=) instead"
        )
    if not np.all(np.isfinite(w)):
        raise DataError("weights must be finite")


def check_na_action(na_action: str) -> str:
    if na_action == "na.pass":
        raise DataError("na_action='na.pass' keeps rows with NA, which lmer cannot fit (R errors too)")
    if na_action not in NA_ACTIONS:
        raise DataError(f"na_action must be one of {', '.join(NA_ACTIONS)}, not {na_action!r}")
    return na_action
