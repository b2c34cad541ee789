"""`python -m vcheck.reference --freeze DIR`: regenerate the frozen lme4 references (see `main`)."""

import sys

from vcheck.reference import main
from vcheck.reference.entry import run_main

sys.exit(run_main(main, "python -m vcheck.reference"))
