"""`python -m vcheck.auditing [--impl TARGET] [--examples N] [--seed S]`: one audit in this process, its
summary (the implementation loaded as `vcheck audit TARGET` loads it, by `vcheck.adapters.resolve`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vcheck.auditing.run import audit


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m vcheck.auditing [--impl TARGET] [--examples N] [--seed S]`: one audit, its summary.

    Without --impl it audits vcheck's own lmer (which must agree with lme4); the summary's rates are the
    audit's speed (the benchmark of issue 5: cases per second with lme4 live).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vcheck.auditing", description=main.__doc__)
    parser.add_argument(
        "--impl",
        default="vcheck",
        help="a built-in adapter (statsmodels, glmmtmb, nlme, vcheck) or MODULE:CALLABLE (default vcheck: "
        "vcheck's own lmer)",
    )
    parser.add_argument("--examples", type=int, default=100, help="drawn cases (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-builtin", action="store_true", help="drawn cases only")
    parser.add_argument("--criterion", choices=("lme4", "vcheck"), default="lme4")
    parser.add_argument("--json", metavar="FILE", help="write the result as JSON")
    args = parser.parse_args(argv)
    from vcheck import adapters

    impl: Any = adapters.resolve(args.impl)  # as `vcheck audit TARGET` loads it
    if isinstance(impl, type):  # a plug-in class: its instance is the callable
        impl = impl()
    result = audit(
        impl, examples=args.examples, seed=args.seed, builtin=not args.no_builtin, criterion=args.criterion
    )
    print(result.summary())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(result.to_json(indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
