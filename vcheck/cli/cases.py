"""`vcheck cases export DIR --cases N --seed S [--families ...] [--builtin]`: the audit's cases as files
(DIR/<case>/data.csv and case.json) for an implementation in any language, whose fit.json files
`vcheck audit --fits DIR` then compares with live lme4 (`vcheck.auditing.external`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vcheck.cli.status import EXIT_OK, UsageError


def register(sub: Any) -> None:
    """The `cases` subcommand and its `export`."""
    p = sub.add_parser(
        "cases",
        help="the audit's cases as files, for implementations in any language",
        description="Write the audit's cases as files: DIR/<case>/data.csv and case.json (formula, REML, "
        "column types, factor levels in R's order).  A program writes DIR/<case>/fit.json; "
        "'vcheck audit --fits DIR' compares them with live lme4.  Schemas: vcheck/schemas/.",
    )
    inner = p.add_subparsers(dest="cases_command", metavar="ACTION", parser_class=type(p))
    inner.required = True
    e = inner.add_parser(
        "export",
        help="write drawn cases (and optionally the built-in examples) under DIR",
        description="Write case i = 0 .. N-1 drawn with seed S (within --families) as DIR/<case>/data.csv "
        "and DIR/<case>/case.json.",
    )
    e.add_argument("dir", metavar="DIR", help="output directory (created)")
    e.add_argument("--cases", type=int, default=20, metavar="N", help="drawn cases (default 20)")
    e.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the drawn cases (default 0)")
    e.add_argument(
        "--families",
        default=None,
        metavar="NAMES",
        help="draw only cases of these capabilities, e.g. intercept,nested (see 'vcheck audit --help')",
    )
    e.add_argument("--builtin", action="store_true", help="also export the built-in examples")
    e.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from vcheck.auditing import capabilities as caps
    from vcheck.auditing import external
    from vcheck.auditing.run import builtin_cases
    from vcheck.auditing.strategies import drawn_within

    if args.cases < 0:
        raise UsageError(f"--cases must be 0 or more, not {args.cases}")
    if args.families is not None:
        try:
            have = caps.parse_families(args.families)
        except caps.CapabilityError as exc:
            raise UsageError(f"--families: {exc}") from None
    else:
        have = frozenset(caps.ALL)
    cases = [c for c in builtin_cases() if not caps.missing(caps.needs_of(c.formula, c.data, c.REML), have)]
    cases = (cases if args.builtin else []) + drawn_within(args.seed, args.cases, have)
    folders = external.export_cases(Path(args.dir), cases)
    print(f"{len(folders)} cases written under {args.dir}: each <case>/data.csv and case.json")
    print(f"write <case>/fit.json for each, then: vcheck audit --fits {args.dir}")
    return EXIT_OK
