"""One case of a sweep, in whatever process runs it (this one, a worker process, a Dask worker).

The implementation travels as its spec string and each process resolves it itself (`resolve`, cached);
`run_case` audits one case and returns its `CaseResult.to_dict()`, with each finding's rel_diff rounded
by `canonical` so that the result is the same whatever ran it.  `prepare_process` readies a process
(the target resolved, R started, the audit's modules imported) before its first case.
"""

from __future__ import annotations

import contextlib
import math
import signal
import warnings
from typing import TYPE_CHECKING, Any

from vcheck.auditing.cases import Case
from vcheck.auditing.results import CaseResult, one_line
from vcheck.auditing.run import audit_case

if TYPE_CHECKING:
    from vcheck.auditing.plugin import Impl

#: significant digits of a finding's relative difference (see `canonical`)
DIGITS = 6

_IMPLS: dict[str, Impl] = {}


def resolve(target: str) -> Impl:
    """The implementation named by `target` (cached per process): `vcheck.adapters.resolve`."""
    if target not in _IMPLS:
        from vcheck import adapters

        _IMPLS[target] = adapters.resolve(target)
    return _IMPLS[target]


def run_case(target: str, case: Case, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Audit one case against lme4 in this process; its `CaseResult.to_dict()` (never raises)."""
    opts = dict(options or {})
    try:
        impl = resolve(target)
    except Exception as exc:  # an unloadable plug-in fails every case, each saying why
        return CaseResult(case=case, error=f"cannot load {target}: {one_line(exc)}").to_dict()
    try:
        return canonical(audit_case(impl, case, source=target, **opts).to_dict())
    except Exception as exc:  # audit_case catches the case's own failures; this is anything else
        return CaseResult(case=case, error=f"{type(exc).__name__}: {one_line(exc)}").to_dict()


def canonical(payload: dict[str, Any]) -> dict[str, Any]:
    """A case result with each finding's rel_diff to `DIGITS` significant digits.

    The digits beyond are floating-point noise that is not the same in every process: SIMD kernels (in
    numpy's BLAS and lme4's Eigen) sum in an order that depends on where an array lands in memory, so
    the same fit differs by a few ulps from one process to the next.  Rounded, a finding (and the report
    made of them) is the same whatever ran it.  The full comparison table keeps every digit.
    """
    for f in payload.get("findings", []):
        rel = f.get("rel_diff")
        if isinstance(rel, float) and math.isfinite(rel) and rel != 0.0:
            f["rel_diff"] = float(f"{rel:.{DIGITS - 1}e}")
    return payload


def prepare_process(target: str) -> None:
    """Make this process ready to run cases: resolve the target, start R once (if it can be started:
    a sweep whose target needs no R reports lme4's absence per case), import the audit's modules."""
    import vcheck.auditing.comparison
    import vcheck.auditing.run
    import vcheck.auditing.strategies  # noqa: F401  (imported once here rather than in the first case)

    with contextlib.suppress(Exception):
        resolve(target)
    with warnings.catch_warnings():
        # R started from a thread other than the main one warns it cannot be interrupted with Ctrl-C;
        # sweep workers are stopped by the sweep (or Dask's nanny), not by Ctrl-C.
        warnings.filterwarnings("ignore", message=r"(?s).*R is not initialized by the main thread")
        with contextlib.suppress(Exception):
            from vcheck.reference import rbridge

            rbridge.session()
            # rpy2.robjects (the R adapters' interface) re-runs rpy2's post-start set-up on import
            # (SIGINT handler, the thread warning): import it here, once, not inside a case
            import rpy2.robjects  # noqa: F401


def crash_result(case: Case, what: str) -> dict[str, Any]:
    return CaseResult(case=case, error=f"{what}; the sweep went on without this case").to_dict()


_PREPARED: set[str] = set()


def prepare_worker(target: str) -> None:
    """`prepare_once(target)` in a worker, which leaves Ctrl-C to the process that started the sweep:
    SIGINT ignored afterwards, and blocked meanwhile (starting R, rpy2 installs Python's SIGINT handler,
    and a Ctrl-C then would interrupt R's start-up with a traceback)."""
    if not main_thread():
        prepare_once(target)
        return
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        prepare_once(target)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # also discards a Ctrl-C that came meanwhile
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def prepare_once(target: str) -> None:
    """`prepare_process(target)` the first time in this process (module-level cache)."""
    if target not in _PREPARED:
        prepare_process(target)
        _PREPARED.add(target)


def main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
