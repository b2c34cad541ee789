"""R's `model.frame()` for vcheck: evaluate a formula's variables on a DataFrame and drop NA rows.

Each variable is an R expression (`Days`, `log(x)`, `I(age^2)`, `factor(g)`, `poly(x, 2)`, `offset(z)`)
evaluated on the whole data, as R does, and then every row where any variable is NA (or NaN) is dropped, as
`na.omit` does.  A value is a float array (numeric), a `Factor` (strings, categoricals, factor(), and
logicals, which model.matrix codes like a two-level factor FALSE/TRUE), or a `Basis` matrix (poly, ns, bs,
dummy: `vcheck.core.frame_calls`).  Infinite values are refused, naming the variable.  The frame's
`offset` is the sum of its `offset(...)` variables (R's `model.offset`), None when there are none.
R's constants: TRUE/FALSE are logical; `T`, `F` and `pi` are base R's values unless the data has such a
column (the data come first, as in R); as a term of their own R refuses them (one value, not n).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vcheck.core.basis import Basis
from vcheck.core.errors import DataError, FormulaError
from vcheck.core.factors import Factor, as_factor
from vcheck.core.frame_calls import evaluate_call, strip_package
from vcheck.core.rexpr import Call, Node, Num, Str, Sym, deparse, symbols
from vcheck.core.rmath import libm, r_pow

Value = np.ndarray | Factor | Basis

#: base R's constants that are names (TRUE and FALSE are parsed as constants)
BASE_CONSTANTS = {"T": True, "F": False, "pi": float(np.pi)}

_LOGICAL_LEVELS = ("FALSE", "TRUE")


_log = libm(math.log, np.log)
_log2 = libm(math.log2, np.log2)
_log10 = libm(math.log10, np.log10)

_UNARY_FUNCS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log2": _log2,
    "log10": _log10,
    "log1p": libm(math.log1p, np.log1p),
    "exp": libm(math.exp, np.exp),
    "expm1": libm(math.expm1, np.expm1),
    "sqrt": np.sqrt,  # correctly rounded in both
    "abs": np.abs,
    "sin": libm(math.sin, np.sin),
    "cos": libm(math.cos, np.cos),
    "tan": libm(math.tan, np.tan),
    "floor": np.floor,
    "ceiling": np.ceil,
    "as.numeric": lambda x: x,
    "as.double": lambda x: x,
}
_ARITH: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "^": r_pow,
    "%%": np.mod,
    "%/%": np.floor_divide,
}


_COMPARE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    ">": np.greater,
    "<=": np.less_equal,
    ">=": np.greater_equal,
}


@dataclass(frozen=True)
class Logical(Factor):
    """An R logical: model.matrix codes it as a factor whose levels are always FALSE, TRUE."""

    logical: bool = True

    def take(self, rows: np.ndarray) -> Logical:
        return Logical(self.codes[rows], self.levels)


def logical(mask: np.ndarray, missing: np.ndarray | None = None) -> Logical:
    codes = mask.astype(np.int64)
    if missing is not None:
        codes[missing] = -1
    return Logical(codes, _LOGICAL_LEVELS)


def column_value(data: pd.DataFrame, name: str) -> Value:
    """One data column as R would hold it in a model frame."""
    series = data[name]
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return as_factor(series)
    if pd.api.types.is_bool_dtype(dtype):
        missing = series.isna().to_numpy()
        return logical(series.fillna(False).to_numpy(dtype=bool), missing)
    if pd.api.types.is_numeric_dtype(dtype):
        return series.astype("float64").to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        present = series.dropna()
        if len(present) and not all(isinstance(v, str) for v in present):
            kinds = sorted({type(v).__name__ for v in present})
            raise DataError(f"column {name!r} mixes value types ({', '.join(kinds)}); R needs one type")
        return as_factor(series)
    raise DataError(f"column {name!r} has dtype {dtype}, which has no R model-frame type")


_EVALUATED = (
    "vcheck evaluates arithmetic, I(), log/exp/sqrt-like functions, scale(), factor(), poly(), ns(), bs(), "
    "dummy(), offset() and as.numeric() only"
)


class Evaluator:
    """Evaluate R expressions over the columns of one DataFrame (all rows)."""

    def __init__(self, data: pd.DataFrame, formula: str) -> None:
        self.data = data
        self.formula = formula
        self._columns: dict[str, Value] = {}

    def column(self, name: str) -> Value:
        if name not in self._columns:
            self._columns[name] = column_value(self.data, name)
        return self._columns[name]

    def unsupported(self, node: Node, why: str = "") -> FormulaError:
        return FormulaError(
            f"formula {self.formula!r}: vcheck does not evaluate {deparse(node)!r}"
            + (f" ({why})" if why else "")
        )

    def numeric(self, node: Node) -> np.ndarray:
        value = self.value(node)
        if isinstance(value, Logical):
            out = value.codes.astype(float)
            out[value.codes < 0] = np.nan
            return out
        if isinstance(value, Factor):
            raise FormulaError(
                f"formula {self.formula!r}: {deparse(node)!r} is a factor, not a number "
                "(as.numeric() of it gives its level codes, as in R)"
            )
        if isinstance(value, Basis):
            raise FormulaError(f"formula {self.formula!r}: {deparse(node)!r} is a matrix, not a number")
        return value

    def as_factor_of(self, node: Node) -> Factor:
        """R's as.factor() of a variable (integer columns keep integer labels)."""
        if isinstance(node, Sym) and node.name in self.data.columns:
            return as_factor(self.data[node.name])
        return as_factor(pd.Series(self.numeric(node)))

    def value(self, node: Node) -> Value:
        if isinstance(node, Num):
            if node.logical:
                return logical(np.full(len(self.data), bool(node.value)))
            return np.full(len(self.data), node.value)
        if isinstance(node, Str):
            raise self.unsupported(node, "a string constant")
        if isinstance(node, Sym):
            if node.name in self.data.columns:
                return self.column(node.name)
            if node.name in ("T", "F"):
                return logical(np.full(len(self.data), node.name == "T"))
            if node.name == "pi":
                return np.full(len(self.data), np.pi)
            raise DataError(f"column {node.name!r} (in formula {self.formula!r}) is not in the data")
        special = evaluate_call(self, node)
        if special is not None:
            return special
        fn, args = strip_package(node.fn, self.formula), node.args
        if fn in ("(", "I") and len(args) == 1:
            return self.value(args[0])
        if fn in ("factor", "as.factor", "ordered", "as.ordered") and len(args) == 1:
            inner = self.value(args[0])
            if isinstance(args[0], Sym) and not isinstance(inner, Factor):
                inner = as_factor(self.data[args[0].name])  # integer columns keep integer labels
            if isinstance(inner, Factor):  # a factor stays itself; a logical becomes FALSE/TRUE levels
                f = Factor(inner.codes, inner.levels, inner.ordered)
            else:
                f = as_factor(pd.Series(inner))
            return Factor(f.codes, f.levels, f.ordered or fn in ("ordered", "as.ordered"))
        if fn == "log":
            if len(args) == 2:
                # R's logbase: log2/log10 for those bases, else log(x)/log(base)
                x, base = self.numeric(args[0]), self.numeric(args[1])
                if np.all(base == 2):
                    return _log2(x)
                if np.all(base == 10):
                    return _log10(x)
                return _log(x) / _log(base)
            if len(args) == 1:
                return _log(self.numeric(args[0]))
        if fn in _UNARY_FUNCS and len(args) == 1:
            return _UNARY_FUNCS[fn](self.numeric(args[0]))
        if fn == "scale" and len(args) == 1:
            x = self.numeric(args[0])
            ok = ~np.isnan(x)
            # R's scale(): colMeans and sum() accumulate left to right in long double
            m = int(ok.sum())
            centred = x - float(np.cumsum(x[ok], dtype=np.longdouble)[-1] / m) if m else x
            squares = centred[ok] * centred[ok]
            ss = float(np.cumsum(squares, dtype=np.longdouble)[-1]) if m else np.nan
            return centred / math.sqrt(ss / max(1, m - 1))
        if fn in _ARITH and len(args) == 2:
            with np.errstate(all="ignore"):
                return _ARITH[fn](self.numeric(args[0]), self.numeric(args[1]))
        if fn == "-" and len(args) == 1:
            return -self.numeric(args[0])
        if fn == "+" and len(args) == 1:
            return self.numeric(args[0])
        if fn in _COMPARE and len(args) == 2:
            a, b = self.numeric(args[0]), self.numeric(args[1])
            return logical(_COMPARE[fn](a, b), np.isnan(a) | np.isnan(b))
        if fn == "!" and len(args) == 1:
            v = self.value(args[0])
            if isinstance(v, Logical):
                return Logical(np.where(v.codes < 0, -1, 1 - v.codes), v.levels)
        raise self.unsupported(
            node,
            _EVALUATED,
        )


