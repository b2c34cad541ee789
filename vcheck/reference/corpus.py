"""lme4's own test models, with lme4's answers frozen beside them, loaded without R.

The corpus (`r_reference/corpus/`) holds every Gaussian `lmer()` call that lme4's tests/, man/ examples and
vignettes make, run with their own data and arguments under the installed lme4 (`r_reference/corpus.R`
records each call), deduplicated on (formula, REML, data, extra arguments).  One directory per entry holds
`entry.json`: the formula, REML, the extra arguments (as R's expression and their evaluated value), the
source file and line, and lme4's outputs (theta, beta, sigma, REML criterion / deviance, logLik, feval,
optimizer, warnings; or the error lme4 raised).  Data sets live once per content hash in `data/<hash>.csv`
with `data/<hash>.json` giving each column's R type and factor levels in R's order.  An entry's `source`
is the file and line of the call (for man/ pages, the line within the extracted examples; for a call
made inside a function, e.g. by update(), the line of the statement that made it; `source["via"]` names
the lme4 function that made the call when lme4 itself refits, e.g. influence.merMod's leave-one-out
fits).  Data sets over 5 MB and matrix columns are not kept (the entry says why); lme4's test level is 1
(LME4_TEST_LEVEL unset).

    python -m vcheck.reference.corpus --regenerate SRC_DIR [--out DIR] [--timeout S]

reruns the recorder over a checkout of lme4's sources (needs R with lme4, jsonlite, testthat).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CorpusEntry", "corpus_dir", "load", "load_all", "main", "names"]

#: lme4's na.action functions, by the name vcheck's `na_action` takes
_NA_ACTIONS = ("na.omit", "na.exclude", "na.fail", "na.pass")


@dataclass
class CorpusEntry:
    """One lme4 test-suite call `lmer(formula, data, REML, **args)` and what lme4 answered.

    `args` holds the extra arguments in Python form: `weights`/`offset` float arrays (one per data row, as
    R evaluated them), `subset` the R expression text, `na_action` a name in na.omit/na.exclude/na.fail,
    `contrasts` a mapping factor -> contrast name, `start` a theta array or mapping, `control` the
    mapping of what differs from lmerControl()'s defaults (R's key names); any other argument by its R
    name as recorded.  An argument R could not evaluate is `{"expr": ..., "eval_error": ...}`.
    `r_args` keeps R's record (expression text and evaluated value) of each.  `lme4` is lme4's output
    record: `status` is "fitted" or "error" (then `error` is lme4's message).  `data` is None when the
    data set was not kept (`data_skipped` says why).
    """

    name: str
    formula: str
    REML: bool
    data: pd.DataFrame | None
    args: dict[str, Any]
    lme4: dict[str, Any]
    source: dict[str, Any]
    call: str = ""
    also_in: list[dict[str, Any]] = field(default_factory=list)
    r_args: dict[str, Any] = field(default_factory=dict)
    columns: list[dict[str, Any]] = field(default_factory=list)
    data_skipped: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        """lme4 fitted this call (rather than raising)."""
        return self.lme4.get("status") == "fitted"


def corpus_dir() -> Path:
    """r_reference/corpus in a checkout, vcheck/_r_reference/corpus in a wheel."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "_r_reference" / "corpus", here.parent / "r_reference" / "corpus"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no lme4 test corpus in {here.parent / 'r_reference' / 'corpus'}")


def names(root: Path | None = None) -> list[str]:
    """The corpus entries, sorted (`root`: another corpus directory, e.g. a fresh --regenerate --out)."""
    base = root or corpus_dir()
    return sorted(p.name for p in base.iterdir() if (p / "entry.json").is_file())


