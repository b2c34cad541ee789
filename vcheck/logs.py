"""vcheck's messages through the `logging` module: one logger tree, `vcheck`, set up once by the CLI.

    vcheck -q audit ...     warnings and errors only (no progress)
    vcheck audit ...        progress and notes (INFO)
    vcheck -v audit ...     and what vcheck is doing (DEBUG): R's start, workers, the cluster
    vcheck -vv audit ...    and Dask's and distributed's own logs

Records go to stderr as `vcheck: message` (the results, summaries and reports, go to stdout or files).
A library user configures logging as they like; nothing here runs on import.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

#: the root of vcheck's loggers (`logging.getLogger("vcheck.auditing.sweep")` is below it)
ROOT = "vcheck"
#: other libraries' loggers raised to the user's verbosity only with -vv
CHATTY = ("distributed", "dask", "asyncio", "bokeh", "tornado")


class _Formatter(logging.Formatter):
    """`vcheck: message` for INFO, `vcheck: warning: message` above, the logger's name at DEBUG."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            text += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.ERROR:
            return f"vcheck: error: {text}"
        if record.levelno >= logging.WARNING:
            return f"vcheck: warning: {text}"
        if record.levelno <= logging.DEBUG:
            return f"vcheck: [{record.name}] {text}"
        return f"vcheck: {text}"


def level_for(verbosity: int) -> int:
    """-q (verbosity -1 or less) WARNING, default INFO, -v DEBUG."""
    if verbosity < 0:
        return logging.WARNING
    return logging.INFO if verbosity == 0 else logging.DEBUG


def setup(verbosity: int = 0, stream: TextIO | None = None) -> logging.Logger:
    """Send vcheck's records at the verbosity's level to `stream` (stderr); -vv also lets Dask talk.

    Called again, it replaces its own handler (tests call the CLI's main many times in one process)."""
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if getattr(handler, "_vcheck", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter())
    handler._vcheck = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))
    logger.propagate = False
    chatty_level = logging.DEBUG if verbosity >= 2 else logging.WARNING if verbosity >= 1 else logging.ERROR
    for name in CHATTY:
        logging.getLogger(name).setLevel(chatty_level)
    return logger


def verbosity() -> int:
    """The verbosity `setup` was given, read back from the logger's level (0 when not set up)."""
    level = logging.getLogger(ROOT).getEffectiveLevel()
    return -1 if level >= logging.WARNING else 0 if level == logging.INFO else 1
