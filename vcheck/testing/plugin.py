"""vcheck's pytest plugin: the options of `vcheck.testing`, and lme4's processes kept for the session.

Registered under the `pytest11` entry point (`vcheck = "vcheck.testing.plugin"`), so pytest loads it
wherever vcheck is installed; from a source checkout, `pytest -p vcheck.testing.plugin`.

    --vcheck-seed S          the seed of the drawn cases (overrides `cases(seed=...)`)
    --vcheck-examples N      how many drawn cases (overrides `cases(examples=...)`)
    --vcheck-reference=live|frozen
                             live: lme4 through rpy2, in a process of its own per pytest process (per
                             xdist worker), started at the first case and stopped at the session's end;
                             frozen: lme4's frozen outputs for the built-in examples, no R needed

The options are read in `pytest_configure`, before test modules are imported, so `@cases(...)`
parametrizes with them; every xdist worker gets the same options and so collects the same cases.
"""

from __future__ import annotations

import os

import pytest

from vcheck import testing


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vcheck", "vcheck: LMM implementations against lme4")
    group.addoption("--vcheck-seed", type=int, default=None, metavar="S", help="seed of vcheck's drawn cases")
    group.addoption(
        "--vcheck-examples",
        type=int,
        default=None,
        metavar="N",
        help="number of drawn cases per @cases test (the built-in examples come on top)",
    )
    group.addoption(
        "--vcheck-reference",
        choices=testing.REFERENCES,
        default=os.environ.get("VCHECK_REFERENCE", "live"),
        help="live: lme4 through rpy2 (default); frozen: lme4's frozen outputs for the built-in "
        "examples, no R (drawn cases left out)",
    )


def pytest_configure(config: pytest.Config) -> None:
    examples = config.getoption("--vcheck-examples")
    if examples is not None and examples < 0:
        raise pytest.UsageError(f"--vcheck-examples must be 0 or more, not {examples}")
    testing.settings.seed = config.getoption("--vcheck-seed")
    testing.settings.examples = examples
    testing.settings.reference = config.getoption("--vcheck-reference")


def pytest_report_header(config: pytest.Config) -> str:
    s = testing.settings
    if s.reference == "frozen":
        return (
            "vcheck: lme4's frozen outputs (built-in examples only; drawn cases need --vcheck-reference=live)"
        )
    seed = "as each @cases says" if s.seed is None else str(s.seed)
    examples = "as each @cases says" if s.examples is None else str(s.examples)
    return (
        f"vcheck: live lme4 (one process per pytest process); drawn cases: seed {seed}, {examples} per test"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop lme4's processes of this pytest process (they are kept until now)."""
    from vcheck.reference import server

    server._close_shared()
    testing._server.cache_clear()
