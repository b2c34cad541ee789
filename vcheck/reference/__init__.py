"""lme4 as the reference: live through rpy2, or frozen in r_reference/frozen.

Every function here makes ONE call into R (a function of r_reference/bridge.R) that returns all of the
fit's quantities as plain vectors, and builds vcheck's records from them:

- `lmer(formula, data, REML)`         lme4's fit -> `LmerFit` (source "lme4")
- `lFormula(formula, data)`           lme4's construction at the starting theta -> `Design`
- `start_theta(formula, data)`        where lmer's optimizer starts (mkLmerDevfun's theta)
- `devfun(formula, data, REML)`       lme4's profiled criterion d(theta) (mkLmerDevfun) as a callable
- `fit_at_theta(formula, data, theta)` lme4's quantities at a fixed theta, no optimization
- `versions()`                        R, lme4, Matrix versions and R's locale
- `freeze(out_dir)`                   rewrite the frozen references (Rscript r_reference/freeze.R)

lme4's model: y = X beta + Z b + e, b = Lambda u, u ~ N(0, sigma^2 I), e ~ N(0, sigma^2 I), so
G = sigma^2 Lambda Lambda' and V = sigma^2 (Z Lambda Lambda' Z' + I).  The criterion is lme4's: the REML
criterion (-2 REML log-likelihood) for REML fits, the deviance (-2 log-likelihood) for ML fits.

The same builders (`fit_from_dict`, `design_from_dict`) read the frozen JSON, so live and frozen records
share one schema.  Command line: `python -m vcheck.reference --freeze [DIR] [--only NAME ...]`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vcheck.core.errors import ArgumentError, DataError, RNotAvailableError
from vcheck.core.record import Design, LmerFit
from vcheck.reference.call_args import call_args
from vcheck.reference.records import _floats, _one_str, design_from_dict, fit_from_dict

__all__ = [
    "design_from_dict",
    "devfun",
    "fit_at_theta",
    "fit_from_dict",
    "freeze",
    "lFormula",
    "lmer",
    "start_theta",
    "versions",
]


# ---- live lme4 ---------------------------------------------------------------------------------------


def lmer(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    start: object = None,
    control: Mapping[str, Any] | None = None,
    extras: bool | str = True,
) -> LmerFit:
    """Fit `lme4::lmer(formula, data, REML, ...)` in the embedded R and return every quantity of the fit.

    weights, offset, subset, na_action, contrasts, start and control are passed to lme4 as R code
    passes them (`vcheck.reference.call_args`); they take what `vcheck.lmer` takes.

    Rows with NA in a variable of the formula are dropped by lme4 (na.omit); `n_na_dropped` counts them
    and `row_index` holds the labels of the rows kept.  `extras=False` skips vcov(beta), the conditional
    modes and their variances (ranef/condVar), which cost more than the rest of the record;
    `extras="modes"` gives the conditional modes alone (ranef, no condVar or vcov).
    """
    value = lmer_value(
        formula,
        data,
        REML,
        weights=weights,
        offset=offset,
        subset=subset,
        na_action=na_action,
        contrasts=contrasts,
        start=start,
        control=control,
        extras=extras,
    )
    fit = fit_from_dict(value, source="lme4", formula=formula, index=data.index)
    fit.na_action = na_action  # R records it only when it dropped rows; lme4 was called with it
    return fit


def lmer_value(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    start: object = None,
    control: Mapping[str, Any] | None = None,
    extras: bool | str = True,
) -> dict[str, Any]:
    """`lmer`'s answer before it becomes a record: bridge.R's list of plain values (numpy arrays, lists,
    strings), which `fit_from_dict(value, source="lme4", formula=formula, index=data.index)` turns into
    the `LmerFit`.  lme4's process (`vcheck.reference.server`) sends this, the cheaper half, across."""
    from vcheck.reference import rbridge

    ca = call_args(
        data,
        weights=weights,
        offset=offset,
        subset=subset,
        na_action=na_action,
        contrasts=contrasts,
        start=start,
        control=control,
    )
    frame = _r_frame(formula, ca.data, ca.columns)
    value: dict[str, Any] = rbridge.session().call(
        "vcheck_lmer",
        _r_str(formula),
        frame,
        _r_bool(REML),
        _r_extras(extras),
        _r_bool(False),
        _r_str(ca.json),
    )
    value["versions"] = _session_versions()
    return value


