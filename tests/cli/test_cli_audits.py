"""`vcheck audit`'s options of issue 13 and `vcheck cases export`, through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vcheck import cli
from vcheck.adapters import own
from vcheck.auditing import external


def test_audit_help_documents_families_protocol_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["audit", "--help"])
    text = capsys.readouterr().out
    for word in (
        "--config",
        "--families",
        "--tol-at-theta",
        "--tol-optimum",
        "--fits",
        "correlated_slopes",
        "rank_deficient",
        "vcheck.Unsupported",
        "CONFIGURATIONS",
        "CAPABILITIES",
        "method=bfgs|lbfgs|cg|nm|powell",
        "reproducers",
    ):
        assert word in text, word


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit"], "give TARGET"),
        (["audit", "vcheck", "--fits", "x"], "either TARGET or --fits"),
        (["audit", "vcheck", "--families", "intercept,splines"], "unknown capability 'splines'"),
        (["audit", "vcheck", "--tol-at-theta", "0"], "--tol-at-theta must be positive"),
        (["cases", "export", "d", "--families", "nope"], "unknown capability 'nope'"),
    ],
)
def test_usage_errors_are_one_line(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("vcheck.cli.audit._reference_versions", lambda: {"R": "R", "lme4": "1.1.31"})
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_cases_export_within_families(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cases"
    assert (
        cli.main(["cases", "export", str(out), "--cases", "5", "--seed", "3", "--families", "intercept"]) == 0
    )
    folders = external.case_folders(out)
    assert len(folders) == 5
    for folder in folders:
        doc = json.loads((folder / "case.json").read_text())
        external.validate(doc, "case", "case.json")
        assert set(doc["needs"]) <= {"intercept", "REML", "ML"}
    assert "vcheck audit --fits" in capsys.readouterr().out
    assert cli.main(["cases", "export", str(tmp_path / "b"), "--cases", "0", "--builtin"]) == 0
    assert any(f.name == "example-sleepstudy" for f in external.case_folders(tmp_path / "b"))


@pytest.mark.r
def test_audit_fits_through_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases"
    assert cli.main(["cases", "export", str(cases), "--cases", "3", "--seed", "0"]) == 0
    for case in external.read_cases(cases):
        doc = external.fit_document(own.fit(case.formula, case.data, case.REML))
        doc["beta"] = {k: v * 1.1 for k, v in doc["beta"].items()}  # wrong: beta is not the GLS beta
        external.write_fit(cases / str(case.name), doc)
    report = tmp_path / "report"
    status = cli.main(
        ["audit", "--fits", str(cases), "--out", str(report), "--quiet", "--fail-on", "construction"]
    )
    assert status == 1
    findings = json.loads((report / "findings.json").read_text())
    assert {f["quantity"] for f in findings["findings"] if f["kind"] == "construction"} >= {"beta"}
