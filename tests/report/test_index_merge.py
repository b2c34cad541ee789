"""`vcheck report --examples NAMES` merges its pages into the folder's index (vcheck.report.index)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vcheck.reference import examples
from vcheck.report import index

REPO = Path(__file__).resolve().parents[2]


def test_rows_of_an_index_written_before_pages_json(tmp_path: Path) -> None:
    """The committed reports/ has no pages.json: its rows are read back from its index.md."""
    shutil.copy(REPO / "reports" / "index.md", tmp_path / "index.md")
    for name in ("sleepstudy", "penicillin"):
        (tmp_path / f"{name}.md").write_text("page\n", encoding="utf-8")
    rows = index.read_rows(tmp_path)
    assert set(rows) == {"sleepstudy", "penicillin"}  # rows whose page is gone are dropped
    s = rows["sleepstudy"]
    assert s.formula == "Reaction ~ Days + (Days|Subject)" and s.REML and s.n == 180
    assert s.n_total > 0 and s.n_disagree == 0 and s.kron_short


def test_merge_keeps_other_pages_in_the_examples_order(tmp_path: Path) -> None:
    names = examples.names()
    old = {n: index.IndexRow(n, "y ~ 1 + (1|g)", True, 10, 13, 0, "k", "") for n in names[:4]}
    for n in old:
        (tmp_path / f"{n}.md").write_text("page\n", encoding="utf-8")
    index.write_rows(tmp_path, list(old.values()))
    new = index.IndexRow(names[1], "y ~ x + (1|g)", False, 11, 13, 2, "k2", "new")
    rows = index.merge_rows(index.read_rows(tmp_path), [new], names)
    assert [r.name for r in rows] == names[:4]
    assert rows[1] == new and not rows[1].all_agree
    assert index.neighbours([r.name for r in rows], names[1]) == (names[0], names[2])


def test_an_index_of_someone_else_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "index.md").write_text(
        "# My notes\n| [a](a.md) | `y` | REML | 1 | x | y |\n", encoding="utf-8"
    )
    (tmp_path / "a.md").write_text("mine\n", encoding="utf-8")
    assert index.read_rows(tmp_path) == {}


@pytest.mark.parametrize("bad", ["{", '{"pages": [{"nom": 1}]}'])
def test_a_broken_pages_json_is_ignored(tmp_path: Path, bad: str) -> None:
    (tmp_path / index.MANIFEST).write_text(bad, encoding="utf-8")
    assert index.read_rows(tmp_path) == {}


@pytest.mark.r
def test_vcheck_report_some_examples_keeps_the_others_linked(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    env["PYTHONPATH"] = str(REPO)

    def report(names: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "vcheck", "-q", "report", "--out", str(tmp_path), "--examples", names],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stderr

    report("dyestuff2,pastes")
    report("dyestuff2")
    md = (tmp_path / "index.md").read_text(encoding="utf-8")
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    for name in ("dyestuff2", "pastes"):
        assert f"[{name}]({name}.md)" in md and f'href="{name}.html"' in html
    assert "All 2 examples agree" in md
    page = (tmp_path / "dyestuff2.md").read_text(encoding="utf-8")
    assert "[pastes →](pastes.md)" in page or "[← pastes](pastes.md)" in page  # linked to its neighbour
