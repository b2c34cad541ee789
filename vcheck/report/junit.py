"""An audit as JUnit XML (`vcheck audit --format junit`): one test case per audited case.

CI systems (GitLab, Jenkins, GitHub's test reporters) read JUnit XML; each audited case becomes a
`<testcase classname="vcheck.audit.TARGET" name="example-sleepstudy">`:

- `<error>` when the case did not run (the implementation or lme4 failed, its worker died, a timeout);
- `<failure>` when it has a finding of a failing kind (the `--fail-on` kinds; without --fail-on,
  every kind but "not available"), its text the findings table (`vcheck.report.casetable`);
- passed otherwise; "not available" findings are listed in `<system-out>`.

The suite's properties give the target, seed and lme4's versions.  Times are the case's wall time.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vcheck.report.casetable import findings_table
from vcheck.report.pages import write_text

#: the kinds that fail a JUnit test case when --fail-on names none
DEFAULT_FAILING = ("construction", "optimization", "model")


def case_name(case: Any) -> str:
    """A test case's name: `example-sleepstudy`, `drawn-0-3`, `large-instEval`, else the case's label."""
    origin = getattr(case, "origin", "")
    if origin == "example":
        return f"example-{case.name}"
    if origin == "drawn":
        return f"drawn-{case.seed}-{case.index}"
    if origin == "large":
        return f"large-{case.name}"
    return str(getattr(case, "label", "case"))


def junit_xml(
    result: Any, target: str, fail_on: Sequence[str] = (), versions: dict[str, str] | None = None
) -> str:
    """The audit's cases as a JUnit XML document (a `<testsuites>` with one `<testsuite>`)."""
    failing = [k for k in fail_on if k != "error"] or list(DEFAULT_FAILING)
    cases = list(getattr(result, "cases", []) or [])
    suite = ET.Element("testsuite", name=f"vcheck audit {target}")
    props = ET.SubElement(suite, "properties")
    settings = {
        "target": target,
        "seed": getattr(result, "seed", None),
        "drawn": getattr(result, "examples", None),
    }
    for key, value in [*settings.items(), *sorted((versions or {}).items())]:
        if value is not None:
            ET.SubElement(props, "property", name=str(key), value=str(value))
    counts = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for one in cases:
        seconds = float(getattr(one, "seconds", 0.0) or 0.0)
        total_time += seconds
        tc = ET.SubElement(
            suite,
            "testcase",
            classname=f"vcheck.audit.{target}",
            name=case_name(one.case),
            time=f"{seconds:.3f}",
        )
        counts["tests"] += 1
        found = [k for k in failing if any(f.kind == k for f in one.findings)]
        if one.error is not None:
            counts["errors"] += 1
            node = ET.SubElement(tc, "error", message=" ".join(str(one.error).split())[:500], type="error")
            node.text = findings_table(one, target, ["error", *found])
        elif found:
            counts["failures"] += 1
            node = ET.SubElement(
                tc, "failure", message=f"{target}: {', '.join(found)} on {one.case.label}", type=found[0]
            )
            node.text = findings_table(one, target, found)
        missing = sorted({f.quantity for f in one.findings if f.kind == "not available"})
        if missing:
            ET.SubElement(tc, "system-out").text = f"not available from {target}: {', '.join(missing)}"
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{total_time:.3f}")
    root = ET.Element("testsuites", {k: suite.get(k, "0") for k in ("tests", "failures", "errors")})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(
    result: Any,
    out_dir: Path,
    target: str,
    fail_on: Sequence[str] = (),
    versions: dict[str, str] | None = None,
) -> Path:
    """Write `out_dir/junit.xml`; returns its path."""
    return write_text(Path(out_dir) / "junit.xml", junit_xml(result, target, fail_on, versions))
