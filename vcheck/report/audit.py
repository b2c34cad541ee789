"""An audit's report: index.html, index.md and findings.json, with every finding's case reproducible.

A finding (`vcheck.auditing.results.Finding`) has `.case` (a `vcheck.auditing.cases.Case`: formula,
REML and an address that rebuilds its data), `.quantity`, `.kind` (a `vcheck.auditing.kinds.Kind`:
"construction", "optimization", "model" or "not available"), `.rel_diff` and a one-line
`.explanation`.  The report gives:

- a summary by kind, and a table of counts by quantity and kind;
- per case with findings: the formula, the Python that rebuilds the data (`vcheck.strategies.draw_case(seed,
  index)`, `vcheck.examples.load(name)`, ...), and for small data or data without an address the data
  itself as `cases/<id>.csv` next to the report (and inside findings.json);
- the cases that did not run (an error, or a model the target cannot express), with the reason.

The files depend only on the audit's result and the day they are written (no timing; the date, UTC, or
SOURCE_DATE_EPOCH's when set, with the versions of vcheck, R and lme4), so the same seed gives the same
report.  Cases that did not run (errors, timeouts, dead workers) are counted in the headline.
`formats` chooses the files: "html" (index.html), "markdown" (index.md), "json" (findings.json,
schema `vcheck/schemas/findings.schema.json`), "junit" (junit.xml, `vcheck.report.junit`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcheck.auditing.kinds import KINDS as _KINDS
from vcheck.report.configurations import audits_context
from vcheck.report.pages import write_page, write_text

#: the kinds of finding, in the order the report shows them
KINDS = tuple(str(k) for k in _KINDS)
#: the tolerance rule, as the report states it (vcheck.core.tolerances has the details)
TOLERANCE_RULE = (
    "Tolerances come from the numerics (vcheck.core.tolerances): at the implementation's own parameters, "
    "beta is judged by its backward error in the GLS normal equations X'V^-1X beta = X'V^-1(y - o) "
    "against 100 eps cond(V), V and the criterion by roundoff times their conditioning, and a difference "
    "counts only when it also moves lme4's criterion by more than the tie tolerance "
    "max(1e-6, 1e-7 |criterion|); sigma is held to the profiled sigma within sqrt(tie / (2 nu)); at the "
    "optimum, quantities agree to 1e-6 relative, and two optima whose criteria tie are the same optimum."
)
#: data with at most this many rows is written out next to the report, even when it can be rebuilt
EMBED_ROWS = 400
#: the files an audit report can have; all but junit by default
FORMATS = ("html", "markdown", "json", "junit")
DEFAULT_FORMATS = ("html", "markdown", "json")
#: the format of findings.json (its JSON Schema: vcheck/schemas/findings.schema.json)
FINDINGS_FORMAT = "vcheck-findings/1"
#: how the reference reports' index.md begins (vcheck/report/templates/index.md.j2)
REFERENCE_HEAD = "# vcheck reference reports"


@dataclass
class CaseEntry:
    """One case of the audit with its findings, ready for the templates."""

    id: str
    label: str
    formula: str
    REML: bool
    rebuild: str
    features: list[str]
    findings: list[dict[str, Any]] = field(default_factory=list)
    csv: str | None = None
    n_rows: int | None = None
    error: str | None = None

    @property
    def real(self) -> list[dict[str, Any]]:
        """Findings other than "not available"."""
        return [f for f in self.findings if f["kind"] != "not available"]

    @property
    def not_available(self) -> list[str]:
        """Quantities the target does not give, for this case."""
        return sorted({f["quantity"] for f in self.findings if f["kind"] == "not available"})


def _findings(result: Any) -> list[Any]:
    return list(getattr(result, "findings", None) or [])


def findings_by_kind(result: Any) -> Counter[str]:
    """Number of findings of each kind."""
    return Counter(str(getattr(f, "kind", "")) for f in _findings(result))


def _case_key(case: Any) -> str:
    """A stable identity for a case (its address), to group findings by case."""
    to_dict = getattr(case, "to_dict", None)
    if callable(to_dict):
        d = to_dict(with_data=False)
        return json.dumps(d, sort_keys=True, default=str)
    return repr(case)


def _case_id(case: Any, position: int) -> str:
    origin = getattr(case, "origin", "")
    if origin == "drawn":
        return f"drawn-{case.seed}-{case.index:04d}"
    if origin == "example":
        return f"example-{case.name}"
    return f"case-{position:04d}"


def _float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _sci(x: Any) -> str:
    v = _float(x)
    return "?" if v is None else f"{v:.2g}"


def _rounded(x: float | None, digits: int = 3) -> float | None:
    """A relative difference to 3 significant digits: live lme4 moves in the last digits between R sessions
    (worker processes), and the report must be the same whoever ran the cases."""
    return None if x is None or x == 0 else float(f"{x:.{digits - 1}e}")


def _case_entry(case: Any, position: int) -> CaseEntry:
    return CaseEntry(
        id=_case_id(case, position),
        label=str(getattr(case, "label", "")) or f"case {position}",
        formula=str(getattr(case, "formula", "?")),
        REML=bool(getattr(case, "REML", True)),
        rebuild=str(getattr(case, "rebuild", "")),
        features=[str(f) for f in getattr(case, "features", ()) or ()],
    )


def case_entries(result: Any) -> list[tuple[Any, CaseEntry]]:
    """(case, entry) pairs: findings grouped by case, cases in the order the audit ran them."""
    groups: dict[str, tuple[Any, CaseEntry]] = {}
    for f in _findings(result):
        case = getattr(f, "case", None)
        configuration = getattr(f, "configuration", None)  # the same case in several configurations
        key = _case_key(case) + (f" [{configuration}]" if configuration else "")
        if key not in groups:
            groups[key] = (case, _case_entry(case, len(groups)))
            if configuration:
                groups[key][1].label += f" [{configuration}]"
                groups[key][1].id += f".{configuration}"
        groups[key][1].findings.append(
            {
                "configuration": configuration,
                "quantity": str(getattr(f, "quantity", "")),
                "kind": str(getattr(f, "kind", "")),
                "rel_diff": _rounded(_float(getattr(f, "rel_diff", None))),
                "explanation": " ".join(str(getattr(f, "explanation", "")).split()),
                "check": str(getattr(f, "check", "")),
                "consequences": [
                    f"{c.get('quantity')} ({c.get('check')}, rel {_sci(c.get('rel_diff'))})"
                    for c in getattr(f, "consequences", []) or []
                ],
                "implementation_warnings": list(getattr(f, "implementation_warnings", []) or []),
                "silent": bool(getattr(f, "silent", True)),
            }
        )
    rank = {k: i for i, k in enumerate(KINDS)}
    for _, entry in groups.values():
        entry.findings.sort(key=lambda d: (rank.get(d["kind"], len(KINDS)), d["quantity"]))
    return list(groups.values())


def error_entries(result: Any) -> list[CaseEntry]:
    """Cases that did not run: `result.errors` as (case, message) pairs or objects with .case/.message."""
    out = []
    for i, item in enumerate(getattr(result, "errors", None) or []):
        if isinstance(item, tuple) and len(item) == 2:
            case, message = item
        else:
            case = getattr(item, "case", None)
            message = getattr(item, "message", None) or getattr(item, "error", None) or str(item)
        entry = _case_entry(case, 10_000 + i)
        entry.error = " ".join(str(message).split())
        out.append(entry)
    return out


def _write_case_data(entry: CaseEntry, case: Any, out_dir: Path) -> None:
    """Write the case's data as cases/<id>.csv when it is small or has no address to rebuild it from."""
    if case is None or (getattr(case, "origin", "inline") != "inline" and not entry.real):
        return  # rebuildable from its address, and nothing but "not available" to look at
    data = getattr(case, "data", None)
    if data is None:
        return
    entry.n_rows = len(data)
    if getattr(case, "origin", "inline") == "inline" or (entry.real and len(data) <= EMBED_ROWS):
        path = out_dir / "cases" / f"{entry.id}.csv"
        write_text(path, data.to_csv(index=False, lineterminator="\n"))
        entry.csv = f"cases/{entry.id}.csv"


