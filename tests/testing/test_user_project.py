"""vcheck.testing from a user's project: `pytest --junitxml` on tests/testing/user_project/test_user.py.

One JUnit test case per audited case; vcheck's own fit passes, the faulty one (V without sigma^2 I)
fails with the findings table.  Live lme4 in one run; frozen lme4 outputs, with rpy2 made impossible to
import and under pytest-xdist (two workers), in the other.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vcheck import testing
from vcheck.auditing.strategies import FAMILIES

HERE = Path(__file__).resolve().parent
USER_FILE = HERE / "user_project" / "test_user.py"
NO_RPY2 = HERE / "no_rpy2"
REPO = HERE.parents[1]


def child_env(*front: Path, **extra: str) -> dict[str, str]:
    """This environment for a child Python, `front` first on PYTHONPATH; without the LD_LIBRARY_PATH an
    embedded R leaves behind (the child would load the system's libpython)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    path = [str(p) for p in front] + [str(REPO)]
    env["PYTHONPATH"] = os.pathsep.join(path + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra)
    return env


def plugin_args() -> list[str]:
    """`-p vcheck.testing.plugin` unless the installed vcheck registers it (pytest11 entry point)."""
    names = {e.value for e in importlib.metadata.entry_points(group="pytest11")}
    return [] if "vcheck.testing.plugin" in names else ["-p", "vcheck.testing.plugin"]


def run_user_project(
    tmp_path: Path, *args: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], ET.Element]:
    """Copy the user's test file into a fresh project and run pytest there with --junitxml."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(USER_FILE, project / "test_user.py")
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            *plugin_args(),
            f"--junitxml={junit}",
            *args,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert junit.is_file(), proc.stdout + proc.stderr
    return proc, ET.parse(junit).getroot()


def expected_ids(test: str, examples: int, families: tuple[str, ...], frozen: bool) -> set[str]:
    """The test ids `@cases(examples, seed=0, families)` gives (built-in examples, then drawn cases)."""
    saved = testing.settings.reference
    testing.settings.reference = "frozen" if frozen else "live"
    try:
        chosen = testing.select_cases(examples, 0, families)
    finally:
        testing.settings.reference = saved
    return {f"{test}[{testing.case_id(c)}]" for c in chosen}


def outcomes(root: ET.Element) -> dict[str, tuple[str, str]]:
    """test name -> ("passed" | "failed" | "error" | "skipped", the failure message and text)."""
    out = {}
    for tc in root.iter("testcase"):
        state, text = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = tc.find(tag)
            if node is not None:
                state = "failed" if tag == "failure" else tag
                text = (node.get("message") or "") + "\n" + (node.text or "")
        out[tc.get("name", "")] = (state, text)
    return out


def check_junit(root: ET.Element, frozen: bool) -> None:
    got = outcomes(root)
    good = expected_ids("test_against_lme4", 3, ("intercept", "slope"), frozen)
    bad = expected_ids("test_faulty_against_lme4", 1, ("intercept",), frozen)
    assert set(got) == good | bad  # one JUnit test case per audited case, nothing else
    assert (
        "test_against_lme4[example-sleepstudy]" in got
        and "test_faulty_against_lme4[example-dyestuff2]" in got
    )
    assert len(good) == 7 + (0 if frozen else 3) and len(bad) == 4 + (0 if frozen else 1)
    for name in good:
        assert got[name][0] == "passed", (name, got[name][1][-3000:])
    for name in bad:
        state, text = got[name]
        assert state == "failed", name
        assert "faulty_fit disagrees with lme4" in text
        assert "kind           quantity   check" in text  # the findings table, its header
        assert "construction   V          at its parameters" in text
        assert "rebuild the case: vcheck." in text
        assert "CaseResult(" not in text and "AuditResult(" not in text


@pytest.mark.r
def test_user_project_live(tmp_path: Path) -> None:
    proc, root = run_user_project(tmp_path, env=child_env())
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    check_junit(root, frozen=False)
    assert "vcheck: live lme4 (one process per pytest process)" in proc.stdout  # the session header


def test_user_project_frozen_without_rpy2_under_xdist(tmp_path: Path) -> None:
    """No rpy2 importable (here and in the xdist workers): the frozen reference still checks every
    built-in example, spread over two xdist workers."""
    proc, root = run_user_project(tmp_path, "-n", "2", "--vcheck-reference=frozen", env=child_env(NO_RPY2))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    check_junit(root, frozen=True)
    assert "gw0" in proc.stdout and "gw1" in proc.stdout  # really two workers


def test_live_without_rpy2_fails_in_one_line(tmp_path: Path) -> None:
    """--vcheck-reference=live without rpy2: every case fails saying what to install, no traceback of
    vcheck's internals."""
    proc, root = run_user_project(tmp_path, "-k", "test_against_lme4 and sleepstudy", env=child_env(NO_RPY2))
    assert proc.returncode == 1
    got = outcomes(root)
    assert got and all(state == "failed" for state, _ in got.values())
    for _, text in got.values():
        assert "rpy2 cannot be imported" in text and "pip install 'vcheck[r]'" in text
        assert "--vcheck-reference=frozen" in text


def test_cases_ids_and_families() -> None:
    """Readable ids, families respected for drawn cases and built-in examples alike."""
    chosen = testing.select_cases(4, 7, ("nested",))
    ids = [testing.case_id(c) for c in chosen]
    assert "example-pastes" in ids and "example-sleepstudy" not in ids
    assert ids[-4:] == [f"drawn-7-{i}-nested" for i in range(4)]
    assert all(c.spec is None or c.spec["family"] == "nested" for c in chosen)
    # a drawn case rebuilds from its address (the spec), identical data
    again = type(chosen[-1]).from_dict(chosen[-1].to_dict())
    assert again.data.equals(chosen[-1].data)
    everything = testing.select_cases(2, 0, FAMILIES)
    assert [testing.case_id(c) for c in everything][-2:][0].startswith("drawn-0-0-")
    with pytest.raises(ValueError, match="unknown families"):
        testing.select_cases(1, 0, ("quadratic",))
