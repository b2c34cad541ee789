"""`vcheck audit`'s options for configurations, capabilities, tolerances, reproducers and external
fits (issue 13), and what runs them: `vcheck.auditing.configured.audit_configurations`,
`vcheck.auditing.external.audit_fits`, `vcheck.report.reproducers.write_all`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vcheck.auditing import capabilities as caps
from vcheck.cli.status import UsageError
from vcheck.core import tolerances

PROTOCOL = """\
TARGET: a built-in adapter (statsmodels, glmmtmb, nlme, vcheck), or a plug-in MODULE:CALLABLE, a callable
fit(formula, data, REML, **options) returning {beta: {name: value}, sigma, varcorr: [(group, var1, var2
or None, covariance)], V (optional, n x n), criterion (optional, -2 logLik)}, or vcheck's LmerFit.  It
raises vcheck.Unsupported (or NotImplementedError) for a model it does not fit: not a finding, listed
once in the report.  TARGET[CONFIG] audits one configuration, e.g. 'statsmodels[method=lbfgs]'.

Configurations: a module-level CONFIGURATIONS = {name: {keyword: value}} declares them; each is
audited on the same cases (statsmodels: default, method=bfgs|lbfgs|cg|nm|powell; glmmtmb: default,
optimizer=optim, profile=true; nlme: default, opt=optim), --config picks one.

Capabilities: a module-level CAPABILITIES = [...] declares the families an implementation fits; cases
are drawn within them (--families narrows them further):
  intercept          a random intercept, (1 | g)
  slopes             a random slope on a numeric variable, (0 + x | g), (x || g)
  correlated_slopes  more than one random effect per level, (x | g), (f | g)
  factor_slopes      a random slope on a factor, (f | g), (0 + f | g)
  nested             nested grouping factors, (1 | s/t)
  crossed            crossed grouping factors, (1 | a) + (1 | b)
  rank_deficient     a rank-deficient fixed-effects matrix
  REML, ML           the criterion
and the arguments weights, offset, subset, na_action, contrasts, start, control.

Every case with a finding gets OUT/reproducers/<case>/ (minimized data.csv, lme4.R, reproduce.py,
README.md).  Fits from any language: 'vcheck cases export DIR', your program writes DIR/<case>/fit.json,
then 'vcheck audit --fits DIR'.  See docs/auditing.md."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of issue 13, and the protocol in `--help`."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"{PROTOCOL}\n\n{parser.epilog or ''}"
    parser.add_argument(
        "--config",
        default=None,
        metavar="CONFIG",
        help="audit one configuration: a declared name or KEY=VALUE[,KEY=VALUE] options passed as keyword "
        "arguments, e.g. method=lbfgs (default: every configuration the target declares)",
    )
    parser.add_argument(
        "--families",
        default=None,
        metavar="NAMES",
        help=f"draw cases only of these families (comma-separated: {', '.join(caps.FAMILIES)}), within "
        "the target's declared capabilities",
    )
    parser.add_argument(
        "--tol-at-theta",
        type=float,
        default=tolerances.AT_THETA,
        metavar="REL",
        help=f"relative tolerance at the implementation's own parameters (default {tolerances.AT_THETA:g})",
    )
    parser.add_argument(
        "--tol-optimum",
        type=float,
        default=tolerances.AT_OPTIMUM,
        metavar="REL",
        help=f"relative tolerance against lme4's optimum (default {tolerances.AT_OPTIMUM:g})",
    )
    parser.add_argument(
        "--fits",
        default=None,
        metavar="DIR",
        help="audit the fit.json files a program wrote for the cases of 'vcheck cases export DIR' "
        "(then no TARGET)",
    )
    parser.add_argument(
        "--minimize-seconds",
        type=float,
        default=20.0,
        metavar="S",
        help="time to minimize each case with a finding before writing its reproducer (default 20)",
    )
    parser.add_argument(
        "--reproducer-seconds",
        type=float,
        default=1800.0,
        metavar="S",
        help="time for all reproducers' minimization; later ones are written unminimized (default 1800)",
    )
    parser.add_argument("--no-reproducers", action="store_true", help="write no reproducers/ folders")


