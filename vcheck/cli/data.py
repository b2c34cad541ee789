"""The data and the fits the `vcheck` commands work on: a CSV read with pandas, fitted by vcheck or lme4."""

from __future__ import annotations

import argparse
import io
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import IO, TYPE_CHECKING, Any

from vcheck.cli.data_guard import guarded_source
from vcheck.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from vcheck.core.record import LmerFit


def read_csv(path: str) -> pd.DataFrame:
    """Read the data for a model from a CSV file ("-" reads stdin) with pandas.

    String columns stay strings: lme4's `factor()` sorts their levels, and a CSV has no level order to
    keep.  An unreadable, empty or malformed file raises DataError naming the file, and so does binary
    data or a file too large for the memory available, before pandas allocates for it
    (`vcheck.cli.data_guard`).
    """
    import pandas as pd

    what = "data from stdin" if path == "-" else f"data file {path!r}"
    try:
        with open_data(path) as stream:
            data = pd.read_csv(guarded_source(path, stream, what))
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"cannot read data file {path!r}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"cannot read data file {path!r}: it is a directory") from None
    except PermissionError:
        raise DataError(f"cannot read data file {path!r}: permission denied") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise DataError(f"data file {path!r} is not a readable CSV: {reason}") from None
    except OSError as exc:
        raise DataError(f"cannot read data file {path!r}: {exc.strerror or exc}") from None
    if data.shape[1] == 0 or data.shape[0] == 0:
        raise DataError(f"data file {path!r} has no data rows")
    return data


def open_data(path: str) -> AbstractContextManager[IO[bytes]]:
    """The data's bytes: stdin's for "-" (left open after), else the file opened for reading."""
    if path == "-":
        buffer = getattr(sys.stdin, "buffer", None)  # a text stdin without one (embedded): its text
        return nullcontext(buffer if buffer is not None else io.BytesIO(sys.stdin.read().encode("utf-8")))
    return open(path, "rb")


def fit_vcheck(formula: str, data: pd.DataFrame, REML: bool, **kwargs: Any) -> LmerFit:
    """vcheck's own fit (`vcheck.core.fit.lmer`); kwargs: lmer's further arguments (cli.arguments)."""
    from vcheck.core.fit import lmer

    return lmer(formula, data, REML=REML, **kwargs)


def fit_lme4(formula: str, data: pd.DataFrame, REML: bool, **kwargs: Any) -> LmerFit:
    """lme4's fit, live through rpy2 (`vcheck.reference.lmer`), with the same further arguments."""
    from vcheck import reference

    return reference.lmer(formula, data, REML=REML, **kwargs)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """FORMULA, --data and --ml: the arguments of every command that fits one model."""
    p.add_argument("formula", metavar="FORMULA", help="lme4 formula, e.g. 'Reaction ~ Days + (Days|Subject)'")
    p.add_argument("--data", required=True, metavar="FILE.csv", help="the data as CSV ('-' reads stdin)")
    p.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    from vcheck.cli.arguments import add_lmer_arguments  # --weights, --offset, --subset, ...

    add_lmer_arguments(p)
