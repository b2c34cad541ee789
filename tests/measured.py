"""Shared by the memory tests (tests/cli, tests/auditing): `python -m vcheck ARGS`, its time and peak RSS,
measured as `nox -s bench` measures `vcheck compare` (`vcheck.bench_compare.run_measured`: the command
under a small launcher, so that this process's pages are not charged to it)."""

from __future__ import annotations

import sys

from vcheck.bench_compare import Measured, child_env, run_measured

__all__ = ["Measured", "child_env", "run_vcheck"]


def run_vcheck(
    *args: str, stdin: int | None = None, keep_stdout: bool = False, timeout: float = 900
) -> Measured:
    """`python -m vcheck ARGS`: exit code, stdout (when kept), stderr, wall seconds, peak RSS in bytes."""
    return run_measured(
        [sys.executable, "-m", "vcheck", *args], stdin=stdin, keep_stdout=keep_stdout, timeout=timeout
    )