def validate(args: argparse.Namespace) -> None:
    """Refuse bad option values before anything runs (one line, exit 2)."""
    families(args)
    options(args)
    if args.minimize_seconds < 0 or args.reproducer_seconds < 0:
        raise UsageError("--minimize-seconds and --reproducer-seconds must be 0 or more")


def families(args: argparse.Namespace) -> frozenset[str] | None:
    if getattr(args, "families", None) is None:
        return None
    try:
        return caps.parse_families(args.families)
    except caps.CapabilityError as exc:
        raise UsageError(f"--families: {exc}") from None


def options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of `audit_case` from the command line."""
    for flag in ("tol_at_theta", "tol_optimum"):
        value = getattr(args, flag)
        if not value > 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, not {value}")
    return {"tol_at_theta": args.tol_at_theta, "tol_optimum": args.tol_optimum}


def configurations_count(args: argparse.Namespace) -> int:
    from vcheck.auditing.configured import plan_configurations

    return len(plan_configurations(args.target, args.config)[2])


def run_fits(args: argparse.Namespace, progress: Any) -> Any:
    """`vcheck audit --fits DIR`: the exported cases' fit.json files against live lme4."""
    from vcheck.auditing import external

    return external.audit_fits(Path(args.fits), progress=progress, **options(args))


def timeout_of(args: argparse.Namespace) -> float:
    """--timeout, or vcheck.auditing.run.DEFAULT_TIMEOUT."""
    from vcheck.auditing.run import DEFAULT_TIMEOUT

    value = getattr(args, "timeout", None)
    return DEFAULT_TIMEOUT if value is None else float(value)


def write_reproducers(result: Any, args: argparse.Namespace, out_dir: Path, command: str) -> None:
    """A reproducer for every case with a finding; recorded in `result.reproducers` for the report."""
    if args.no_reproducers or args.fits:
        return
    from vcheck.auditing import configurations as confs
    from vcheck.auditing.external import case_id
    from vcheck.report import reproducers

    base = confs.split_target(args.target)[0]
    items = []
    for position, one in enumerate(result.cases):
        if not any(f.kind not in reproducers.SKIP_KINDS for f in one.findings):
            continue
        name = one.configuration
        items.append(
            {
                "case": one.case,
                "case_id": case_id(one.case, position),
                "target": f"{base}[{name}]" if name else base,
                "configuration": name,
                "options": dict(confs.parse(name, _impl(base)).options) if name else {},
                "findings": one.findings,
            }
        )
    if not items:
        return
    failures: list[str] = []
    folders = reproducers.write_all(
        items,
        out_dir,
        command=command,
        seconds_per_case=args.minimize_seconds,
        total_seconds=args.reproducer_seconds,
        failures=failures,
        timeout=timeout_of(args),
        several=len({c.configuration for c in result.cases}) > 1,
    )
    notes = getattr(result, "notes", None)
    if failures and notes is not None:
        notes.append(f"{len(failures)} reproducers could not be written, e.g. {failures[0]}")
    for folder in folders:
        meta = json.loads((folder / "reproducer.json").read_text())
        result.reproducers.append(
            {
                "folder": f"reproducers/{folder.name}",
                "case": meta["case"],
                "configuration": meta["configuration"],
                "kind": meta["kind"],
                "quantity": meta["quantity"],
                "size": f"{meta['original']} -> {meta['minimized']}",
            }
        )


def _impl(base: str) -> Any:
    from vcheck import adapters

    return adapters.resolve(base)


def discard_checkpoints(out_dir: Path) -> None:
    """Remove the per-configuration checkpoints of a complete audit (OUT/checkpoints/)."""
    import shutil

    shutil.rmtree(Path(out_dir) / "checkpoints", ignore_errors=True)