def is_missing(value: Value) -> np.ndarray:
    if isinstance(value, Factor):
        return value.codes < 0
    if isinstance(value, Basis):
        return np.isnan(value.values).any(axis=1)
    return np.isnan(value)


@dataclass
class ModelFrame:
    """The variables after NA rows are dropped: `values[deparse(expr)]`; `rows` are positions kept."""

    values: dict[str, Value]
    rows: np.ndarray
    n_dropped: int
    data: pd.DataFrame  # the original data (a numeric grouping column is re-read as R's factor())
    offset: np.ndarray | None = None  # the sum of the formula's offset() variables over the kept rows

    def factor_of_column(self, name: str) -> Factor:
        """R's `factor(column)` over the kept rows: integers keep integer labels ("100000", not "1e+05")."""
        value = self.values[deparse(Sym(name))]
        if isinstance(value, Factor):
            return Factor(value.codes, value.levels).drop_unused()
        return as_factor(self.data[name].iloc[self.rows])


def model_frame(
    data: pd.DataFrame,
    variables: list[Node],
    formula: str,
    *,
    subset: np.ndarray | None = None,
    extras: dict[str, np.ndarray] | None = None,
) -> ModelFrame:
    """Evaluate `variables` on `data`, drop rows with any NA (na.omit), drop unused factor levels.

    As R's model.frame: variables are evaluated on all rows, then `subset` (a boolean mask) keeps rows,
    then NA rows are dropped.  `extras` are further full-length numeric columns of the frame (lmer's
    "(weights)" and "(offset)"): their NAs drop rows too; `n_dropped` counts NA rows within the subset."""
    columns = list(dict.fromkeys(name for v in variables for name in symbols(v)))
    missing_cols = [c for c in columns if c not in data.columns and c not in BASE_CONSTANTS]
    if missing_cols:
        raise DataError(
            f"column{'s' if len(missing_cols) > 1 else ''} {', '.join(map(repr, missing_cols))} "
            f"(in formula {formula!r}) not in the data; it has {', '.join(map(str, data.columns))}"
        )
    for v in variables:
        if len(data) > 1 and not any(name in data.columns for name in symbols(v)):
            raise FormulaError(
                f"formula {formula!r}: {deparse(v)!r} uses no column of the data, so R evaluates it to one "
                f"value, not one per row: R's model.frame refuses it (variable lengths differ (found for "
                f"'{deparse(v)}'))"
            )
    ev = Evaluator(data, formula)
    with np.errstate(all="ignore"):  # R gives NaN / Inf here (and na.omit drops the NaN rows)
        full = {deparse(v): ev.value(v) for v in variables}
    full.update(extras or {})
    na = np.zeros(len(data), dtype=bool)
    for value in full.values():
        na |= is_missing(value)
    if subset is not None:
        na &= subset
    rows = np.flatnonzero(~na if subset is None else ~na & subset)
    values: dict[str, Value] = {}
    for key, value in full.items():
        if isinstance(value, Factor):
            kept = value.take(rows)
            values[key] = kept if isinstance(value, Logical) else kept.drop_unused()
        elif isinstance(value, Basis):
            kept_basis = value.take(rows)
            if not np.isfinite(kept_basis.values).all():
                raise DataError(f"{key!r} has infinite values (formula {formula!r})")
            values[key] = kept_basis
        else:
            kept_num = value[rows]
            if not np.isfinite(kept_num).all():
                bad = int((~np.isfinite(kept_num)).sum())
                raise DataError(
                    f"{key!r} has {bad} infinite value{'s' if bad > 1 else ''} (formula {formula!r}); "
                    "lme4 cannot fit with Inf, remove or recode those rows"
                )
            values[key] = kept_num
    offsets = [values[deparse(v)] for v in variables if isinstance(v, Call) and _is_offset(v)]
    offset: np.ndarray | None = None
    for value in offsets:  # R's model.offset: the sum of the offset() variables, in order
        assert isinstance(value, np.ndarray)
        offset = value.copy() if offset is None else offset + value
    return ModelFrame(values, rows, int(na.sum()), data, offset=offset)


def _is_offset(node: Call) -> bool:
    return node.fn in ("offset", "stats::offset") and len(node.args) == 1
