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
import scipy.sparse as sp

from vcheck.core.errors import ArgumentError, DataError, RNotAvailableError
from vcheck.core.record import Design, LmerFit, RandomTerm
from vcheck.reference.call_args import call_args

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


# ---- records from bridge.R's lists (live values or frozen JSON) ----------------------------------------


def fit_from_dict(
    d: Mapping[str, Any], *, source: str, formula: str, index: pd.Index | None = None
) -> LmerFit:
    """An `LmerFit` from bridge.R's `vcheck_collect` list, converted by rpy2 or read from JSON.

    `index` is the index of the data handed to R; `row_index` maps R's 1-based row numbers onto it.
    """
    X_names = _str_list(d["X_names"])
    X = _dense(d["X"])
    if X.shape[1] != len(X_names):
        raise ValueError(f"X has {X.shape[1]} columns but {len(X_names)} names")
    cnms = _cnms(d["cnms"])
    varcorr = _varcorr(d["varcorr"]) if d.get("varcorr") is not None else None
    vcov = None
    if d.get("vcov") is not None:
        vcov = pd.DataFrame(_dense(d["vcov"]), index=list(X_names), columns=list(X_names))
    ranef = condvar = None
    if d.get("ranef") is not None:
        ranef = {
            g: pd.DataFrame(
                _dense(r["values"]),
                index=pd.Index(_str_list(r["levels"]), name=g),
                columns=_str_list(r["names"]),
            )
            for g, r in d["ranef"].items()
        }
    if d.get("condVar") is not None:
        condvar = {g: _array(c) for g, c in d["condVar"].items()}
    optinfo = _optinfo(d)
    extra: dict[str, Any] = {"dropped_columns": _str_list(d.get("dropped_columns"))}
    return LmerFit(
        source=source,
        formula=formula,
        REML=bool(_one(d["REML"])),
        n=int(_one(d["n"])),
        X=X,
        X_names=X_names,
        y=_floats(d["y"]),
        Zt=_sparse(d["Zt"]),
        Lambdat=_sparse(d["Lambdat"]),
        Lind=_ints(d["Lind"]),
        theta=_floats(d["theta"]),
        lower=_floats(d["lower"]),
        cnms=cnms,
        flist=_flist(d["flist"]),
        Gp=_ints(d["Gp"]),
        beta=pd.Series(_floats(d["beta"]), index=list(X_names), name="beta"),
        sigma=float(_one(d["sigma"])),
        criterion=float(_one(d["criterion"])),
        logLik=float(_one(d["logLik"])),
        vcov=vcov,
        varcorr=varcorr,
        ranef=ranef,
        condVar=condvar,
        singular=bool(_one(d["singular"])),
        optinfo=optinfo,
        versions={k: _one_str(v) for k, v in (d.get("versions") or {}).items()},
        n_na_dropped=int(_one(d["n_na_dropped"])),
        row_index=_row_index(d["row_index"], index),
        extra=extra,
        weights=_prior_weights(d.get("weights")),
        offset=_offset(d.get("offset")),
        mu=_floats(d["mu"]) if d.get("mu") is not None else None,
        na_action=_one_str(d.get("na_action")) or "na.omit",
        frame_index=_row_index(d["frame_rows"], index) if d.get("frame_rows") is not None else None,
    )


def design_from_dict(d: Mapping[str, Any], *, formula: str, index: pd.Index | None = None) -> Design:
    """A `Design` from bridge.R's `vcheck_collect_design` list (lFormula), live or frozen."""
    cnms = _cnms(d["cnms"])
    flist = _flist(d["flist"])
    terms = []
    start = 0
    for group, names in cnms:
        k = len(names) * (len(names) + 1) // 2
        levels = tuple(str(c) for c in flist[group].categories)
        terms.append(
            RandomTerm(group=group, cnms=tuple(names), levels=levels, theta_slice=(start, start + k))
        )
        start += k
    messages = _str_list(d.get("r_messages") or d.get("messages"))
    messages += _str_list(d.get("r_warnings") or d.get("warnings"))
    return Design(
        formula=formula,
        X=_dense(d["X"]),
        X_names=_str_list(d["X_names"]),
        y=_floats(d["y"]),
        Zt=_sparse(d["Zt"]),
        Lambdat=_sparse(d["Lambdat"]),
        Lind=_ints(d["Lind"]),
        theta=_floats(d["theta"]),
        lower=_floats(d["lower"]),
        terms=terms,
        flist=flist,
        row_index=_row_index(d["row_index"], index),
        n_na_dropped=int(_one(d["n_na_dropped"])),
        dropped_columns=_str_list(d.get("dropped_columns")),
        messages=messages,
        weights=_prior_weights(d.get("weights")),
        offset=_offset(d.get("offset")),
        na_action=_one_str(d.get("na_action")) or "na.omit",
        frame_index=_row_index(d["frame_rows"], index) if d.get("frame_rows") is not None else None,
    )


