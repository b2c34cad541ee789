"""`python -m vcheck.cli ...`: the same as the `vcheck` command."""

from __future__ import annotations

import sys

from vcheck.cli import main

if __name__ == "__main__":
    sys.exit(main())
