"""The `vcheck` command: fit, compare, report and audit from the shell.

    vcheck fit FORMULA --data FILE.csv [--ml] [--json]
    vcheck compare FORMULA --data FILE.csv [--ml]
    vcheck report [--out DIR]
    vcheck audit TARGET [--cases N] [--seed S] [--out DIR] [--fail-on KINDS]
                 [--workers N] [--scheduler ADDRESS] [--resume] [--large MODELS]

Exit codes: 0 success (for `compare`: everything agrees; for `audit`: the audit ran), 1 a disagreement
(`compare`) or a `--fail-on` kind found (`audit`), 2 an error.  Errors are one line on stderr,
`vcheck: error: ...`, never a traceback (set VCHECK_TRACEBACK=1 to see one while debugging).  Heavy
imports (pandas' parsers, rpy2, matplotlib, tqdm) happen inside the subcommands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from vcheck.core.errors import DataError, VcheckError

if TYPE_CHECKING:
    import pandas as pd

    from vcheck.core.record import LmerFit

PROG = "vcheck"

#: the kinds of disagreement an audit finding can have (vcheck.auditing.comparison's vocabulary)
KINDS = ("construction", "optimization", "model", "not available")

EXIT_OK = 0
EXIT_DISAGREE = 1
EXIT_ERROR = 2


class UsageError(VcheckError):
    """A command-line argument that cannot be used (bad --fail-on kind, bad --cases, ...)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one `vcheck: error: ...` line (plus a pointer to --help)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_ERROR)


# --- shared helpers ---------------------------------------------------------------------------------------


def read_csv(path: str) -> pd.DataFrame:
    """Read the data for a model from a CSV file ("-" reads stdin) with pandas.

    String columns stay strings: lme4's `factor()` sorts their levels, and a CSV has no level order to
    keep.  An unreadable, empty or malformed file raises DataError naming the file.
    """
    import pandas as pd

    source: Any = sys.stdin if path == "-" else path
    try:
        data = pd.read_csv(source)
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


def _fit_vcheck(formula: str, data: pd.DataFrame, REML: bool) -> LmerFit:
    from vcheck.core.fit import lmer

    return lmer(formula, data, REML=REML)


def _fit_lme4(formula: str, data: pd.DataFrame, REML: bool) -> LmerFit:
    from vcheck import reference

    return reference.lmer(formula, data, REML=REML)


def _parse_kinds(text: str) -> list[str]:
    """`--fail-on` value -> kinds; accepts `not-available` / `not_available` for "not available"."""
    kinds: list[str] = []
    for raw in text.split(","):
        kind = raw.strip().lower().replace("-", " ").replace("_", " ")
        if not kind:
            continue
        if kind == "all":
            kinds.extend(KINDS)
            continue
        if kind not in KINDS:
            choices = ", ".join(k.replace(" ", "-") for k in KINDS)
            raise UsageError(f"--fail-on: unknown kind {raw.strip()!r} (choose from {choices}, or all)")
        kinds.append(kind)
    return list(dict.fromkeys(kinds))


