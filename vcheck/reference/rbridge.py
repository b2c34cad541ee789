"""The embedded R session behind `vcheck.reference`: data in, one R call, plain values out.

- rpy2 is imported lazily, the first time R is needed; without rpy2, R or lme4 the error says what to
  install (`RNotAvailableError`).
- `r_reference/bridge.R` is sourced once, into its own R environment.
- pandas -> R: column by column from numpy (no pandas2ri): float, int, bool, string, categorical
  (levels kept in order; ordered -> R ordered factor); None/NaN/pd.NA -> R's NA.
- R -> Python: plain lists and vectors only (bridge.R never returns S4 objects), copied out of R's
  memory (np.asarray on an R vector would be a view), R's integer NA (-2**31) mapped to NaN/None.
- Every R call goes through bridge.R's `vcheck_try`, so an R error comes back as a value and is raised
  here as `RError` carrying R's message; nothing unwinds through the embedding, and R stays usable.
- Only the low-level `rpy2.rinterface` is used, so no rpy2 conversion context (a context variable) is
  involved, and all calls are serialized by one lock: R is single-threaded.  Keep R calls on one thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vcheck.core.errors import DataError, RError, RNotAvailableError

if TYPE_CHECKING:
    import rpy2.rinterface as ri_t

#: R's NA_integer_ (and the payload of NA in logical vectors): INT_MIN
R_NA_INTEGER = -(2**31)

INSTALL_HINT = (
    "the live lme4 reference needs R, the R packages lme4 (and for the examples mlmRev, dplyr, jsonlite) "
    "and the Python package rpy2: `pip install 'vcheck[r]'` and, on Debian/Ubuntu, "
    "`apt-get install r-base-core r-base-dev r-cran-lme4 r-cran-mlmrev r-cran-dplyr r-cran-jsonlite`"
)

_LOCK = threading.RLock()
_SESSION: RSession | None = None


def r_reference_dir() -> Path:
    """The directory holding bridge.R, examples.R, freeze.R and frozen/.

    In a source checkout it is `r_reference/` at the repository root; an installed wheel carries it as
    `vcheck/_r_reference` (pyproject's force-include).
    """
    here = Path(__file__).resolve().parents[1]  # the vcheck package
    for candidate in (here / "_r_reference", here.parent / "r_reference"):
        if (candidate / "bridge.R").is_file():
            return candidate
    raise FileNotFoundError(
        f"vcheck's R code (bridge.R) is in neither {here / '_r_reference'} nor {here.parent / 'r_reference'}"
    )


# ---- the session --------------------------------------------------------------------------------------


class RSession:
    """An embedded R with bridge.R sourced into its own environment.  Use `session()` to get it."""

    def __init__(self) -> None:
        try:
            import rpy2.rinterface as ri
        except Exception as exc:  # ImportError, or rpy2 failing to locate R
            raise RNotAvailableError(f"rpy2 cannot be imported ({exc}); {INSTALL_HINT}") from exc
        try:
            ri.initr_simple()
        except Exception as exc:
            raise RNotAvailableError(f"R cannot be started through rpy2 ({exc}); {INSTALL_HINT}") from exc
        self.ri = ri
        self.thread_id = threading.get_ident()
        undo_r_library_path()
        bridge = r_reference_dir() / "bridge.R"
        try:
            new_env = ri.baseenv.find("new.env")
            self.env: ri_t.SexpEnvironment = new_env(parent=ri.globalenv)
            ri.baseenv.find("sys.source")(ri.StrSexpVector([str(bridge)]), envir=self.env)
        except Exception as exc:  # library(lme4) failing is the usual cause
            raise RNotAvailableError(f"sourcing {bridge} failed ({exc}); {INSTALL_HINT}") from exc
        self._functions: dict[str, Any] = {}

    def function(self, name: str) -> Any:
        """An R function defined by bridge.R (looked up once)."""
        if name not in self._functions:
            self._functions[name] = self.env.find(name)
        return self._functions[name]

    def call(self, name: str, *args: Any, packed: bool = True, **kwargs: Any) -> Any:
        """Call bridge.R's `name`, which returns `vcheck_try`'s list; raise RError or return its value.

        With `packed` (the default) the result is flattened in R (`vcheck_pack`) and rebuilt here
        (`unpack`), which is several times cheaper than walking a nested R list through rpy2; results
        holding R objects (a closure) need `packed=False`.  R's captured warnings and messages are
        attached to dict values as `r_warnings`/`r_messages`.
        """
        with _LOCK:
            try:
                result = self.function(name)(*args, **kwargs)
                if packed:
                    result = self.function("vcheck_pack")(result)
            except Exception as exc:  # an R error outside vcheck_try (should not happen) or rpy2 trouble
                raise RError(str(exc), call=name) from exc
            out = unpack(result) if packed else from_r(result)
        if not isinstance(out, dict) or "ok" not in out:
            raise RError(f"unexpected value from bridge.R's {name}", call=name)
        warnings = _strings(out.get("warnings"))
        messages = _strings(out.get("messages"))
        if not _truthy(out["ok"]):
            err = RError(
                _one_string(out.get("error")) or "unknown R error", call=_one_string(out.get("call"))
            )
            err.r_warnings = warnings  # type: ignore[attr-defined]
            raise err
        value = out.get("value")
        if isinstance(value, dict):
            value["r_warnings"] = warnings
            value["r_messages"] = messages
        return value


def undo_r_library_path() -> None:
    """Take back the LD_LIBRARY_PATH that rpy2 prepends when it starts R.

    rpy2 writes R's library path (here /usr/lib/R/lib:/usr/lib/x86_64-linux-gnu:...) into os.environ
    when it initializes R.  It cannot help the running process (the loader reads the variable at
    start-up), but every child process inherits it: a child `python` (subprocess, multiprocessing spawn,
    Dask workers, nox) then loads the system's libpython instead of its own and loses its site-packages
    ("No module named numpy").  Removing the prefix again is safe: R is loaded, and R's own launchers
    (Rscript) set the variable themselves.
    """
    import os

    try:
        from rpy2.rinterface_lib import openrlib
    except Exception:
        return
    added = getattr(openrlib, "LD_LIBRARY_PATH", "")
    current = os.environ.get("LD_LIBRARY_PATH")
    if not added or current is None or not current.startswith(added + ":"):
        return
    rest = current[len(added) + 1 :]
    if rest:
        os.environ["LD_LIBRARY_PATH"] = rest
    else:
        del os.environ["LD_LIBRARY_PATH"]


def session() -> RSession:
    """The process's R session, started (and bridge.R sourced) on first use."""
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = RSession()
        return _SESSION


# ---- pandas -> R -----------------------------------------------------------------------------------------

_DOT_TERM = re.compile(r"(^|[~+*:(|\s])\.($|[\s+*:)|])")


def referenced_columns(formula: str, columns: Sequence[str]) -> list[str]:
    """The columns a formula can use: every name that occurs in its text (all of them if it uses `.`).

    A superset is harmless (an unused column only costs its conversion); missing a column would not be,
    so the test is plain substring occurrence.
    """
    if _DOT_TERM.search(formula):
        return list(columns)
    return [c for c in columns if c in formula]


def column_kind(series: pd.Series, name: str) -> str:
    """The R type a pandas column becomes: float, int, bool, string, factor or ordered."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "ordered" if dtype.ordered else "factor"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int" if _fits_r_integer(series) else "float"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred in ("string", "empty"):
            return "string"
        if inferred == "boolean":
            return "bool"
        if inferred == "integer":
            return "int" if _fits_r_integer(series) else "float"
        if inferred in ("floating", "mixed-integer-float", "decimal"):
            return "float"
        raise DataError(f"column {name!r} holds values of mixed or unsupported type ({inferred}) for R")
    raise DataError(f"column {name!r} has dtype {dtype}, which vcheck does not pass to R")


def _fits_r_integer(series: pd.Series) -> bool:
    values = _int_values(series)
    return bool(len(values) == 0 or (values.min() > R_NA_INTEGER and values.max() < 2**31))


def _int_values(series: pd.Series) -> np.ndarray:
    """The non-missing values of an integer or boolean column as int64."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iub":
        return series.to_numpy().astype(np.int64, copy=False)
    present = series[series.notna()]
    return np.asarray(present.astype(np.int64).to_numpy(), dtype=np.int64)


def _r_int_vector(ri: Any, values: np.ndarray, missing: np.ndarray) -> Any:
    out = np.asarray(values, dtype=np.int64).copy()
    if missing.any():
        out[missing] = R_NA_INTEGER
    return ri.IntSexpVector(out.astype(np.int32))


def column_to_r(ri: Any, series: pd.Series, kind: str) -> tuple[Any, Any]:
    """One pandas column as an R vector (and its level labels for factors, else R's NULL).

    Missing values (None, NaN, pd.NA) become R's NA: NA_integer_ (INT_MIN) in integer, logical and
    factor-code vectors, NaN in doubles (bridge.R turns it into NA_real_), NA_character_ in strings.
    """
    if kind == "float":
        values = pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
        return ri.FloatSexpVector(np.ascontiguousarray(values)), ri.NULL
    if kind in ("int", "bool"):
        if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iub":
            return _r_int_vector(ri, series.to_numpy(), np.zeros(len(series), dtype=bool)), ri.NULL
        missing = series.isna().to_numpy(dtype=bool)
        values = np.zeros(len(series), dtype=np.int64)
        values[~missing] = _int_values(series)
        return _r_int_vector(ri, values, missing), ri.NULL
    if kind == "string":
        missing = series.isna().to_numpy(dtype=bool)
        strings = [ri.NA_Character if m else str(v) for v, m in zip(series.tolist(), missing, strict=True)]
        return ri.StrSexpVector(strings), ri.NULL
    cat = series.array
    assert isinstance(cat, pd.Categorical)
    levels = [str(c) for c in cat.categories]
    if len(set(levels)) != len(levels):
        raise DataError(f"categorical column {series.name!r} has categories that coincide as text: {levels}")
    codes = np.asarray(cat.codes, dtype=np.int64) + 1
    return _r_int_vector(ri, codes, codes == 0), ri.StrSexpVector(levels)


def frame_to_r(data: pd.DataFrame, columns: Sequence[str] | None = None) -> Any:
    """An R data.frame (automatic row names 1..n) built column by column from `data`."""
    s = session()
    ri = s.ri
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    names = [str(c) for c in data.columns]
    if len(set(names)) != len(names):
        raise DataError(f"data has duplicated column names: {names}")
    keep = list(columns) if columns is not None else names
    cols, kinds, levels = [], [], []
    with _LOCK:
        for name, (_, series) in zip(names, data.items(), strict=True):
            if name not in keep:
                continue
            kind = column_kind(series, name)
            vec, lev = column_to_r(ri, series, kind)
            cols.append(vec)
            kinds.append(kind)
            levels.append(lev)
        return s.function("vcheck_frame")(
            ri.ListSexpVector(cols),
            ri.StrSexpVector(kinds),
            ri.ListSexpVector(levels),
            ri.StrSexpVector([n for n in names if n in keep]),
        )


def frame_from_r(frame: Any) -> pd.DataFrame:
    """An R data.frame back as pandas (for round-trip checks): factors -> Categorical, NA -> missing."""
    s = session()
    ri = s.ri
    with _LOCK:
        names = list(frame.names)
        columns: dict[str, Any] = {}
        for name, col in zip(names, frame, strict=True):
            classes = list(col.rclass) if col.rclass is not ri.NULL else []
            if "factor" in classes:
                codes = np.array(col.memoryview(), dtype=np.int64, copy=True)
                levels = list(col.do_slot("levels"))
                codes[codes == R_NA_INTEGER] = 0
                columns[name] = pd.Categorical.from_codes(
                    codes - 1, categories=pd.Index(levels, dtype=object), ordered="ordered" in classes
                )
            elif isinstance(col, ri.BoolSexpVector):
                raw = np.array(col.memoryview(), dtype=np.int64, copy=True)
                columns[name] = pd.array(
                    [None if v == R_NA_INTEGER else bool(v) for v in raw], dtype="boolean"
                )
            elif isinstance(col, ri.IntSexpVector):
                raw = np.array(col.memoryview(), dtype=np.int64, copy=True)
                columns[name] = pd.array([None if v == R_NA_INTEGER else int(v) for v in raw], dtype="Int64")
            elif isinstance(col, ri.StrSexpVector):
                columns[name] = pd.array(from_r(col), dtype="str")
            else:
                columns[name] = from_r(col)
    return pd.DataFrame(columns)


# ---- R -> Python ---------------------------------------------------------------------------------------


def r_data(expr: str) -> pd.DataFrame:
    """The data.frame an R expression gives (a package's data set, e.g. "lme4::InstEval"), as pandas:
    factors as Categoricals in R's level order (`frame_from_r`)."""
    s = session()
    with _LOCK:
        frame = s.ri.baseenv.find("eval")(s.ri.parse(expr))
    return frame_from_r(frame)


def from_r(x: Any) -> Any:
    """R value -> Python, copying out of R's memory.

    NULL -> None; named list -> dict; unnamed list -> list; double -> float64 array; integer -> int64
    array (float64 with NaN where R has NA); logical -> bool array (object array with None for NA);
    character -> list of str (None for NA).  Anything else (closures, environments) is returned as is.
    """
    import rpy2.rinterface as ri

    if x is ri.NULL or x is None:
        return None
    if isinstance(x, ri.ListSexpVector):
        items = [from_r(v) for v in x]
        names = x.names
        if names is ri.NULL:
            return items
        return {str(k): v for k, v in zip(names, items, strict=True)}
    if isinstance(x, ri.FloatSexpVector):
        return np.array(x.memoryview(), dtype=np.float64, copy=True) if len(x) else np.zeros(0)
    if isinstance(x, ri.BoolSexpVector):
        raw = np.array(x.memoryview(), dtype=np.int64, copy=True) if len(x) else np.zeros(0, np.int64)
        if (raw == R_NA_INTEGER).any():
            return np.array([None if v == R_NA_INTEGER else bool(v) for v in raw], dtype=object)
        return raw.astype(bool)
    if isinstance(x, ri.IntSexpVector):
        raw = np.array(x.memoryview(), dtype=np.int64, copy=True) if len(x) else np.zeros(0, np.int64)
        na = raw == R_NA_INTEGER
        if na.any():
            out = raw.astype(np.float64)
            out[na] = np.nan
            return out
        return raw
    if isinstance(x, ri.StrSexpVector):
        return [None if v is ri.NA_Character else str(v) for v in x]
    return x


def unpack(packed: Any) -> Any:
    """Rebuild the nested value that bridge.R's `vcheck_pack` flattened (same result as `from_r`)."""
    import rpy2.rinterface as ri

    tokens_r, num_r, int_r, chr_r = list(packed)
    tokens = str(tokens_r[0]).split("\x1f")
    num = np.array(num_r.memoryview(), dtype=np.float64, copy=True) if len(num_r) else np.zeros(0)
    ints = np.array(int_r.memoryview(), dtype=np.int64, copy=True) if len(int_r) else np.zeros(0, np.int64)
    chars = str(chr_r[0]).split("\x1f")
    assert isinstance(tokens_r, ri.StrSexpVector) and isinstance(chr_r, ri.StrSexpVector)
    pos = {"t": 0, "d": 0, "i": 0, "s": 0}

    def take(kind: str, n: int) -> int:
        start = pos[kind]
        pos[kind] = start + n
        return start

    def walk() -> Any:
        code = tokens[take("t", 1)]
        if code == "N":
            return None
        n = int(tokens[take("t", 1)])
        if code == "D":
            out = {}
            for _ in range(n):
                key = tokens[take("t", 1)]
                out[key] = walk()
            return out
        if code == "L":
            return [walk() for _ in range(n)]
        if code == "d":
            start = take("d", n)
            return num[start : start + n]
        if code == "s":
            start = take("s", n)
            return [None if c == "\x1e" else c for c in chars[start : start + n]] if n else []
        start = take("i", n)
        raw = ints[start : start + n]
        na = raw == R_NA_INTEGER
        if code == "b":
            if na.any():
                return np.array([None if m else bool(v) for v, m in zip(raw, na, strict=True)], dtype=object)
            return raw.astype(bool)
        if na.any():
            out_f = raw.astype(np.float64)
            out_f[na] = np.nan
            return out_f
        return raw

    return walk()


# ---- small helpers for from_r / JSON values ------------------------------------------------------------


def _truthy(v: Any) -> bool:
    if isinstance(v, list | np.ndarray):
        return len(v) > 0 and bool(v[0])
    return bool(v)


def _strings(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return [str(s) for s in v if s is not None]


def _one_string(v: Any) -> str:
    strings = _strings(v)
    return strings[0] if strings else ""
