"""Audit sweeps at scale (`vcheck.auditing.sweep`): the same findings whatever runs them, a case that
kills its worker or makes R fail costs only that case, and a sweep stopped part-way and resumed writes
the same report as one that ran through.

The plug-ins below are imported by name in the worker processes (this module is `test_sweep` on the
path pytest gives the tests directory); environment variables name the cases on which they misbehave.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from vcheck.auditing import large_models
from vcheck.auditing.checkpoint import CHECKPOINT, Checkpoint
from vcheck.auditing.plan import SweepError, SweepPlan
from vcheck.auditing.results import CaseResult
from vcheck.auditing.sweep import comparable, run_sweep

TARGET = "test_sweep:criterion_off_by_one"
#: four drawn cases of 58 to 90 rows
PLAN = SweepPlan(target=TARGET, seed=7, examples=4, builtin=False)
HERE = Path(__file__).resolve().parents[1]  # tests/, where faults.py is
PLUGINS = Path(__file__).resolve().parent  # tests/auditing/, where this module (its plug-ins) is


# --- plug-ins -------------------------------------------------------------------------------------------
def digest(data: pd.DataFrame) -> str:
    """A case's data, identified whatever process holds it."""
    return hashlib.sha1(pd.util.hash_pandas_object(data).to_numpy().tobytes()).hexdigest()


def criterion_off_by_one(formula: str, data: pd.DataFrame, REML: bool) -> dict[str, Any]:
    """lme4's own answer with its criterion off by one (a construction finding on every case).

    On the case whose data digest is in VCHECK_TEST_EXIT it ends its process (os._exit(7)); on the one in
    VCHECK_TEST_R_ERROR it makes R fail; it sleeps VCHECK_TEST_SLOW seconds first.
    """
    d = digest(data)
    if d == os.environ.get("VCHECK_TEST_EXIT"):
        os._exit(7)
    if d == os.environ.get("VCHECK_TEST_R_ERROR"):
        import rpy2.robjects as ro

        ro.r('stop("planted R failure")')
    time.sleep(float(os.environ.get("VCHECK_TEST_SLOW", "0")))
    from vcheck import reference

    fit = reference.lmer(formula, data, REML=REML, extras=False)
    return {"beta": fit.beta, "sigma": fit.sigma, "varcorr": fit.varcorr, "criterion": fit.criterion + 1.0}


def not_expressible(formula: str, data: pd.DataFrame, REML: bool) -> dict[str, Any]:
    """Fits nothing: every case is unsupported (no finding), and no R is needed (after VCHECK_TEST_SLOW s)."""
    time.sleep(float(os.environ.get("VCHECK_TEST_SLOW", "0")))
    raise NotImplementedError("this toy fits no model")


# --- helpers --------------------------------------------------------------------------------------------
@pytest.fixture
def importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes (spawned ones and Dask's) find this module's plug-ins."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(PLUGINS), str(HERE), os.environ.get("PYTHONPATH")) if p)
    )
    monkeypatch.syspath_prepend(str(HERE))


def report_files(result: Any, out: Path, plan: SweepPlan = PLAN) -> dict[str, str]:
    """The audit report of a result (as `vcheck audit` writes it), file name -> text."""
    from vcheck.report import write_audit_report

    write_audit_report(
        result,
        out,
        target=plan.target,
        seed=plan.seed,
        cases=plan.examples,
        versions={"R": "R (fixed)", "lme4": "(fixed)"},
    )
    return {
        name: (out / name).read_text(encoding="utf-8") for name in ("findings.json", "index.md", "index.html")
    }


def vcheck_command(*args: Any, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcheck", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
        timeout=600,
    )


# --- the same findings whatever runs them ----------------------------------------------------------------
@pytest.mark.r
def test_same_findings_in_1_and_2_workers_and_on_a_local_dask_cluster(
    importable: None, tmp_path: Path
) -> None:
    runs = {
        "this process": run_sweep(PLAN),
        "1 worker": run_sweep(PLAN, workers=1),
        "2 workers": run_sweep(PLAN, workers=2),
        "dask": run_sweep(PLAN, scheduler="local", workers=2),
    }
    first = runs["1 worker"]
    assert first.by_kind()["construction"] >= len(PLAN.cases())  # the planted criterion, on every case
    reports = {}
    for name, res in runs.items():
        assert [c.case.index for c in res.cases] == [0, 1, 2, 3], name
        assert not res.errors and not res.interrupted, name
        reports[name] = report_files(res, tmp_path / name.replace(" ", "_"))
        assert comparable(res) == comparable(first), name
    for name in runs:
        assert reports[name] == reports["1 worker"], name
    assert runs["dask"].executor == "dask" and runs["2 workers"].executor == "processes"