def _by_quantity(entries: list[CaseEntry]) -> list[dict[str, Any]]:
    counts: dict[str, Counter[str]] = {}
    for e in entries:
        for f in e.findings:
            counts.setdefault(f["quantity"], Counter())[f["kind"]] += 1
    return [
        {"quantity": q, "counts": [c.get(k, 0) for k in KINDS], "total": sum(c.values())}
        for q, c in sorted(counts.items())
    ]


def summary_line(kinds: Counter[str]) -> str:
    """`3 construction, 12 not available` (or `no findings`)."""
    parts = [f"{kinds[k]} {k}" for k in KINDS if kinds.get(k)]
    parts += [f"{v} {k}" for k, v in sorted(kinds.items()) if k not in KINDS and v]
    return ", ".join(parts) or "no findings"


def _versions(result: Any) -> dict[str, str]:
    """R's and lme4's versions (an AuditResult's own `versions` are the audited implementation's)."""
    v = getattr(result, "reference_versions", None)
    if isinstance(v, dict) and v:
        return {str(k): str(x) for k, x in v.items()}
    try:
        from vcheck import reference

        return reference.versions()
    except Exception:  # the report still helps without them
        return {}


def errors_line(errors: list[CaseEntry], n_run: int | None) -> str:
    """`3 of 21 cases did not run (1 timed out, 1 lost with its worker)` for the headline ("" if none)."""
    if not errors:
        return ""
    texts = [(e.error or "").lower() for e in errors]
    parts = [
        f"{n} {what}"
        for n, what in (
            (sum("timed out" in t or "timeout" in t for t in texts), "timed out"),
            (sum("died" in t for t in texts), "lost with its worker"),
        )
        if n
    ]
    of = f" of {n_run}" if n_run is not None else ""
    case_word = "case" if len(errors) == 1 and not of else "cases"
    verb = "did not run"
    return f"{len(errors)}{of} {case_word} {verb}" + (f" ({', '.join(parts)})" if parts else "")


