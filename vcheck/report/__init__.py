"""Reports: the reference pages for the built-in examples, and audit reports, as HTML and Markdown.

- `write_reference_reports(out_dir)`: `vcheck report` (see `vcheck.report.reference`)
- `write_audit_report(result, out_dir, ...)`: `vcheck audit`'s report (see `vcheck.report.audit`)

Pictures (`vcheck.report.images`) use matplotlib and templates (`vcheck.report.pages`) jinja2; both are
imported only when a report is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_audit_report", "write_reference_reports"]


def write_reference_reports(out_dir: Path, names: list[str] | None = None, progress: bool = True) -> Path:
    """Regenerate the reference reports under out_dir; returns the index page's path."""
    from vcheck.report.reference import write_reference_reports as write

    return write(Path(out_dir), names=names, progress=progress)


def write_audit_report(result: Any, out_dir: Path, **context: Any) -> Path:
    """Write an audit's report (index.html, index.md, findings.json) under out_dir; returns index.html."""
    from vcheck.report.audit import write_audit_report as write

    return write(result, Path(out_dir), **context)
