"""vcheck's own BLAS threads: small dense kernels never hand work to a multi-threaded BLAS.

numpy's OpenBLAS starts one thread per core and, on matrices of a few dozen rows, spends more time
waking and spinning those threads than computing; on a busy 2-core machine a fit ran 8 to 40 times
slower than with one thread.  Every entry point of the core that does dense linear algebra runs under
`blas_threads()`, so a fit's time does not depend on whether the caller limited threads.

The limit is `VCHECK_BLAS_THREADS` (default 1); `VCHECK_BLAS_THREADS=0` leaves BLAS as the process has
it (for a very large dense model on an idle many-core machine).  Nested entry points do not re-apply it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

#: the environment variable that sets vcheck's BLAS thread limit (0: leave BLAS alone)
ENV = "VCHECK_BLAS_THREADS"
DEFAULT_THREADS = 1

_depth = 0
P = ParamSpec("P")
R = TypeVar("R")


def limit() -> int:
    """The configured thread limit: `VCHECK_BLAS_THREADS` as an integer >= 0, else DEFAULT_THREADS."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT_THREADS
    try:
        value = int(text)
    except ValueError:
        return DEFAULT_THREADS
    return max(value, 0)


@functools.cache
def _controller() -> Any:
    """threadpoolctl's view of the BLAS libraries loaded in this process (built once: it scans them)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def blas_threads(threads: int | None = None) -> Iterator[None]:
    """Run the block with BLAS limited to `threads` (default: `limit()`); a no-op when nested or 0."""
    global _depth
    n = limit() if threads is None else threads
    if _depth or n == 0:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    _depth += 1
    try:
        with _controller().limit(limits=n, user_api="blas"):
            yield
    finally:
        _depth -= 1


def single_threaded(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: call `fn` under `blas_threads()`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _depth:  # inside an entry point already (e.g. each deviance evaluation of a fit): no overhead
            return fn(*args, **kwargs)
        with blas_threads():
            return fn(*args, **kwargs)

    return wrapper
