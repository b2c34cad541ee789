"""`vcheck fit FORMULA --data FILE.csv [--ml] [--json]`: vcheck's fit, printed like lme4's summary()."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vcheck.cli.arguments import lmer_kwargs
from vcheck.cli.data import add_model_arguments, fit_vcheck, read_csv
from vcheck.cli.status import EXIT_OK


def register(sub: Any) -> None:
    """The `fit` subcommand's parser."""
    p = sub.add_parser(
        "fit",
        help="fit a model with vcheck and print it like lme4's summary",
        description="Fit FORMULA (lme4 syntax) to the CSV data with vcheck; print it the way lme4's "
        "summary() reads, or as JSON.",
    )
    add_model_arguments(p)
    p.add_argument("--json", action="store_true", help="print the fit as JSON instead")
    p.set_defaults(func=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit with vcheck and print lme4's summary layout (or JSON)."""
    data = read_csv(args.data)
    fit = fit_vcheck(args.formula, data, REML=not args.ml, **lmer_kwargs(args))
    if args.json:
        from vcheck.report.summary import fit_to_dict

        json.dump(fit_to_dict(fit), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        from vcheck.report.summary import summary_text

        sys.stdout.write(summary_text(fit, data_name=args.data))
    return EXIT_OK
