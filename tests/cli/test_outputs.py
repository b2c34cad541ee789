"""`vcheck audit` / `vcheck report` outputs: safe --out folders (busy, stale, someone else's, --force),
--format, -q/-v, progress lines in a log, and a one-line error without rpy2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vcheck.report import outdir

REPO = Path(__file__).resolve().parents[2]
NO_RPY2 = REPO / "tests" / "testing" / "no_rpy2"
SLOW_IMPL = REPO / "tests" / "auditing"  # cluster_impl:fit, vcheck's fit slowed to 0.3 s a case


def env(*front: Path, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    out["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in front), str(REPO)])
    out.update(extra)
    return out


def vcheck(
    *args: str, cwd: Path, front: tuple[Path, ...] = (), **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcheck", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env(*front, **extra),
        timeout=900,
    )


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vcheck: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- without rpy2 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["audit", "vcheck", "--cases", "0"],
        ["audit", "statsmodels", "--cases", "0", "--workers", "0"],
        ["report", "--examples", "sleepstudy"],
        ["compare", "Reaction ~ Days + (Days|Subject)", "--data", "DATA"],
    ],
)
def test_commands_needing_lme4_without_rpy2(args: list[str], tmp_path: Path) -> None:
    data = tmp_path / "sleep.csv"
    from vcheck.reference import examples

    examples.load("sleepstudy").data.to_csv(data, index=False)
    args = [str(data) if a == "DATA" else a for a in args]
    if args[0] in ("audit", "report"):
        args += ["--out", str(tmp_path / "out")]
    proc = vcheck(*args, cwd=tmp_path, front=(NO_RPY2,))
    one_error_line(proc, "rpy2", "pip install 'vcheck[r]'", "lme4")
    assert not (tmp_path / "out" / "index.html").exists()


def test_what_needs_no_r_works_without_rpy2(tmp_path: Path) -> None:
    data = tmp_path / "sleep.csv"
    from vcheck.reference import examples

    examples.load("sleepstudy").data.to_csv(data, index=False)
    proc = vcheck(
        "fit", "Reaction ~ Days + (Days|Subject)", "--data", str(data), cwd=tmp_path, front=(NO_RPY2,)
    )
    assert proc.returncode == 0, proc.stderr
    assert "REML criterion at convergence: 1743.6" in proc.stdout
    code = "import vcheck, vcheck.testing; print(vcheck.lmer, vcheck.__version__)"
    done = subprocess.run([sys.executable, "-c", code], env=env(NO_RPY2), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    blocked = subprocess.run(
        [sys.executable, "-c", "import rpy2"], env=env(NO_RPY2), capture_output=True, text=True
    )
    assert blocked.returncode != 0  # the block works


# --- folders ---------------------------------------------------------------------------------------
def test_someone_elses_folder_is_refused_unless_force(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.md").write_text("# my own notes\n", encoding="utf-8")
    (out / "data.csv").write_text("a\n1\n", encoding="utf-8")
    proc = vcheck("audit", "vcheck", "--cases", "0", "--out", str(out), cwd=tmp_path)
    one_error_line(proc, "not empty and not a vcheck audit output", "--force")
    assert (out / "index.md").read_text(encoding="utf-8") == "# my own notes\n"
    proc = vcheck("report", "--examples", "sleepstudy", "--out", str(out), cwd=tmp_path)
    one_error_line(proc, "not a vcheck reference output")
    with pytest.raises(outdir.OutputNotOursError):
        outdir.check_writable(out, "audit")
    outdir.check_writable(out, "audit", force=True)
    # a file where the folder should be
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(outdir.OutputNotOursError, match="is a file"):
        outdir.check_writable(tmp_path / "afile", "audit", force=True)


def test_lock_stale_and_busy(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with outdir.claim(out, "audit"):
        assert (out / outdir.LOCK).is_file()
        info = outdir.read_lock(out)
        assert info is not None and info["pid"] == os.getpid()
        with pytest.raises(outdir.OutputBusyError, match=f"pid {os.getpid()}"):
            outdir.acquire(out, "audit")
    assert not (out / outdir.LOCK).exists() and (out / outdir.MARKER).is_file()
    # a lock left by a process that is gone is taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = json.loads(outdir._lock_body("audit"))
    lock["pid"] = dead.pid
    (out / outdir.LOCK).write_text(json.dumps(lock), encoding="utf-8")
    assert outdir.is_stale(lock)
    with outdir.claim(out, "audit"):
        assert outdir.read_lock(out)["pid"] == os.getpid()  # type: ignore[index]
    # a lock from another machine is never judged stale here
    assert not outdir.is_stale({**lock, "host": "elsewhere.example"})
    # an unreadable lock is stale
    (out / outdir.LOCK).write_text("not json", encoding="utf-8")
    with outdir.claim(out, "audit"):
        pass


@pytest.mark.r
def test_second_audit_into_a_busy_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "audit"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vcheck",
            "audit",
            "cluster_impl:fit",
            "--cases",
            "2",
            "--out",
            str(out),
            "--workers",
            "0",
        ],
        cwd=tmp_path,
        env=env(SLOW_IMPL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / outdir.LOCK).exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = vcheck("audit", "vcheck", "--cases", "0", "--out", str(out), cwd=tmp_path)
        line = one_error_line(second, "is in use by another running vcheck", f"pid {first.pid}")
        assert "cluster_impl:fit" in line  # the owner's command
        _, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert findings["target"] == "cluster_impl:fit" and findings["cases_run"] == 17 + 2  # nothing lost
    assert not (out / outdir.LOCK).exists()


@pytest.mark.r
def test_audit_formats_quiet_and_log_lines(tmp_path: Path) -> None:
    out = tmp_path / "a"
    proc = vcheck(
        "audit",
        "vcheck",
        "--cases",
        "1",
        "--out",
        str(out),
        "--format",
        "junit",
        "--format",
        "json",
        "--workers",
        "0",
        cwd=tmp_path,
        VCHECK_PROGRESS_SECONDS="0",
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "findings.json",
        "junit.xml",
    ]
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("vcheck: audit vcheck: ") for line in lines), proc.stderr
    assert "\r" not in proc.stderr and lines[-1].startswith("vcheck: audit vcheck: 18/18 cases")
    quiet = vcheck(
        "-q",
        "audit",
        "vcheck",
        "--cases",
        "0",
        "--out",
        str(out),
        "--format",
        "json",
        "--workers",
        "0",
        cwd=tmp_path,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    bad = vcheck("audit", "vcheck", "--out", str(out), "--format", "pdf", cwd=tmp_path)
    one_error_line(bad, "--format: unknown format 'pdf'")


@pytest.mark.parametrize(
    "module", [["vcheck.bench"], ["vcheck.auditing", "--examples", "0"], ["vcheck.reference", "--versions"]]
)
def test_module_entry_points_without_rpy2(module: list[str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", *module],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env(NO_RPY2),
        timeout=300,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m {module[0]}: error: "), proc.stderr
    assert "pip install 'vcheck[r]'" in lines[0]
