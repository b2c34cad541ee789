"""Jinja2 templates (vcheck/report/templates) -> HTML and Markdown pages.

HTML pages are self-contained (inline CSS, images by relative path); Markdown pages are for reading on the
repository.  Rendering is a pure function of the context: no dates, no absolute paths, stable order.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

#: where the templates live, inside the package
TEMPLATES = Path(__file__).resolve().parent / "templates"


def sci(value: Any, digits: int = 2) -> str:
    """A difference or tolerance for a table: `3.1e-11`, `0` for exact zero, `—` when absent."""
    if value is None:
        return "—"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "—"
    if x == 0:
        return "0"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits - 1}e}".replace("e-0", "e-").replace("e+0", "e+")


def md(value: Any) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, newlines folded."""
    return " ".join(str(value).split()).replace("|", "\\|")


@functools.cache
def environment() -> Any:
    """The jinja2 environment: HTML templates autoescaped, Markdown ones not."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["sci"] = sci
    env.filters["md"] = md
    return env


def render(template: str, **context: Any) -> str:
    """Render one template with the context."""
    return str(environment().get_template(template).render(**context))


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text with "\\n" newlines (byte-identical across runs and platforms)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return path


def tidy_markdown(text: str) -> str:
    """One blank line around headings, tables and fences, never two in a row (code blocks left alone)."""
    out: list[str] = []
    in_fence = False
    for line in text.splitlines():
        fence = line.startswith("```")
        block_start = not in_fence and (line.startswith(("#", "|", "---", "![")) or fence)
        if block_start and out and out[-1] != "" and not (line.startswith("|") and out[-1].startswith("|")):
            out.append("")
        if not in_fence and line == "" and out and out[-1] == "":
            continue
        if not in_fence and out and out[-1].startswith(("#", "---")) and line != "":
            out.append("")
        if not in_fence and out and out[-1].startswith("|") and line != "" and not line.startswith("|"):
            out.append("")
        out.append(line)
        if fence:
            in_fence = not in_fence
            if not in_fence:
                out.append("")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def write_page(out_dir: Path, stem: str, template_stem: str, **context: Any) -> tuple[Path, Path]:
    """Render `<template_stem>.html.j2` and `.md.j2` to `out_dir/<stem>.html` and `.md`."""
    html = write_text(out_dir / f"{stem}.html", render(f"{template_stem}.html.j2", **context))
    markdown = write_text(out_dir / f"{stem}.md", tidy_markdown(render(f"{template_stem}.md.j2", **context)))
    return html, markdown
