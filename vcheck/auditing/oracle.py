"""`LmeOracle`: lme4's answers on one case, each computed at most once.

The audit asks it for lme4's fit (per REML flag), lme4's criterion at the implementation's theta
(lme4's own deviance function, `vcheck.reference.devfun`) and the screen (vcheck.core.deviance on lme4's
own design); in this process's R or from a `vcheck.reference.server.ReferenceServer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from vcheck.auditing.cases import Case
from vcheck.core.errors import ArgumentError
from vcheck.core.record import LmerFit

if TYPE_CHECKING:
    from vcheck.auditing.comparison import OnLmeDesign
    from vcheck.reference.server import ReferenceServer


class LmeOracle:
    """lme4 on one case, each answer computed at most once: the fit per REML flag, and lme4's deviance
    function per REML flag (`vcheck.reference.devfun`, built only when a finding needs its numbers).

    In this process's R (`vcheck.reference`), or from a `ReferenceServer` (lme4 in a process of its own,
    which the audit asks for the fit before it runs the implementation) under the case's `key`.  The fit
    of the case's own REML flag carries the conditional modes (extras "modes"); `seconds` is lme4's time.

    `screen` is vcheck.core.deviance on lme4's own design (X, y, Zt, Lind from lme4's fit): no R round trip.
    compare() accepts an agreement it finds and takes every number in a finding from lme4's devfun; the
    property suite checks the two agree to AT_THETA.  `criterion="vcheck"` uses the screen throughout."""

    def __init__(
        self, case: Case, criterion: str = "lme4", server: ReferenceServer | None = None, key: str = ""
    ) -> None:
        if criterion not in ("lme4", "vcheck"):
            raise ArgumentError(f"criterion must be 'lme4' or 'vcheck', not {criterion!r}")
        self.case = case
        self.how = criterion
        self.server, self.key = server, key
        self._fits: dict[bool, LmerFit] = {}
        self._devfuns: dict[bool, Callable[[np.ndarray], float]] = {}
        self._on_design: OnLmeDesign | None = None
        self.seconds = 0.0

    def fit(self, REML: bool, extras: bool | str | None = None) -> LmerFit:
        """lme4's fit with this REML flag; extras default: "modes" for the case's own flag, else none."""
        from vcheck import reference

        if extras is None:
            extras = "modes" if REML == self.case.REML else False
        cached = self._fits.get(REML)
        if cached is None or (extras and cached.ranef is None):
            if self.server is not None and not self.case.args:  # the server calls lmer without arguments
                cached = self.server.fit(self.key, REML, extras)
            else:
                t = time.perf_counter()
                cached = reference.lmer(
                    self.case.formula, self.case.data, REML, extras=extras, **self.case.args
                )
                self.seconds += time.perf_counter() - t
            self._fits[REML] = cached
        return cached

    def refit(self, REML: bool) -> LmerFit:
        return self.fit(REML)

    def criterion(self, theta: np.ndarray, REML: bool) -> float:
        """lme4's criterion at theta: lme4's deviance function in R (or the screen, for "vcheck")."""
        if self.how == "vcheck":
            return self.screen(theta, REML)
        if self.server is not None and not self.case.args:
            return self.server.criterion(self.key, theta, REML)
        t = time.perf_counter()
        if REML not in self._devfuns:
            from vcheck import reference

            self._devfuns[REML] = reference.devfun(self.case.formula, self.case.data, REML, **self.case.args)
        value = float(self._devfuns[REML](np.asarray(theta, dtype=float)))
        self.seconds += time.perf_counter() - t
        return value

    def done(self) -> None:
        """The case is finished: lme4's time on it (CPU time in the server) is added, and the server
        drops its data."""
        if self.server is not None:
            self.seconds += self.server.forget(self.key)

    def screen(self, theta: np.ndarray, REML: bool) -> float:
        """vcheck.core.deviance on lme4's own design (X, y, Zt, Lambdat, Lind of lme4's fit): no R call."""
        return self.on_design().criterion(theta, REML)

    def on_design(self) -> OnLmeDesign:
        """vcheck.core.deviance on lme4's design of this case (made once): the screen and profiled sigma."""
        from vcheck.auditing.comparison import OnLmeDesign

        if self._on_design is None:
            self._on_design = OnLmeDesign(self.fit(self.case.REML))
        return self._on_design
