"""One case's findings as a plain-text table: for a failing test (`vcheck.testing.assert_agrees`) and a
JUnit failure (`vcheck.report.junit`), where a reader wants the few rows that matter, not a repr.

    impl disagrees with lme4 on example(sleepstudy): Reaction ~ Days + (Days|Subject) (REML); found ...

    kind          quantity  check              rel. diff  explanation
    ------------  --------  -----------------  ---------  ---------------------------------------
    construction  V         at its parameters     3.5e-1  its V is not sigma^2 (Z Lambda Lambda' Z' + I) ...

    rebuild the case: vcheck.examples.load('sleepstudy')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def case_headline(result: Any, name: str, kinds: Sequence[str], reference: str = "") -> str:
    """`NAME disagrees with lme4 (REFERENCE) on LABEL: FORMULA (REML); found KINDS`."""
    case = result.case
    fit = "REML" if case.REML else "ML"
    where = f" ({reference})" if reference else ""
    return (
        f"{name} disagrees with lme4{where} on {case.label}: {case.formula} ({fit}); found {', '.join(kinds)}"
    )


def findings_table(result: Any, name: str, kinds: Sequence[str], reference: str = "") -> str:
    """The headline, the case's error (if it did not run), its findings as a table, and its rebuild code."""
    from vcheck.report.pages import sci
    from vcheck.report.tables import format_text_table

    lines = [case_headline(result, name, kinds, reference)]
    if result.error is not None:
        lines.append(f"  error: {result.error}")
    rows = [
        [str(f.kind), f.quantity, f.check or "-", sci(f.rel_diff), " ".join(str(f.explanation).split())]
        for f in result.findings
    ]
    if rows:
        headers = ["kind", "quantity", "check", "rel. diff", "explanation"]
        lines += ["", format_text_table(headers, rows, [False, False, False, True, False]).rstrip()]
    lines += ["", f"rebuild the case: {result.case.rebuild}"]
    return "\n".join(lines)
