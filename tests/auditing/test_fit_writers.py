"""The example fit writers of docs/auditing.md run as written, and their fits agree with lme4."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from vcheck.auditing import external as ex
from vcheck.auditing.strategies import draw_case

pytestmark = pytest.mark.r

DOC = Path(__file__).resolve().parents[2] / "docs" / "auditing.md"


def example(name: str) -> str:
    """The fenced code block after `<!-- example: NAME -->` in docs/auditing.md."""
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w+\n(.*?)\n```", DOC.read_text(), re.S)
    assert match, f"no example {name} in {DOC}"
    return match.group(1) + "\n"


@pytest.mark.parametrize(
    ("name", "command"), [("write_fits.py", sys.executable), ("write_fits.R", "Rscript")]
)
def test_documented_writer_round_trips(tmp_path: Path, name: str, command: str) -> None:
    cases = tmp_path / "cases"
    ex.export_cases(cases, [draw_case(0, i) for i in (0, 1, 2, 17)])
    script = tmp_path / name
    script.write_text(example(name))
    done = subprocess.run([command, str(script), str(cases)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = ex.audit_fits(cases, reference="inline")
    assert len(result.cases) == 4 and not result.errors, result.summary()
    assert set(result.by_kind()) <= {"not available"}, result.summary()
