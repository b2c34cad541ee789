"""Shared by the memory tests (tests/cli, tests/auditing): `python -m vcheck ARGS`, its time and peak RSS.

The command runs under a small launcher Python: a child forked from the test process itself would count
the test process's pages (fork copies them, and Linux's ru_maxrss keeps the high-water mark across exec),
so pytest's own memory, a few hundred MB after fitting models, would be charged to the command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

#: runs argv[1:], discards its stdout unless asked, and prints its peak RSS (KiB) as the last stdout line
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
    code: int
    stdout: str
    stderr: str
    seconds: float
    rss: int  # peak resident set size of the command, bytes


def child_env() -> dict[str, str]:
    """Environment for a child Python, without what an embedded R in this process put there."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}


def run_vcheck(
    *args: str, stdin: int | None = None, keep_stdout: bool = False, timeout: float = 900
) -> Measured:
    """`python -m vcheck ARGS`: exit code, stdout (when kept), stderr, wall seconds, peak RSS in bytes."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, "1" if keep_stdout else "0", sys.executable, "-m", "vcheck", *args],
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
    )
    seconds = time.monotonic() - start
    out, _, last = proc.stdout.rstrip("\n").rpartition("\n")
    assert last.startswith("MAXRSS "), proc.stdout[-500:] + proc.stderr
    return Measured(proc.returncode, out, proc.stderr, seconds, int(last.split()[1]) * 1024)
