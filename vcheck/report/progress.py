"""Progress of a long job on stderr: a tqdm bar on a terminal, elsewhere a log line every few seconds.

A CI log is not a terminal: a bar redrawn with carriage returns becomes one endless line there.  So a
bar is drawn only when stderr is a terminal (and tqdm is installed); otherwise the `vcheck` logger
writes `audit vcheck: 12/37 cases, 3 findings (4.1 cases/s)` at INFO every `INTERVAL` seconds and once
at the end.  `vcheck -q` (logging at WARNING) silences both.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: progress(done, total, label): called after each unit of work; total may be None when unknown
Progress = Callable[..., None]

#: seconds between two progress lines when stderr is not a terminal (VCHECK_PROGRESS_SECONDS overrides)
INTERVAL = 5.0

log = logging.getLogger("vcheck.progress")


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("VCHECK_PROGRESS_SECONDS", INTERVAL)))
    except ValueError:
        return INTERVAL


def on_terminal() -> bool:
    """Whether stderr is a terminal (a bar can be redrawn in place there)."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class LogLines:
    """Progress as log lines: at most one per `interval` seconds, and a last one at `close`."""

    def __init__(self, desc: str, unit: str, total: int | None, interval: float) -> None:
        self.desc, self.unit, self.total, self.interval = desc, unit, total, interval
        self.done, self.label = 0, ""
        self.start = self.last = time.monotonic()
        self.said = -1

    def __call__(self, done: int, total: int | None = None, label: str = "") -> None:
        self.done = max(self.done, done)
        if total is not None:
            self.total = total
        if label:
            self.label = label
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.say(now)

    def say(self, now: float) -> None:
        self.last, self.said = now, self.done
        of = f"/{self.total}" if self.total is not None else ""
        rate = self.done / (now - self.start) if now > self.start else 0.0
        label = f", {self.label}" if self.label else ""
        log.info("%s: %d%s %ss%s (%.1f %ss/s)", self.desc, self.done, of, self.unit, label, rate, self.unit)

    def close(self) -> None:
        if self.said != self.done:
            self.say(time.monotonic())


@contextmanager
def progress_callback(
    desc: str,
    enabled: bool = True,
    unit: str = "case",
    total: int | None = None,
    *,
    bar: bool | None = None,
    interval: float | None = None,
) -> Iterator[Progress]:
    """A callback `progress(done, total=None, label="")` for one job.

    bar: None (the default) draws a tqdm bar when stderr is a terminal, else writes log lines; True or
    False forces one or the other.  Disabled (or `vcheck -q`) it does nothing, so callers never check.
    """
    quiet = logging.getLogger("vcheck").level >= logging.WARNING  # `vcheck -q` (0 = not set up: not quiet)
    if not enabled or quiet:
        yield lambda done, total=None, label="": None
        return
    shown: Any = None
    if bar if bar is not None else on_terminal():
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is in the `audit` extra; without it, log lines
            tqdm = None
        if tqdm is not None:
            shown = tqdm(desc=desc, total=total, file=sys.stderr, unit=unit, dynamic_ncols=True, leave=True)
    if shown is None:
        lines = LogLines(desc, unit, total, _interval() if interval is None else interval)
        try:
            yield lines
        finally:
            lines.close()
        return

    def progress(done: int, total: int | None = None, label: str = "") -> None:
        if total is not None and shown.total != total:
            shown.total = total
            shown.refresh()
        if label:
            shown.set_postfix_str(label[:40], refresh=False)
        shown.update(max(0, done - shown.n))

    try:
        yield progress
    finally:
        shown.close()
