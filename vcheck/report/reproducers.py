"""Reproducers: for every case with a finding, a folder a maintainer of the audited library can run.

    reproducers/<case>/data.csv      the (minimized) data
    reproducers/<case>/case.json     formula, REML, column types and factor levels in R's order
    reproducers/<case>/lme4.R        plain R: reads the CSV with those types, fits lmer, prints the
                                     quantities compared (beta, sigma, varcorr, criterion, theta)
    reproducers/<case>/reproduce.py  plain Python: the audited implementation with its configuration
                                     (for statsmodels also statsmodels' own MixedLM call), the same
                                     quantities beside lme4's and their relative differences
    reproducers/<case>/README.md     the finding in two sentences, versions, expected values, sizes
    reproducers/<case>/reproducer.json  the same facts for programs
    reproducers/<case>/glmmTMB.R     for glmmTMB: its own call in plain R, with the configuration's control

The case is first minimized (`vcheck.auditing.minimize`) within a time budget; the README records its
original and minimized sizes.  With several configurations audited, a folder is
`<case>.<configuration>`.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vcheck.auditing import external
from vcheck.auditing.cases import Case
from vcheck.auditing.minimize import Minimized, minimize, size_of
from vcheck.report.pages import environment, md

#: kinds that get no reproducer (nothing to reproduce)
SKIP_KINDS = frozenset({"not available", "error", "ill-posed"})  # error: minimizing would rerun an
# implementation that raised or hung outside its time limit; ill-posed: no one to reproduce a fault of


def _rstr(value: str) -> str:
    return json.dumps(str(value))  # a double-quoted string with R-compatible escapes


def _rvec(values: list[str]) -> str:
    return ", ".join(_rstr(v) for v in values)


def _render(template: str, **context: Any) -> str:
    env = environment()
    env.filters.setdefault("rstr", _rstr)
    env.filters.setdefault("rvec", _rvec)
    env.filters.setdefault("pystr", lambda v: repr(str(v)))
    env.filters.setdefault("pyrepr", _pyrepr)
    return str(env.get_template(f"reproducer/{template}.j2").render(**context))


def _pyrepr(value: Any) -> str:
    """A Python literal (floats to full precision, inf/nan spelled so that Python reads them)."""
    text = repr(_plain(value))
    return re.sub(r"\b(inf|nan)\b", lambda m: f'float("{m.group(1)}")', text)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    return value


def _col_class(col: Mapping[str, Any]) -> str:
    return {"numeric": "numeric", "integer": "integer", "logical": "logical"}.get(col["type"], "character")


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.10g}"


def _rel(a: float | None, b: float | None) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return "—"
    if not (math.isfinite(a) and math.isfinite(b)):
        return "∞"
    if b == 0:
        return f"abs {abs(a):.3g}"
    return f"{abs(a - b) / abs(b):.3g}"


# --- one reproducer -----------------------------------------------------------------------------------
def lme4_values(case: Case) -> dict[str, Any]:
    """lme4's beta, sigma, varcorr rows (no residual) and criterion on the case, live."""
    from vcheck import reference
    from vcheck.auditing.plugin import submission

    sub = submission(reference.lmer(case.formula, case.data, case.REML))
    assert sub.beta is not None and sub.varcorr is not None
    return {
        "beta": {k: float(v) for k, v in sub.beta.items()},
        "sigma": sub.sigma,
        "varcorr": [list(r) for r in sub.varcorr],
        "criterion": sub.criterion,
    }


def _impl_code(target: str) -> tuple[str, str, str]:
    """(import line, callable expression, library name) for reproduce.py."""
    from vcheck import adapters

    spec = adapters.BUILTIN.get(target.strip().lower(), target)
    module, _, attr = spec.partition(":")
    head = attr.split(".")[0]
    line = f"from {module} import {head}"
    if module not in adapters.BUILTIN.values() and not module.startswith("vcheck."):
        line = (
            f"import sys\n\nsys.path.insert(0, {os.getcwd()!r})  # where the plug-in module was found\n{line}"
        )
    library = {"statsmodels": "statsmodels", "statsmodels_naive": "statsmodels"}.get(target.lower(), target)
    return line, attr, library


