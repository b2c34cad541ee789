"""nox sessions for vcheck.

    nox -s tests      pytest, live lme4 tests included (they fail, never skip, when CI=true and R is missing);
                      everything but the tests marked `slow`, sized to finish in 10 minutes on 2 busy cores
    nox -s tests_long the `slow` tests, then the lme4 property tests with the `thorough` hypothesis profile
    nox -s lint       ruff and mypy
    nox -s reference  regenerate r_reference/frozen/ (lme4's outputs for the built-in examples) with R
    nox -s report     regenerate reports/ (pages and pictures, agreement with live lme4)
    nox -s bench      vcheck versus lme4 in one process, into reports/bench.md (`-- --quick`: ~5 min)
    nox -s audit      audit statsmodels, glmmTMB and nlme against lme4 into reports/audit-*/

Every session installs vcheck with its extras into its own virtualenv; R itself comes from Debian's
packages (`bash .ci/setup`).  Pass extra arguments after `--`, e.g. `nox -s tests -- -k design`.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
EXTRAS = ".[r,audit,dev,sparse]"


def _install(session: nox.Session) -> None:
    session.install("-e", EXTRAS)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite but the `slow` tests (hypothesis profile `ci` when CI is set, else `dev`).  Every
    check against lme4 runs here; `slow` marks only long runs of what is also checked here in short."""
    _install(session)
    env = {
        "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
    }
    session.run("python", "-m", "pytest", "-q", "-m", "not slow", *session.posargs, env=env)


@nox.session(python=PYTHON)
def tests_long(session: nox.Session) -> None:
    """The long runs: the `slow` tests, then the lme4 property tests with many more drawn cases."""
    _install(session)
    session.run("python", "-m", "pytest", "-q", "-m", "slow", *session.posargs)
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "tests/auditing/test_properties.py",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "thorough")},
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (style, imports, bugs) and mypy (types) over the package and the tests."""
    _install(session)
    session.run("ruff", "check", "vcheck", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "vcheck", "tests", "noxfile.py")
    session.run("mypy")


@nox.session(python=PYTHON)
def reference(session: nox.Session) -> None:
    """Regenerate the frozen lme4 references in r_reference/frozen/ (needs R with lme4)."""
    _install(session)
    session.run("python", "-m", "vcheck.reference", "--freeze", "r_reference/frozen", *session.posargs)


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Regenerate the reference reports under reports/ against live lme4."""
    _install(session)
    session.run("python", "-m", "vcheck", "report", "--out", "reports", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Time vcheck against lme4 side by side in one process; write reports/bench.md."""
    _install(session)
    session.run("python", "-m", "vcheck.bench", "--out", "reports/bench.md", *session.posargs)


@nox.session(python=PYTHON)
def audit(session: nox.Session) -> None:
    """Audit statsmodels, glmmTMB and nlme against lme4; reports under reports/audit-<target>/."""
    _install(session)
    for target in ("statsmodels", "glmmtmb", "nlme"):
        session.run(
            "python",
            "-m",
            "vcheck",
            "audit",
            target,
            "--cases",
            "20",
            "--seed",
            "1",
            "--out",
            f"reports/audit-{target}",
            *session.posargs,
        )
