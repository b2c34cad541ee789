"""The `vcheck` command: fit, compare, report and audit from the shell.

    vcheck fit FORMULA --data FILE.csv [--ml] [--json]
    vcheck compare FORMULA --data FILE.csv [--ml]
    vcheck report [--out DIR]
    vcheck audit TARGET [--cases N] [--seed S] [--out DIR] [--fail-on KINDS]
                 [--workers N] [--scheduler ADDRESS] [--resume] [--large MODELS]
                 [--config CONFIG] [--families NAMES] [--tol-at-theta REL] [--tol-optimum REL]
    vcheck audit --fits DIR
    vcheck cases export DIR [--cases N] [--seed S] [--families NAMES] [--builtin]

Exit codes: 0 success (for `compare`: everything agrees; for `audit`: the audit ran), 1 a disagreement
(`compare`) or a `--fail-on` kind found (`audit`), 2 an error.  Errors are one line on stderr,
`vcheck: error: ...`, never a traceback (set VCHECK_TRACEBACK=1 to see one while debugging).  Heavy
imports (pandas' parsers, rpy2, matplotlib, tqdm) happen inside the subcommands.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from vcheck.cli import audit, cases, compare, fit, report
from vcheck.cli.data import read_csv
from vcheck.cli.status import EXIT_DISAGREE, EXIT_ERROR, EXIT_OK, PROG, UsageError
from vcheck.core.errors import VcheckError

__all__ = [
    "EXIT_DISAGREE",
    "EXIT_ERROR",
    "EXIT_OK",
    "PROG",
    "UsageError",
    "build_parser",
    "main",
    "read_csv",
]


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one `vcheck: error: ...` line (plus a pointer to --help)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """`vcheck` and its subcommands, each with --help."""
    parser = _Parser(
        prog=PROG,
        description="Validation and cross-check of linear mixed models against R's lme4.",
        epilog="Exit status: 0 ok, 1 disagreement (compare) or --fail-on kind found (audit), 2 error.",
    )
    from vcheck import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    for command in (fit, compare, report, audit, cases):
        command.register(sub)
    return parser


def _error_line(exc: BaseException) -> str:
    """One line for stderr: the exception's message, whitespace collapsed."""
    from vcheck.core.errors import RError

    text = str(exc) if not isinstance(exc, RError) else f"lme4 (R) says: {exc.r_message}"
    text = " ".join(text.split()) or type(exc).__name__
    return f"{PROG}: error: {text}"


def _format_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    """Warnings (a rank-deficient X, a singular fit) as one `vcheck: warning: ...` line, not source code."""
    return f"{PROG}: warning: {' '.join(str(message).split())}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    shown = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        return _run(args)
    finally:
        warnings.formatwarning = shown


def _run(args: argparse.Namespace) -> int:
    """Run the chosen subcommand; every failure becomes one line on stderr and an exit status."""
    try:
        status: int = args.func(args)
        return status
    except VcheckError as exc:
        print(_error_line(exc), file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `vcheck fit ... | head`: the reader went away; not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("VCHECK_TRACEBACK"):
            raise
        detail = " ".join(str(exc).split())
        print(
            f"{PROG}: error: unexpected {type(exc).__name__}: {detail} "
            "(a bug in vcheck; VCHECK_TRACEBACK=1 shows where)",
            file=sys.stderr,
        )
    return EXIT_ERROR
