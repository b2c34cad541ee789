"""An audit report's outputs: chosen formats, findings.json against its JSON Schema, JUnit with one test
case per audited case, a dated headline that counts the cases that did not run, and links relative to
where the report is written."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_report import _fake_audit_result

from vcheck import schemas
from vcheck.report.audit import write_audit_report

VERSIONS = {"R": "R version 4.2.2", "lme4": "1.1.31", "rpy2": "3.5.17"}


def _dead_worker_result():  # type: ignore[no-untyped-def]
    from vcheck.auditing.cases import Case
    from vcheck.auditing.run import CaseResult

    result = _fake_audit_result()
    example = Case(formula="Yield ~ 1 + (1|Batch)", origin="example", name="dyestuff2")
    result.cases.append(CaseResult(case=example, error="its Dask worker died running it; the sweep went on"))
    return result


def test_findings_json_follows_its_schema(tmp_path: Path) -> None:
    write_audit_report(_dead_worker_result(), tmp_path, target="toy", seed=7, cases=1, versions=VERSIONS)
    payload = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    schemas.validate(payload, "findings")
    assert payload["format"] == "vcheck-findings/1" and payload["generated"][:2] == "20"
    broken = {k: v for k, v in payload.items() if k != "findings"}
    with pytest.raises(Exception, match="findings"):
        schemas.validate(broken, "findings")


def test_formats_and_junit(tmp_path: Path) -> None:
    result = _dead_worker_result()
    first = write_audit_report(
        result, tmp_path, target="toy", seed=7, cases=1, versions=VERSIONS, formats=("junit", "json")
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["findings.json", "junit.xml"]
    assert first == tmp_path / "findings.json"
    root = ET.parse(tmp_path / "junit.xml").getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(result.cases)  # one JUnit test case per audited case
    by_name = {c.get("name"): c for c in cases}
    assert by_name["drawn-7-2"].find("failure") is not None  # construction
    assert by_name["example-dyestuff2"].find("error") is not None  # did not run
    assert by_name["example-sleepstudy"].find("failure") is None  # only "not available"
    text = by_name["drawn-7-2"].find("failure").text or ""
    assert (
        "kind" in text
        and "construction   V" in text
        and "rebuild the case: vcheck.strategies.draw_case(7, 2)" in text
    )
    assert root.get("tests") == str(len(result.cases)) and root.get("errors") == "2"
    # --fail-on narrows what fails: only optimization
    write_audit_report(
        result, tmp_path, target="toy", versions=VERSIONS, formats=("junit",), fail_on=("optimization",)
    )
    root = ET.parse(tmp_path / "junit.xml").getroot()
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert len(failed) == 1 and failed[0].startswith("inline(tiny")
    with pytest.raises(ValueError, match="formats"):
        write_audit_report(result, tmp_path, target="toy", versions=VERSIONS, formats=("pdf",))


def test_headline_date_versions_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01
    html = write_audit_report(
        _dead_worker_result(), tmp_path, target="toy", seed=7, cases=1, versions=VERSIONS
    )
    md = (tmp_path / "index.md").read_text(encoding="utf-8")
    page = html.read_text(encoding="utf-8")
    for text in (md, page):
        assert "2026-01-01" in text and "rpy2 3.5.17" in text
        assert "2 of 5 cases did not run (1 lost with its worker)" in text
    headline = md.index("2 of 5 cases did not run")
    assert headline < md.index("## Summary")  # in the headline, not only at the bottom
    assert 'href="#did-not-run"' in page and 'id="did-not-run"' in page
    lines = md.splitlines()
    for item in ("- reference: lme4", "- audited: toy", "- written: 2026-01-01", "- command:"):
        assert any(line.startswith(item) for line in lines), item  # each fact on a line of its own


def test_reference_link_only_where_the_reference_reports_are(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "index.md").write_text("# vcheck reference reports\n", encoding="utf-8")
    result = _fake_audit_result()
    inside = write_audit_report(result, reports / "audit-toy", target="toy", versions=VERSIONS)
    assert 'href="../index.html">← reference reports' in inside.read_text(encoding="utf-8")
    assert "[← reference reports](../index.md)" in (reports / "audit-toy" / "index.md").read_text(
        encoding="utf-8"
    )
    deeper = write_audit_report(result, reports / "ci" / "nightly", target="toy", versions=VERSIONS)
    assert 'href="../../index.html"' in deeper.read_text(encoding="utf-8")
    outside = write_audit_report(result, tmp_path / "elsewhere" / "audit", target="toy", versions=VERSIONS)
    assert "reference reports" not in outside.read_text(encoding="utf-8")  # no broken link
    assert "reference reports" not in (tmp_path / "elsewhere" / "audit" / "index.md").read_text(
        encoding="utf-8"
    )
