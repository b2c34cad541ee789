"""An implementation for the external-cluster test (tests/auditing/test_dask_cluster.py): vcheck's own
fit, slowed a little, except that the first case to reach it (across every worker: the claim is a file
created with O_EXCL in $VCHECK_TEST_HOLD) writes the id of the Dask worker's process there (the audit
runs it in a child of that process, `vcheck.auditing.isolate`) and waits to be killed."""

from __future__ import annotations

import os
import time
from pathlib import Path


def fit(formula, data, REML):  # type: ignore[no-untyped-def]
    hold = os.environ.get("VCHECK_TEST_HOLD")
    if hold:
        claim = Path(hold) / "claimed"
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            worker = os.environ.get("VCHECK_ISOLATE_PARENT", str(os.getpid()))
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{worker}\n{formula}\n")
            (Path(hold) / "pid").write_text(worker)
            time.sleep(120)  # killed by the test long before
    time.sleep(0.3)  # the audit lasts long enough for the kill to land mid-audit
    from vcheck.core.fit import lmer

    return lmer(formula, data, REML=REML, condVar=False)