def fit_at_theta(
    formula: str,
    data: pd.DataFrame,
    theta: np.ndarray | Sequence[float],
    REML: bool = True,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    start: object = None,
    control: Mapping[str, Any] | None = None,
    extras: bool | str = True,
) -> LmerFit:
    """lme4's fit record at a FIXED theta, without optimizing.

    lme4's deviance function (mkLmerDevfun) is evaluated once at theta and mkMerMod reads the model from
    the state it leaves: beta and u solve the penalized least squares problem at theta,
    sigma^2 = pwrss / (n - p) (REML) or pwrss / n (ML), and the criterion is d(theta).
    """
    from vcheck.reference import rbridge

    s = rbridge.session()
    ca = call_args(
        data,
        weights=weights,
        offset=offset,
        subset=subset,
        na_action=na_action,
        contrasts=contrasts,
        start=start,
        control=control,
    )
    frame = _r_frame(formula, ca.data, ca.columns)
    theta_r = s.ri.FloatSexpVector(np.ascontiguousarray(np.asarray(theta, dtype=np.float64).ravel()))
    value = s.call(
        "vcheck_fit_at_theta",
        _r_str(formula),
        frame,
        theta_r,
        _r_bool(REML),
        _r_extras(extras),
        _r_bool(False),
        _r_str(ca.json),
    )
    value["versions"] = _session_versions()
    fit = fit_from_dict(value, source="lme4", formula=formula, index=data.index)
    fit.na_action = na_action
    fit.extra["at_fixed_theta"] = True
    return fit


def lFormula(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    start: object = None,
    control: Mapping[str, Any] | None = None,
) -> Design:
    """lme4's `lFormula(formula, data)`: X, y, Zt, Lambdat at the starting theta, Lind, theta0, lower,
    the terms (cnms and levels) and flist, in lme4's layout."""
    from vcheck.reference import rbridge

    ca = call_args(
        data,
        weights=weights,
        offset=offset,
        subset=subset,
        na_action=na_action,
        contrasts=contrasts,
        start=start,
        control=control,
    )
    frame = _r_frame(formula, ca.data, ca.columns)
    value = rbridge.session().call("vcheck_lformula", _r_str(formula), frame, _r_bool(REML), _r_str(ca.json))
    design = design_from_dict(value, formula=formula, index=data.index)
    design.na_action = na_action
    return design


