"""Progress on stderr: a bar only on a terminal, elsewhere a log line every few seconds; -q silences it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from vcheck import logs
from vcheck.report import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    monkeypatch.setattr("sys.stderr", buffer)
    logs.setup(0, stream=buffer)
    yield buffer
    _reset()


def _reset() -> None:
    """Leave logging as it was for the next tests in this process."""
    logging.getLogger("vcheck").handlers.clear()
    logging.getLogger("vcheck").setLevel(logging.NOTSET)
    logging.getLogger("vcheck").propagate = True
    for name in logs.CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_log_lines_off_a_terminal(stderr: io.StringIO) -> None:
    with progress.progress_callback("audit x", total=3, interval=0.0) as tick:
        for i in range(1, 4):
            tick(i, 3, f"{i} findings")
    lines = stderr.getvalue().splitlines()
    assert lines == [line for line in lines if line.startswith("vcheck: audit x: ")]
    assert lines[-1].startswith("vcheck: audit x: 3/3 cases, 3 findings")
    assert "\r" not in stderr.getvalue()


def test_at_most_one_line_per_interval_and_a_last_one(stderr: io.StringIO) -> None:
    with progress.progress_callback("report", unit="example", total=100, interval=3600.0) as tick:
        for i in range(1, 101):
            tick(i, 100)
    assert stderr.getvalue().splitlines() == [stderr.getvalue().splitlines()[0]]
    assert "100/100 examples" in stderr.getvalue()


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    logs.setup(0, stream=terminal)
    try:
        assert progress.on_terminal()
        with progress.progress_callback("audit x", total=2) as tick:
            tick(1, 2)
            tick(2, 2)
        assert "\r" in terminal.getvalue() and "2/2" in terminal.getvalue()
        assert "vcheck: audit x" not in terminal.getvalue()  # a bar, not log lines
    finally:
        _reset()


def test_quiet_says_nothing(stderr: io.StringIO) -> None:
    logs.setup(-1, stream=stderr)
    with progress.progress_callback("audit x", total=1, interval=0.0) as tick:
        tick(1, 1)
    logging.getLogger("vcheck.anything").info("not shown")
    logging.getLogger("vcheck.anything").warning("shown")
    assert stderr.getvalue() == "vcheck: warning: shown\n"


def test_verbose_levels(stderr: io.StringIO) -> None:
    logs.setup(1, stream=stderr)
    logging.getLogger("vcheck.auditing.sweep").debug("what it does")
    assert stderr.getvalue() == "vcheck: [vcheck.auditing.sweep] what it does\n"
    assert logs.level_for(-1) == logging.WARNING and logs.level_for(0) == logging.INFO
    assert logging.getLogger("distributed").level == logging.WARNING
    logs.setup(2, stream=stderr)
    assert logging.getLogger("distributed").level == logging.DEBUG
