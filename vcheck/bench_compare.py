"""`vcheck compare` on many levels, for `nox -s bench` (reports/bench.md): the command's wall time and peak
memory on `y ~ x + (1|g)` with up to 50,000 levels, against issue 15's bound (100,000 rows and 50,000
levels in under 120 s within 3 GB; a dense q x q G alone would be 20 GB).

`run_measured(argv)` runs a command under a small launcher Python that reports the command's peak
resident set size (ru_maxrss of its children): a child forked from a process that has fitted models
would inherit that process's pages in its high-water mark (fork copies them, and Linux keeps ru_maxrss
across exec).  The memory tests use it too (tests/measured.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vcheck.bench_cases import scaling_data

#: (rows, levels of g) measured; the last is issue 15's case
COMPARE_SIZES = ((20_000, 10_000), (100_000, 50_000))
#: issue 15's bound for `vcheck compare` on 100,000 rows and 50,000 levels
GOAL_SECONDS = 120.0
GOAL_BYTES = 3e9

#: runs argv[2:], discards its stdout unless argv[1] == "1", and prints its peak RSS (KiB) last
_LAUNCHER = """\
import resource, subprocess, sys
keep = sys.argv[1] == "1"
r = subprocess.run(sys.argv[2:], stdout=None if keep else subprocess.DEVNULL)
sys.stdout.flush()
print("\\nMAXRSS", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(r.returncode)
"""


@dataclass(frozen=True)
class Measured:
    """A command's exit code, stdout (when kept), stderr, wall seconds and peak RSS in bytes."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    rss: int


def child_env() -> dict[str, str]:
    """Environment for a child Python, without what an embedded R in this process put there."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}


def run_measured(
    argv: Sequence[str], *, stdin: int | None = None, keep_stdout: bool = False, timeout: float = 900
) -> Measured:
    """Run argv under the launcher: its exit code, output, wall time and peak RSS."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, "1" if keep_stdout else "0", *argv],
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
    )
    seconds = time.monotonic() - start
    out, _, last = proc.stdout.rstrip("\n").rpartition("\n")
    if not last.startswith("MAXRSS "):
        raise RuntimeError(f"the launcher reported no peak RSS: {(proc.stdout + proc.stderr)[-500:]}")
    return Measured(proc.returncode, out, proc.stderr, seconds, int(last.split()[1]) * 1024)


@dataclass(frozen=True)
class CompareRun:
    """One `vcheck compare` measured: sizes, exit code, whether every check agreed, wall, peak RSS."""

    rows: int
    levels: int
    code: int
    agree: bool
    seconds: float
    rss: int

    @property
    def met(self) -> bool:
        """Issue 15's bound: every check agreed, under GOAL_SECONDS, within GOAL_BYTES."""
        return self.agree and self.seconds < GOAL_SECONDS and self.rss < GOAL_BYTES


def measure_compare(rows: int, levels: int, workdir: Path) -> CompareRun:
    """`python -m vcheck compare 'y ~ x + (1|g)' --data FILE` on `scaling_data` with these sizes (rows
    unsorted, every level used): exit code, whether every check agreed, wall seconds, peak RSS."""
    path = workdir / f"levels_{rows}_{levels}.csv"
    scaling_data("(1|g)", rows, levels).to_csv(path, index=False)
    m = run_measured(
        [sys.executable, "-m", "vcheck", "compare", "y ~ x + (1|g)", "--data", str(path)], keep_stdout=True
    )
    agree = m.code == 0 and "checks agree" in m.stdout and "disagree" not in m.stdout
    return CompareRun(rows, levels, m.code, agree, m.seconds, m.rss)


def compare_markdown(results: Sequence[CompareRun]) -> str:
    """The measurements as reports/bench.md's section, the goal column on issue 15's case."""
    lines = [
        "## `vcheck compare` on many levels",
        "",
        "`python -m vcheck compare 'y ~ x + (1|g)' --data FILE.csv` (lme4 live, in the same process), on",
        "the scaling series' data (`vcheck.bench_cases.scaling_data`: rows unsorted, every level used).",
        "Peak memory is the resident set of the whole command, R included.",
        f"Goal (issue 15): 100,000 rows and 50,000 levels in under {GOAL_SECONDS:.0f} s within "
        f"{GOAL_BYTES / 1e9:.0f} GB (a dense G alone would be 20 GB).",
        "",
        "| rows | levels | exit | all checks agree | wall | peak RSS | goal |",
        "|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        goal = "-"
        if (r.rows, r.levels) == COMPARE_SIZES[-1]:
            goal = f"< {GOAL_SECONDS:.0f} s, < {GOAL_BYTES / 1e9:.0f} GB ({'yes' if r.met else '**no**'})"
        lines.append(
            f"| {r.rows:,} | {r.levels:,} | {r.code} | {'yes' if r.agree else '**no**'} "
            f"| {r.seconds:.1f} s | {r.rss / 1e9:.2f} GB | {goal} |"
        )
    return "\n".join(lines) + "\n"


def compare_section(
    sizes: Sequence[tuple[int, int]] = COMPARE_SIZES, log: Callable[[str], None] = print
) -> str:
    """Measure `vcheck compare` at each size (data in a temporary folder) and return the Markdown."""
    results = []
    with tempfile.TemporaryDirectory(prefix="vcheck-bench-compare-") as tmp:
        for rows, levels in sizes:
            log(f"bench: vcheck compare on {rows:,} rows, {levels:,} levels ...")
            r = measure_compare(rows, levels, Path(tmp))
            log(f"  {r.seconds:.1f} s, {r.rss / 1e9:.2f} GB, exit {r.code}")
            results.append(r)
    return "\n" + compare_markdown(results)