def start_theta(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    start: object = None,
    control: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Where lmer's optimizer starts: mkLmerDevfun's theta.

    lFormula's theta (1 on diagonals, 0 off them) unless every term is a scalar intercept on its own
    factor; then theta_f = sqrt(v_f / v_e), v_f = var(ave(y, f)), v_e = var(y) - sum(v_f), when v_e > 0.
    """
    from vcheck.reference import rbridge

    ca = call_args(
        data,
        weights=weights,
        offset=offset,
        subset=subset,
        na_action=na_action,
        contrasts=contrasts,
        start=start,
        control=control,
    )
    frame = _r_frame(formula, ca.data, ca.columns)
    value = rbridge.session().call("vcheck_lformula", _r_str(formula), frame, _r_bool(REML), _r_str(ca.json))
    return _floats(value["theta_start"])


def devfun(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    weights: object = None,
    offset: object = None,
    subset: object = None,
    na_action: str = "na.omit",
    contrasts: Mapping[str, str] | None = None,
    start: object = None,
    control: Mapping[str, Any] | None = None,
) -> Callable[[np.ndarray], float]:
    """lme4's profiled criterion as a function of theta: `mkLmerDevfun(lFormula(formula, data))`.

    d(theta) = ldL2 + ldRX2 + (n - p)(1 + log(2 pi pwrss / (n - p)))   (REML)
    d(theta) = ldL2 + n (1 + log(2 pi pwrss / n))                        (ML)
    The returned callable evaluates lme4's own function in R (one call per evaluation).
    """
    from vcheck.reference import rbridge

    s = rbridge.session()
    ca = call_args(
        data,
        weights=weights,
        offset=offset,
        subset=subset,
        na_action=na_action,
        contrasts=contrasts,
        start=start,
        control=control,
    )
    frame = _r_frame(formula, ca.data, ca.columns)
    closure = s.call("vcheck_devfun", _r_str(formula), frame, _r_bool(REML), _r_str(ca.json), packed=False)

    def d(theta: np.ndarray) -> float:
        theta_r = s.ri.FloatSexpVector(np.ascontiguousarray(np.asarray(theta, dtype=np.float64).ravel()))
        value = s.call("vcheck_call_devfun", closure, theta_r)
        return float(np.asarray(value, dtype=float)[0])

    d.__doc__ = f"lme4's {'REML criterion' if REML else 'deviance'} at theta for {formula}"
    return d


def versions() -> dict[str, str]:
    """R's version string, lme4's and Matrix's versions, R's locale and collation (which orders string
    levels in factor()), and rpy2's version."""
    import rpy2

    from vcheck.reference import rbridge

    s = rbridge.session()
    value = s.call("vcheck_versions_try")
    out = {k: _one_str(v) for k, v in value.items() if k not in ("r_warnings", "r_messages")}
    out["rpy2"] = str(rpy2.__version__)
    return out


_VERSIONS: dict[str, str] = {}


def _session_versions() -> dict[str, str]:
    """versions(), read once per session (R and package versions cannot change inside one R process;
    vcheck never changes R's locale)."""
    if not _VERSIONS:
        _VERSIONS.update(versions())
    return dict(_VERSIONS)


def _r_frame(formula: str, data: pd.DataFrame, extra_columns: Sequence[str] = ()) -> Any:
    from vcheck.reference import rbridge

    if not isinstance(formula, str):
        raise DataError(f"formula must be a string, not {type(formula).__name__}")
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    columns = rbridge.referenced_columns(formula, [str(c) for c in data.columns])
    columns += [c for c in extra_columns if c not in columns]
    return rbridge.frame_to_r(data, columns)


def _r_str(x: str) -> Any:
    from vcheck.reference import rbridge

    return rbridge.session().ri.StrSexpVector([x])


def _r_extras(extras: bool | str) -> Any:
    """extras for bridge.R's vcheck_collect: TRUE, FALSE or "modes"."""
    if extras == "modes":
        return _r_str("modes")
    if isinstance(extras, bool):
        return _r_bool(extras)
    raise ArgumentError(f"extras must be True, False or 'modes', not {extras!r}")


def _r_bool(x: bool) -> Any:
    from vcheck.reference import rbridge

    return rbridge.session().ri.BoolSexpVector([bool(x)])


# ---- freezing -----------------------------------------------------------------------------------------


def freeze(out_dir: str | Path | None = None, names: Sequence[str] = ()) -> Path:
    """Rewrite the frozen references by running `Rscript r_reference/freeze.R OUT_DIR [NAME ...]`.

    Defaults to r_reference/frozen.  Runs R in a child process (not the embedded session).
    """
    from vcheck.reference.rbridge import INSTALL_HINT, r_reference_dir

    rdir = r_reference_dir()
    out = Path(out_dir) if out_dir is not None else rdir / "frozen"
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise RNotAvailableError(f"Rscript is not on PATH; {INSTALL_HINT}")
    subprocess.run([rscript, str(rdir / "freeze.R"), str(out.resolve()), *names], check=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vcheck.reference", description="lme4 reference tools (needs R with lme4)."
    )
    parser.add_argument(
        "--freeze",
        nargs="?",
        const="",
        metavar="DIR",
        help="rewrite the frozen references of the built-in examples (default DIR: r_reference/frozen)",
    )
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="freeze only these examples")
    parser.add_argument("--versions", action="store_true", help="print R's, lme4's and Matrix's versions")
    args = parser.parse_args(argv)
    if args.versions:
        for k, v in versions().items():
            print(f"{k}: {v}")
    if args.freeze is not None:
        out = freeze(args.freeze or None, args.only)
        print(f"frozen references written to {out}")
    if not args.versions and args.freeze is None:
        parser.print_help()
        return 2
    return 0