@functools.lru_cache(maxsize=64)
def _read_data(root: Path, hash_: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    base = root / "data" / hash_
    spec = json.loads(base.with_suffix(".json").read_text())
    columns = spec["columns"]
    raw = pd.read_csv(base.with_suffix(".csv"), dtype=str, keep_default_na=False, na_values=[])
    out: dict[str, Any] = {}
    for col in columns:
        name, kind = col["name"], col["type"]
        text = raw[name]
        missing = (text == "NA").to_numpy()
        if kind in ("numeric", "integer"):
            numbers = [math.nan if m else float(v) for v, m in zip(text, missing, strict=True)]
            if kind == "integer":
                out[name] = pd.array(
                    [None if m else int(v) for v, m in zip(numbers, missing, strict=True)], dtype="Int64"
                )
            else:
                out[name] = np.asarray(numbers, dtype=float)
        elif kind == "logical":
            flags = [None if m else v == "TRUE" for v, m in zip(text, missing, strict=True)]
            out[name] = pd.array(flags, dtype="boolean")
        elif kind in ("factor", "ordered"):
            levels = list(col.get("levels") or [])
            values = [None if m and "NA" not in levels else v for v, m in zip(text, missing, strict=True)]
            out[name] = pd.Categorical(values, categories=levels, ordered=kind == "ordered")
        elif kind == "character":
            strings = [None if m else v for v, m in zip(text, missing, strict=True)]
            out[name] = pd.Series(strings, dtype=object)
        else:
            raise ValueError(f"corpus data {hash_}: column {name!r} has unknown type {kind!r}")
    return pd.DataFrame(out, columns=[c["name"] for c in columns]), columns


_PY_NAMES = {"na.action": "na_action"}


def _python_args(r_args: dict[str, Any]) -> dict[str, Any]:
    """R's recorded arguments -> vcheck's keyword values (weights, offset, subset, na_action, ...)."""
    out: dict[str, Any] = {}
    for key, rec in r_args.items():
        value = rec.get("value")
        if "eval_error" in rec:  # R could not evaluate the argument (lme4 then errors too)
            out[_PY_NAMES.get(key, key)] = {"expr": rec["expr"], "eval_error": rec["eval_error"]}
            continue
        if key in ("weights", "offset"):
            out[key] = None if value is None else np.asarray(_floats(value), dtype=float)
        elif key == "subset":
            out["subset"] = rec["expr"]
        elif key == "na.action":
            out["na_action"] = value if value in _NA_ACTIONS else rec["expr"]
        elif key == "contrasts":
            out["contrasts"] = _contrasts(value, rec["expr"])
        elif key == "start":
            out["start"] = _start(value)
        elif key == "control":
            out["control"] = _control(value)
        else:
            out[key] = value
    return out


#: lmerControl()'s defaults in lme4 1.1-31 (R's names), as the recorder dumped `lmerControl()`
_CONTROL_DEFAULTS: dict[str, Any] = {
    "optimizer": "nloptwrap",
    "restart_edge": True,
    "boundary.tol": 1e-5,
    "calc.derivs": True,
    "use.last.params": False,
    "check.nobs.vs.rankZ": "ignore",
    "check.nobs.vs.nlev": "stop",
    "check.nlev.gtreq.5": "ignore",
    "check.nlev.gtr.1": "stop",
    "check.nobs.vs.nRE": "stop",
    "check.rankX": "message+drop.cols",
    "check.scaleX": "warning",
    "check.formula.LHS": "stop",
    "check.conv.grad": "warning",
    "check.conv.singular": "message",
    "check.conv.hess": "warning",
}


def _control(value: Any) -> Any:
    """A recorded lmerControl object -> the mapping of what differs from lmerControl()'s defaults, with
    R's key names (`optimizer`, `optCtrl`, `restart_edge`, `check.nobs.vs.nlev`, ...); a check.conv.*
    entry gives its action.  Anything else (a list(), a function) is returned as recorded."""
    if value == [] or value is None:  # control = list(): lmerControl()'s defaults
        return {}
    if not isinstance(value, dict) or "checkControl" not in value:
        return value
    flat: dict[str, Any] = {
        k: value.get(k)
        for k in ("optimizer", "restart_edge", "boundary.tol", "calc.derivs", "use.last.params")
    }
    flat.update(value.get("checkControl") or {})
    for key, cc in (value.get("checkConv") or {}).items():
        flat[key] = cc.get("action") if isinstance(cc, dict) else cc
    out = {k: v for k, v in flat.items() if k not in _CONTROL_DEFAULTS or v != _CONTROL_DEFAULTS[k]}
    if value.get("optCtrl"):
        out["optCtrl"] = value["optCtrl"]
    return out


def _floats(value: Any) -> list[float]:
    values = value if isinstance(value, list) else [value]
    return [math.nan if v is None else float(v) for v in values]


def _contrasts(value: Any, expr: str) -> Any:
    if value is None or value == []:  # contrasts = NULL (lmer's default)
        return None
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    return {"expr": expr, "value": value}


def _start(value: Any) -> Any:
    if isinstance(value, dict) and "values" in value:  # a named vector
        return np.asarray(_floats(value["values"]))
    if isinstance(value, dict):
        return {k: _start(v) for k, v in value.items()}
    if isinstance(value, list | float | int):
        return np.asarray(_floats(value))
    return value


#: lme4 outputs that are vectors (R's JSON writes a length-1 vector as a scalar)
_VECTORS = (
    "theta",
    "theta_names",
    "beta",
    "beta_names",
    "X_colnames",
    "col_dropped",
    "warnings",
    "messages",
    "lme4_messages",
    "optinfo_warnings",
)


def _lme4_outputs(rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    for key in _VECTORS:
        if key in out:
            value = out[key]
            out[key] = [] if value is None else value if isinstance(value, list) else [value]
    return out


def load(name: str, root: Path | None = None) -> CorpusEntry:
    """One corpus entry, with its data rebuilt as R had it."""
    base = root or corpus_dir()
    path = base / name / "entry.json"
    if not path.is_file():
        raise KeyError(f"no corpus entry {name!r}")
    rec = json.loads(path.read_text())
    data: pd.DataFrame | None = None
    columns: list[dict[str, Any]] = []
    hash_ = rec["data"].get("hash")
    if hash_:
        frame, columns = _read_data(base, hash_)
        data = frame.copy()
    return CorpusEntry(
        name=rec["name"],
        formula=rec["formula"],
        REML=bool(rec["REML"]),
        data=data,
        args=_python_args(rec["args"]),
        lme4=_lme4_outputs(rec["lme4"]),
        source=rec["source"],
        call=rec.get("call", ""),
        also_in=rec.get("also_in", []),
        r_args=rec["args"],
        columns=columns,
        data_skipped=rec["data"].get("skipped"),
        versions=rec.get("versions", {}),
    )


def load_all(root: Path | None = None) -> list[CorpusEntry]:
    """Every corpus entry, by name."""
    return [load(n, root) for n in names(root)]


def main(argv: list[str] | None = None) -> int:
    """`--regenerate SRC_DIR`: rerun r_reference/corpus.R over lme4's sources and rebuild the corpus."""
    parser = argparse.ArgumentParser(prog="python -m vcheck.reference.corpus", description=__doc__)
    parser.add_argument(
        "--regenerate",
        metavar="SRC_DIR",
        type=Path,
        required=True,
        help="a checkout of lme4's sources (tests/, man/, vignettes/, inst/, data/)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[2] / "r_reference" / "corpus"
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per source file")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--raw", type=Path, default=None, help="keep raw records here (a rerun resumes)")
    ns = parser.parse_args(argv)
    from vcheck.reference.corpus_build import regenerate

    summary = regenerate(
        ns.regenerate, ns.out, timeout=ns.timeout, jobs=ns.jobs, raw=ns.raw, doc=__doc__ or ""
    )
    print(json.dumps(summary["counts"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
