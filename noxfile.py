"""nox sessions for vcheck.

    nox -s tests      pytest, live lme4 tests included (they fail, never skip, when CI=true and R is missing)
    nox -s lint       ruff and mypy
    nox -s reference  regenerate r_reference/frozen/ (lme4's outputs for the built-in examples) with R
    nox -s report     regenerate reports/ (pages and pictures, agreement with live lme4)
    nox -s bench      vcheck versus lme4 timings in one process, written to reports/bench.md
    nox -s audit      audit statsmodels, glmmTMB and nlme against lme4 into reports/audit-*/
    nox -s mutation   mutation testing of the comparison modules and covariance into reports/mutation.md

Every session installs vcheck with its extras into its own virtualenv; R itself comes from Debian's
packages (`bash .ci/setup`).  Pass extra arguments after `--`, e.g. `nox -s tests -- -k design`.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
EXTRAS = ".[r,audit,dev]"


def _install(session: nox.Session) -> None:
    session.install("-e", EXTRAS)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (hypothesis profile `ci` when CI is set, else `dev`)."""
    _install(session)
    env = {
        "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
    }
    session.run("python", "-m", "pytest", "-q", *session.posargs, env=env)


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


@nox.session(python=PYTHON)
def mutation(session: nox.Session) -> None:
    """Mutation testing of the comparison modules (measure, classify, construction) and covariance against
    their fast tests (tools/mutate.py: single-point AST mutants); writes reports/mutation.md and fails
    below 90% of non-equivalent mutants killed in any module."""
    _install(session)
    session.run("python", "tools/mutate.py", "--out", "reports/mutation.md", *session.posargs)
