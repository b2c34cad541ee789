"""Reproducers: a minimized case with a finding, as files that run on their own in R and in Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import faults
import pandas as pd
import pytest

from vcheck import adapters
from vcheck.auditing.minimize import minimize, size_of
from vcheck.auditing.run import audit_case
from vcheck.auditing.strategies import draw_case
from vcheck.report import reproducers

pytestmark = pytest.mark.r

LBFGS = "statsmodels[method=lbfgs]"


def _run(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ)
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_minimize_keeps_the_kind_and_shrinks_the_lbfgs_case() -> None:
    impl = adapters.resolve(LBFGS)
    case = draw_case(0, 31)  # y ~ x + (1 | g), 46 rows: statsmodels#10239 under method='lbfgs'
    before = audit_case(impl, case, source=LBFGS)
    assert any(f.kind == "construction" and f.quantity == "beta" for f in before.findings)
    small = minimize(impl, case, "construction", seconds=60)
    assert small.result is not None
    assert any(f.kind == "construction" for f in small.result.findings)
    assert small.minimized.rows < small.original.rows == 46
    assert small.original == size_of(case)
    assert small.trials > 1 and small.steps


def test_reproducers_run_in_their_own_folders(tmp_path: Path) -> None:
    items: list[dict[str, Any]] = []
    for i in (17, 47):
        case = draw_case(0, i)
        result = audit_case(adapters.resolve(LBFGS), case, source=LBFGS)
        items.append(
            {
                "case": case,
                "case_id": f"drawn-0-{i:04d}",
                "target": LBFGS,
                "configuration": "method=lbfgs",
                "options": {"method": "lbfgs"},
                "findings": result.findings,
            }
        )
    folders = reproducers.write_all(items, tmp_path, command="vcheck audit statsmodels", seconds_per_case=30)
    assert [f.name for f in folders] == ["drawn-0-0017", "drawn-0-0047"]
    for folder in folders:
        files = {p.name for p in folder.iterdir()}
        assert files == {"data.csv", "case.json", "lme4.R", "reproduce.py", "README.md", "reproducer.json"}
        moved = tmp_path / "elsewhere" / folder.name  # nothing refers to the audit's directory
        shutil.copytree(folder, moved)
        r_out = _run(["Rscript", "lme4.R"], moved)
        assert "beta (fixef)" in r_out and "criterion" in r_out
        py_out = _run([sys.executable, "reproduce.py"], moved)
        assert "fe_params" in py_out  # statsmodels' own call ran
        assert "beta (Intercept)" in py_out and "rel. diff" in py_out
        readme = (moved / "README.md").read_text()
        assert "construction finding in beta" in readme and "minimized from" in readme
        assert "statsmodels: " in readme and "lme4: 1.1.31" in readme
        data = pd.read_csv(moved / "data.csv")
        assert len(data) < len(draw_case(0, int(folder.name[-4:])).data)


def test_plugin_reproducer_imports_the_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = tmp_path / "shifted_plugin.py"
    plugin.write_text(
        "from vcheck.adapters import own\n"
        "def fit(formula, data, REML, shift=0.0):\n"
        "    out = own.fit(formula, data, REML)\n"
        "    out.beta = out.beta + shift\n"
        "    return out\n"
        "CONFIGURATIONS = {'default': {}, 'shift=0.5': {'shift': 0.5}}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    target = "shifted_plugin:fit[shift=0.5]"
    case = draw_case(0, 2)
    result = audit_case(adapters.resolve(target), case, source=target)
    assert any(f.kind == "construction" for f in result.findings)
    item = {
        "case": case,
        "case_id": "drawn-0-0002",
        "target": target,
        "configuration": "shift=0.5",
        "options": {"shift": 0.5},
        "findings": result.findings,
    }
    (folder,) = reproducers.write_all([item], tmp_path / "out", command="vcheck audit", seconds_per_case=20)
    out = _run([sys.executable, "reproduce.py"], folder)
    assert "from shifted_plugin import fit" in (folder / "reproduce.py").read_text()
    assert "beta (Intercept)" in out


class OLSBetaHangingWhenSmaller(faults.OLSBeta):
    """A construction fault on the whole case that hangs on any smaller one: what the minimizer must
    survive (it calls the implementation on every candidate)."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool) -> Any:
        if len(data) < self.rows:
            time.sleep(600)
        return super().__call__(formula, data, REML)


def test_minimize_stops_an_implementation_that_hangs_on_a_candidate() -> None:
    """With the audit's timeout every candidate runs in a process of its own: a hanging candidate is
    stopped, is not kept, and the minimizer ends near its time budget with the case it had."""
    case = draw_case(0, 31)
    impl = OLSBetaHangingWhenSmaller(len(case.data))
    start = time.monotonic()
    small = minimize(impl, case, "construction", seconds=8, timeout=2)
    assert time.monotonic() - start < 8 + 2 + 30  # the budget, one timeout, lme4's own fits
    assert small.minimized.rows == small.original.rows and not any("rows" in s for s in small.steps)
    assert small.result is not None and any(f.kind == "construction" for f in small.result.findings)
