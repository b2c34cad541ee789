"""The `vcheck` command through a subprocess: --help, outputs, exit codes, files, and bad input.

Exit codes: 0 ok (compare: all agree; audit: it ran), 1 disagreement / --fail-on kind found, 2 error with
one `vcheck: error: ...` line on stderr and never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vcheck import cli
from vcheck.cli import audit as cli_audit
from vcheck.cli import compare as cli_compare
from vcheck.reference import examples

#: R's summary of the seed's first model, from "REML criterion" on (the Formula/Data lines are ours)
SLEEPSTUDY_BODY = """\
REML criterion at convergence: 1743.6

Scaled residuals: 
    Min      1Q  Median      3Q     Max 
-3.9536 -0.4634  0.0231  0.4634  5.1793 

Random effects:
 Groups   Name        Variance Std.Dev. Corr
 Subject  (Intercept) 612.10   24.741       
          Days         35.07    5.922   0.07
 Residual             654.94   25.592       
Number of obs: 180, groups:  Subject, 18

Fixed effects:
            Estimate Std. Error t value
(Intercept)  251.405      6.825  36.838
Days          10.467      1.546   6.771

Correlation of Fixed Effects:
     (Intr)
Days -0.138
"""  # noqa: W291


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python.  An embedded R in this process (the `r` marker's check starts one)
    leaves LD_LIBRARY_PATH pointing at the system's libpython; the child must not inherit it."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    env.update(extra)
    return env


def vcheck(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m vcheck ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "vcheck", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(**env),
        timeout=900,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, exactly one line on stderr starting `vcheck: error:`, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("vcheck: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def sleep_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sleepstudy.csv"
    examples.load("sleepstudy").data.to_csv(path, index=False)
    return path


# --- help --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["fit"], ["compare"], ["report"], ["audit"]])
def test_help(command: list[str]) -> None:
    proc = vcheck(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: vcheck")
    for flag in {"fit": ["--data", "--ml", "--json"], "compare": ["--data", "--ml"], "report": ["--out"]}.get(
        command[0] if command else "", []
    ):
        assert flag in proc.stdout
    if command == ["audit"]:
        for flag in ("TARGET", "--cases", "--seed", "--out", "--fail-on"):
            assert flag in proc.stdout


def test_module_entry_points() -> None:
    for module in ("vcheck", "vcheck.cli"):
        proc = subprocess.run(
            [sys.executable, "-m", module, "--version"], capture_output=True, text=True, env=child_env()
        )
        assert proc.returncode == 0 and proc.stdout.startswith("vcheck "), proc.stderr


# --- fit ---------------------------------------------------------------------------------------------------


def test_fit_prints_lme4s_summary(sleep_csv: Path) -> None:
    proc = vcheck("fit", "Reaction ~ Days + (Days|Subject)", "--data", str(sleep_csv))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Linear mixed model fit by REML ['lmerMod']"
    assert lines[1] == "Formula: Reaction ~ Days + (Days|Subject)"
    assert "\n".join(lines[4:]) + "\n" == SLEEPSTUDY_BODY


def test_fit_json(sleep_csv: Path) -> None:
    proc = vcheck("fit", "Reaction ~ Days + (Days|Subject)", "--data", str(sleep_csv), "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["source"] == "vcheck" and d["REML"] is True and d["n"] == 180
    assert d["beta"]["(Intercept)"] == pytest.approx(251.40510, rel=1e-6)
    assert d["beta"]["Days"] == pytest.approx(10.46729, rel=1e-6)
    assert d["criterion"] == pytest.approx(1743.628, abs=1e-3)
    cov = {(r["grp"], r["var1"], r["var2"]): r["vcov"] for r in d["varcorr"]}
    assert cov[("Subject", "(Intercept)", None)] == pytest.approx(612.100158, rel=1e-5)
    assert cov[("Subject", "(Intercept)", "Days")] == pytest.approx(9.604409, rel=1e-5)
    assert cov[("Subject", "Days", None)] == pytest.approx(35.071714, rel=1e-5)
    assert d["ngroups"] == {"Subject": 18}


def test_fit_ml(sleep_csv: Path) -> None:
    proc = vcheck("fit", "Reaction ~ Days + (Days|Subject)", "--data", str(sleep_csv), "--ml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Linear mixed model fit by maximum likelihood  ['lmerMod']")
    assert (
        "     AIC      BIC   logLik deviance df.resid \n  1763.9   1783.1   -876.0   1751.9      174 "
        in proc.stdout
    )


def test_string_columns_stay_strings(tmp_path: Path) -> None:
    data = examples.load("three_level").data
    path = tmp_path / "three.csv"
    data.to_csv(path, index=False)
    proc = vcheck("fit", "y ~ x1 + (1|sch.cl/tch.cl)", "--data", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["ngroups"] == {"tch.cl:sch.cl": 30, "sch.cl": 10}
    assert d["criterion"] == pytest.approx(490.1123, abs=1e-3)


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    empty = root / "empty.csv"
    empty.write_text("", encoding="utf-8")
    binary = root / "binary.csv"
    binary.write_bytes(b"\x00\x01\xff\xfe\x80garbage")
    ragged = root / "ragged.csv"
    ragged.write_text('a,b\n1,2\n"unclosed,3\n', encoding="utf-8")
    header_only = root / "header.csv"
    header_only.write_text("Reaction,Days,Subject\n", encoding="utf-8")
    return {"empty": empty, "binary": binary, "ragged": ragged, "header": header_only, "dir": root}


@pytest.mark.parametrize(
    ("formula", "needle"),
    [
        ("Reaction ~ Days + (Days|Subject", "formula"),
        ("Reaction ~ Days + (Days||)", "formula"),
        ("", "formula"),
        ("Reaction ~ Dayz + (Days|Subject)", "Dayz"),
        ("Reaction ~ Days + (Days|Subjekt)", "Subjekt"),
    ],
)
@pytest.mark.parametrize("command", ["fit", "compare"])
def test_bad_model_is_one_line(command: str, formula: str, needle: str, sleep_csv: Path) -> None:
    assert_clean_error(vcheck(command, formula, "--data", str(sleep_csv)), needle)


def test_too_few_rows_for_REML_is_one_line_naming_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "three_rows.csv"
    path.write_text("y,x1,x2,g\n1.0,0.5,2.0,a\n2.0,1.5,1.0,a\n3.5,2.0,0.0,b\n", encoding="utf-8")
    proc = vcheck("fit", "y ~ x1 + x2 + (1|g)", "--data", str(path))
    assert_clean_error(proc, "REML needs more observations (n=3) than fixed effects (p=3)", "--ml")
    assert "unexpected" not in proc.stderr and "bug" not in proc.stderr


@pytest.mark.parametrize("which", ["empty", "binary", "ragged", "header", "dir", "missing"])
@pytest.mark.parametrize("command", ["fit", "compare"])
def test_unreadable_csv_is_one_line(command: str, which: str, bad_files: dict[str, Path]) -> None:
    path = bad_files.get(which, bad_files["dir"] / "no-such-file.csv")
    assert_clean_error(vcheck(command, "Reaction ~ Days + (1|Subject)", "--data", str(path)), str(path))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["fit", "y ~ x + (1|g)"], "--data"),
        (["frobnicate"], "frobnicate"),
        (["audit", "no_such_target"], "no_such_target"),
        (["audit", "no_such_module_xyz:fit"], "no_such_module_xyz"),
        (["audit", "json:dumps_nothing"], "dumps_nothing"),
        (["audit", "statsmodels", "--fail-on", "construction,bogus"], "bogus"),
        (["audit", "statsmodels", "--cases", "-1"], "--cases"),
        (["report", "--examples", "no_such_example"], "no_such_example"),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    assert_clean_error(vcheck(*args, cwd=tmp_path), needle)


# --- audit: exit codes and report, without R (the sweep replaced by a result made by hand) ----------------


def _toy_result():
    from vcheck.auditing.results import AuditResult, CaseResult, Finding
    from vcheck.auditing.strategies import draw_case

    case = draw_case(5, 0)
    return AuditResult(
        impl="toy",
        seed=5,
        examples=1,
        cases=[CaseResult(case=case, findings=[Finding(case, "V", "construction", 0.5, "V is off")])],
        seconds=2.0,
    )


@pytest.mark.parametrize(
    ("fail_on", "status"),
    [
        ("", 0),
        ("construction", 1),
        ("model", 0),
        ("model,construction", 1),
        ("not-available", 0),
        ("all", 1),
        ("ill-posed,reference,error,optimization", 0),
    ],
)
def test_audit_exit_status(
    fail_on: str,
    status: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli_audit, "resolve_target", lambda target: lambda f, d, r: {})
    monkeypatch.setattr(cli_audit, "run_audit", lambda impl, args: _toy_result())
    monkeypatch.setattr(cli_audit, "_reference_versions", lambda: {"R": "R version 4.2.2", "lme4": "1.1.31"})
    args = ["audit", "toy", "--cases", "1", "--seed", "5", "--out", str(tmp_path / "out"), "--quiet"]
    assert cli.main([*args, "--fail-on", fail_on] if fail_on else args) == status
    out = capsys.readouterr()
    assert "report:" in out.out
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"index.html", "index.md", "findings.json"}
    if status:
        assert "--fail-on: found construction" in out.err


@pytest.mark.parametrize(("fail_on", "status"), [("all", 1), ("error", 1), ("construction", 0), ("", 0)])
def test_a_case_that_did_not_run_fails_all_and_the_headline_says_so(
    fail_on: str,
    status: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vcheck.auditing.results import AuditResult, CaseResult

    case = _toy_result().cases[0].case
    broken = AuditResult(impl="toy", seed=5, examples=1, cases=[CaseResult(case=case, error="toy raised")])
    monkeypatch.setattr(cli_audit, "resolve_target", lambda target: lambda f, d, r: {})
    monkeypatch.setattr(cli_audit, "run_audit", lambda impl, args: broken)
    monkeypatch.setattr(cli_audit, "_reference_versions", lambda: {"R": "R version 4.2.2", "lme4": "1.1.31"})
    args = ["audit", "toy", "--cases", "1", "--out", str(tmp_path / "out"), "--quiet", "--timeout", "5"]
    assert cli.main([*args, "--fail-on", fail_on] if fail_on else args) == status
    out = capsys.readouterr()
    assert "every case failed" in out.out and "agrees" not in out.out
    assert "No findings" not in (tmp_path / "out" / "index.md").read_text()


def test_audit_default_out_dir() -> None:
    assert cli_audit.audit_out_dir("statsmodels", None) == Path("reports/audit-statsmodels")
    assert cli_audit.audit_out_dir("my.mod:fit", None) == Path("reports/audit-my.mod_fit")
    assert cli_audit.audit_out_dir("nlme", "x/y") == Path("x/y")


# --- with live lme4 ---------------------------------------------------------------------------------------


@pytest.mark.r
def test_compare_agrees_on_sleepstudy(sleep_csv: Path) -> None:
    proc = vcheck("compare", "Reaction ~ Days + (Days|Subject)", "--data", str(sleep_csv))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "reference: lme4 1.1" in out
    for quantity in ("REML criterion", "sigma", "theta[1]", "beta[(Intercept)]", "var(Subject: Days)"):
        assert quantity in out
    for check in ("layout", "at its parameters", "at optimum"):
        assert check in out
    assert out.rstrip().endswith("checks agree")


@pytest.mark.r
def test_compare_exits_1_on_a_disagreement(
    sleep_csv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vcheck import reference

    def off_by_a_percent(formula, data, REML, **kwargs):
        fit = reference.lmer(formula, data, REML=REML)
        fit.source = "vcheck"
        fit.beta = fit.beta * 1.01  # no longer the GLS beta at its own V: a construction disagreement
        return fit

    monkeypatch.setattr(cli_compare, "_fit_vcheck", off_by_a_percent)
    status = cli.main(["compare", "Reaction ~ Days + (Days|Subject)", "--data", str(sleep_csv)])
    out = capsys.readouterr().out
    assert status == 1
    assert "beta (at its parameters): construction" in out and "do not agree" in out


PLUGIN = '''
"""Toy plug-ins for the CLI tests: lme4's own answer, with its criterion off by one."""
from vcheck import reference


