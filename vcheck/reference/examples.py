"""vcheck's built-in examples with lme4's frozen answers, loaded without R.

Each example lives in `r_reference/frozen/<name>/` (in a wheel: `vcheck/_r_reference/frozen/<name>/`):
`data.csv` and `reference.json`, written by `r_reference/freeze.R` (`python -m vcheck.reference --freeze`).
The JSON holds the example's formula, REML flag and description, the column types that rebuild the data
frame exactly as R had it (double, integer, logical, character, factor and ordered factor with their
level order), lme4's design at its starting theta (lFormula) and every quantity of lme4's fit, with the
R, lme4 and Matrix versions and R's locale.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vcheck.core.errors import DataError, VcheckError
from vcheck.core.record import Design, LmerFit

__all__ = ["Example", "argument_names", "frozen_dir", "load", "load_all", "names"]


class UnknownExampleError(VcheckError, KeyError):
    """A built-in example name that does not exist; the message lists the names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass
class Example:
    """One built-in example: `lmer(formula, data, REML)` and what lme4 answered.

    `expected` is lme4's fit (source "lme4 (frozen)"); `design` is lme4's lFormula (theta0 = 1 on the
    diagonals, Lambdat at theta0); `theta_start` is where lmer's optimizer starts (mkLmerDevfun's theta,
    which differs from theta0 when every term is a scalar intercept); `columns` the column-type spec;
    `versions` R's, lme4's and Matrix's versions, the locale and the collation.
    """

    name: str
    formula: str
    data: pd.DataFrame
    REML: bool
    expected: LmerFit
    description: str
    design: Design | None = None
    theta_start: np.ndarray | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)  # lmer's further arguments, R's names (bridge.R)

    @property
    def kwargs(self) -> dict[str, Any]:
        """`args` as keyword arguments of `vcheck.lmer` / `vcheck.reference.lmer` (na.action -> na_action)."""
        return {_PY_NAMES.get(k, k): v for k, v in self.args.items()}


#: R's argument names that differ from vcheck's keywords
_PY_NAMES = {"na.action": "na_action"}


def frozen_dir() -> Path:
    """The directory of frozen references (r_reference/frozen in a checkout, vcheck/_r_reference/frozen
    in a wheel)."""
    here = Path(__file__).resolve().parents[1]  # the vcheck package
    for candidate in (here / "_r_reference" / "frozen", here.parent / "r_reference" / "frozen"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"no frozen lme4 references in {here / '_r_reference' / 'frozen'} "
        f"or {here.parent / 'r_reference' / 'frozen'}"
    )


def names() -> list[str]:
    """Names of the built-in examples called as `lmer(formula, data, REML)`, in the order
    r_reference/examples.R defines them (those with further arguments: `argument_names()`)."""
    return [n for n in _all_names() if not _has_args(n)]


def argument_names() -> list[str]:
    """Names of the built-in examples that pass lmer further arguments (weights, offset, subset,
    na.action, contrasts, control): call them with `**example.kwargs`."""
    return [n for n in _all_names() if _has_args(n)]


def _all_names() -> list[str]:
    root = frozen_dir()
    found = {p.parent.name for p in root.glob("*/reference.json")}
    order = _definition_order(root.parent / "examples.R")
    return [n for n in order if n in found] + sorted(found - set(order))


@functools.cache
def _has_args(name: str) -> bool:
    ref = json.loads((frozen_dir() / name / "reference.json").read_text(encoding="utf-8"))
    return bool(ref["example"].get("args"))


def load(name: str) -> Example:
    """Load one built-in example: its data (right dtypes), formula, REML flag and lme4's frozen answers."""
    return _load_cached(name)


def load_all() -> list[Example]:
    """Every built-in example."""
    return [load(n) for n in names()]


@functools.cache
def _load_cached(name: str) -> Example:
    from vcheck.reference import design_from_dict, fit_from_dict

    root = frozen_dir()
    folder = root / name
    ref_path = folder / "reference.json"
    if not ref_path.is_file():
        raise UnknownExampleError(f"unknown example {name!r}; built-in examples: {', '.join(_all_names())}")
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
    ex = ref["example"]
    formula = _one(ex["formula"])
    columns = [_column_spec(c) for c in ref["columns"]]
    data = read_data(folder / "data.csv", columns)
    expected = fit_from_dict(ref["fit"], source="lme4 (frozen)", formula=formula, index=data.index)
    design = design_from_dict(ref["design"], formula=formula, index=data.index)
    args = json.loads(_one(ex["args"])) if ex.get("args") else {}
    expected.na_action = design.na_action = args.get("na.action", "na.omit")  # as vcheck.reference does
    versions = {k: str(_one(v)) for k, v in ref.get("versions", {}).items()}
    return Example(
        name=_one(ex["name"]),
        formula=formula,
        data=data,
        REML=bool(_one(ex["REML"])),
        expected=expected,
        description=_one(ex.get("description", [""])),
        design=design,
        theta_start=np.array(ref["design"]["theta_start"], dtype=np.float64),
        columns=columns,
        versions=versions,
        args=args,
    )


def read_data(path: Path, columns: list[dict[str, Any]]) -> pd.DataFrame:
    """Read freeze.R's CSV ("NA" for missing values) and give each column its R type:
    float -> float64, int -> int64 (Int64 with NA), bool -> bool (boolean with NA), string -> str,
    factor/ordered -> Categorical with R's levels in R's order."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=["NA"], encoding="utf-8")
    expected = [c["name"] for c in columns]
    if list(raw.columns) != expected:
        raise DataError(
            f"{path}: columns {list(raw.columns)} do not match the spec {expected}; "
            "regenerate the frozen data with r_reference/freeze.R"
        )
    out = {c["name"]: _typed(raw[c["name"]], c) for c in columns}
    return pd.DataFrame(out)


def _typed(text: pd.Series, spec: dict[str, Any]) -> Any:
    kind = spec["kind"]
    missing = text.isna()
    if kind == "float":
        return pd.to_numeric(text).astype(np.float64)
    if kind == "int":
        values = pd.to_numeric(text)
        return values.astype("Int64") if missing.any() else values.astype(np.int64)
    if kind == "bool":
        mapped = text.map({"TRUE": True, "FALSE": False})
        return mapped.astype("boolean") if missing.any() else mapped.astype(bool)
    if kind == "string":
        return text.astype("str")
    if kind in ("factor", "ordered"):
        return pd.Categorical(text, categories=spec["levels"], ordered=kind == "ordered")
    raise DataError(
        f"unknown column kind {kind!r} for column {spec['name']!r} (float, int, bool, string, factor or "
        "ordered); regenerate the frozen data with r_reference/freeze.R"
    )


def _column_spec(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": _one(c["name"]),
        "kind": _one(c["kind"]),
        "levels": None if c.get("levels") is None else [str(v) for v in c["levels"]],
        "n_na": int(_one(c.get("n_na", [0]))),
    }


def _one(v: Any) -> Any:
    return v[0] if isinstance(v, list) else v


def _definition_order(examples_r: Path) -> list[str]:
    """Example names in the order examples.R lists them (`vcheck_example("name", ...`)."""
    if not examples_r.is_file():
        return []
    import re

    return re.findall(r'vcheck_example\(\s*"([^"]+)"', examples_r.read_text(encoding="utf-8"))
