"""`vcheck report [--out DIR] [--examples NAMES] [--force]`: regenerate the reference reports (a page per
built-in example, an index that keeps the folder's other pages).  The folder is claimed as the audit's
is (`vcheck.report.outdir`)."""

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
    p.add_argument("--quiet", dest="sub_quiet", action="store_true", help="the same as vcheck -q")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into --out even when it holds files vcheck did not write (never into a folder "
        "another running vcheck holds)",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Regenerate the reference reports (one page per built-in example, and an index) under --out;
    with --examples, those pages, merged into the folder's index."""
    from vcheck import reference
    from vcheck.report import write_reference_reports
    from vcheck.report.outdir import check_writable, claim

    names = args.examples.split(",") if args.examples else None
    out = Path(args.out)
    check_writable(out, "reference", args.force)
    reference.versions()  # without R, lme4 or rpy2: one line with the install hint, before any file
    with claim(out, "reference", args.force):
        index = write_reference_reports(out, names=names, progress=True)  # `vcheck -q`: no progress
    print(f"reports written: {index}")
    return EXIT_OK
