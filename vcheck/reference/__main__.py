"""`python -m vcheck.reference --freeze DIR`: regenerate the frozen lme4 references (see `main`)."""

import sys

from vcheck.cli.entry import run_main
from vcheck.reference import main

sys.exit(run_main(main, "python -m vcheck.reference"))
