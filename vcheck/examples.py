"""The public path `vcheck.examples`: the module `vcheck.reference.examples` itself (not a copy)."""

import sys

from vcheck.reference import examples as _module

sys.modules[__name__] = _module