def _prior_weights(v: Any) -> np.ndarray | None:
    """lme4's prior weights (m@resp$weights, or lFormula's "(weights)"); None when absent or all 1, the
    records' convention for unit weights."""
    w = _floats(v) if v is not None and not isinstance(v, Mapping) else np.zeros(0)
    if w.size == 0 or np.all(w == 1.0):
        return None
    return w


def _offset(v: Any) -> np.ndarray | None:
    """lme4's offset (m@resp$offset, or model.offset(fr)); None when absent or all 0."""
    o = _floats(v) if v is not None and not isinstance(v, Mapping) else np.zeros(0)
    if o.size == 0 or np.all(o == 0.0):
        return None
    return o


def _optinfo(d: Mapping[str, Any]) -> dict[str, Any]:
    o = d.get("optinfo") or {}
    feval = _one(o.get("feval"))
    conv = _one(o.get("conv_opt"))
    return {
        "optimizer": _one_str(o.get("optimizer")),
        "feval": None if feval is None or np.isnan(float(feval)) else int(feval),
        "message": _one_str(o.get("message")),
        "conv": None if conv is None or np.isnan(float(conv)) else int(conv),
        "warnings": _str_list(o.get("warnings")),
        "lme4_messages": _str_list(o.get("lme4_messages")),
        "lme4_code": [int(c) for c in _floats(o.get("lme4_code"))],
        "theta_opt": _floats(o.get("theta_opt")),
        # conditions R signalled during the call (lme4's convergence/boundary messages, rank drops, ...)
        "r_warnings": _str_list(d.get("r_warnings") or d.get("warnings")),
        "r_messages": _str_list(d.get("r_messages") or d.get("messages")),
    }


def _varcorr(v: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "grp": pd.Series(_str_list(v["grp"]), dtype=object),
            "var1": pd.Series(_opt_str_list(v["var1"]), dtype=object),
            "var2": pd.Series(_opt_str_list(v["var2"]), dtype=object),
            "vcov": _floats(v["vcov"]),
            "sdcor": _floats(v["sdcor"]),
        }
    )


def _cnms(v: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(_one_str(t["group"]), _str_list(t["names"])) for t in v]


def _flist(v: Mapping[str, Any]) -> dict[str, pd.Categorical]:
    return {
        name: pd.Categorical.from_codes(
            _ints(f["codes"]) - 1, categories=pd.Index(_str_list(f["levels"]), dtype=object)
        )
        for name, f in v.items()
    }


def _row_index(positions: Any, index: pd.Index | None) -> pd.Index:
    pos = _ints(positions) - 1
    if index is None:
        return pd.Index(pos)
    return index[pos]


def _dense(v: Mapping[str, Any]) -> np.ndarray:
    dim = tuple(int(k) for k in _ints(v["dim"]))
    return _floats(v["x"]).reshape(dim, order="F")


def _array(v: Mapping[str, Any]) -> np.ndarray:
    return _dense(v)


def _sparse(v: Mapping[str, Any]) -> sp.csc_matrix:
    """A CSC matrix from a dgCMatrix's slots, keeping explicit zeros (Lind indexes the stored entries)."""
    nrow, ncol = (int(k) for k in _ints(v["Dim"]))
    m = sp.csc_matrix((_floats(v["x"]), _ints(v["i"]), _ints(v["p"])), shape=(nrow, ncol))
    m.has_sorted_indices = True
    return m


def _floats(v: Any) -> np.ndarray:
    """Doubles from an R vector (numpy from the bridge, a list with None for NA from JSON)."""
    if v is None:
        return np.zeros(0)
    if isinstance(v, np.ndarray) and v.dtype != object:
        return v.astype(np.float64, copy=False)
    if isinstance(v, int | float):
        v = [v]
    return np.array([np.nan if x is None else x for x in v], dtype=np.float64)


def _ints(v: Any) -> np.ndarray:
    if v is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(v, int | float):
        v = [v]
    return np.array(v, dtype=np.int64)


def _one(v: Any) -> Any:
    """The single element of a length-1 R vector (None for NULL/NA)."""
    if isinstance(v, list | tuple | np.ndarray):
        if len(v) == 0:
            return None
        if len(v) != 1:
            raise ValueError(f"expected one value, got {len(v)}")
        v = v[0]
    if isinstance(v, np.generic):
        v = v.item()
    return v


def _one_str(v: Any) -> str:
    x = _one(v)
    return "" if x is None else str(x)


def _str_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return [str(s) for s in v if s is not None]


def _opt_str_list(v: Any) -> list[str | None]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return [None if s is None else str(s) for s in v]


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
