"""vcheck's records from bridge.R's lists (`vcheck_collect`, `vcheck_collect_design`), live values
converted by rpy2 or frozen JSON: one schema for both.  Lists hold plain vectors (dense matrices as x +
dim, sparse ones as CSC slots with 0-based i and p, Lind 0-based); NA arrives as None (JSON) or NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vcheck.core.record import Design, LmerFit, RandomTerm


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
