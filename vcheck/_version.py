"""vcheck's version, from one place: `version` in pyproject.toml.

An installed vcheck reads it from its package metadata (`importlib.metadata`, written from pyproject.toml
when the wheel is built).  A source checkout run without installing (PYTHONPATH) reads pyproject.toml
next to the package, so the running code never reports another installation's version.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

#: the distribution's name on PyPI
DISTRIBUTION = "vcheck"


def version() -> str:
    """pyproject.toml's version when running from a checkout, else the installed package's metadata."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (OSError, tomllib.TOMLDecodeError):
            project = {}
        if project.get("name") == DISTRIBUTION and isinstance(project.get("version"), str):
            return str(project["version"])
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # neither installed nor a checkout
        return "0+unknown"
