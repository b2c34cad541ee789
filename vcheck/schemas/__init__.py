"""JSON Schemas of the files vcheck writes or reads, shipped in the package: `load("findings")` is the
schema of an audit's findings.json, `load("case")` and `load("fit")` those of the files `vcheck cases
export` writes and an implementation writes back (`vcheck.auditing.external`, docs/auditing.md);
`validate(instance, name)` checks a document with the `jsonschema` library (in the `audit` extra)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The schema file `<name>.schema.json`."""
    file = HERE / f"{name}.schema.json"
    if not file.is_file():
        known = sorted(p.name.removesuffix(".schema.json") for p in HERE.glob("*.schema.json"))
        raise KeyError(f"no schema {name!r}; vcheck ships {', '.join(known)}")
    return file


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The schema `name` as a dict."""
    schema: dict[str, Any] = json.loads(path(name).read_text(encoding="utf-8"))
    return schema


def validate(instance: Any, name: str) -> None:
    """Raise jsonschema.ValidationError when `instance` does not follow schema `name`."""
    import jsonschema

    jsonschema.validate(instance, load(name), cls=jsonschema.Draft202012Validator)
