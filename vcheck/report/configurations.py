"""The audit report's parts for issue 13: a table per configuration, what fell outside the
implementation's capabilities (listed once), and the reproducers written for the findings.

`audits_context(result)` reads, when present: each case result's `.configuration` and `.unsupported`
(the message of a `vcheck.Unsupported` or NotImplementedError), and the result's `.capabilities`
(declared), `.outside` ({capability: cases left out of the draw or the built-in examples}) and
`.reproducers` ([{folder, case, configuration, kind}]).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

#: kinds shown per configuration (whatever the comparison's vocabulary, "not available" last)
NOT_AVAILABLE = "not available"


def _kinds(result: Any) -> list[str]:
    from vcheck.auditing.kinds import KINDS

    seen = [str(f.kind) for c in getattr(result, "cases", []) for f in c.findings]
    extra = sorted(set(seen) - set(KINDS))
    return [k for k in KINDS if k != NOT_AVAILABLE] + extra


def configuration_rows(result: Any) -> list[dict[str, Any]]:
    """One row per configuration: cases run, cases with findings by kind, unsupported, errors."""
    cases = list(getattr(result, "cases", []))
    if not any(getattr(c, "configuration", None) for c in cases):
        return []
    kinds = _kinds(result)
    rows: dict[str, dict[str, Any]] = {}
    for c in cases:
        name = getattr(c, "configuration", None) or "default"
        row = rows.setdefault(
            name,
            {"name": name, "cases": 0, "with_findings": 0, "kinds": Counter(), "unsupported": 0, "errors": 0},
        )
        row["cases"] += 1
        real = {str(f.kind) for f in c.findings if f.kind != NOT_AVAILABLE}
        row["with_findings"] += bool(real)
        row["kinds"].update(real)
        row["unsupported"] += bool(getattr(c, "unsupported", None))
        row["errors"] += c.error is not None
    for row in rows.values():
        row["counts"] = [row["kinds"].get(k, 0) for k in kinds]
        row["by_quantity"] = _by_quantity(
            [c for c in cases if (getattr(c, "configuration", None) or "default") == row["name"]], kinds
        )
    return list(rows.values())


def _by_quantity(cases: list[Any], kinds: list[str]) -> list[dict[str, Any]]:
    """One configuration's findings counted by quantity and kind ("not available" left out)."""
    counts: dict[str, Counter[str]] = {}
    for c in cases:
        for f in c.findings:
            if f.kind != NOT_AVAILABLE:
                counts.setdefault(str(f.quantity), Counter())[str(f.kind)] += 1
    return [{"quantity": q, "counts": [n.get(k, 0) for k in kinds]} for q, n in sorted(counts.items())]


def unsupported_rows(result: Any) -> list[dict[str, Any]]:
    """Each distinct Unsupported message once, with the number of cases (over configurations)."""
    counts: dict[str, set[str]] = {}
    example: dict[str, str] = {}
    for c in getattr(result, "cases", []):
        message = getattr(c, "unsupported", None)
        if message:
            text = " ".join(str(message).split())
            counts.setdefault(text, set()).add(c.case.label)
            example.setdefault(text, c.case.formula)
    return [
        {"message": m, "cases": len(labels), "formula": example[m]}
        for m, labels in sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]


def audits_context(result: Any) -> dict[str, Any]:
    """What the report templates' configuration / capabilities / reproducers sections show."""
    outside = getattr(result, "outside", None) or {}
    return {
        "configuration_kinds": _kinds(result),
        "configurations": configuration_rows(result),
        "unsupported": unsupported_rows(result),
        "capabilities": list(getattr(result, "capabilities", None) or []),
        "outside": [{"capability": k, "cases": v} for k, v in outside.items()],
        "reproducers": list(getattr(result, "reproducers", None) or []),
    }
