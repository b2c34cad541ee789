"""Start-up cost: `import vcheck` and `vcheck --version` stay cheap (issue 15: under 0.3 s).

The time is vcheck's own cumulative import time from `python -X importtime` (the interpreter's start
excluded), the median of three fresh processes, so a busy machine moves it little.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

#: issue 15's bound on `import vcheck` (seconds, vcheck's own cumulative import time)
IMPORT_BOUND_S = 0.3
HEAVY = ("numpy", "pandas", "scipy", "matplotlib", "rpy2")


def _python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ},
    )


def _vcheck_import_seconds() -> float:
    """vcheck's cumulative import time (the `vcheck` line of -X importtime), in seconds."""
    err = _python("import vcheck", "-X", "importtime").stderr
    for line in err.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "vcheck":
            return int(parts[1]) / 1e6
    raise AssertionError(f"no 'vcheck' line in -X importtime output:\n{err[-2000:]}")


def test_import_vcheck_is_fast() -> None:
    seconds = statistics.median(_vcheck_import_seconds() for _ in range(3))
    assert seconds < IMPORT_BOUND_S, f"import vcheck took {seconds:.3f} s (bound {IMPORT_BOUND_S} s)"


def test_import_vcheck_loads_no_heavy_module() -> None:
    out = _python("import sys, json, vcheck; print(json.dumps(sorted(sys.modules)))").stdout
    loaded = set(json.loads(out))
    assert not loaded & set(HEAVY), f"import vcheck loaded {sorted(loaded & set(HEAVY))}"


def test_version_loads_no_heavy_module() -> None:
    code = (
        "import sys, json\n"
        "from vcheck.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    lines = _python(code).stdout.strip().splitlines()
    assert lines[0].startswith("vcheck "), lines
    loaded = set(json.loads(lines[-1]))
    assert not loaded & set(HEAVY), f"vcheck --version loaded {sorted(loaded & set(HEAVY))}"


def test_lazy_public_names_still_resolve() -> None:
    import vcheck
    from vcheck.core.record import Design, LmerFit, RandomTerm

    assert vcheck.LmerFit is LmerFit
    assert vcheck.Design is Design
    assert vcheck.RandomTerm is RandomTerm
    assert callable(vcheck.lmer) and callable(vcheck.lFormula)
