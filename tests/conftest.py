"""Shared test setup: the `r` marker for live lme4 tests.

Without R, rpy2 or lme4 the `r` tests are skipped on a developer's machine, but fail in CI (CI=true):
a suite that silently skipped its oracle would prove nothing.
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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
