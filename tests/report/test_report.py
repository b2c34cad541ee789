"""The report generator: pictures, the seed's kronecker recipe, pages, audit reports, and `vcheck report`.

Most tests draw lme4's frozen records of the built-in examples (no R needed); the end-to-end report
against live lme4 is marked `r`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vcheck.reference import examples
from vcheck.report import images, recipe
from vcheck.report.pages import md, render, sci

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def child_env() -> dict[str, str]:
    """The environment for a child Python: without what an embedded R (started by the `r` marker's check in
    this process) put there, LD_LIBRARY_PATH would make the child load the system's libpython."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}


def frozen(name: str):
    """lme4's frozen fit record of a built-in example."""
    return examples.load(name).expected


# --- the seed's kronecker recipe -------------------------------------------------------------------------


def test_kronecker_G_is_lme4s_G_for_one_term_sorted_or_not() -> None:
    for name in ("sleepstudy", "sleepstudy_shuffled"):
        fit = frozen(name)
        Gm = recipe.kronecker_G(fit)
        assert Gm is not None
        np.testing.assert_allclose(Gm, recipe.G_lme4(fit).toarray(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["three_level", "sleepstudy_uncorrelated", "penicillin", "star_k"])
def test_kronecker_G_is_wrong_for_several_terms(name: str) -> None:
    fit = frozen(name)
    Gm = recipe.kronecker_G(fit)
    G = recipe.G_lme4(fit).toarray()
    assert Gm is None or np.max(np.abs(Gm - G)) > 1e-3 * np.max(np.abs(G))


def test_by_hand_V_is_right_only_on_rows_sorted_by_group() -> None:
    fit = frozen("sleepstudy_shuffled")
    (term,) = recipe.terms(fit)
    codes, _ = recipe.term_model_matrix(fit, term)
    assert not recipe.is_sorted(codes)
    rows_sorted = recipe.sorted_order(codes)
    assert recipe.is_sorted(codes[rows_sorted])
    V = recipe.V_lme4_rows(fit, rows_sorted)
    np.testing.assert_allclose(recipe.V_recipe_rows(fit, term, rows_sorted), V, rtol=1e-12, atol=1e-9)
    rows_given = np.arange(len(codes))
    wrong = recipe.V_recipe_rows(fit, term, rows_given) - recipe.V_lme4_rows(fit, rows_given)
    assert np.max(np.abs(wrong)) > 100.0  # off-diagonal covariances of rows in the same subject are lost


def test_lme4_V_rows_equal_sigma2_Z_Lambda_Lambda_Z_plus_I() -> None:
    fit = frozen("three_level")
    Z = fit.Zt.T.toarray()
    L = fit.Lambdat.T.toarray()
    V = fit.sigma**2 * (Z @ L @ L.T @ Z.T + np.eye(fit.n))
    rows = np.array([5, 0, 77, 3])
    np.testing.assert_allclose(recipe.V_lme4_rows(fit, rows), V[np.ix_(rows, rows)], rtol=1e-12)


def test_kronecker_check_facts() -> None:
    check, panels = images.kronecker_check(frozen("sleepstudy"))
    assert check.k == 18 and check.nterms == 1 and check.g_matches
    assert check.v_sorted_matches is True and check.v_unsorted_matches is False
    assert check.clusters_sorted == 18 and check.clusters_unsorted > 18
    assert len(panels) == 3
    nested, panels = images.kronecker_check(frozen("three_level"))
    assert nested.nterms == 2 and not nested.g_matches and nested.v_sorted_matches is None
    assert nested.per_term_matches is True  # one kronecker per term is right
    assert len(panels) == 2


# --- pictures --------------------------------------------------------------------------------------------


def test_binned_keeps_every_nonzero_and_its_sign() -> None:
    M = np.zeros((1000, 10))
    M[3, 2] = -5.0
    M[999, 9] = 0.5
    M[4, 2] = 1.0
    cells, fr, fc = images.binned(M, max_rows=100, max_cols=100)
    assert (fr, fc) == (10, 1) and cells.shape == (100, 10)
    assert cells[0, 2] == -5.0  # largest magnitude in its bin wins, sign kept
    assert cells[99, 9] == 0.5
    assert np.count_nonzero(cells) == 2


def test_term_sample_shows_the_first_levels_of_every_term() -> None:
    idx, sections, sampled = images.term_sample(frozen("star_k"))
    assert sampled and len(idx) <= images.Q_ROWS
    assert [label for _, label in sections] == ["tch:sch", "sch"]
    idx, sections, sampled = images.term_sample(frozen("sleepstudy"))
    assert not sampled and len(idx) == 36 and sections == ()


@pytest.mark.parametrize("name", ["sleepstudy", "star_k"])
def test_figures_are_nonempty_small_and_deterministic(name: str, tmp_path: Path) -> None:
    fit = frozen(name)
    first = images.structure_figure(fit, tmp_path / "a" / "s.png")
    second = images.structure_figure(fit, tmp_path / "b" / "s.png")
    k1 = tmp_path / "a" / "k.png"
    images.kronecker_figure(fit, k1)
    images.kronecker_figure(fit, tmp_path / "b" / "k.png")
    for path in (first, k1):
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert 5_000 < len(data) < 200_000
        assert b"Software" not in data and b"matplotlib" not in data.lower()
    assert first.read_bytes() == second.read_bytes()
    assert k1.read_bytes() == (tmp_path / "b" / "k.png").read_bytes()


def test_importing_vcheck_report_pulls_no_plotting_or_r() -> None:
    code = (
        "import sys, vcheck, vcheck.report, vcheck.cli, vcheck.report.summary; "
        "bad = [m for m in ('matplotlib', 'rpy2', 'tqdm', 'jinja2') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=True
    )
    assert out.stdout.strip() == ""


# --- pages -----------------------------------------------------------------------------------------------


def test_filters() -> None:
    assert sci(None) == "—" and sci(0.0) == "0" and sci(3.14e-11) == "3.1e-11" and sci(2.5e5) == "2.5e+5"
    assert md("(Days|Subject)") == "(Days\\|Subject)"
    assert md("a\nb") == "a b"


def test_markdown_tables_escape_formula_bars() -> None:
    text = render(
        "index.md.j2",
        pages=[
            {
                "name": "x",
                "formula": "y ~ (1|g)",
                "REML": True,
                "n": 3,
                "all_agree": True,
                "n_total": 5,
                "n_disagree": 0,
                "kron_short": "G right",
            }
        ],
        all_agree=True,
        n_failing=0,
        versions={"lme4": "1.1.31", "R": "R 4.2.2", "LC_COLLATE": "C"},
        audits=[],
        command="vcheck report",
        vcheck_version="0",
    )
    row = next(line for line in text.splitlines() if line.startswith("| [x]"))
    assert "`y ~ (1\\|g)`" in row and row.count(" | ") == 5


# --- audit reports (no R: a result put together by hand) ------------------------------------------------


def _fake_audit_result():
    from vcheck.auditing.cases import Case
    from vcheck.auditing.results import AuditResult, CaseResult, Finding
    from vcheck.auditing.strategies import draw_case

    drawn = draw_case(7, 2)
    small = pd.DataFrame({"y": [1.0, 2.5, 0.5, 3.0, 2.0, 1.5], "g": ["a", "a", "b", "b", "c", "c"]})
    inline = Case(formula="y ~ 1 + (1|g)", origin="inline", name="tiny", _data=small)
    example = Case(formula="Reaction ~ Days + (Days|Subject)", origin="example", name="sleepstudy")
    cases = [
        CaseResult(
            case=drawn,
            findings=[
                Finding(drawn, "V", "construction", 0.25, "its V is not sigma^2 (Z Lambda Lambda' Z' + I)"),
                Finding(drawn, "criterion", "not available", None, "does not give criterion"),
            ],
        ),
        CaseResult(
            case=inline, findings=[Finding(inline, "theta", "optimization", 3e-4, "lme4's optimum is lower")]
        ),
        CaseResult(
            case=example, findings=[Finding(example, "criterion", "not available", None, "no criterion")]
        ),
        CaseResult(
            case=Case(formula="y ~ (1|q)", origin="inline", _data=small), error="lme4 refused: no column q"
        ),
    ]
    return AuditResult(impl="toy", seed=7, examples=1, cases=cases, seconds=1.0)


def test_audit_report_files_summary_and_reproducible_cases(tmp_path: Path) -> None:
    from vcheck.auditing.cases import Case
    from vcheck.report.audit import write_audit_report

    result = _fake_audit_result()
    versions = {"R": "R version 4.2.2", "lme4": "1.1.31"}
    html = write_audit_report(result, tmp_path / "a", target="toy", seed=7, cases=1, versions=versions)
    write_audit_report(result, tmp_path / "b", target="toy", seed=7, cases=1, versions=versions)
    names = sorted(
        p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert "index.html" in names and "index.md" in names and "findings.json" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).stat().st_size > 0
    page = html.read_text(encoding="utf-8")
    assert "1 construction" in page and "1 optimization" in page and "2 not available" in page
    assert "vcheck.strategies.draw_case(7, 2)" in page
    assert "lme4 refused: no column q" in page  # the case that did not run is listed
    payload = json.loads((tmp_path / "a" / "findings.json").read_text(encoding="utf-8"))
    assert payload["summary"] == {
        "error": 0,
        "construction": 1,
        "model": 0,
        "optimization": 1,
        "reference": 0,
        "ill-posed": 0,
        "not available": 2,
    }
    # the headline counts cases by root kind and never claims agreement: one case did not run
    assert payload["headline"].startswith("toy: findings in 3 of 4 cases")
    assert "1 error" in payload["headline"] and "agrees" not in payload["headline"]
    assert payload["by_root_kind"]["error"] == {"silent": 1, "warned": 0}
    assert len(payload["findings"]) == 4 and len(payload["errors"]) == 1
    # every case rebuilds from the report alone: drawn by (seed, index), inline from its embedded data
    for entry in payload["cases"]:
        case = Case.from_dict({k: v for k, v in entry.items() if k not in ("id", "label", "rebuild", "csv")})
        assert len(case.data) > 0
    tiny = next(c for c in payload["cases"] if c.get("name") == "tiny")
    csv = pd.read_csv(tmp_path / "a" / tiny["csv"])
    assert list(csv["g"]) == ["a", "a", "b", "b", "c", "c"]


# --- `vcheck report` end to end (live lme4) -------------------------------------------------------------


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcheck", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(),
        timeout=900,
    )


