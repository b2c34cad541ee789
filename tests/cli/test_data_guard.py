"""Reading data refuses absurd input before it allocates: /dev/zero, binary garbage, a 100 GB (sparse) file,
an endless stream; one `vcheck: error:` line, exit 2, and the process stays small (its peak RSS measured)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from measured import child_env, run_vcheck

from vcheck.cli import data_guard
from vcheck.cli.data import read_csv
from vcheck.core.errors import DataError

#: a refusal must come long before the data is read: the child's whole peak RSS (Python, numpy, pandas)
REFUSAL_RSS = 200 * 2**20


def run_measured(*args: str, stdin: int | None = None) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in bytes) of `python -m vcheck ARGS`."""
    m = run_vcheck(*args, stdin=stdin, timeout=300)
    return m.code, m.stderr, m.rss


def assert_refused(code: int, err: str, rss: int, *needles: str) -> None:
    assert code == 2, (code, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vcheck: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert rss < REFUSAL_RSS, f"peak RSS {rss / 2**20:.0f} MiB"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_dev_zero_is_refused_as_binary_before_reading() -> None:
    assert_refused(*run_measured("fit", "y ~ x + (1|g)", "--data", "/dev/zero"), "/dev/zero", "binary")


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
    assert_refused(*run_measured("fit", "y ~ x + (1|g)", "--data", str(path)), str(path), "binary")


def test_a_100_GB_file_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(100 * 10**9)  # sparse: no disk used
    for command in ("fit", "compare"):
        code, err, rss = run_measured(command, "y ~ x + (1|g)", "--data", str(path))
        assert_refused(code, err, rss, str(path), "too large for the memory available", "100.0 GB")


def test_an_endless_stream_is_stopped_at_the_budget() -> None:
    """`yes 1.5,a | vcheck fit --data -` has no size to check: reading stops at the budget (a small one
    here, on a pipe fed without end by a child process)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer: text rows until the reader goes away
        os.close(r)
        try:
            while True:
                os.write(w, b"1.5,a\n" * 10_000)
        except OSError:
            os._exit(0)
    os.close(w)
    try:
        with open(r, "rb") as stream, pytest.raises(DataError, match=r"more than .* of text read"):
            pd.read_csv(data_guard.guarded_source("-", stream, "data from stdin", budget=50 * 10**6))
    finally:
        os.waitpid(pid, 0)


def test_a_file_over_the_budget_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"y": np.arange(20_000) / 7, "g": [f"level{i % 97}" for i in range(20_000)]}).to_csv(
        path, index=False
    )
    size = path.stat().st_size
    with path.open("rb") as f, pytest.raises(DataError, match="too large for the memory available"):
        data_guard.guarded_source(str(path), f, "data file", budget=size)  # parsing takes more than its size
    with path.open("rb") as f:
        read = pd.read_csv(data_guard.guarded_source(str(path), f, "data file", budget=100 * size))
    pd.testing.assert_frame_equal(read, pd.read_csv(path))


def test_the_parsed_ratio_is_measured_on_the_first_rows() -> None:
    numbers = b"y,x\n" + b"".join(b"%.17g,%.17g\n" % (i / 3, i / 7) for i in range(500))
    strings = b"g\n" + b"".join(b"a%d\n" % (i % 3) for i in range(2000))
    assert data_guard.parsed_ratio(numbers) == 1.0  # 8 bytes per ~19 characters
    assert data_guard.parsed_ratio(strings) > 5.0  # a Python string per 3 characters
    assert data_guard.parsed_ratio(b"no newline at all") == 1.0


def test_normal_data_reads_as_pandas_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.DataFrame({"y": [1.0, 2.5, np.nan], "x": [1, 2, 3], "g": ["b", "a", "b"]})
    path = tmp_path / "small.csv"
    frame.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_csv(str(path)), pd.read_csv(path))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    pd.testing.assert_frame_equal(read_csv("-"), pd.read_csv(path))


def test_stdin_is_read_through_the_guard(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    pd.DataFrame({"y": np.arange(30) / 3, "x": np.arange(30) % 5, "g": list("abcde") * 6}).to_csv(
        path, index=False
    )
    with path.open("rb") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "vcheck", "fit", "y ~ x + (1|g)", "--data", "-", "--json"],
            stdin=f,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n"] == 30
    with open("/dev/zero", "rb") as zero:
        assert_refused(*run_measured("fit", "y ~ x + (1|g)", "--data", "-", stdin=zero.fileno()), "binary")


def test_memory_available_is_positive() -> None:
    m = data_guard.memory_available()
    assert m is None or m > 0