def test_a_dask_cluster_by_address(importable: None) -> None:
    """`--scheduler ADDRESS`: the cases go to a cluster vcheck did not start (one the test starts)."""
    import logging

    from distributed import LocalCluster

    plan = SweepPlan(target="test_sweep:not_expressible", seed=7, examples=3, builtin=False)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        res = run_sweep(plan, scheduler=cluster.scheduler_address)
    assert res.executor == "dask" and res.workers == 1
    assert comparable(res) == comparable(run_sweep(plan))
    assert res.findings == [] and [c.unsupported for c in res.cases] == ["this toy fits no model"] * 3


# --- a case that kills its worker or makes R fail --------------------------------------------------------
@pytest.mark.r
@pytest.mark.parametrize(
    "how", [{"workers": 2}, {"scheduler": "local", "workers": 2}], ids=["processes", "dask"]
)
def test_a_case_that_kills_its_worker_or_makes_R_fail_is_that_cases_error(
    how: dict[str, Any], importable: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = PLAN.cases()
    monkeypatch.setenv("VCHECK_TEST_EXIT", digest(cases[1].data))
    monkeypatch.setenv("VCHECK_TEST_R_ERROR", digest(cases[2].data))
    res = run_sweep(PLAN, **how)
    assert [c.case.index for c in res.cases] == [0, 1, 2, 3]
    died, failed = res.cases[1], res.cases[2]
    assert died.error is not None and "died" in died.error, died.error
    assert failed.error is not None and "planted R failure" in failed.error, failed.error
    for ok in (res.cases[0], res.cases[3]):  # R still works in the worker that saw the R error
        assert ok.error is None and any(f.quantity == "criterion" for f in ok.findings)
    assert res.workers_lost == 1
    summary = res.summary()
    assert "2 cases did not run" in summary and "drawn(seed=7, index=1)" in summary


# --- interrupt and resume --------------------------------------------------------------------------------
@pytest.mark.r
def test_resume_after_an_interrupted_sweep_gives_the_same_report(importable: None, tmp_path: Path) -> None:
    whole = run_sweep(PLAN, out_dir=tmp_path / "whole")  # in this process
    seen: list[CaseResult] = []

    def interrupt_after_two(one: CaseResult) -> None:
        seen.append(one)
        if len(seen) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the sweep's loop

    part = run_sweep(PLAN, out_dir=tmp_path / "part", progress=interrupt_after_two)
    assert part.interrupted and len(part.cases) == 2 and part.not_run == 2
    assert "interrupted: 2 of 4 cases did not run" in part.summary()
    checkpoint = tmp_path / "part" / CHECKPOINT
    assert len(checkpoint.read_text(encoding="utf-8").splitlines()) == 1 + 2
    rest = run_sweep(PLAN, workers=1, out_dir=tmp_path / "part", resume=True)  # resumed in a worker
    assert rest.resumed == 2 and not rest.interrupted and len(rest.cases) == 4
    assert comparable(rest) == comparable(whole)
    assert report_files(rest, tmp_path / "r1") == report_files(whole, tmp_path / "r2")


@pytest.mark.r
@pytest.mark.slow
def test_ctrl_c_then_resume_through_the_command(importable: None, tmp_path: Path) -> None:
    """`vcheck audit` stopped by SIGINT to its process group (a Ctrl-C) writes the report of what
    finished and exits 130; `--resume` finishes it with the report an uninterrupted audit writes."""
    from vcheck.report import write_audit_report

    plan = SweepPlan(target="test_sweep:not_expressible", seed=7, examples=2)
    args = ["audit", plan.target, "--cases", "2", "--seed", "7", "--quiet", "--workers", "1"]
    whole = tmp_path / "whole"  # what `vcheck audit` writes for the whole sweep
    write_audit_report(run_sweep(plan), whole, target=plan.target, seed=plan.seed, cases=plan.examples)
    part = tmp_path / "part"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vcheck", *args, "--out", str(part)],
        cwd=tmp_path,
        env={**os.environ, "VCHECK_TEST_SLOW": "0.3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    checkpoint = part / CHECKPOINT
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.exists() and len(checkpoint.read_text(encoding="utf-8").splitlines()) >= 1 + 3:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the audit finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    ran = json.loads((part / "findings.json").read_text(encoding="utf-8"))["cases_run"]
    finished = len(checkpoint.read_text(encoding="utf-8").splitlines()) - 1
    assert 3 <= ran == finished < len(plan.cases())
    resumed = vcheck_command(*args, "--out", part, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished} resumed from the checkpoint" in resumed.stdout
    for name in ("findings.json", "index.md"):
        assert (part / name).read_text(encoding="utf-8") == (whole / name).read_text(encoding="utf-8")
    assert not checkpoint.exists()  # a complete audit leaves nothing to resume


def test_resume_skips_finished_cases_and_a_cut_line(importable: None, tmp_path: Path) -> None:
    plan = SweepPlan(target="test_sweep:not_expressible", seed=7, examples=4, builtin=False)
    whole = run_sweep(plan)
    calls: list[int] = []

    def interrupt_after_two(one: CaseResult) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    part = run_sweep(plan, out_dir=tmp_path, progress=interrupt_after_two)
    assert part.interrupted and [c.case.index for c in part.cases] == [0, 1]
    checkpoint = tmp_path / CHECKPOINT
    with checkpoint.open("a", encoding="utf-8") as f:
        f.write('{"position": 2, "result": {"case"')  # a line cut by a crash: that case runs again
    resumed: list[int | None] = []
    rest = run_sweep(plan, out_dir=tmp_path, resume=True, progress=lambda one: resumed.append(one.case.index))
    assert rest.resumed == 2 and resumed == [0, 1, 2, 3]
    assert comparable(rest) == comparable(whole)
    assert not rest.findings and len(rest.unsupported) == 4


def test_resume_refuses_the_checkpoint_of_another_sweep(importable: None, tmp_path: Path) -> None:
    other = SweepPlan(target=PLAN.target, seed=8, examples=4, builtin=False)
    Checkpoint(tmp_path / CHECKPOINT).start(other, 4, keep=False)
    with pytest.raises(SweepError, match="seed 8 there, 7 here"):
        run_sweep(PLAN, out_dir=tmp_path, resume=True)
    (tmp_path / CHECKPOINT).write_text("not a checkpoint\n", encoding="utf-8")
    with pytest.raises(SweepError, match="not a vcheck sweep checkpoint"):
        run_sweep(PLAN, out_dir=tmp_path, resume=True)


def test_the_command_refuses_a_mismatched_resume_in_one_line(importable: None, tmp_path: Path) -> None:
    plan = SweepPlan(target="test_sweep:not_expressible", seed=1, examples=3)
    Checkpoint(tmp_path / "out" / CHECKPOINT).start(plan, 20, keep=False)
    proc = vcheck_command(
        "audit",
        plan.target,
        "--cases",
        "3",
        "--seed",
        "2",
        "--out",
        "out",
        "--resume",
        "--quiet",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("vcheck: error: cannot resume") and "seed 1 there, 2 here" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unknown_large_model_is_a_usage_error(tmp_path: Path) -> None:
    assert large_models.parse_names(" instEval, SLOPE200K,instEval") == ["instEval", "slope200k"]
    proc = vcheck_command("audit", "vcheck", "--large", "instEval,bogus", "--quiet", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown model 'bogus'" in proc.stderr and "Traceback" not in proc.stderr


def test_workers_are_never_forked() -> None:
    with pytest.raises(SweepError, match="fork"):
        run_sweep(SweepPlan(target="vcheck", examples=1, builtin=False), workers=1, start_method="fork")


def test_plan_orders_examples_drawn_then_large_cases() -> None:
    plan = SweepPlan(target="vcheck", seed=3, examples=2, builtin=True, large=("slope20k",))
    cases = plan.cases()
    assert [c.origin for c in cases[-3:]] == ["drawn", "drawn", "large"]
    assert cases[-1].label == "large(slope20k)" and cases[-1].formula == "y ~ x + (x|g)"
    assert plan.header() == {
        "target": "vcheck",
        "seed": 3,
        "cases": 2,
        "builtin": True,
        "large": ["slope20k"],
    }
