"""`python -m vcheck.reference --freeze DIR`: regenerate the frozen lme4 references (see `main`)."""

import sys

from vcheck.reference import main

sys.exit(main())
