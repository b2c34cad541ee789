"""`python -m vcheck.auditing`: one audit from the command line (see `vcheck.auditing.run.main`)."""

from vcheck.auditing.run import main

raise SystemExit(main())