@pytest.mark.r
def test_vcheck_report_pages_images_and_determinism(tmp_path: Path) -> None:
    chosen = "sleepstudy,three_level"
    first = _run("report", "--out", str(tmp_path / "one"), "--examples", chosen, "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    second = _run("report", "--out", str(tmp_path / "two"), "--examples", chosen, "--quiet", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    one = sorted(
        p.relative_to(tmp_path / "one").as_posix() for p in (tmp_path / "one").rglob("*") if p.is_file()
    )
    expected = {
        "index.html",
        "index.md",
        "sleepstudy.html",
        "sleepstudy.md",
        "three_level.html",
        "three_level.md",
        "img/sleepstudy-structure.png",
        "img/sleepstudy-kronecker.png",
        "img/three_level-structure.png",
        "img/three_level-kronecker.png",
    }
    assert expected <= set(one)
    for name in one:
        a, b = (tmp_path / "one" / name).read_bytes(), (tmp_path / "two" / name).read_bytes()
        assert len(a) > 0, name
        assert a == b, f"{name} differs between two runs"
    total = sum((tmp_path / "one" / n).stat().st_size for n in one)
    assert total < 1_000_000
    index = (tmp_path / "one" / "index.html").read_text(encoding="utf-8")
    assert 'href="sleepstudy.html"' in index and 'href="three_level.html"' in index
    page = (tmp_path / "one" / "sleepstudy.html").read_text(encoding="utf-8")
    assert "img/sleepstudy-structure.png" in page and "lme4 1.1" in page
    assert "agrees with live lme4 in all" in page
    assert "REML criterion at convergence: 1743.6" in page
    markdown = (tmp_path / "one" / "three_level.md").read_text(encoding="utf-8")
    assert "(img/three_level-kronecker.png)" in markdown and "interleaves" in markdown


def test_tidy_markdown_separates_blocks_but_leaves_code_alone() -> None:
    from vcheck.report.pages import tidy_markdown

    text = "a\n- x\n![i](p)\n\n\n# h\ntext\n| a |\n| b |\nafter\n```\n# not a heading\n\n\nx\n```\nz\n"
    assert tidy_markdown(text) == (
        "a\n- x\n\n![i](p)\n\n# h\n\ntext\n\n| a |\n| b |\n\nafter\n\n```\n# not a heading\n\n\nx\n```\n\nz\n"
    )