def write_reproducer(
    folder: Path,
    impl: Any,
    case: Case,
    *,
    target: str,
    configuration: str | None,
    options: Mapping[str, Any],
    minimized: Minimized | None,
    original: Case,
    command: str,
    findings: list[Any],
) -> Path:
    """Write one reproducer folder for `case` (already minimized, or the original); returns it."""
    from vcheck import __version__
    from vcheck.auditing.plugin import submission

    folder.mkdir(parents=True, exist_ok=True)
    data = case.data
    doc = external.case_document(case, folder.name)
    (folder / "data.csv").write_text(external.csv_text(data), encoding="utf-8")
    (folder / "case.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    expected = lme4_values(case)
    try:
        output = impl(case.formula, data.copy(), case.REML)
        sub = submission(output, data_index=data.index)
        extra = sub.extra
    except Exception as exc:  # its failure is the finding (an error kind): the reproducer shows it
        output, sub, extra = None, None, {"error": f"{type(exc).__name__}: {exc}"}
    impl_label = target + (f" [{configuration}]" if configuration else "")
    impl_short = target.split(":")[-1]
    root = next((f for f in findings if f.kind not in SKIP_KINDS), findings[0] if findings else None)
    finding_line = (
        f"{root.kind} finding in {root.quantity}: {' '.join(root.explanation.split())}"
        if root
        else "no finding"
    )
    table = _table(sub, expected)
    versions = {**_reference_versions(), **dict(extra.get("versions", {})), "vcheck": __version__}
    sentence_one = f"{impl_label} disagrees with lme4 on this model: {finding_line}."
    sentence_two = _sentence_two(sub, extra, expected, root)
    import_line, call, library = _impl_code(target)
    native = None
    if library == "statsmodels" and output is not None:
        from vcheck.adapters import statsmodels as sm

        native = sm.native_code(case.formula, data, case.REML, options.get("method"))
    context = {
        "impl_label": impl_label,
        "impl_short": impl_short,
        "finding_line": finding_line,
        "formula": case.formula,
        "REML": bool(case.REML),
        "n": len(data),
        "configuration": configuration or "default",
        "options": dict(options),
        "columns": doc["columns"],
        "col_classes": ", ".join(f"{_rstr(c['name'])} = {_rstr(_col_class(c))}" for c in doc["columns"]),
        "factors": [
            (c["name"], c["levels"], c["type"] == "ordered") for c in doc["columns"] if "levels" in c
        ],
        "lme4": expected,
        "versions": versions,
        "native": native,
        "native_imports": "from statsmodels.regression.mixed_linear_model import MixedLM",
        "library": library,
        "impl_import": import_line,
        "impl_call": call,
    }
    (folder / "lme4.R").write_text(_render("lme4.R", **context), encoding="utf-8")
    if library == "glmmtmb":  # an R library: its own call in R, beside the Python route
        from vcheck.adapters import glmmtmb

        control = glmmtmb.control_call(**{k: v for k, v in options.items() if k in ("optimizer", "profile")})
        (folder / "glmmTMB.R").write_text(_render("glmmTMB.R", **context, control=control), encoding="utf-8")
    (folder / "reproduce.py").write_text(_render("reproduce.py", **context), encoding="utf-8")
    readme = {
        **context,
        "kind": root.kind if root else "-",
        "quantity": root.quantity if root else "-",
        "case_label": original.label,
        "sentence_one": sentence_one,
        "sentence_two": sentence_two,
        "call": (extra.get("fit_call") and f"{extra.get('translation', '')}.{extra['fit_call']}")
        or extra.get("translation"),
        "original": (minimized.original if minimized else size_of(original)).text(),
        "minimized": (minimized.minimized if minimized else size_of(case)).text(),
        "trials": minimized.trials if minimized else 0,
        "seconds": f"{minimized.seconds:.1f}" if minimized else "0",
        "steps": minimized.steps if minimized else ["not minimized (time budget spent)"],
        "command": command,
        "rebuild": original.rebuild if original.origin != "inline" else "",
        "table": table,
        "implementation_notes": _notes(extra),
        "findings": [f for f in findings if f.kind not in SKIP_KINDS],
    }
    (folder / "README.md").write_text(_render("README.md", **readme), encoding="utf-8")
    meta = {
        "target": target,
        "configuration": configuration,
        "case": original.label,
        "kind": readme["kind"],
        "quantity": readme["quantity"],
        "original": readme["original"],
        "minimized": readme["minimized"],
        "minimization": minimized.to_dict() if minimized else None,
        "expected": expected,
        "versions": versions,
    }
    (folder / "reproducer.json").write_text(json.dumps(meta, indent=1, default=str) + "\n", encoding="utf-8")
    return folder


def _table(sub: Any, expected: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    beta = {} if sub is None or sub.beta is None else {k: float(v) for k, v in sub.beta.items()}
    for name, value in expected["beta"].items():
        rows.append((f"beta {name}", _num(beta.get(name)), _num(value), _rel(beta.get(name), value)))
    sigma = None if sub is None else sub.sigma
    rows.append(("sigma", _num(sigma), _num(expected["sigma"]), _rel(sigma, expected["sigma"])))
    theirs = {} if sub is None or sub.varcorr is None else {(g, a, b): c for g, a, b, c in sub.varcorr}
    for g, a, b, value in expected["varcorr"]:
        mine = theirs.get((g, a, b))
        label = f"varcorr {g} {a}" + (f" {b}" if b else "")
        rows.append((label, _num(mine), _num(value), _rel(mine, value)))
    crit = None if sub is None else sub.criterion
    raw = None if sub is None else sub.extra.get("criterion")
    rows.append(
        (
            "criterion (-2 logLik)",
            _num(crit if crit is not None else raw),
            _num(expected["criterion"]),
            _rel(crit, expected["criterion"]),
        )
    )
    return rows


def _sentence_two(sub: Any, extra: Mapping[str, Any], expected: Mapping[str, Any], root: Any) -> str:
    if sub is None:
        return f"It raised {extra.get('error', 'an error')}, where lme4 fits the model."
    said = []
    if "converged" in extra:
        said.append(f"converged = {bool(extra['converged'])}")
    warnings = list(extra.get("warnings") or [])
    said.append(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else "no warning")
    q = getattr(root, "quantity", "beta")
    if q == "beta" and sub.beta is not None:
        name = max(
            expected["beta"], key=lambda k: _reldiff(sub.beta.get(k), expected["beta"][k]), default=None
        )
        if name is not None:
            return (
                f"It reported {', '.join(said)}; lme4 (expected) gives beta {name} = "
                f"{expected['beta'][name]:.10g}, it gives {float(sub.beta.get(name, math.nan)):.10g}."
            )
    return f"It reported {', '.join(said)}; lme4's expected values are in the table below."


def _reldiff(a: Any, b: float) -> float:
    try:
        x = float(a)
    except (TypeError, ValueError):
        return math.inf
    return abs(x - b) / max(abs(b), 1e-300) if math.isfinite(x) else math.inf


def _notes(extra: Mapping[str, Any]) -> str:
    parts = []
    if "converged" in extra:
        parts.append(f"converged = {extra['converged']}")
    if extra.get("warnings"):
        parts.append("warnings: " + "; ".join(md(w) for w in extra["warnings"]))
    if "error" in extra:
        parts.append(str(extra["error"]))
    return ", ".join(parts)


def _reference_versions() -> dict[str, str]:
    try:
        from vcheck import reference

        v = reference.versions()
    except Exception:
        return {}
    return {k: v[k] for k in ("R", "lme4", "Matrix", "LC_COLLATE") if k in v}


# --- every case with a finding ------------------------------------------------------------------------
def folder_name(case_id: str, configuration: str | None, several: bool) -> str:
    """`<case>`, or `<case>.<configuration>` (file-safe) when several configurations were audited."""
    if not several or not configuration:
        return case_id
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", configuration).strip("-")
    return f"{case_id}.{safe}"


def write_all(
    items: list[dict[str, Any]],
    out_dir: Path,
    *,
    command: str,
    seconds_per_case: float = 20.0,
    total_seconds: float = 900.0,
    resolve: Callable[[str], Any] | None = None,
    progress: Callable[[str], None] | None = None,
    failures: list[str] | None = None,
    several: bool | None = None,
    timeout: float | None = None,
) -> list[Path]:
    """A reproducer under out_dir/reproducers/ for each item: {"case", "case_id", "target" (with its
    configuration bracket), "configuration", "options", "findings"}.  Minimized within
    `seconds_per_case`, all of them within `total_seconds` (the rest are written unminimized), each
    call of the implementation in a process of its own stopped after `timeout` seconds.  A
    reproducer that cannot be written is skipped, its reason appended to `failures`."""
    from vcheck import adapters

    resolve = resolve or adapters.resolve
    if several is None:  # folder names carry the configuration when the audit covered several
        several = len({it.get("configuration") for it in items}) > 1
    start = time.monotonic()
    written = []
    for it in items:
        try:
            folder = _write_one(
                it, out_dir, command, resolve, several, seconds_per_case, total_seconds, start, timeout
            )
        except Exception as exc:  # one reproducer that cannot be made does not stop the others
            if failures is not None:
                failures.append(f"{it['case'].label} [{it.get('target')}]: {type(exc).__name__}: {exc}")
            continue
        if folder is not None:
            written.append(folder)
            if progress is not None:
                progress(str(folder))
    return written


def _write_one(
    it: dict[str, Any],
    out_dir: Path,
    command: str,
    resolve: Callable[[str], Any],
    several: bool,
    seconds_per_case: float,
    total_seconds: float,
    start: float,
    timeout: float | None = None,
) -> Path | None:
    """One item's reproducer (minimized within what is left of the time budget)."""
    impl = resolve(it["target"])
    findings = it["findings"]
    kind = next((f.kind for f in findings if f.kind not in SKIP_KINDS), None)
    if kind is None:
        return None
    left = total_seconds - (time.monotonic() - start)
    small: Minimized | None = None
    case: Case = it["case"]
    if left > 1:
        small = minimize(
            impl, case, kind, seconds=min(seconds_per_case, left), name=it["target"], timeout=timeout
        )
        findings = list(small.result.findings) if small.result is not None else findings
        if not any(f.kind == kind for f in findings):
            small = None
            findings = it["findings"]
    name = folder_name(it["case_id"], it.get("configuration"), several)
    folder = write_reproducer(
        out_dir / "reproducers" / name,
        impl,
        small.case if small else case,
        target=it["target"].split("[")[0],
        configuration=it.get("configuration"),
        options=it.get("options") or {},
        minimized=small,
        original=case,
        command=command,
        findings=findings,
    )
    return folder
