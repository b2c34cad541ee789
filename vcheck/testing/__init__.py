"""Check an LMM implementation against lme4 from a pytest suite: one test per case, a readable failure.

    from vcheck.testing import cases, assert_agrees

    @cases(examples=20, seed=0, families=("intercept", "slope"))  # one pytest test per case
    def test_against_lme4(case):
        assert_agrees(my_fit, case)  # AssertionError with the findings table on a disagreement

`cases` parametrizes the test (argument `case`) over vcheck's built-in examples and `examples` cases
drawn with `seed`, both within `families` (`vcheck.auditing.strategies.FAMILIES`; a built-in example
belongs to the family of its random-effects structure, `family_of`).  Each test's id reads like
`example-sleepstudy` or `drawn-0-3-slope`, so `pytest --junitxml` lists one test case per audited case.

`assert_agrees(impl, case)` runs the case through the audit's comparison (`vcheck.auditing.run.
audit_case`: impl on a copy of the data, lme4's fit, `vcheck.compare`) and raises AssertionError with
the findings as a table when one of `fail_on`'s kinds is found ("error" is the case not running:
impl raising, or breaking the plug-in protocol).  It returns the `CaseResult` otherwise.

The pytest plugin (`vcheck.testing.plugin`, registered under the `pytest11` entry point, so active once
vcheck is installed) adds `--vcheck-seed`, `--vcheck-examples` and `--vcheck-reference=live|frozen`:
"live" asks lme4 through rpy2 in a process of its own, started once per pytest process (per xdist
worker) and kept for the session; "frozen" compares with lme4's outputs frozen in vcheck for the
built-in examples, with no R at all (drawn cases need live lme4, so `cases` then gives the built-in
examples only, and the session header says so).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vcheck.auditing.cases import Case
    from vcheck.auditing.plugin import Impl
    from vcheck.auditing.run import CaseResult

__all__ = ["FAIL_ON", "Settings", "assert_agrees", "case_id", "cases", "family_of", "settings"]

#: what makes `assert_agrees` fail by default: a construction disagreement, or a case that did not run
FAIL_ON: tuple[str, ...] = ("construction", "error")
#: every kind `fail_on` may name
KINDS: tuple[str, ...] = ("construction", "optimization", "model", "not available", "error")
REFERENCES = ("live", "frozen")


@dataclass
class Settings:
    """The session's choices (the plugin fills them from the command line before tests are collected):
    `seed` and `examples` override those given to `cases`; `reference` is "live" or "frozen"."""

    seed: int | None = None
    examples: int | None = None
    reference: str = "live"
    lme4_processes: int = 1


#: this process's settings (one pytest session, or one xdist worker)
settings = Settings()


# --- the cases ---------------------------------------------------------------------------------------
def family_of(formula: str, cnms: Sequence[tuple[str, Sequence[str]]], data_columns: Iterable[str]) -> str:
    """The model family (`FAMILIES`) of a model from lme4's random terms (cnms: group, column names).

    nested: a grouping factor is an interaction (`s:t`, from `s/t`); crossed: two or more grouping
    factors; uncorrelated: one factor with more than one term (`||`); factor_slope: a term with a column
    that is not a data column (a factor's indicator); slope: a numeric slope; else intercept."""
    groups = [g for g, _ in cnms]
    if any(":" in g for g in groups):
        return "nested"
    if len(set(groups)) > 1:
        return "crossed"
    if len(groups) > 1:
        return "uncorrelated"
    columns = set(data_columns)
    names = [n for _, ns in cnms for n in ns if n != "(Intercept)"]
    if any(n not in columns for n in names):
        return "factor_slope"
    return "slope" if names else "intercept"


def _example_cases(families: Sequence[str]) -> list[Case]:
    from vcheck.auditing.cases import Case
    from vcheck.reference import examples

    out = []
    for name in examples.names():
        ex = examples.load(name)
        family = family_of(ex.formula, ex.expected.cnms or [], ex.data.columns)
        if family in families:
            out.append(
                Case(
                    formula=ex.formula,
                    REML=ex.REML,
                    origin="example",
                    name=name,
                    features=("example", family),
                )
            )
    return out


def _drawn_cases(seed: int, n: int, families: Sequence[str]) -> list[Case]:
    """n cases drawn with `seed` within `families`: with every family, the audit's own cases
    (`draw_case(seed, i)`); else case i is `draw_spec(seed, i, families)` (rebuilt from its spec)."""
    from vcheck.auditing.strategies import FAMILIES, case_from_spec, draw_case, draw_spec

    if tuple(families) == FAMILIES:
        return [draw_case(seed, i) for i in range(n)]
    out = []
    for i in range(n):
        case = case_from_spec(draw_spec(seed, i, families))
        case.seed, case.index = seed, i  # where it came from, for its id (the spec rebuilds it)
        out.append(case)
    return out


def case_id(case: Case) -> str:
    """A test id that names the case: `example-sleepstudy`, `drawn-0-3-slope`."""
    if case.origin == "example":
        return f"example-{case.name}"
    family = (case.spec or {}).get("family", "")
    if case.seed is not None and case.index is not None:
        return f"drawn-{case.seed}-{case.index}" + (f"-{family}" if family else "")
    return case.label


def select_cases(
    examples: int = 20, seed: int = 0, families: Sequence[str] | None = None, builtin: bool = True
) -> list[Case]:
    """The cases `cases` parametrizes over, after the session's overrides (`settings`); families None:
    all of them."""
    from vcheck.auditing.strategies import FAMILIES

    families = FAMILIES if families is None else tuple(families)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    seed = settings.seed if settings.seed is not None else seed
    examples = settings.examples if settings.examples is not None else examples
    chosen = _example_cases(families) if builtin else []
    if settings.reference == "live":
        chosen += _drawn_cases(seed, examples, families)
    return chosen


def cases(
    examples: int = 20, seed: int = 0, families: Sequence[str] | None = None, *, builtin: bool = True
) -> Any:
    """A decorator parametrizing a test's `case` argument: one test per case, ids from `case_id`.

    The built-in examples of `families` (default: every family of `vcheck.auditing.strategies.FAMILIES`;
    unless `builtin=False`), then `examples` cases drawn with `seed` within `families`.
    `--vcheck-seed` and `--vcheck-examples` override seed and examples; with
    `--vcheck-reference=frozen` only the built-in examples are used (they alone have frozen lme4
    outputs)."""
    import pytest

    chosen = select_cases(examples, seed, families, builtin)
    return pytest.mark.parametrize("case", chosen, ids=[case_id(c) for c in chosen])


# --- one case ----------------------------------------------------------------------------------------
def lme4_problem() -> str | None:
    """Why live lme4 cannot be asked (rpy2 missing), without starting R; None when rpy2 imports."""
    try:
        importlib.import_module("rpy2")
    except Exception as exc:  # ImportError, or rpy2 failing to find R
        from vcheck.reference.rbridge import INSTALL_HINT

        return f"live lme4 is needed and rpy2 cannot be imported ({exc}); {INSTALL_HINT}"
    return None


def check(
    impl: Impl, case: Case, config: Mapping[str, Any] | None = None, name: str | None = None
) -> CaseResult:
    """Run `case` through the audit's comparison against lme4 (`settings.reference`); the CaseResult."""
    from vcheck.auditing.run import _impl_name, audit_case

    options = dict(config or {})
    source = options.pop("source", None) or name or _impl_name(impl)
    if settings.reference == "frozen":
        from vcheck.testing.frozen import audit_frozen_case

        return audit_frozen_case(impl, case, source=source, **options)
    return audit_case(impl, case, server=_server(), source=source, **options)


@functools.cache
def _server() -> Any:
    """lme4's process for this pytest process, started once and kept (stopped at exit)."""
    from vcheck.reference import server

    return server.shared(max(1, settings.lme4_processes))[0]


def failing_kinds(result: CaseResult, fail_on: Iterable[str]) -> list[str]:
    """The kinds of `fail_on` found in the case's result ("error": the case did not run)."""
    wanted = list(dict.fromkeys(fail_on))
    unknown = [k for k in wanted if k not in KINDS and k != "all"]
    if unknown:
        raise ValueError(f"fail_on: unknown kinds {unknown}; choose from {', '.join(KINDS)} or 'all'")
    if "all" in wanted:
        wanted = list(KINDS)
    found = {f.kind for f in result.findings}
    if result.error is not None:
        found.add("error")
    return [k for k in wanted if k in found]


def assert_agrees(
    impl: Impl,
    case: Case,
    fail_on: Sequence[str] = FAIL_ON,
    config: Mapping[str, Any] | None = None,
) -> CaseResult:
    """Fail (AssertionError with the findings table) when `impl` disagrees with lme4 on `case` in one of
    the `fail_on` kinds: "construction", "optimization", "model", "not available", "error", or "all".

    config: keyword arguments of the audit's comparison (`tol_at_theta`, `tol_optimum`, `criterion`,
    `flat_optimum`, `source`).  Returns the case's `CaseResult` (findings, comparison table, timings).
    """
    __tracebackhide__ = True
    from vcheck.auditing.run import _impl_name
    from vcheck.report.casetable import findings_table

    if settings.reference == "live":
        problem = lme4_problem()
        if problem is not None:
            raise AssertionError(f"{problem} (or run pytest with --vcheck-reference=frozen)")
    name = str((config or {}).get("source") or _impl_name(impl))
    result = check(impl, case, config, name=name)
    bad = failing_kinds(result, fail_on)
    if bad:
        raise AssertionError(findings_table(result, name, bad, settings.reference))
    return result
