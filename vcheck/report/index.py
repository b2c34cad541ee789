"""The reference reports' index, merged: `vcheck report --examples NAMES` adds or replaces those pages'
rows and keeps every other page of the folder linked.

Each index row is kept in `pages.json` next to the pages (name, model, fit, n, agreement, kronecker
verdict, description).  Writing some pages reads it, replaces those rows, and writes it back with the
index made of all rows, in the built-in examples' order.  A folder written before `pages.json` existed
has its rows read back from its index.md (vcheck's own table), so the first partial run there keeps
the other pages too.  Rows whose page file is gone are dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from vcheck.report.pages import write_text

#: the index's rows, one per page in the folder
MANIFEST = "pages.json"
MANIFEST_FORMAT = "vcheck-report-pages/1"


@dataclass
class IndexRow:
    """One example page as the index lists it."""

    name: str
    formula: str
    REML: bool
    n: int
    n_total: int
    n_disagree: int
    kron_short: str = ""
    description: str = ""

    @property
    def all_agree(self) -> bool:
        return self.n_disagree == 0

    @classmethod
    def of(cls, page: Any) -> IndexRow:
        """The row of an `ExamplePage` just written."""
        return cls(
            name=page.name,
            formula=page.formula,
            REML=bool(page.REML),
            n=int(page.n),
            n_total=int(page.n_total),
            n_disagree=int(page.n_disagree),
            kron_short=page.kron_short,
            description=page.description,
        )


def read_rows(out_dir: Path) -> dict[str, IndexRow]:
    """The rows of the pages already in out_dir (from pages.json, else from an older index.md)."""
    path = Path(out_dir) / MANIFEST
    rows: dict[str, IndexRow] = {}
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            names = {f.name for f in fields(IndexRow)}
            for item in doc.get("pages", []):
                row = IndexRow(**{k: v for k, v in item.items() if k in names})
                rows[row.name] = row
        except (ValueError, TypeError, OSError):
            rows = {}
    else:
        rows = _rows_from_markdown(Path(out_dir) / "index.md")
    return {name: row for name, row in rows.items() if (Path(out_dir) / f"{name}.md").is_file()}


_MD_ROW = re.compile(
    r"^\| \[(?P<name>[^\]]+)\]\((?P=name)\.md\) \| `(?P<formula>.*)` \| (?P<fit>REML|ML) \| (?P<n>\d+) \| "
    r"(?P<agree>.*?) \| (?P<kron>.*) \|$"
)


def _rows_from_markdown(index_md: Path) -> dict[str, IndexRow]:
    """Rows of an index.md vcheck wrote before pages.json (its table of examples)."""
    try:
        text = index_md.read_text(encoding="utf-8")
    except OSError:
        return {}
    if not text.startswith("# vcheck reference reports"):
        return {}
    rows = {}
    for line in text.splitlines():
        m = _MD_ROW.match(line)
        if not m:
            continue
        agree = m["agree"]
        total = re.match(r"(\d+)/(\d+) agree", agree)
        bad = re.search(r"(\d+) disagree", agree)
        n_total = int(total[2]) if total else 0
        rows[m["name"]] = IndexRow(
            name=m["name"],
            formula=m["formula"].replace("\\|", "|"),
            REML=m["fit"] == "REML",
            n=int(m["n"]),
            n_total=n_total,
            n_disagree=int(bad[1]) if bad else 0,
            kron_short=m["kron"].replace("\\|", "|"),
        )
    return rows


def merge_rows(
    existing: dict[str, IndexRow], new: Iterable[IndexRow], order: Sequence[str]
) -> list[IndexRow]:
    """Existing rows with the new ones in their place, in `order` (unknown names last, sorted)."""
    rows = dict(existing)
    rows.update({r.name: r for r in new})
    rank = {name: i for i, name in enumerate(order)}
    return sorted(rows.values(), key=lambda r: (rank.get(r.name, len(rank)), r.name))


def write_rows(out_dir: Path, rows: Sequence[IndexRow]) -> Path:
    """pages.json: the index's rows."""
    doc = {"format": MANIFEST_FORMAT, "pages": [asdict(r) for r in rows]}
    return write_text(Path(out_dir) / MANIFEST, json.dumps(doc, indent=1) + "\n")


def neighbours(names: Sequence[str], name: str) -> tuple[str | None, str | None]:
    """The pages before and after `name` in `names` (for a page's previous/next links)."""
    i = list(names).index(name)
    return (names[i - 1] if i > 0 else None, names[i + 1] if i + 1 < len(names) else None)
