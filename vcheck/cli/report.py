"""`vcheck report [--out DIR]`: regenerate the reference reports (a page per built-in example, an index)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vcheck.cli.status import EXIT_OK


def register(sub: Any) -> None:
    """The `report` subcommand's parser."""
    p = sub.add_parser(
        "report",
        help="regenerate the reference reports",
        description="Regenerate the reference reports: for each built-in example a page (HTML and Markdown) "
        "with the model, the agreement table against live lme4 and pictures of Z, Lambda, G and V; and "
        "an index page.  The output is deterministic.",
    )
    p.add_argument("--out", default="reports", metavar="DIR", help="output directory (default: reports/)")
    p.add_argument("--examples", default=None, metavar="NAMES", help="only these examples (comma-separated)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Regenerate the reference reports (one page per built-in example, and an index) under --out."""
    from vcheck.report import write_reference_reports

    names = args.examples.split(",") if args.examples else None
    index = write_reference_reports(Path(args.out), names=names, progress=not args.quiet)
    print(f"reports written: {index}")
    return EXIT_OK
