"""lme4 in a process of its own (vcheck.reference.server): the same answers as lme4 in this process,
R's errors carried back, a crash costs one request, and an audit through it finds what an inline one does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vcheck import audit, compare, reference
from vcheck.adapters.own import fit as vcheck_fit
from vcheck.auditing.strategies import draw_case
from vcheck.core.errors import DataError, RError, RNotAvailableError
from vcheck.reference.server import ReferenceServer, ReferenceServerDied

pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def server() -> ReferenceServer:
    with ReferenceServer() as s:
        yield s


def test_its_fits_and_criteria_are_lme4s_in_this_process(server: ReferenceServer) -> None:
    for i in range(4):
        case = draw_case(3, i)
        key = f"same-{i}"
        server.prefetch(key, case.formula, case.data, case.REML)
        theirs = server.fit(key, case.REML)
        here = reference.lmer(case.formula, case.data, case.REML, extras="modes")
        # lme4 in another process sums in another order (Eigen's SIMD follows memory alignment), and on a
        # flat optimum those ulps move BOBYQA's stop by up to ~1e-5 in theta (lme4 run twice in two
        # fresh processes does the same): the same optimum is what compare() calls a tie
        same = compare(theirs, here)
        assert same.ok, str(same)
        assert theirs.criterion == pytest.approx(here.criterion, rel=1e-9)
        np.testing.assert_array_equal(theirs.X, here.X)
        assert theirs.X_names == here.X_names and theirs.cnms == here.cnms
        assert (theirs.Zt != here.Zt).nnz == 0
        assert list(theirs.row_index) == list(here.row_index)  # the data's own labels
        assert theirs.ranef is not None and theirs.condVar is None  # extras "modes"
        theta = np.asarray(here.theta) * 1.1
        d_here = reference.devfun(case.formula, case.data, case.REML)(theta)
        assert server.criterion(key, theta, case.REML) == pytest.approx(d_here, rel=1e-13)
        assert server.seconds_of(key) > 0
        server.forget(key)


def test_more_cases_in_flight_than_the_server_keeps_are_all_answered(server: ReferenceServer) -> None:
    from vcheck.reference.server import KEEP

    cases = [draw_case(6, i) for i in range(KEEP + 4)]
    for i, case in enumerate(cases):
        server.prefetch(f"many-{i}", case.formula, case.data, case.REML)
    fits = [server.fit(f"many-{i}", case.REML) for i, case in enumerate(cases)]
    # the first case's data was evicted in the server by now: asking its criterion ships it again
    first = cases[0]
    d = server.criterion("many-0", np.asarray(fits[0].theta), first.REML)
    assert d == pytest.approx(fits[0].criterion, rel=1e-12)
    for i in range(len(cases)):
        server.forget(f"many-{i}")


def test_r_errors_come_back_as_the_same_exceptions(server: ReferenceServer) -> None:
    data = pd.DataFrame({"y": np.arange(6.0), "g": list("aabbcc")})
    server.prefetch("missing-column", "y ~ x + (1|g)", data, True)
    with pytest.raises(RError, match="object 'x' not found"):  # as reference.lmer raises it here
        server.fit("missing-column", True)
    with pytest.raises(RError, match="object 'x' not found"):
        reference.lmer("y ~ x + (1|g)", data)
    server.prefetch("not-a-frame", "y ~ 1 + (1|g)", data.to_dict(), True)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="DataFrame"):
        server.fit("not-a-frame", True)
    one_level = pd.DataFrame({"y": np.arange(6.0), "g": ["a"] * 6})
    server.prefetch("one-level", "y ~ 1 + (1|g)", one_level, True)
    with pytest.raises(RError, match="grouping factors must have > 1 sampled level") as info:
        server.fit("one-level", True)
    assert "grouping factors" in info.value.r_message
    with pytest.raises(KeyError, match="prefetch"):
        server.fit("never-registered", True)


def test_a_killed_process_costs_the_request_it_served_and_the_next_one_is_answered() -> None:
    case = draw_case(3, 0)
    with ReferenceServer() as s:
        s.prefetch("warm", case.formula, case.data, case.REML)
        s.fit("warm", case.REML)  # R is up
        pid = s.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        s.prefetch("victim", case.formula, case.data, case.REML)
        s.prefetch("after", case.formula, case.data, case.REML)
        with pytest.raises(ReferenceServerDied, match=r"killed by SIGKILL"):
            s.fit("victim", case.REML)
        assert s.fit("after", case.REML).theta is not None  # sent again to a new process
        assert s.restarts == 1 and s.pid != pid


def test_a_server_without_r_says_so_for_every_request(tmp_path: Path) -> None:
    s = ReferenceServer()
    old = os.environ.get("R_HOME")
    os.environ["R_HOME"] = str(tmp_path / "no-R-here")  # rpy2 cannot find R there
    try:
        s.start()
    finally:
        if old is None:
            os.environ.pop("R_HOME")
        else:
            os.environ["R_HOME"] = old
    try:
        case = draw_case(3, 0)
        s.prefetch("k", case.formula, case.data, case.REML)
        with pytest.raises(RNotAvailableError):
            s.fit("k", case.REML)
        s.prefetch("k2", case.formula, case.data, case.REML)
        with pytest.raises(RNotAvailableError):
            s.fit("k2", case.REML)
        assert s.restarts == 0
    finally:
        s.close()


def test_an_audit_through_lme4s_processes_finds_what_an_inline_one_finds() -> None:
    by_process = audit(vcheck_fit, examples=12, seed=4, builtin=False, reference="process")
    inline = audit(vcheck_fit, examples=12, seed=4, builtin=False, reference="inline")
    assert by_process.reference == "process" and inline.reference == "inline"
    assert not by_process.errors and not inline.errors
    assert summary_of(by_process) == summary_of(inline)
    assert all(c.reference_seconds > 0 for c in by_process.cases)
    assert "lme4 in processes of its own" in by_process.summary()


def summary_of(result: object) -> list[tuple[str, str, str, float | None]]:
    return [
        (f.case.label, f.quantity, f.kind, None if f.rel_diff is None else float(f"{f.rel_diff:.3e}"))
        for f in result.findings  # type: ignore[attr-defined]
    ]


def test_a_script_without_a_main_guard_can_audit(tmp_path: Path) -> None:
    # the server is a fresh interpreter, not a multiprocessing child: the caller's script is not re-run
    script = tmp_path / "audit_me.py"
    script.write_text(
        textwrap.dedent(
            """
            import vcheck
            from vcheck.adapters.own import fit
            result = vcheck.audit(fit, examples=2, seed=0, builtin=False)
            print("RAN", len(result.cases), len(result.errors))
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("RAN") == 1 and "RAN 2 0" in out.stdout


def test_large_cases_in_flight_both_ways_do_not_deadlock(tmp_path: Path) -> None:
    # five cases of 60,000 rows asked for at once: ~1 MB of data each way per case, more than a socket
    # buffers, while the server's answers pile up unread.  Run in a child so a hang fails, not blocks.
    script = tmp_path / "big.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np, pandas as pd
            from vcheck.reference.server import ReferenceServer

            def data(seed):
                r = np.random.default_rng(seed)
                g = r.integers(0, 300, 60_000)
                return pd.DataFrame({"y": r.normal(size=g.size) + 0.01 * g, "x": r.normal(size=g.size),
                                     "g": pd.Categorical.from_codes(g, [f"g{i}" for i in range(300)])})

            with ReferenceServer() as s:
                for i in range(5):
                    s.prefetch(f"k{i}", "y ~ x + (1|g)", data(i), True)
                print("FITS", [len(s.fit(f"k{i}", True).theta) for i in range(5)])
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "FITS [1, 1, 1, 1, 1]" in out.stdout