def criterion_off_by_one(formula, data, REML):
    fit = reference.lmer(formula, data, REML=REML, extras=False)
    return {"beta": fit.beta, "sigma": fit.sigma, "varcorr": fit.varcorr, "criterion": fit.criterion + 1.0}
'''


@pytest.mark.r
def test_audit_of_a_plugin_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "toyplug.py").write_text(PLUGIN, encoding="utf-8")
    out = tmp_path / "audit"
    proc = vcheck(
        "audit",
        "toyplug:criterion_off_by_one",
        "--cases",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
        "--fail-on",
        "construction",
        cwd=tmp_path,
        PYTHONPATH=str(tmp_path),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "audit toyplug:criterion_off_by_one" in proc.stderr  # the progress bar
    assert "--fail-on: found construction" in proc.stderr
    for name in ("index.html", "index.md", "findings.json"):
        assert (out / name).stat().st_size > 0
    payload = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert payload["target"] == "toyplug:criterion_off_by_one" and payload["seed"] == 3
    assert payload["cases_run"] == len(examples.names()) + 2
    crit = [f for f in payload["findings"] if f["quantity"] == "criterion" and f["kind"] == "construction"]
    assert len(crit) >= len(examples.names())  # every case that ran
    assert payload["summary"]["not available"] > 0  # it gives no V: reported, never passed
    cases = {c["id"]: c for c in payload["cases"]}
    drawn = cases["drawn-3-0001"]
    assert drawn["rebuild"] == "vcheck.strategies.draw_case(3, 1)" and "data" in drawn
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "vcheck.strategies.draw_case(3, 1)" in page and "construction" in page
