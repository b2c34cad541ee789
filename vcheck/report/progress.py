"""Progress bars on stderr (tqdm, imported only when a bar is shown)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: progress(done, total, label): called after each unit of work; total may be None when unknown
Progress = Callable[..., None]


@contextmanager
def progress_callback(
    desc: str, enabled: bool = True, unit: str = "case", total: int | None = None
) -> Iterator[Progress]:
    """A callback `progress(done, total=None, label="")` that drives one tqdm bar on stderr.

    Disabled (or without tqdm) it does nothing, so callers never need to check.
    """
    bar: Any = None
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is in the `audit` extra; without it the work simply runs silently
            tqdm = None
        if tqdm is not None:
            bar = tqdm(desc=desc, total=total, file=sys.stderr, unit=unit, dynamic_ncols=True, leave=True)

    def progress(done: int, total: int | None = None, label: str = "") -> None:
        if bar is None:
            return
        if total is not None and bar.total != total:
            bar.total = total
            bar.refresh()
        if label:
            bar.set_postfix_str(label[:40], refresh=False)
        bar.update(max(0, done - bar.n))

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()
