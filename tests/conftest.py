"""Shared test setup: the `r` marker for live lme4 tests, the hypothesis profiles, the long runs.

Without R, rpy2 or lme4 the `r` tests are skipped on a developer's machine, but fail in CI (CI=true):
a suite that silently skipped its oracle would prove nothing.

Hypothesis profiles: `ci` (CI=true; derandomized, 100 examples for the main lme4 properties: the
fewest that still draw every family, see tests/test_profiles.py), `dev` (20, random), `thorough`
(2000, `nox -s tests_long`).  `LONG_RUNS` are marked `slow`: `nox -s tests` leaves them to
`nox -s tests_long`.  They re-run, on more processes or a Dask cluster, what the default suite checks
in one process; no check against lme4 lives only there.
"""

from __future__ import annotations

import functools
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=20,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@functools.cache
def r_problem() -> str | None:
    """None when R with lme4 is usable through vcheck's bridge (rpy2), else what is missing."""
    from vcheck.core.errors import RNotAvailableError
    from vcheck.reference.rbridge import session

    try:
        session()  # starts R, loads lme4, sources r_reference/bridge.R, undoes rpy2's LD_LIBRARY_PATH
    except RNotAvailableError as exc:
        return str(exc)
    return None


#: tests that only repeat, on other executors, what the default run checks (node ids, without params)
LONG_RUNS = {
    "tests/auditing/test_sweep.py::test_same_findings_in_1_and_2_workers_and_on_a_local_dask_cluster",
    "tests/auditing/test_sweep.py::test_a_dask_cluster_by_address",
}
#: ... and single parametrizations of them (the other parameters stay in the default run)
LONG_RUN_PARAMS = {
    "tests/auditing/test_sweep.py::test_a_case_that_kills_its_worker_or_makes_R_fail_is_that_cases_error[dask]",
}


def _mark_long_runs(items: list[pytest.Item]) -> None:
    for item in items:
        node = item.nodeid.replace("\\", "/")
        if node.split("[")[0] in LONG_RUNS or node in LONG_RUN_PARAMS:
            item.add_marker(pytest.mark.slow)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _mark_long_runs(items)
    needs_r = [item for item in items if "r" in item.keywords]
    if not needs_r:
        return
    problem = r_problem()
    if problem is None:
        return
    in_ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    for item in needs_r:
        if in_ci:
            item.add_marker(pytest.mark.usefixtures("_fail_without_r"))
        else:
            item.add_marker(pytest.mark.skip(reason=f"live lme4 test: {problem}"))


@pytest.fixture
def _fail_without_r() -> None:
    pytest.fail(f"CI=true and R/lme4 is required: {r_problem()}")
