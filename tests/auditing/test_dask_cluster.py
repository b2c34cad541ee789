"""An audit on an external Dask cluster, as on a real one: `dask scheduler` and two `dask worker`
processes on 127.0.0.1, `vcheck audit ... --scheduler ADDRESS`; one worker is killed mid-audit.

Every case must be accounted for (a result each, none twice) and the case the dead worker held must be
reported as its error, whatever the scheduler's own retry policy (`allowed-failures` is 3 by default on
a scheduler vcheck did not start: it would rerun the case elsewhere and the death would go unseen).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    out["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO)])
    out.update(extra)
    return out


def wait_for(path: Path, seconds: float, procs: list[subprocess.Popen[bytes]] = ()) -> None:  # type: ignore[assignment]
    deadline = time.monotonic() + seconds
    while not path.exists():
        for p in procs:
            assert p.poll() is None, f"{p.args} exited with {p.returncode}"
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.1)


@pytest.fixture(params=["--no-nanny", "--nanny"])
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Path, list[subprocess.Popen[bytes]]]]:
    """A scheduler and two single-threaded workers: without a nanny a killed worker stays dead; with
    one (`dask worker`'s default) the nanny starts a new worker process in its place."""
    hold = tmp_path / "hold"
    hold.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    info = tmp_path / "scheduler.json"
    e = env(VCHECK_TEST_HOLD=str(hold))
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        p = subprocess.Popen(
            [sys.executable, "-m", *args], env=e, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
        )
        procs.append(p)
        return p

    try:
        start(
            "scheduler",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(info),
        )
        wait_for(info, 60, procs)
        address = json.loads(info.read_text())["address"]
        for i in range(2):
            start(
                f"worker{i}",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                request.param,
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--name",
                f"w{i}",
            )
        yield address, hold, procs
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


@pytest.mark.r
@pytest.mark.slow
def test_worker_killed_mid_audit_is_reported(
    cluster: tuple[str, Path, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    address, hold, _ = cluster
    out = tmp_path / "audit"
    audit = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vcheck",
            "audit",
            "cluster_impl:fit",
            "--cases",
            "4",
            "--scheduler",
            address,
            "--out",
            str(out),
        ],
        env=env(VCHECK_TEST_HOLD=str(hold)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        wait_for(hold / "pid", 300, [audit])
        pid = int((hold / "pid").read_text())
        held_formula = (hold / "claimed").read_text().splitlines()[1]
        os.kill(pid, signal.SIGKILL)  # the worker holding that case dies mid-audit
        stdout, stderr = audit.communicate(timeout=600)
    finally:
        if audit.poll() is None:
            audit.kill()
    assert audit.returncode == 0, stdout + stderr
    findings = json.loads((out / "findings.json").read_text())
    assert findings["cases_run"] == 17 + 4  # every case accounted for: 17 built-in examples, 4 drawn
    died = [e for e in findings["errors"] if "died" in e["error"]]
    assert len(died) == 1, findings["errors"]
    assert died[0]["formula"] == held_formula
    assert "worker" in died[0]["error"] and "died" in died[0]["error"]
    assert len(findings["errors"]) == 1  # the other cases ran on the surviving worker
    assert "1 worker(s) died" in stdout
