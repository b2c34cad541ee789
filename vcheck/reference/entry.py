"""The `python -m vcheck.<module>` entry points that need lme4 (vcheck.bench, vcheck.auditing,
vcheck.reference) end as the `vcheck` command does: without R, lme4 or rpy2, one line with the install
hint and exit status 2, never a traceback (VCHECK_TRACEBACK=1 shows it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from vcheck.core.errors import RNotAvailableError

#: the exit status of an error (as the `vcheck` command's, vcheck.cli.status.EXIT_ERROR)
EXIT_ERROR = 2


def run_main(main: Callable[[], int | None], prog: str) -> int:
    """`main()`'s exit status; a missing R, lme4 or rpy2 is one `PROG: error: ...` line and status 2."""
    try:
        return int(main() or 0)
    except RNotAvailableError as exc:
        if os.environ.get("VCHECK_TRACEBACK"):
            raise
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_ERROR
