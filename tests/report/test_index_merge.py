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
    (tmp_path / "index.md").write_text("# My notes\n| [a](a.md) | `y` | REML | 1 | x | y |\n", encoding="utf-8")
    (tmp_path / "a.md").write_text("mine\n", encoding="utf-8")
    assert index.read_rows(tmp_path) == {}


@pytest.mark.parametrize("bad", ["{", '{"pages": [{"nom": 1}]}'])
def test_a_broken_pages_json_is_ignored(tmp_path: Path, bad: str) -> None:
    (tmp_path / index.MANIFEST).write_text(bad, encoding="utf-8")
    assert index.read_rows(tmp_path) == {}