# --- fit --------------------------------------------------------------------------------------------------


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit with vcheck and print lme4's summary layout (or JSON)."""
    data = read_csv(args.data)
    fit = _fit_vcheck(args.formula, data, REML=not args.ml)
    if args.json:
        from vcheck.report.summary import fit_to_dict

        json.dump(fit_to_dict(fit), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        from vcheck.report.summary import summary_text

        sys.stdout.write(summary_text(fit, data_name=args.data))
    return EXIT_OK


# --- compare ----------------------------------------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> int:
    """Fit with vcheck and with lme4; print estimates side by side and compare's checks; exit 1 on any
    quantity that does not agree."""
    from vcheck.auditing.comparison import compare
    from vcheck.report.tables import (
        comparison_rows,
        diff_text,
        estimate_rows,
        format_text_table,
        value_text,
        versions_line,
    )

    data = read_csv(args.data)
    REML = not args.ml
    mine = _fit_vcheck(args.formula, data, REML=REML)
    ref = _fit_lme4(args.formula, data, REML=REML)
    result = compare(mine, ref)
    out = sys.stdout
    out.write(f"vcheck vs lme4: {args.formula}  ({'REML' if REML else 'ML'}, n = {ref.n})\n")
    out.write(f"{versions_line(ref)}\n\n")
    estimates = [
        [e.name, value_text(e.mine), value_text(e.ref), diff_text(e)] for e in estimate_rows(mine, ref)
    ]
    out.write(
        format_text_table(["estimate", "vcheck", "lme4", "rel. diff"], estimates, [False, True, True, True])
    )
    out.write("\n")
    rows = comparison_rows(result)
    table = [[r.quantity, r.check, _sci(r.rel_diff), _sci(r.tol), r.verdict_text] for r in rows]
    out.write(
        format_text_table(
            ["quantity", "check", "rel. diff", "tolerance", "verdict"],
            table,
            [False, False, True, True, False],
        )
    )
    failing = [r for r in rows if not r.agrees]
    if failing:
        out.write("\n")
        for r in failing:
            out.write(f"{r.quantity} ({r.check}): {r.verdict_text}: {r.explanation}\n")
        kinds = sorted({r.verdict_text for r in failing})
        out.write(f"\n{len(failing)} of {len(rows)} checks do not agree ({', '.join(kinds)})\n")
        return EXIT_DISAGREE
    out.write(f"\nall {len(rows)} checks agree\n")
    return EXIT_OK


def _sci(x: float | None) -> str:
    from vcheck.report.pages import sci

    return sci(x)


# --- report -----------------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    """Regenerate the reference reports (one page per built-in example, and an index) under --out."""
    from vcheck.report import write_reference_reports

    names = args.examples.split(",") if args.examples else None
    index = write_reference_reports(Path(args.out), names=names, progress=not args.quiet)
    print(f"reports written: {index}")
    return EXIT_OK


# --- audit ------------------------------------------------------------------------------------------------


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The audit's options; sweeps at scale (workers, a scheduler, resume) add theirs here."""
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="statsmodels, glmmtmb, nlme, vcheck (its own lmer), or a plug-in MODULE:CALLABLE",
    )
    parser.add_argument(
        "--cases",
        type=_nonnegative_int,
        default=20,
        metavar="N",
        help="generated cases in addition to the built-in examples (default: 20)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the generated cases (default: 0)"
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where the report goes (default: reports/audit-TARGET)",
    )
    parser.add_argument(
        "--fail-on",
        default="",
        metavar="KINDS",
        help="comma-separated kinds that make the exit status 1 when found: construction, optimization, "
        "model, not-available (or all)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    # sweeps at scale (vcheck.auditing.sweep) and large models (vcheck.auditing.large)
    parser.add_argument(
        "--workers",
        type=_nonnegative_int,
        default=None,
        metavar="N",
        help="run the cases in N worker processes, each with its own R (default 1); 0 runs them in this "
        "process with lme4 in two processes of its own working ahead (the fastest: about 20 small cases "
        "per second on 2 CPUs).  A case that crashes R or kills its worker is reported as that case's "
        "error and the audit goes on (with 0, only lme4's R is isolated so)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the cases on a Dask cluster: its scheduler's address (tcp://host:8786), or 'local' to "
        "start a LocalCluster of --workers (default 2) single-threaded worker processes",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted audit from DIR/checkpoint.jsonl (same TARGET, --seed, --cases and "
        "--large).  Ctrl-C stops an audit, keeps what finished and writes the report for it",
    )
    parser.add_argument(
        "--large",
        default="",
        metavar="MODELS",
        help="also audit these large models against lme4, with V compared by blocks, random probes and "
        "its diagonal, never as a dense n x n: instEval (lme4::InstEval, y ~ service + (1|s) + (1|d) + "
        "(1|dept:service), 73,421 rows), slope200k (y ~ x + (x|g), 200,000 simulated rows in 2,000 "
        "groups), or their scaled-down versions slope20k and instEval10k; comma-separated, e.g. "
        "'vcheck audit vcheck --cases 0 --large instEval,slope200k --workers 2'",
    )


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


def audit_out_dir(target: str, out: str | None) -> Path:
    """Default audit directory: reports/audit-<target>, with a plug-in's MODULE:CALLABLE made file-safe."""
    if out:
        return Path(out)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in target.strip())
    return Path("reports") / f"audit-{safe or 'target'}"


def resolve_target(target: str) -> Callable[..., Any]:
    """TARGET -> the implementation under test (a built-in adapter or a MODULE:CALLABLE plug-in)."""
    from vcheck import adapters

    return adapters.resolve(target)


def audit_total(args: argparse.Namespace) -> int:
    """How many cases the audit runs: the built-in examples plus --cases drawn ones (plus --large)."""
    from vcheck.auditing import large
    from vcheck.reference import examples

    return len(examples.names()) + args.cases + len(large.parse_names(getattr(args, "large", "")))


def run_audit(impl: Callable[..., Any], args: argparse.Namespace) -> Any:
    """Run the audit's cases with a tqdm progress bar on stderr; returns a `vcheck.auditing.sweep.SweepResult`
    (vcheck.auditing.run's AuditResult, and how the sweep ran: workers, a Dask scheduler, resume)."""
    from vcheck.report.progress import progress_callback

    total = audit_total(args)
    with progress_callback(f"audit {args.target}", enabled=not args.quiet, total=total) as tick:
        done = 0
        flagged = 0

        def on_case(one: Any) -> None:
            nonlocal done, flagged
            done += 1
            flagged += sum(f.kind != "not available" for f in one.findings)
            tick(done, total, f"{flagged} findings")

        from vcheck.auditing import large, sweep

        # vcheck.auditing.run's cases, in worker processes (default 1), on Dask, or here (--workers 0)
        plan = sweep.SweepPlan(
            target=args.target,
            seed=args.seed,
            examples=args.cases,
            large=tuple(large.parse_names(args.large)),
        )
        return sweep.run_sweep(
            plan,
            workers=1 if args.workers is None and not args.scheduler else args.workers,
            scheduler=args.scheduler,
            out_dir=audit_out_dir(args.target, args.out),
            resume=args.resume,
            progress=on_case,
        )


def _reference_versions() -> dict[str, str]:
    """R's and lme4's versions; raises RNotAvailableError (one clear line) when the reference is missing."""
    from vcheck import reference

    return reference.versions()


def cmd_audit(args: argparse.Namespace) -> int:
    """Audit TARGET against live lme4, write the report, exit 1 only for a --fail-on kind found."""
    fail_on = _parse_kinds(args.fail_on)
    impl = resolve_target(args.target)
    out_dir = audit_out_dir(args.target, args.out)
    versions = _reference_versions()  # fails fast, in one line, when R or lme4 is missing
    result = run_audit(impl, args)

    from vcheck.report import write_audit_report
    from vcheck.report.audit import findings_by_kind

    written = write_audit_report(
        result, out_dir, target=args.target, seed=args.seed, cases=args.cases, versions=versions
    )
    summary = getattr(result, "summary", None)
    print(summary() if callable(summary) else f"audit of {args.target}")
    print(f"report: {written}")
    if getattr(result, "interrupted", False):
        print(
            f"{PROG}: interrupted: the report covers the cases that finished; --resume continues",
            file=sys.stderr,
        )
        return 130
    from vcheck.auditing.sweep import discard_checkpoint

    if hasattr(result, "checkpoint"):
        discard_checkpoint(result)
    counts = findings_by_kind(result)
    found = [k for k in fail_on if counts.get(k)]
    if found:
        print(f"{PROG}: --fail-on: found {', '.join(found)}", file=sys.stderr)
        return EXIT_DISAGREE
    return EXIT_OK


# --- the parser -------------------------------------------------------------------------------------------


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

    p = sub.add_parser(
        "fit",
        help="fit a model with vcheck and print it like lme4's summary",
        description="Fit FORMULA (lme4 syntax) to the CSV data with vcheck; print it the way lme4's "
        "summary() reads, or as JSON.",
    )
    _add_model_arguments(p)
    p.add_argument("--json", action="store_true", help="print the fit as JSON instead")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "compare",
        help="fit with vcheck and with lme4, and compare per quantity",
        description="Fit FORMULA with vcheck and with lme4 (through rpy2) and show them side by side per "
        "quantity, with differences, tolerances and the kind of any disagreement.",
        epilog="Exit status: 0 all quantities agree, 1 some disagree, 2 error.",
    )
    _add_model_arguments(p)
    p.set_defaults(func=cmd_compare)

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

    p = sub.add_parser(
        "audit",
        help="audit another LMM implementation against lme4",
        description="Run TARGET on the built-in examples and on generated cases, compare every fit with "
        "live lme4, and write a report (HTML, Markdown, findings JSON) with a summary by kind and quantity.",
        epilog="Exit status: 0 the audit ran (findings are its results), 1 a --fail-on kind was found, "
        "2 error.",
    )
    add_audit_arguments(p)
    p.set_defaults(func=cmd_audit)
    return parser


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("formula", metavar="FORMULA", help="lme4 formula, e.g. 'Reaction ~ Days + (Days|Subject)'")
    p.add_argument("--data", required=True, metavar="FILE.csv", help="the data as CSV ('-' reads stdin)")
    p.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")


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


if __name__ == "__main__":
    sys.exit(main())
