"""The public path `vcheck.strategies`: the module `vcheck.auditing.strategies` itself (not a copy)."""

import sys

from vcheck.auditing import strategies as _module

sys.modules[__name__] = _module