def written_on() -> str:
    """The report's date, UTC (SOURCE_DATE_EPOCH's, when set, for reproducible builds)."""
    import os
    import time

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = float(epoch) if epoch and epoch.strip().isdigit() else time.time()
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


def reference_index_href(out_dir: Path, levels: int = 3) -> str | None:
    """The reference reports' index.html as a link relative to out_dir, when a folder above it (up to
    `levels` up) holds them; None when none does (the report then has no such link)."""
    import os

    here = Path(out_dir).resolve()
    for parent in list(here.parents)[:levels]:
        index_md = parent / "index.md"
        try:
            with open(index_md, encoding="utf-8") as fh:
                is_reference = fh.read(len(REFERENCE_HEAD)) == REFERENCE_HEAD
        except OSError:
            continue
        if is_reference:
            return Path(os.path.relpath(parent / "index.html", here)).as_posix()
    return None


def write_audit_report(
    result: Any,
    out_dir: Path,
    *,
    target: str,
    seed: int | None = None,
    cases: int | None = None,
    command: str | None = None,
    versions: dict[str, str] | None = None,
    formats: tuple[str, ...] | list[str] = DEFAULT_FORMATS,
    fail_on: tuple[str, ...] | list[str] = (),
) -> Path:
    """Write the report's `formats` under out_dir (index.html, index.md, findings.json, junit.xml; plus
    cases/*.csv); returns the first file written (index.html by default)."""
    from vcheck import __version__

    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = case_entries(result)
    for case, entry in pairs:
        _write_case_data(entry, case, out_dir)
    entries = [entry for _, entry in pairs]
    errors = error_entries(result)
    kinds = findings_by_kind(result)
    n_run = getattr(result, "n_cases", None)
    if n_run is None and getattr(result, "cases", None) is not None:
        n_run = len(result.cases)
    versions = versions if versions is not None else _versions(result)
    if command is None:
        command = f"vcheck audit {target}"
        command += f" --cases {cases}" if cases is not None else ""
        command += f" --seed {seed}" if seed is not None else ""
    headline = getattr(result, "headline", None)
    headline_text = headline() if callable(headline) else summary_line(kinds)
    by_root = getattr(result, "by_root_kind", None)
    roots: dict[str, dict[str, int]] = by_root() if callable(by_root) else {}
    root_counts = [(k, roots[k]) for k in [*KINDS, "agrees"] if k in roots]
    interrupted = bool(getattr(result, "interrupted", False))
    bad_roots = [k for k in roots if k not in ("agrees", "not available")]
    impl_versions = dict(getattr(result, "versions", None) or {}) if hasattr(result, "by_root_kind") else {}
    context = {
        "headline": headline_text,
        "headline_ok": not bad_roots and not errors and not interrupted,
        "root_counts": root_counts,
        "tolerance_rule": TOLERANCE_RULE,
        "interrupted": interrupted,
        "not_run": getattr(result, "not_run", 0),
        "impl_versions": impl_versions,
        "target": target,
        "seed": seed,
        "n_generated": cases,
        "n_run": n_run,
        "kinds": KINDS,
        "kind_counts": [(k, kinds.get(k, 0)) for k in KINDS],
        "summary_line": summary_line(kinds),
        "by_quantity": _by_quantity(entries),
        "with_real": [e for e in entries if e.real],
        "only_na": [e for e in entries if not e.real],
        "errors": errors,
        "versions": versions,
        "command": command,
        "vcheck_version": __version__,
        "generated": written_on(),
        "errors_line": errors_line(errors, n_run),
        "reference_href": reference_index_href(out_dir),
        **audits_context(result),
    }
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"report formats must be among {', '.join(FORMATS)}, not {list(formats)}")
    written: list[Path] = []
    if "html" in formats or "markdown" in formats:
        html, md = write_page(out_dir, "index", "audit", **context)
        for fmt, path in (("html", html), ("markdown", md)):
            if fmt in formats:
                written.append(path)
            else:
                path.unlink()
    payload = {
        "format": FINDINGS_FORMAT,
        "generated": context["generated"],
        "vcheck_version": __version__,
        "target": target,
        "seed": seed,
        "generated_cases": cases,
        "cases_run": n_run,
        "summary": {k: kinds.get(k, 0) for k in KINDS},
        "summary_line": context["summary_line"],
        "headline": headline_text,
        "by_root_kind": roots,
        "interrupted": interrupted,
        "not_run": context["not_run"],
        "versions": versions,
        "implementation": {"name": target, "versions": impl_versions},
        "findings": [{"case": entry.id, **f} for entry in entries for f in entry.findings],
        "cases": [{**_case_json(case, entry), "findings": entry.findings} for case, entry in pairs],
        "errors": [
            {"case": e.label, "formula": e.formula, "rebuild": e.rebuild, "error": e.error} for e in errors
        ],
        "configurations": [
            {k: v for k, v in row.items() if k != "kinds"} for row in context["configurations"]
        ],
        "capabilities": context["capabilities"],
        "outside": context["outside"],
        "unsupported": context["unsupported"],
        "reproducers": context["reproducers"],
    }
    if "json" in formats:
        written.append(
            write_text(out_dir / "findings.json", json.dumps(payload, indent=1, allow_nan=False) + "\n")
        )
    if "junit" in formats:
        from vcheck.report.junit import write_junit

        written.append(write_junit(result, out_dir, target, fail_on, versions))
    return written[0]


def _case_json(case: Any, entry: CaseEntry) -> dict[str, Any]:
    """The case as JSON: its address, the rebuild code, and the data when it is small or has no address."""
    d: dict[str, Any] = {"id": entry.id, "label": entry.label, "rebuild": entry.rebuild}
    to_dict = getattr(case, "to_dict", None)
    if callable(to_dict):
        small = entry.n_rows is not None and entry.n_rows <= EMBED_ROWS
        d.update(to_dict(with_data=getattr(case, "origin", "inline") == "inline" or small))
    else:
        d["formula"] = entry.formula
    if entry.csv:
        d["csv"] = entry.csv
    return d
