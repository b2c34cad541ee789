"""The model-frame functions beyond arithmetic: poly(), ns(), bs(), dummy(), offset(), as.numeric(f).

R evaluates each on the whole data (before na.action), as `model.frame()` does:
- `poly(x, degree, raw = FALSE)` (stats), `ns(x, df, knots, intercept, Boundary.knots)` and
  `bs(x, df, knots, degree, intercept, Boundary.knots)` (splines) give matrix variables (`Basis`);
- `dummy(f, levelsToKeep)` (lme4) gives indicator columns of the kept levels;
- `offset(expr)` is the numeric value of expr (terms() keeps it out of X; the model frame sums offsets);
- `as.numeric(f)` / `as.integer(f)` of a factor are its integer codes 1..nlevels, as in R.
A call may carry its package prefix: `stats::poly`, `splines::ns`, `splines::bs`, `lme4::dummy`,
`base::as.numeric`.  Arguments vcheck evaluates: the variable, numbers, strings, TRUE/FALSE/T/F and `c(...)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from vcheck.core.basis import Basis, dummy, match_args, poly
from vcheck.core.errors import FormulaError
from vcheck.core.factors import Factor
from vcheck.core.rexpr import Call, Node, Num, Str, Sym, deparse
from vcheck.core.splines import bs, ns

if TYPE_CHECKING:
    from vcheck.core.model_frame import Evaluator

#: the package each function comes from, for `pkg::fn`
PACKAGES = {
    "poly": "stats",
    "ns": "splines",
    "bs": "splines",
    "dummy": "lme4",
    "offset": "stats",
    "as.numeric": "base",
    "as.integer": "base",
    "as.double": "base",
}


def strip_package(fn: str, text: str) -> str:
    """`splines::ns` -> `ns`; refuses a prefix that is not the function's own package (or base's)."""
    if "::" not in fn:
        return fn
    pkg, _, name = fn.replace(":::", "::").partition("::")
    own = PACKAGES.get(name)
    if own is None and pkg in ("base", "stats"):
        return name  # base::log, stats::... on vcheck's arithmetic functions
    if own != pkg:
        raise FormulaError(
            f"formula {text!r}: {fn}() is not supported by vcheck (it evaluates stats::poly, splines::ns, "
            "splines::bs, lme4::dummy and base/stats arithmetic)"
        )
    return name


def constant(node: Node, text: str) -> Any:
    """A literal argument: number, string, TRUE/FALSE (and T/F), negative numbers, `c(...)`."""
    if isinstance(node, Num):
        return bool(node.value) if node.logical else node.value
    if isinstance(node, Str):
        return node.value
    if isinstance(node, Sym) and node.name in ("T", "F"):
        return node.name == "T"
    if isinstance(node, Call) and node.fn == "-" and len(node.args) == 1:
        inner = constant(node.args[0], text)
        if isinstance(inner, float):
            return -inner
    if isinstance(node, Call) and node.fn == "c":
        values = [constant(a, text) for a in node.args]
        flat: list[Any] = []
        for v in values:
            flat.extend(v if isinstance(v, list) else [v])
        return flat
    if isinstance(node, Call) and node.fn == "NULL":
        return None
    raise FormulaError(f"formula {text!r}: argument {deparse(node)!r} must be a literal for vcheck")


def _logical(value: Any, what: str, text: str) -> bool:
    """R's `if (value)`: TRUE/FALSE or a number; a string is "not interpretable as logical"."""
    if isinstance(value, bool | float):
        return bool(value)
    raise FormulaError(f"formula {text!r}: {what} = {value!r}: argument is not interpretable as logical")


def _int(value: Any, what: str, text: str) -> int:
    if isinstance(value, bool) or not isinstance(value, float) or value != int(value):
        raise FormulaError(f"formula {text!r}: {what} must be a whole number, not {value!r}")
    return int(value)


def evaluate_call(ev: Evaluator, node: Call) -> np.ndarray | Factor | Basis | None:
    """The value of `node` when it is one of this module's functions, else None."""
    text = ev.formula
    fn = strip_package(node.fn, text)
    if fn not in PACKAGES:
        return None
    if fn == "offset":
        if len(node.args) != 1:
            raise FormulaError(f"formula {text!r}: offset() takes one argument")
        return ev.numeric(node.args[0])
    if fn in ("as.numeric", "as.integer", "as.double"):
        if len(node.args) != 1:
            return None
        value = ev.value(node.args[0])
        if isinstance(value, Factor):  # R: the integer codes (1-based), NA stays NA
            out = value.codes.astype(float) + 1.0
            out[value.codes < 0] = np.nan
            return np.trunc(out) if fn == "as.integer" else out
        x = ev.numeric(node.args[0])
        return np.trunc(x) if fn == "as.integer" else x
    if fn == "poly":
        a = match_args("poly", node.args, node.argnames, ["x", "degree", "coefs", "raw", "simple"], text)
        if "x" not in a:
            raise FormulaError(f"formula {text!r}: poly() needs a variable")
        degree = _int(constant(a["degree"], text), "poly()'s degree", text) if "degree" in a else 1
        raw = _logical(constant(a["raw"], text), "raw", text) if "raw" in a else False
        if "coefs" in a:
            raise FormulaError(f"formula {text!r}: poly(coefs = ) is not supported by vcheck")
        return poly(ev.numeric(a["x"]), degree, raw=raw)
    if fn in ("ns", "bs"):
        formals = ["x", "df", "knots", "intercept", "Boundary.knots"]
        if fn == "bs":
            formals = ["x", "df", "knots", "degree", "intercept", "Boundary.knots"]
        a = match_args(fn, node.args, node.argnames, formals, text)
        if "x" not in a:
            raise FormulaError(f"formula {text!r}: {fn}() needs a variable")
        consts = {k: constant(v, text) for k, v in a.items() if k != "x"}
        df = _int(consts["df"], f"{fn}()'s df", text) if consts.get("df") is not None else None
        kw: dict[str, Any] = {
            "df": df,
            "knots": consts.get("knots"),
            "intercept": _logical(consts.get("intercept", False), "intercept", text),
            "boundary": consts.get("Boundary.knots"),
        }
        x = ev.numeric(a["x"])
        if fn == "bs":
            return bs(x, degree=_int(consts.get("degree", 3.0), "bs()'s degree", text), **kw)
        return ns(x, **kw)
    # dummy(f, levelsToKeep)
    a = match_args("dummy", node.args, node.argnames, ["f", "levelsToKeep"], text)
    if "f" not in a:
        raise FormulaError(f"formula {text!r}: dummy() needs a factor")
    f = ev.value(a["f"])
    if not isinstance(f, Factor):
        f = ev.as_factor_of(a["f"])
    keep = constant(a["levelsToKeep"], text) if "levelsToKeep" in a else None
    if isinstance(keep, str):
        keep = [keep]
    return dummy(f.levels, f.codes, keep)
