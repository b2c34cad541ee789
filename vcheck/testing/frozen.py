"""One built-in example against lme4's frozen outputs: the audit's comparison with no R.

lme4's fit of each built-in example is frozen in vcheck (`vcheck.reference.examples`: X, y, Zt,
Lambdat, Lind, theta, beta, sigma, varcorr, criterion, conditional modes).  The comparison is
`vcheck.compare(impl's answer, frozen fit)` with lme4's criterion at the implementation's theta
computed by vcheck.core.deviance on lme4's frozen design (`OnLmeDesign`, which the property suite holds
to lme4's own deviance function within AT_THETA).  What needs R is left out: lme4's fit with the other
REML flag, which recognises "ML where REML was asked" as a model finding (such an implementation still
fails, as an optimization or construction finding).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from vcheck.core import tolerances
from vcheck.core.threads import blas_threads

if TYPE_CHECKING:
    from vcheck.auditing.cases import Case
    from vcheck.auditing.plugin import Impl
    from vcheck.auditing.run import CaseResult


def audit_frozen_case(
    impl: Impl,
    case: Case,
    *,
    source: str,
    tol_at_theta: float = tolerances.AT_THETA,
    tol_optimum: float = tolerances.AT_OPTIMUM,
    flat_optimum: bool = True,
    **_ignored: Any,
) -> CaseResult:
    """`audit_case` for a built-in example, lme4's answers read from the frozen reference."""
    from vcheck.auditing.comparison import OnLmeDesign, compare
    from vcheck.auditing.plugin import PluginError, submission
    from vcheck.auditing.run import CaseResult, call_impl, findings_of
    from vcheck.reference import examples

    start = time.perf_counter()
    result = CaseResult(case=case)
    if case.origin != "example" or case.name is None:
        result.error = (
            f"lme4's outputs are frozen for the built-in examples only, not for {case.label}: "
            "run with --vcheck-reference=live"
        )
        return result
    ex = examples.load(case.name)
    with blas_threads(1):
        output = call_impl(impl, case, ex.data, source, result, start)
        if output is None:
            return result
        try:
            sub = submission(output, data_index=ex.data.index, source=source)
            design = OnLmeDesign(ex.expected)
            cmp = compare(
                sub,
                ex.expected,
                criterion=design.criterion,
                tol_at_theta=tol_at_theta,
                tol_optimum=tol_optimum,
                flat_optimum=flat_optimum,
            )
        except PluginError as exc:
            result.error = f"{source} broke the plug-in protocol: {' '.join(str(exc).split())[:300]}"
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        else:
            result.findings = findings_of(cmp, case)
            result.comparison = cmp.to_dict()
    result.seconds = time.perf_counter() - start
    return result
