"""`vcheck audit TARGET [--cases N] [--seed S] [--out DIR] [--fail-on KINDS] [--timeout SECONDS]
[--workers N] [--scheduler ADDRESS] [--resume] [--large MODELS] [--format FORMATS] [--force]`: audit an
implementation against live lme4 and write the report; exit 1 only when a --fail-on kind is found (a
case that did not run is an error), 130 when interrupted.

The --out folder is claimed for the audit (`vcheck.report.outdir`): another running audit there, or a
folder of someone else's files without --force, is refused with exit 2 before any case runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vcheck.auditing.kinds import FAIL_ON_ALL, KINDS
from vcheck.cli import audit_configured
from vcheck.cli.status import EXIT_DISAGREE, EXIT_OK, PROG, UsageError


def register(sub: Any) -> None:
    """The `audit` subcommand's parser."""
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


def _parse_kinds(text: str) -> list[str]:
    """`--fail-on` value -> kinds: any of KINDS, spelled with spaces, hyphens or underscores
    (`not-available`, `ill_posed`), or `all` (every kind but not available)."""
    known = {_spelling(k): str(k) for k in KINDS}
    kinds: list[str] = []
    for raw in text.split(","):
        kind = _spelling(raw)
        if not kind:
            continue
        if kind == "all":
            kinds.extend(str(k) for k in FAIL_ON_ALL)
            continue
        if kind not in known:
            choices = ", ".join(k.replace(" ", "-") for k in KINDS)
            raise UsageError(f"--fail-on: unknown kind {raw.strip()!r} (choose from {choices}, or all)")
        kinds.append(known[kind])
    return list(dict.fromkeys(kinds))


