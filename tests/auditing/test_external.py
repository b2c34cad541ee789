"""Fits from any language: export, schemas, fit.json read back and audited against live lme4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vcheck
from vcheck.adapters import own
from vcheck.auditing import external as ex
from vcheck.auditing.strategies import draw_case
from vcheck.reference import examples

CASES = [draw_case(0, i) for i in range(4)]


def export(tmp_path: Path) -> list:
    ex.export_cases(tmp_path, CASES)
    return ex.read_cases(tmp_path)


def test_export_writes_schema_valid_case_files_that_read_back_exactly(tmp_path: Path) -> None:
    ex.export_cases(tmp_path, [*CASES, _example()])
    folders = ex.case_folders(tmp_path)
    assert [f.name for f in folders] == sorted([*(f"drawn-0-{i:04d}" for i in range(4)), "example-star_k"])
    for folder, case in zip(folders[:4], CASES, strict=True):
        doc = json.loads((folder / "case.json").read_text())
        ex.validate(doc, "case", "case.json")
        assert doc["formula"] == case.formula and doc["REML"] == case.REML and doc["n"] == len(case.data)
        back = ex.read_case(folder).data
        for col in case.data.columns:
            mine, theirs = case.data[col], back[col]
            if pd.api.types.is_float_dtype(mine):
                assert np.array_equal(mine.to_numpy(), theirs.to_numpy())  # full precision
            else:
                assert [str(v) for v in mine] == [str(v) for v in theirs]
    star = json.loads((tmp_path / "example-star_k" / "case.json").read_text())
    kinds = {c["name"]: c["type"] for c in star["columns"]}
    assert "factor" in kinds.values()


def _example() -> vcheck.auditing.cases.Case:
    from vcheck.auditing.cases import Case

    return Case(formula=examples.load("star_k").formula, origin="example", name="star_k")


def test_fit_schema_rejects_malformed_fits(tmp_path: Path) -> None:
    good = {"beta": {"(Intercept)": 1.0}, "sigma": 1.0, "varcorr": [["g", "(Intercept)", None, 0.5]]}
    ex.validate(good, "fit", "fit.json")
    ex.validate({"unsupported": "no crossed factors"}, "fit", "fit.json")
    bad = [
        ({"beta": 3}, "not valid under any"),
        ({**good, "sigma": -1.0}, "sigma"),
        ({**good, "varcorr": [["g", "(Intercept)", 0.5]]}, "varcorr/0"),
        ({**good, "beta": {"x": "one"}}, "beta/x"),
        ({**good, "V": [[1, 2], "row"]}, "V/1"),
    ]
    for doc, where in bad:
        with pytest.raises(ex.FitFileError, match=where.replace("/", "/")):
            ex.validate(doc, "fit", "fit.json")
    (tmp_path / "fit.json").write_text("{ not json")
    with pytest.raises(ex.FitFileError, match="is not JSON"):
        ex.read_fit(tmp_path / "fit.json")
    (tmp_path / "fit.json").write_text(json.dumps({**good, "V": [[1.0]]}))
    with pytest.raises(ex.FitFileError, match="n x n = 3 x 3"):
        ex.read_fit(tmp_path / "fit.json", n=3)
    (tmp_path / "fit.json").write_text(json.dumps({"unsupported": "no crossed factors"}))
    with pytest.raises(vcheck.Unsupported, match="no crossed factors"):
        ex.read_fit(tmp_path / "fit.json")


@pytest.mark.r
def test_round_trip_own_fits_agree_and_scaled_V_is_construction(tmp_path: Path) -> None:
    cases = export(tmp_path)
    for case in cases:
        doc = ex.fit_document(own.fit(case.formula, case.data, case.REML), configuration="default")
        ex.write_fit(tmp_path / str(case.name), doc)
    result = ex.audit_fits(tmp_path, reference="inline")
    assert len(result.cases) == len(cases) and not result.errors, result.summary()
    assert set(result.by_kind()) <= {"not available"}, result.summary()

    for case in cases:
        path = tmp_path / str(case.name) / "fit.json"
        doc = json.loads(path.read_text())
        doc["V"] = (1.01 * np.asarray(doc["V"])).tolist()
        path.write_text(json.dumps(doc))
    result = ex.audit_fits(tmp_path, reference="inline")
    assert not result.errors
    for one in result.cases:
        assert any(f.kind == "construction" and f.quantity == "V" for f in one.findings), one.findings


@pytest.mark.r
def test_a_malformed_or_missing_fit_is_that_cases_error(tmp_path: Path) -> None:
    cases = export(tmp_path)
    (tmp_path / str(cases[0].name) / "fit.json").write_text(json.dumps({"beta": {"(Intercept)": 1}}))
    result = ex.audit_fits(tmp_path, reference="inline")
    errors = {c.case.name: c.error for c in result.errors}
    assert "does not follow fit.schema.json" in str(errors[cases[0].name])
    for case in cases[1:]:
        assert "no fit.json" in str(errors[case.name])
