"""What every `vcheck` command shares: the program's name, its exit statuses, and the usage error."""

from __future__ import annotations

from vcheck.core.errors import VcheckError

PROG = "vcheck"

EXIT_OK = 0
EXIT_DISAGREE = 1
EXIT_ERROR = 2


class UsageError(VcheckError):
    """A command-line argument that cannot be used (bad --fail-on kind, bad --cases, ...)."""
