"""`subset=`: which data rows a model uses, from a boolean array or an R expression over the columns.

R's `model.frame(subset = expr)` evaluates `expr` in the data and keeps the rows where it is TRUE; rows
where it is NA become all-NA rows, which na.omit drops and counts (`subset_rows`).  vcheck evaluates
this part of R, on whole columns:

- columns by name (backticks for odd names), numbers, strings, `TRUE`/`FALSE`/`T`/`F`, `NA`, `pi`;
- arithmetic `+ - * / ^ %% %/%` and unary minus on numbers;
- comparisons `== != < > <= >=` between numbers; `==` and `!=` between a factor/string column and a
  string (or a number, compared as R compares them: as its label, `Subject == 308`);
- `&`, `|`, `!` with R's three-valued NA logic, `xor(a, b)`;
- `x %in% c(...)`, `x %in% 1:3` and `x %in% y` (NA %in% ... is FALSE unless the table holds NA),
  `is.na(x)`;
- `c(...)` of constants, parentheses.

Everything else (`&&` and `||`, which R 4.2 refuses for vectors, function calls such as `substr()`,
variables outside the data) is refused with `SubsetError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vcheck.core.errors import DataError
from vcheck.core.factors import label
from vcheck.core.rexpr import Call, Node, Num, Str, Sym, deparse, parse


class SubsetError(DataError):
    """A `subset=` vcheck cannot evaluate or that is not a logical vector of the data's length."""


@dataclass
class _Lgl:
    """A logical vector: values and an NA mask."""

    value: np.ndarray
    na: np.ndarray


@dataclass
class _Str:
    """A character vector (factor columns give their labels); None is NA."""

    value: np.ndarray  # object


_Val = np.ndarray | _Lgl | _Str

_ARITH: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "^": np.power,
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
_CONSTANTS = {"TRUE": True, "T": True, "FALSE": False, "F": False}


