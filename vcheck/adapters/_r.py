"""The R side shared by the glmmTMB and nlme adapters: one embedded R, data frames in, plain lists out.

The pandas DataFrame -> R data.frame conversion is `vcheck.reference.rbridge.frame_to_r` (which also starts R
and checks that it is usable); the adapters' own R functions are defined once in R's global environment
and called through rpy2.robjects.  R errors come back as `vcheck.core.errors.RError` with R's message.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from vcheck.core.errors import RError, RNotAvailableError


@functools.cache
def robjects() -> Any:
    """rpy2.robjects, with a clear error when rpy2 or R is missing."""
    try:
        import rpy2.robjects as ro
    except Exception as exc:  # ImportError, or rpy2 failing to find R
        raise RNotAvailableError(f"this adapter needs R and rpy2 (pip install 'vcheck[r]'): {exc}") from exc
    return ro


def require(package: str) -> None:
    """Load an R package, or raise RNotAvailableError naming it."""
    ro = robjects()
    code = f'suppressPackageStartupMessages(ok <- requireNamespace("{package}", quietly = TRUE))'
    ok = ro.r(f"local({{ ok <- FALSE; {code}; ok }})")
    if not bool(ok[0]):
        raise RNotAvailableError(f"R package {package!r} is not installed")


@functools.cache
def _environment() -> Any:
    """The R environment holding the adapters' R functions (kept out of R's global environment)."""
    return robjects().r("new.env(parent = globalenv())")


def define(name: str, code: str) -> Any:
    """Define an R function once (in the adapters' own R environment) and return it.

    The function is wrapped so that an R error comes back as a value, `list(.vcheck_error = message)`,
    instead of unwinding through rpy2 (which also prints it on R's console).
    """
    ro = robjects()
    env = _environment()
    if name not in env:
        impl = ro.r(code)
        wrap = ro.r(
            """function(impl) function(...) tryCatch(impl(...), error = function(e) {
                 cl <- conditionCall(e)
                 fn <- if (!is.null(cl) && is.name(cl[[1L]])) as.character(cl[[1L]]) else ""
                 list(.vcheck_error = conditionMessage(e), .vcheck_call = fn)
               })"""
        )
        env[name] = wrap(impl)
    return env[name]


@contextlib.contextmanager
def _console_to(sink: list[str]) -> Iterator[None]:
    """R's console output (e.g. glmmTMB's timing lines after an error) into `sink`, not the terminal."""
    from rpy2.rinterface_lib import callbacks

    saved = callbacks.consolewrite_print, callbacks.consolewrite_warnerror
    callbacks.consolewrite_print = callbacks.consolewrite_warnerror = sink.append
    try:
        yield
    finally:
        callbacks.consolewrite_print, callbacks.consolewrite_warnerror = saved


def call(function: Any, *args: Any, what: str = "", console: list[str] | None = None) -> Any:
    """Call a function made by `define`; an R error becomes RError with R's message.

    What R prints on its console meanwhile goes to `console` (when given) instead of the terminal.
    """
    from rpy2.rinterface_lib.embedded import RRuntimeError

    sink = console if console is not None else []
    try:
        with _console_to(sink):
            out = function(*args)
    except RRuntimeError as exc:  # an error outside the wrapper (rpy2 conversion, R itself)
        raise RError(str(exc), call=what) from exc
    names = list(out.names) if out.names is not robjects().NULL else []
    if ".vcheck_error" in names:
        message = str(out[names.index(".vcheck_error")][0])
        inner = str(out[names.index(".vcheck_call")][0]) if ".vcheck_call" in names else ""
        raise RError(message, call=f"{what} ({inner})" if inner else what)
    return out


def to_r_dataframe(data: pd.DataFrame) -> Any:
    """pandas -> R data.frame, by `vcheck.reference.rbridge.frame_to_r` (column by column, no pandas2ri)."""
    from vcheck.reference import rbridge

    return rbridge.frame_to_r(data)


def numeric(x: Any) -> np.ndarray:
    """A copy of an R numeric vector (np.asarray on an R vector would be a view into R's memory)."""
    return np.array(x, dtype=float, copy=True)


def integer(x: Any) -> np.ndarray:
    """A copy of an R integer vector."""
    return np.array(x, dtype=np.int64, copy=True)


def strings(x: Any) -> list[str]:
    """An R character vector (or factor labels) as Python strings."""
    return [str(v) for v in x]


def element(rlist: Any, name: str) -> Any:
    """`rlist[[name]]` for a named R list."""
    return rlist[list(rlist.names).index(name)]
