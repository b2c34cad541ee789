"""A case: a model formula, REML or ML, and the data to fit it to, with an address that rebuilds the data.

Cases come from five places, and the address says which:

- ``drawn``: case ``index`` of ``seed``, `vcheck.strategies.draw_case(seed, index)`; each case has its own
  random stream, so case i is drawable alone (a sweep can be split across processes); its data is
  rebuilt by `vcheck.auditing.specs`;
- ``spec``: a `vcheck.auditing.specs.CaseSpec` drawn by hypothesis, kept as a plain dict;
- ``example``: a built-in example, `vcheck.examples.load(name)`;
- ``inline``: the data written out in full (the replayed corpus, shuffled or relabelled copies).
- ``large``: a large model of `vcheck.auditing.large_models` by ``name`` (InstEval, simulated random
  slopes with ``seed``).

`Case.to_dict()` is plain JSON and `Case` pickles without its data unless the data cannot be rebuilt, so
findings stay small and cross process boundaries; `Case.data` rebuilds (and caches) the DataFrame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from vcheck.auditing import large_models
from vcheck.auditing.specs import CaseSpec, build_frame, draw_spec
from vcheck.core.errors import VcheckError

#: where a case comes from (see the module's docstring)
Origin = Literal["drawn", "spec", "example", "inline", "large"]
ORIGINS: tuple[Origin, ...] = ("drawn", "spec", "example", "inline", "large")


class CaseError(VcheckError, ValueError):
    """A case that cannot exist: an unknown origin, an inline case without its data."""


@dataclass
class Case:
    """`formula` fitted by REML (or ML) to `data`; `origin` plus seed/index/name/spec rebuild the data."""

    formula: str
    REML: bool = True
    origin: Origin = "inline"
    seed: int | None = None
    index: int | None = None
    name: str | None = None
    spec: dict[str, Any] | None = None
    features: tuple[str, ...] = ()  # what the case exercises: "unsorted", "nested", "boundary", ...
    # lmer's further arguments as vcheck.lmer keywords, JSON-able: weights/offset as column names, subset
    # as an R expression, na_action, contrasts, start, control ({} = lmer(formula, data, REML))
    args: dict[str, Any] = field(default_factory=dict)
    _data: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise CaseError(f"case origin must be one of {', '.join(ORIGINS)}, not {self.origin!r}")
        if self.origin == "inline" and self._data is None:
            raise CaseError("an inline case needs its data: pass the DataFrame as _data")

    # --- the data ------------------------------------------------------------------------------------
    @property
    def data(self) -> pd.DataFrame:
        """The case's DataFrame (rebuilt from the address the first time, then cached)."""
        if self._data is None:
            self._data = self._rebuild()
        return self._data

    def _rebuild(self) -> pd.DataFrame:
        if self.origin == "drawn":
            assert self.seed is not None and self.index is not None
            return build_frame(draw_spec(self.seed, self.index))
        if self.origin == "spec":
            assert self.spec is not None
            return build_frame(CaseSpec.from_dict(self.spec))
        if self.origin == "example":
            from vcheck.reference import examples

            assert self.name is not None
            return examples.load(self.name).data
        if self.origin == "large":
            assert self.name is not None
            return large_models.load_data(self.name, self.seed, self.spec)
        raise CaseError("an inline case has no address to rebuild its data from: give it its data")

    # --- addresses -----------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """A short human address: `drawn(seed=0, index=3)`, `example(sleepstudy)`, ..."""
        if self.origin == "drawn":
            return f"drawn(seed={self.seed}, index={self.index})"
        if self.origin == "example":
            return f"example({self.name})"
        if self.origin == "large":
            return f"large({self.name})"
        if self.origin == "spec":
            spec = self.spec or {}
            return f"spec(family={spec.get('family')}, data_seed={spec.get('data_seed')})"
        return f"inline({self.name or 'data'}, n={len(self.data)})"

    @property
    def rebuild(self) -> str:
        """Python that rebuilds this case (for reports and findings)."""
        if self.origin == "drawn":
            return f"vcheck.strategies.draw_case({self.seed}, {self.index})"
        if self.origin == "example":
            return f"vcheck.examples.load({self.name!r})"
        if self.origin == "large":
            seed = "" if self.seed is None else f", seed={self.seed}"
            return f"vcheck.auditing.large.case({self.name!r}{seed}).data"
        if self.origin == "spec":
            return f"vcheck.strategies.case_from_spec(CaseSpec.from_dict({self.spec!r}))"
        return "vcheck.auditing.cases.Case.from_dict(<this case's JSON, data included>)"

    def to_dict(self, with_data: bool | None = None) -> dict[str, Any]:
        """Plain JSON; the data is written out when it cannot be rebuilt (or when `with_data` asks)."""
        out: dict[str, Any] = {"formula": self.formula, "REML": self.REML, "origin": self.origin}
        for key in ("seed", "index", "name", "spec"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.features:
            out["features"] = list(self.features)
        if self.args:
            out["args"] = dict(self.args)
        if with_data or (with_data is None and self.origin == "inline"):
            out["data"] = frame_to_json(self.data)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Case:
        data = frame_from_json(d["data"]) if "data" in d else None
        origin = d.get("origin", "inline")
        if data is not None and origin not in ("drawn", "spec", "example", "large"):
            origin = "inline"
        return cls(
            formula=d["formula"],
            REML=bool(d.get("REML", True)),
            origin=origin,
            seed=d.get("seed"),
            index=d.get("index"),
            name=d.get("name"),
            spec=d.get("spec"),
            features=tuple(d.get("features", ())),
            args=dict(d.get("args") or {}),
            _data=data,
        )

    def inline(self, data: pd.DataFrame | None = None, name: str | None = None) -> Case:
        """This case with its data written in (or replaced by `data`), e.g. for the corpus."""
        return Case(
            formula=self.formula,
            REML=self.REML,
            origin="inline",
            name=name or self.name or self.label,
            spec=self.spec,
            features=self.features,
            args=dict(self.args),
            _data=(self.data if data is None else data).copy(),
        )

    # Pickle without the data when it can be rebuilt: findings travel between processes cheaply.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.origin != "inline":
            state["_data"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


# --- DataFrame <-> JSON, exact: floats round-trip through repr, categoricals keep their level order ------
def frame_to_json(df: pd.DataFrame) -> dict[str, Any]:
    """Columns with their kind (float, int, bool, str, category with ordered levels) and exact values."""
    columns = []
    for name in df.columns:
        s = df[name]
        col: dict[str, Any] = {"name": str(name)}
        if isinstance(s.dtype, pd.CategoricalDtype):
            col["kind"] = "category"
            col["categories"] = [_plain(c) for c in s.cat.categories]
            col["values"] = [None if code < 0 else int(code) for code in s.cat.codes]
        elif pd.api.types.is_bool_dtype(s.dtype):
            col["kind"] = "bool"
            col["values"] = [bool(v) for v in s]
        elif pd.api.types.is_integer_dtype(s.dtype):
            col["kind"] = "int"
            col["values"] = [int(v) for v in s]
        elif pd.api.types.is_float_dtype(s.dtype):
            col["kind"] = "float"
            col["values"] = [None if not math.isfinite(v) else float(v) for v in s]
        else:
            col["kind"] = "str"
            col["values"] = [
                None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in s
            ]
        columns.append(col)
    return {"columns": columns, "index": [_plain(i) for i in df.index]}


def frame_from_json(d: dict[str, Any]) -> pd.DataFrame:
    """Inverse of `frame_to_json`."""
    data: dict[str, Any] = {}
    for col in d["columns"]:
        kind, values = col["kind"], col["values"]
        if kind == "category":
            codes = np.array([-1 if v is None else v for v in values], dtype=np.int64)
            data[col["name"]] = pd.Categorical.from_codes(codes, categories=col["categories"])
        elif kind == "float":
            data[col["name"]] = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif kind == "int":
            data[col["name"]] = np.array(values, dtype=np.int64)
        elif kind == "bool":
            data[col["name"]] = np.array(values, dtype=bool)
        else:
            data[col["name"]] = pd.Series(values)  # pandas infers its string dtype
    index = d.get("index")
    frame = pd.DataFrame(data)
    if index is not None:
        frame.index = pd.Index(index)
    return frame


def _plain(value: Any) -> Any:
    """numpy scalars to Python scalars for JSON."""
    return value.item() if isinstance(value, np.generic) else value