def subset_rows(subset: object, data: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(keep, na): the rows an R expression keeps and the rows where it is NA (None, None: all rows).

    R's model.frame subsets with `[`, which turns an NA in the subset into an all-NA row of the frame:
    na.omit then drops it and counts it among the NA rows (na.exclude pads fitted values there).
    A boolean array has no NA (pandas' NA counts as FALSE)."""
    if isinstance(subset, str):
        v = _Evaluator(data, subset).logical_value(parse(subset))
        return v.value & ~v.na, v.na
    return subset_mask(subset, data), None


def subset_mask(subset: object, data: pd.DataFrame) -> np.ndarray | None:
    """The rows `subset` keeps, as a boolean array of len(data) (None: all rows).

    `subset` is None, a boolean array / Series of the data's length (NA counts as FALSE), or an R
    expression string (module docstring: what vcheck evaluates)."""
    n = len(data)
    if subset is None:
        return None
    if isinstance(subset, str):
        return _Evaluator(data, subset).mask(parse(subset))
    values = subset.to_numpy() if isinstance(subset, pd.Series) else np.asarray(subset)
    if values.dtype == object:
        values = pd.array(values, dtype="boolean").to_numpy(dtype=bool, na_value=False)
    if values.dtype != bool:
        raise SubsetError(
            f"subset must be a boolean array or an R expression string, not an array of {values.dtype}"
        )
    if values.shape != (n,):
        raise SubsetError(f"subset has length {values.size}, the data has {n} rows")
    return values.copy()


class _Evaluator:
    def __init__(self, data: pd.DataFrame, text: str) -> None:
        self.data, self.text, self.n = data, text, len(data)

    def refuse(self, node: Node, why: str) -> SubsetError:
        return SubsetError(f"subset {self.text!r}: {deparse(node)!r} {why}")

    def mask(self, node: Node) -> np.ndarray:
        v = self.logical_value(node)
        return v.value & ~v.na

    def logical_value(self, node: Node) -> _Lgl:
        v = self.value(node)
        if not isinstance(v, _Lgl):
            raise SubsetError(f"subset {self.text!r} is not a logical (TRUE/FALSE) expression")
        return v

    # --- values -------------------------------------------------------------------------------------
    def column(self, name: str) -> _Val:
        series = self.data[name]
        dtype = series.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cat = series.astype(object)
            return _Str(np.array([None if pd.isna(v) else label(v) for v in cat], dtype=object))
        if pd.api.types.is_bool_dtype(dtype):
            na = series.isna().to_numpy()
            return _Lgl(series.fillna(False).to_numpy(dtype=bool), na)
        if pd.api.types.is_numeric_dtype(dtype):
            return series.astype("float64").to_numpy(dtype=float, na_value=np.nan)
        return _Str(np.array([None if pd.isna(v) else str(v) for v in series], dtype=object))

    def value(self, node: Node) -> _Val:
        if isinstance(node, Num):
            if getattr(node, "logical", False):  # TRUE / FALSE
                return _Lgl(np.full(self.n, bool(node.value)), np.zeros(self.n, dtype=bool))
            return np.full(self.n, node.value)
        if isinstance(node, Str):
            return _Str(np.full(self.n, node.value, dtype=object))
        if isinstance(node, Sym):
            if node.name in self.data.columns:
                return self.column(node.name)
            if node.name in _CONSTANTS:
                return _Lgl(np.full(self.n, _CONSTANTS[node.name]), np.zeros(self.n, dtype=bool))
            if node.name == "NA":
                return _Lgl(np.zeros(self.n, dtype=bool), np.ones(self.n, dtype=bool))
            if node.name == "pi":
                return np.full(self.n, np.pi)
            raise SubsetError(
                f"subset {self.text!r}: {node.name!r} is not a column of the data "
                f"(it has {', '.join(map(str, self.data.columns))})"
            )
        return self.call(node)

    def call(self, node: Call) -> _Val:
        fn, args = node.fn, node.args
        if fn == "(" and len(args) == 1:
            return self.value(args[0])
        if fn in ("&", "|") and len(args) == 2:
            return _logic(fn, self.logical(args[0]), self.logical(args[1]))
        if fn == "xor" and len(args) == 2:
            a, b = self.logical(args[0]), self.logical(args[1])
            return _Lgl(a.value ^ b.value, a.na | b.na)
        if fn == "!" and len(args) == 1:
            a = self.logical(args[0])
            return _Lgl(~a.value, a.na.copy())
        if fn == "is.na" and len(args) == 1:
            return _Lgl(_is_na(self.value(args[0])), np.zeros(self.n, dtype=bool))
        if fn == "%in%" and len(args) == 2:
            return self.in_(args[0], args[1])
        if fn in _COMPARE and len(args) == 2:
            return self.compare(node)
        if fn == ":" and len(args) == 2:
            raise self.refuse(node, "is a sequence, usable as the table of %in% (x %in% 1:3) only")
        if fn in _ARITH and len(args) == 2:
            with np.errstate(all="ignore"):
                return _ARITH[fn](self.numeric(args[0]), self.numeric(args[1]))
        if fn in ("-", "+") and len(args) == 1:
            x = self.numeric(args[0])
            return -x if fn == "-" else x
        if fn in ("&&", "||"):
            raise self.refuse(node, f"uses {fn}, which R 4.2 refuses for vectors: use {fn[0]} instead")
        raise self.refuse(
            node,
            "is outside the part of R vcheck evaluates in subset= (columns, constants, arithmetic, "
            "comparisons, &, |, !, xor, %in%, is.na, c())",
        )

    def logical(self, node: Node) -> _Lgl:
        v = self.value(node)
        if isinstance(v, _Lgl):
            return v
        if isinstance(v, np.ndarray):  # R: a number is TRUE unless 0
            na = np.isnan(v)
            return _Lgl((v != 0) & ~na, na)
        raise self.refuse(node, "is a string/factor, not a logical value")

    def numeric(self, node: Node) -> np.ndarray:
        v = self.value(node)
        if isinstance(v, _Lgl):
            out = v.value.astype(float)
            out[v.na] = np.nan
            return out
        if isinstance(v, _Str):
            raise self.refuse(node, "is a string/factor, not a number")
        return v

    def compare(self, node: Call) -> _Lgl:
        a, b = self.value(node.args[0]), self.value(node.args[1])
        if isinstance(a, _Str) or isinstance(b, _Str):
            if node.fn not in ("==", "!="):
                raise self.refuse(node, "orders strings, which depends on R's collation; vcheck refuses it")
            sa, sb = self.strings(a, node.args[0]), self.strings(b, node.args[1])
            na = np.array([x is None for x in sa]) | np.array([y is None for y in sb])
            eq = np.array([x == y for x, y in zip(sa, sb, strict=True)], dtype=bool)
            return _Lgl((eq if node.fn == "==" else ~eq) & ~na, na)
        x, y = self.numeric(node.args[0]), self.numeric(node.args[1])
        na = np.isnan(x) | np.isnan(y)
        with np.errstate(invalid="ignore"):
            return _Lgl(_COMPARE[node.fn](x, y) & ~na, na)

    def strings(self, v: _Val, node: Node) -> np.ndarray:
        """As R coerces for comparing with a string: numbers become their labels (`as.character`)."""
        if isinstance(v, _Str):
            return v.value
        if isinstance(v, _Lgl):
            return np.array(
                [None if m else ("TRUE" if x else "FALSE") for x, m in zip(v.value, v.na, strict=True)],
                object,
            )
        return np.array([None if np.isnan(x) else label(float(x)) for x in v], dtype=object)

    def in_(self, left: Node, right: Node) -> _Lgl:
        a = self.value(left)
        table = self.table(right)
        if isinstance(a, _Str) or any(isinstance(t, str) for t in table):
            sa = self.strings(a, left)
            keys = {None if t is None else (t if isinstance(t, str) else label(t)) for t in table}
            hit = np.array([x in keys for x in sa], dtype=bool)
        else:
            x = self.numeric(left)
            nums = np.array([np.nan if t is None else float(t) for t in table], dtype=float)  # type: ignore[arg-type,type-var]
            hit = np.isin(x, nums[~np.isnan(nums)])
            if np.isnan(nums).any():
                hit |= np.isnan(x)
        return _Lgl(hit, np.zeros(self.n, dtype=bool))

    def table(self, node: Node) -> list[object]:
        """The right side of %in%: c(...) of constants, one constant, or a column (its distinct values)."""
        if isinstance(node, Call) and node.fn == "c":
            return [x for a in node.args for x in self.table(a)]
        if isinstance(node, Num) and getattr(node, "logical", False):
            return ["TRUE" if node.value else "FALSE"]
        if isinstance(node, Num):
            return [node.value]
        if isinstance(node, Str):
            return [node.value]
        if isinstance(node, Sym) and node.name == "NA":
            return [None]
        if isinstance(node, Sym) and node.name in _CONSTANTS:
            return ["TRUE" if _CONSTANTS[node.name] else "FALSE"]
        if (
            isinstance(node, Call)
            and node.fn == "-"
            and len(node.args) == 1
            and isinstance(node.args[0], Num)
        ):
            return [-node.args[0].value]
        if isinstance(node, Call) and node.fn == ":" and len(node.args) == 2:
            ends = [self.table(x) for x in node.args]
            if all(len(e) == 1 and isinstance(e[0], int | float) for e in ends):
                lo, hi = (float(e[0]) for e in ends)  # type: ignore[arg-type]
                step = 1.0 if hi >= lo else -1.0
                return [lo + step * i for i in range(int(abs(hi - lo)) + 1)]
            raise self.refuse(node, "is a sequence vcheck evaluates only between two numbers")
        v = self.value(node)
        if isinstance(v, _Str):
            return list(dict.fromkeys(v.value.tolist()))
        if isinstance(v, _Lgl):
            return [None if m else ("TRUE" if x else "FALSE") for x, m in zip(v.value, v.na, strict=True)]
        return [None if np.isnan(x) else float(x) for x in np.unique(v)]


def _logic(op: str, a: _Lgl, b: _Lgl) -> _Lgl:
    """R's three-valued & and |: FALSE & NA is FALSE, TRUE | NA is TRUE, otherwise NA wins."""
    if op == "&":
        value = a.value & b.value
        known_false = (~a.value & ~a.na) | (~b.value & ~b.na)
        na = (a.na | b.na) & ~known_false
    else:
        value = a.value | b.value
        known_true = (a.value & ~a.na) | (b.value & ~b.na)
        na = (a.na | b.na) & ~known_true
    return _Lgl(value & ~na, na)


def _is_na(v: _Val) -> np.ndarray:
    if isinstance(v, _Lgl):
        return v.na.copy()
    if isinstance(v, _Str):
        return np.array([x is None for x in v.value], dtype=bool)
    return np.isnan(v)
