"""nox sessions for vcheck.

    nox -s tests      pytest, live lme4 tests included (they fail, never skip, when CI=true and R is missing)
    nox -s tests_long the lme4 property tests with the `thorough` hypothesis profile
    nox -s lint       ruff and mypy
    nox -s reference  regenerate r_reference/frozen/ (lme4's outputs for the built-in examples) with R
    nox -s report     regenerate reports/ (pages and pictures, agreement with live lme4)
    nox -s bench      vcheck versus lme4 in one process, into reports/bench.md (`-- --quick`: ~5 min)
    nox -s audit      audit statsmodels, glmmTMB and nlme against lme4 into reports/audit-*/
    nox -s docs       API documentation from the docstrings (pdoc) into docs/api/
    nox -s mutation   mutation testing of the comparison modules and covariance into reports/mutation.md

Every session installs vcheck with its extras into its own virtualenv; R itself comes from Debian's
packages (`bash .ci/setup`).  Pass extra arguments after `--`, e.g. `nox -s tests -- -k design`.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
EXTRAS = ".[r,audit,dev,bobyqa,sparse]"


def _install(session: nox.Session) -> None:
    session.install("--no-binary", "pdfo", "-e", EXTRAS)  # pdfo's wheels need numpy 1: build it


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite, `slow` tests included (hypothesis profile `ci` when CI is set, else `dev`):
    about 6 minutes on 2 idle cores.  `nox -s tests -- -m "not slow"` skips the Dask, packaging and
    Ctrl-C runs (about 70 s) while developing."""
    _install(session)
    env = {
        "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
    }
    session.run("python", "-m", "pytest", "-q", *session.posargs, env=env)


@nox.session(python=PYTHON)
def tests_long(session: nox.Session) -> None:
    """The long run: the lme4 property tests with many more drawn cases (the `thorough` profile)."""
    _install(session)
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
def corpus(session: nox.Session) -> None:
    """Regenerate r_reference/corpus/ (lme4's own test models) from an lme4 source tree: `-- SRC_DIR`."""
    _install(session)
    if not session.posargs:
        session.error("give the lme4 source tree: nox -s corpus -- SRC_DIR")
    session.run("python", "-m", "vcheck.reference.corpus", "--regenerate", *session.posargs)


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
    """Audit statsmodels, glmmTMB and nlme (every configuration each) against lme4 on 200 drawn cases and
    the built-in examples, with minimized reproducers; reports under reports/audit-<target>/ (about
    20 minutes on 2 cores)."""
    _install(session)
    for target in ("statsmodels", "nlme", "glmmtmb"):
        session.run(
            "python",
            "-m",
            "vcheck",
            "audit",
            target,
            "--cases",
            "200",
            "--seed",
            "0",
            "--minimize-seconds",
            "20",
            "--reproducer-seconds",
            "240",
            "--force",
            "--out",
            f"reports/audit-{target}",
            *session.posargs,
        )


def _modules(root: Path = Path(__file__).parent, package: str = "vcheck") -> list[str]:
    """Every module of the package, deepest first (pdoc then renders each one, whatever a parent's
    __all__ lists); __main__ modules left out (importing them would run a command)."""
    names = []
    for path in (root / package).rglob("*.py"):
        if path.name == "__main__.py":
            continue
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(set(names), key=lambda n: (-n.count("."), n))


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """API documentation from the docstrings with pdoc, into docs/api/ (index.html; not committed)."""
    _install(session)
    out = Path("docs") / "api"
    session.run(
        "python",
        "-W",
        "ignore",  # pdoc's notes on annotations it cannot resolve and modules reached twice
        "-m",
        "pdoc",
        "--docformat",
        "markdown",
        "--footer-text",
        "vcheck: linear mixed models against lme4",
        "--output-directory",
        str(out),
        *_modules(),
        *session.posargs,
    )
    session.log(f"API documentation written to {out / 'index.html'}")


@nox.session(python=PYTHON)
def mutation(session: nox.Session) -> None:
    """Mutation testing of the comparison modules (measure, measurements, differences, classify,
    construction) and covariance against their fast tests (tools/mutate.py: single-point AST mutants,
    every one of them); writes reports/mutation.md and fails below 90% of non-equivalent mutants killed in
    any module.  `nox -s mutation -- -j 2` runs two mutants at a time."""
    _install(session)
    session.run("python", "tools/mutate.py", "--out", "reports/mutation.md", *session.posargs)