def _spelling(text: str) -> str:
    return text.strip().lower().replace("-", " ").replace("_", " ")


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The audit's options; sweeps at scale (workers, a scheduler, resume) add theirs here."""
    parser.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        default=None,
        help="statsmodels, glmmtmb, nlme, vcheck (its own lmer), or a plug-in MODULE:CALLABLE; "
        "TARGET[CONFIG] for one configuration (not with --fits)",
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
        help="comma-separated kinds that make the exit status 1 when found: "
        + ", ".join(k.replace(" ", "-") for k in KINDS)
        + " (or all: every kind but not-available).  A case that raised, hung, died or returned what "
        "the protocol cannot read is an error",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="seconds TARGET may take on one case (default 300); it runs in a process of its own, which "
        "is stopped then, and the case is an error",
    )
    parser.add_argument("--quiet", dest="sub_quiet", action="store_true", help="the same as vcheck -q")
    parser.add_argument(
        "--format",
        action="append",
        default=None,
        metavar="FORMATS",
        help="the report's files, comma-separated or repeated: html (index.html), markdown (index.md), "
        "json (findings.json, schema vcheck/schemas/findings.schema.json), junit (junit.xml, one test "
        "case per audited case); default html,markdown,json",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into --out even when it holds files vcheck did not write (never into a folder "
        "another running vcheck holds)",
    )
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
    audit_configured.add_arguments(parser)  # configurations, capabilities, tolerances, reproducers, fits


def parse_formats(values: list[str] | None) -> tuple[str, ...]:
    """`--format` values (comma-separated, repeatable) -> report formats, in vcheck.report.audit's order."""
    from vcheck.report.audit import DEFAULT_FORMATS, FORMATS

    if not values:
        return DEFAULT_FORMATS
    aliases = {"md": "markdown", "xml": "junit", "htm": "html"}
    chosen = set()
    for value in values:
        for raw in value.split(","):
            name = aliases.get(raw.strip().lower(), raw.strip().lower())
            if not name:
                continue
            if name not in FORMATS:
                raise UsageError(
                    f"--format: unknown format {raw.strip()!r} (choose from {', '.join(FORMATS)})"
                )
            chosen.add(name)
    if not chosen:
        raise UsageError(f"--format: no format given (choose from {', '.join(FORMATS)})")
    return tuple(f for f in FORMATS if f in chosen)


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {value}")
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
    from vcheck.auditing import large_models
    from vcheck.reference import examples

    if getattr(args, "fits", None):
        from vcheck.auditing.external import case_folders

        return len(case_folders(Path(args.fits)))
    per = len(examples.names()) + args.cases + len(large_models.parse_names(getattr(args, "large", "")))
    return per * audit_configured.configurations_count(args)


def run_audit(impl: Callable[..., Any] | None, args: argparse.Namespace) -> Any:
    """Run the audit's cases with a progress bar on stderr; returns a `vcheck.auditing.plan.SweepResult`
    (an `AuditResult`, and how the sweep ran: workers, a Dask scheduler, resume)."""
    from vcheck.report.progress import progress_callback

    total = audit_total(args)
    label = args.target or f"--fits {args.fits}"
    with progress_callback(f"audit {label}", total=total) as tick:  # `vcheck -q`: none
        done = 0
        flagged = 0

        def on_case(one: Any) -> None:
            nonlocal done, flagged
            done += 1
            flagged += sum(f.kind != "not available" for f in one.findings)
            tick(done, total, f"{flagged} findings")

        from vcheck.auditing import large_models
        from vcheck.auditing.configured import audit_configurations

        if args.fits:
            return audit_configured.run_fits(args, on_case)
        # each configuration's cases (within the capabilities), in worker processes (default 1), on
        # Dask, or here (--workers 0)
        return audit_configurations(
            args.target,
            config=args.config,
            seed=args.seed,
            examples=args.cases,
            large=tuple(large_models.parse_names(args.large)),
            families=audit_configured.families(args),
            workers=1 if args.workers is None and not args.scheduler else args.workers,
            scheduler=args.scheduler,
            out_dir=audit_out_dir(args.target, args.out),
            resume=args.resume,
            progress=on_case,
            options={**audit_configured.options(args), "timeout": audit_configured.timeout_of(args)},
        )


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this audit (for the report and the reproducers)."""
    if args.fits:
        return f"vcheck audit --fits {args.fits}"
    parts = [f"vcheck audit {args.target}", f"--cases {args.cases}", f"--seed {args.seed}"]
    for flag in ("config", "families", "large"):
        value = getattr(args, flag, None)
        if value:
            parts.append(f"--{flag} {value}")
    return " ".join(parts)


def _reference_versions() -> dict[str, str]:
    """R's and lme4's versions; raises RNotAvailableError (one clear line) when the reference is missing."""
    from vcheck import reference

    return reference.versions()


def cmd_audit(args: argparse.Namespace) -> int:
    """Audit TARGET against live lme4, write the report, exit 1 only for a --fail-on kind found."""
    from vcheck.report.outdir import check_writable, claim

    fail_on = _parse_kinds(args.fail_on)
    formats = parse_formats(args.format)
    if args.fits and args.target:
        raise UsageError("give either TARGET or --fits DIR, not both")
    if not args.fits and not args.target:
        raise UsageError("give TARGET (an adapter or MODULE:CALLABLE) or --fits DIR")
    audit_configured.validate(args)
    impl = None if args.fits else resolve_target(args.target)
    if args.fits:
        args.target = f"fits-{Path(args.fits).name}"
    out_dir = audit_out_dir(args.target, args.out)
    check_writable(out_dir, "audit", args.force)  # before R starts: a folder of someone else's files
    versions = _reference_versions()  # fails fast, in one line, when R or lme4 is missing
    with claim(out_dir, "audit", args.force):  # one audit per folder at a time (exit 2 when busy)
        result = run_audit(impl, args)
        if not getattr(result, "interrupted", False):
            audit_configured.write_reproducers(result, args, out_dir, command=_command(args))

        from vcheck.report import write_audit_report

        written = write_audit_report(
            result,
            out_dir,
            target=args.target,
            seed=args.seed,
            cases=args.cases,
            versions=versions,
            formats=formats,
            fail_on=fail_on,
            command=_command(args),
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
    from vcheck.auditing.checkpoint import discard_checkpoint

    if hasattr(result, "checkpoint"):
        discard_checkpoint(result)
    audit_configured.discard_checkpoints(out_dir)
    found = result.failing(fail_on)
    if found:
        print(f"{PROG}: --fail-on: found {', '.join(found)}: {result.headline()}", file=sys.stderr)
        return EXIT_DISAGREE
    return EXIT_OK
