"""The audit report's table per configuration, its 'outside the capabilities' list and reproducers."""

from __future__ import annotations

import json
from pathlib import Path

from vcheck.auditing.results import AuditResult, CaseResult, Finding
from vcheck.auditing.strategies import draw_case
from vcheck.report import write_audit_report


def test_report_has_a_table_per_configuration_and_lists_unsupported_once(tmp_path: Path) -> None:
    a, b = draw_case(0, 17), draw_case(0, 25)
    cases = []
    for conf in ("default", "method=lbfgs"):
        bad = conf == "method=lbfgs"
        finding = Finding(a, "beta", "construction", 0.5, "its beta is not the GLS beta", configuration=conf)
        cases.append(CaseResult(case=a, findings=[finding] if bad else [], configuration=conf))
        cases.append(
            CaseResult(case=b, configuration=conf, unsupported="model not expressible: crossed slopes")
        )
    result = AuditResult(
        impl="statsmodels",
        seed=0,
        examples=2,
        cases=cases,
        capabilities=["intercept", "REML", "ML"],
        outside={"slopes": 7},
        reproducers=[
            {
                "folder": "reproducers/drawn-0-0017.method-lbfgs",
                "case": a.label,
                "configuration": "method=lbfgs",
                "kind": "construction",
                "quantity": "beta",
                "size": "91 rows -> 7 rows",
            }
        ],
    )
    write_audit_report(
        result,
        tmp_path,
        target="statsmodels",
        seed=0,
        cases=2,
        versions={"R": "R version 4.2.2", "lme4": "1.1.31"},
    )
    md = (tmp_path / "index.md").read_text()
    assert "## By configuration" in md
    # columns: cases, then every kind (error, construction, model, optimization, reference, ill-posed,
    # not available), then unsupported
    assert "| `default` | 2 | · | · | · | · | · | · | 1 | · |" in md
    assert "| `method=lbfgs` | 2 | · | 1 | · | · | · | · | 1 | · |" in md
    assert "### `method=lbfgs`: findings by quantity" in md and "| `beta` | · | 1 | · |" in md
    assert "### `default`" not in md  # no findings there: no table
    assert md.count("model not expressible: crossed slopes") == 1  # once, over both configurations
    assert "not audited, needs slopes: 7 cases" in md
    assert "[method=lbfgs]" in md and "reproducers/drawn-0-0017.method-lbfgs/README.md" in md
    html = (tmp_path / "index.html").read_text()
    assert "By configuration" in html and "Outside its capabilities" in html
    data = json.loads((tmp_path / "findings.json").read_text())
    assert data["findings"][0]["configuration"] == "method=lbfgs"
    assert [row["name"] for row in data["configurations"]] == ["default", "method=lbfgs"]
    assert data["unsupported"][0]["cases"] == 1
