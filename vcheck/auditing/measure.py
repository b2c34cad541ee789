"""Measurement: an implementation's answer set against lme4's fit, as numbers only (no verdicts).

`measure(sub, b, ...)` returns `Measurements`: every difference with the tolerance its numerics allow
(`vcheck.core.tolerances`), the structural facts (model, layout), lme4's criterion at the implementation's
theta, whether the problem has a unique optimum at all, and what the implementation itself warned.
`vcheck.auditing.classify.classify` turns them into verdicts; it is a pure function of these numbers.

What is measured:
- model: its REML flag, its fixed-effect columns against lme4's X (after lme4's rank drop), its random
  terms against lme4's (varcorr mapped onto cnms), its V's rows against the rows lme4 used;
- layout (a full record only): X, Zt, Lambdat's pattern, Lind, cnms and level order, exactly;
- at its parameters (theta_a = chol(G_k / sigma^2) of its varcorr, or a record's own theta): lme4's
  construction there (`vcheck.auditing.construction`, prior weights and offset included): V, the
  backward error of its beta in the GLS normal equations, lme4's criterion at (theta_a, sigma_a), and
  its sigma against the profiled sigma at theta_a (and the other criterion's);
- at the optimum: theta, sigma, beta, criterion, varcorr, G (record), V, ranef against lme4's fit;
- lme4's criterion at theta_a against lme4's optimum (which side is lower); lme4's optimum of the other
  criterion when the optima differ (`refit`);
- ill-posedness: q + p >= n, n <= p under REML, an unbounded criterion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from vcheck.auditing import construction as cons
from vcheck.auditing.differences import (
    abs_diff,
    alignment,
    crit_name,
    div,
    infinite,
    layout_differences,
    ranef_diff,
    relative,
    v_diff,
)
from vcheck.auditing.measurements import Diff, Measurements, readable
from vcheck.auditing.plugin import PluginError, Submission, cov_from_theta, term_covariances, theta_from_cov
from vcheck.auditing.sparse_diff import sparse_diff
from vcheck.core import tolerances
from vcheck.core.errors import RError
from vcheck.core.record import LmerFit

#: (theta, REML) -> lme4's criterion at theta (REML criterion or ML deviance)
Criterion = Callable[[np.ndarray, bool], float]
#: REML -> lme4's fit of the same model and data with that REML flag
Refit = Callable[[bool], LmerFit]


def measure(
    sub: Submission,
    b: LmerFit,
    *,
    criterion: Criterion,
    screen: Criterion | None = None,
    refit: Refit | None = None,
    tol_at_theta: float = tolerances.AT_THETA,
    tol_optimum: float = tolerances.AT_OPTIMUM,
    flat_optimum: bool = True,
) -> Measurements:
    """Measure implementation `sub` against lme4's fit `b` (raises PluginError for an unreadable answer)."""
    readable(sub)
    return _Meter(sub, b, criterion, screen, refit, tol_at_theta, tol_optimum, flat_optimum).run()


class _Meter:
    """One measurement, step by step (no verdicts: those are `classify`'s)."""

    def __init__(
        self,
        sub: Submission,
        b: LmerFit,
        criterion: Criterion,
        screen: Criterion | None,
        refit: Refit | None,
        tol_theta: float,
        tol_opt: float,
        flat_optimum: bool,
    ) -> None:
        self.sub, self.b, self.criterion, self.screen, self.refit = sub, b, criterion, screen, refit
        self.lme = cons.require_design(b)
        self.tol_theta, self.tol_opt = tol_theta, tol_opt
        self.m = Measurements(
            formula=b.formula,
            REML=b.REML,
            a=sub.source,
            b=b.source,
            n=self.lme.n,
            p=self.lme.p,
            q=self.lme.q,
            flat_optimum=flat_optimum,
            tie=tolerances.tie(float(b.criterion)) if b.criterion is not None else tolerances.CRITERION_ABS,
            optimum=b.criterion,
        )
        self.theta_a: np.ndarray | None = None
        self.cov_a: list[np.ndarray] | None = None
        self.e_G = 0.0  # measured relative error of the varcorr -> theta round trip
        self._on_design: cons.OnLmeDesign | None = None

    def on_design(self) -> cons.OnLmeDesign:
        if self._on_design is None:
            owner = getattr(self.screen, "__self__", None)  # a screen that is OnLmeDesign(b).criterion
            ok = isinstance(owner, cons.OnLmeDesign) and owner.b is self.b
            self._on_design = owner if ok else cons.OnLmeDesign(self.b)  # type: ignore[assignment]
        assert self._on_design is not None
        return self._on_design

    def crit(self, theta: np.ndarray, REML: bool, *, final: bool = True) -> float:
        """lme4's criterion at theta; `final=False` allows the fast screen."""
        if not final and self.screen is not None:
            return self.screen(theta, REML)
        try:
            return self.criterion(theta, REML)
        except RError:
            # lme4's devfun refuses some thetas of degenerate models ("Downdated VtV is not positive
            # definite"); the same PLS formula on lme4's own design still answers (+inf where singular)
            return self.on_design().criterion(theta, REML)

    def run(self) -> Measurements:
        self.reference_itself()
        self.model_structure()
        self.layout()
        self.at_its_parameters()
        self.at_optimum()
        self.which_lower()
        self.other_reml()
        self.ill_posed()
        self.not_available()
        self.own_words()
        return self.m

    def reference_itself(self) -> None:
        """Is lme4's reported criterion its own devfun at its own theta?  Not always: with
        use.last.params = TRUE lme4 reports the optimizer's best value beside its last theta.  Then lme4's
        optimum is taken as its devfun at its theta, and the inconsistency is recorded."""
        m, b = self.m, self.b
        if b.criterion is None:
            return
        d_b = self.crit(self.lme.theta, b.REML, final=False)
        if abs(d_b - b.criterion) <= m.tie:
            return
        d_b = self.crit(self.lme.theta, b.REML)
        if abs(d_b - b.criterion) <= m.tie:
            return
        m.reference_inconsistent = (
            f"lme4's reported {crit_name(b.REML)} criterion {b.criterion:.10g} is not its own devfun at its "
            f"theta, {d_b:.10g} (e.g. lmerControl(use.last.params = TRUE))"
        )
        m.optimum = d_b

    # --- model ------------------------------------------------------------------------------------------
    def model_structure(self) -> None:
        sub, b, m = self.sub, self.b, self.m
        if sub.REML is not None and sub.REML != b.REML:
            m.model.append(
                ("REML", "model", f"it fitted {crit_name(sub.REML)} where {crit_name(b.REML)} was asked")
            )
        if sub.beta is not None:
            given = {str(k) for k, v in sub.beta.items() if not math.isnan(v)}
            expected = set(b.X_names or [])
            extra, missing = sorted(given - expected), sorted(expected - given)
            if extra or missing:
                text = (
                    "its fixed effects are not lme4's X columns (after lme4's rank drop):"
                    + (f" extra {extra}" if extra else "")
                    + (f" missing {missing}" if missing else "")
                )
                m.model.append(("beta", "model", text))
        self.V_rows()
        if sub.varcorr is None or sub.sigma is None:
            return
        mapping = term_covariances(sub.varcorr, self.lme.cnms)
        if mapping.problems:
            m.model.append(("varcorr", "model", "; ".join(mapping.problems)))
        if mapping.unmapped:
            m.unmapped = True
            return  # a term lme4 does not have: no theta describes its model
        cov = [np.where(np.isnan(G), 0.0, G) for G in mapping.cov]  # absent entries: a sub-model
        try:
            self.theta_a = theta_from_cov(cov, sub.sigma)
        except PluginError as exc:
            m.theta_error = str(exc)
            return
        self.cov_a = cov
        rec = sub.record
        if rec is not None and rec.theta is not None and rec.cnms == self.lme.cnms and rec.sigma == sub.sigma:
            self.theta_a = np.asarray(rec.theta, dtype=float)  # its own factor: no round trip at all
            return
        back = cov_from_theta(self.theta_a, self.lme.cnms, sub.sigma)
        self.e_G = max(
            (relative(Gb, Ga, floor=float(np.finfo(float).tiny)) for Ga, Gb in zip(cov, back, strict=True)),
            default=0.0,
        )

    def V_rows(self) -> None:
        """A model difference when its V's rows cannot be lined up with the rows lme4 used."""
        sub, b, n = self.sub, self.b, self.lme.n
        if sub.V is None:
            return
        if sub.row_index is not None and b.row_index is not None:
            if sub.row_index.get_indexer(b.row_index).min(initial=0) >= 0:
                return
            text = "its V's rows are not the data rows lme4 used"
        elif sub.V.shape[0] == n:
            return
        else:
            text = f"its V has {sub.V.shape[0]} rows, lme4's model uses {n} (after dropping rows with NA)"
        self.m.model.append(("V", "model", text))

    def _model_problem(self, quantity: str) -> bool:
        return any(q == quantity for q, _, _ in self.m.model)

    # --- layout ---------------------------------------------------------------------------------------
    def layout(self) -> None:
        if self.sub.record is not None:
            self.m.layout = layout_differences(self.sub.record, self.b, self.tol_theta)

    # --- at its own parameters --------------------------------------------------------------------------
    def at_its_parameters(self) -> None:
        sub, lme, m = self.sub, self.lme, self.m
        if self.theta_a is None or sub.sigma is None:
            return
        check = "at its parameters"
        at = cons.AtTheta(lme, self.theta_a, sub.sigma)
        kappa = at.kappa()
        if sub.V is not None and not self._model_problem("V"):
            abs_d, rel = v_diff(sub.V, at.V(), alignment(sub, self.b), lme.n)
            tol = tolerances.V_tolerance(at.max_effects_per_row(), self.e_G)
            cost = at.V_cost_bound(abs_d)
            detail = (
                f"max |V_a - V| / max |V|; it moves lme4's criterion by at most {cost:.1e} (tie {m.tie:.0e})"
            )
            m.at_parameters.append(Diff("V", check, rel, abs_d, tol, detail, cost=cost, cost_tol=m.tie))
        if sub.beta is not None and not self._model_problem("beta"):
            A, c, gls = at.gls()
            mine = sub.beta.reindex(lme.X_names).to_numpy(dtype=float)
            eta = at.backward_error(mine, A, c)
            tol = tolerances.beta_tolerance(kappa, self.e_G)
            delta = mine - gls
            cost = float(delta @ A @ delta) if np.all(np.isfinite(delta)) else math.inf
            detail = (
                f"backward error {eta:.1e} in the GLS normal equations X'V^-1X beta = X'V^-1(y - o), "
                f"tolerance {tol:.1e} (kappa_V <= {kappa:.2g}); it costs the criterion "
                f"(beta - beta_GLS)' X'V^-1X (beta - beta_GLS) = {cost:.1e} (tie {m.tie:.0e}); "
                f"forward rel diff {relative(mine, gls):.1e}"
            )
            m.at_parameters.append(
                Diff("beta", check, eta, abs_diff(mine, gls), tol, detail, cost=cost, cost_tol=m.tie)
            )
        self.sigma_at_its_theta()
        if sub.criterion is not None:
            self.criterion_at_its_theta(kappa)
        elif infinite(sub.extra.get("criterion_given")):
            self.infinite_criterion()

    def _nu(self, REML: bool) -> int:
        return self.lme.n - self.lme.p if REML else self.lme.n

    def profiled_sigma(self, REML: bool) -> float | None:
        from vcheck.core.blocks import NotPositiveDefinite

        assert self.theta_a is not None
        try:
            s = self.on_design().sigma(self.theta_a, REML)
        except (NotPositiveDefinite, ValueError, ZeroDivisionError, np.linalg.LinAlgError):
            return None
        return s if math.isfinite(s) and s > 0 else None

    def sigma_at_its_theta(self) -> None:
        sub, REML = self.sub, self.b.REML
        assert sub.sigma is not None
        check = "at its parameters"
        own = self.profiled_sigma(REML)
        if own is None or self._nu(REML) <= 0:
            return
        self.m.sigma_own = Diff(
            "sigma",
            check,
            abs(sub.sigma - own) / own,
            abs(sub.sigma - own),
            tolerances.sigma_tolerance(self._nu(REML), self.m.tie),
            f"profiled sigma {own:.6g} at its theta",
        )
        if self._nu(not REML) > 0:
            other = own * math.sqrt(self._nu(REML) / self._nu(not REML))
            self.m.sigma_other = Diff(
                "sigma",
                check,
                abs(sub.sigma - other) / other,
                abs(sub.sigma - other),
                tolerances.sigma_tolerance(self._nu(not REML), self.m.tie),
                f"{crit_name(not REML)} profiled sigma {other:.6g} at its theta",
            )

    def _criterion_at(self, REML: bool, *, final: bool) -> float:
        """lme4's criterion at its parameters, as near its own criterion as its reading allows: profiled,
        d(theta_a) (lme4's convention), or at its own sigma, d(theta_a) + nu (log s + 1/s - 1),
        s = (sigma_a / profiled sigma)^2 (an implementation that reports -2 log L at (theta_a, sigma_a))."""
        assert self.theta_a is not None and self.sub.sigma is not None and self.sub.criterion is not None
        d = self.crit(self.theta_a, REML, final=final)
        own = self.profiled_sigma(REML)
        if own is not None and math.isfinite(d) and self._nu(REML) > 0:
            at_sigma = d + tolerances.sigma_excess(self._nu(REML), self.sub.sigma, own)
            if abs(self.sub.criterion - at_sigma) < abs(self.sub.criterion - d):
                return at_sigma
        return d

    def criterion_at_its_theta(self, kappa: float) -> None:
        sub, b, lme = self.sub, self.b, self.lme
        assert sub.criterion is not None
        check = "at its parameters"
        tol_abs = tolerances.criterion_tolerance(kappa, lme.n + lme.q, self.e_G)
        expected = self._criterion_at(b.REML, final=False)
        if not abs(sub.criterion - expected) <= max(tol_abs, self.m.tie) and self.screen is not None:
            expected = self._criterion_at(b.REML, final=True)
        scale = max(abs(expected), 1.0) if math.isfinite(expected) else 1.0
        d = abs(sub.criterion - expected)
        detail = (
            f"lme4's {crit_name(b.REML)} at its parameters is {expected:.10g}, "
            f"its criterion {sub.criterion:.10g}"
        )
        self.m.at_parameters.append(
            Diff("criterion", check, div(d, scale), d, tol_abs / scale, detail, cost=d, cost_tol=self.m.tie)
        )
        if not (d <= tol_abs or d <= self.m.tie):
            other = self._criterion_at(not b.REML, final=True)
            d_o = abs(sub.criterion - other)
            scale_o = max(abs(other), 1.0) if math.isfinite(other) else 1.0
            self.m.criterion_other = Diff(
                "criterion",
                check,
                div(d_o, scale_o),
                d_o,
                tol_abs / scale_o,
                f"lme4's {crit_name(not b.REML)} at its parameters is {other:.10g}",
            )

    def infinite_criterion(self) -> None:
        """An infinite criterion (a likelihood of +inf, statsmodels#10239) where lme4's at its parameters
        is finite: a difference of infinite size, never "not available"."""
        given = float(self.sub.extra["criterion_given"])
        d = self.crit(self.theta_a, self.b.REML) if self.theta_a is not None else math.nan
        detail = f"its criterion is {given} (log-likelihood {-given / 2}), lme4's at its parameters {d:.10g}"
        if math.isfinite(d):
            self.m.at_parameters.append(
                Diff("criterion", "at its parameters", math.inf, math.inf, 0.0, detail, math.inf, self.m.tie)
            )
        else:
            self.m.ill_posed.append(f"{detail}: the criterion is unbounded")

    # --- at the optimum ---------------------------------------------------------------------------------
    def at_optimum(self) -> None:
        sub, b, lme, tol = self.sub, self.b, self.lme, self.tol_opt
        cnms, b_sigma = lme.cnms, lme.sigma
        cov_b = cov_from_theta(lme.theta, cnms, b_sigma)
        out = self.m.at_optimum
        check = "at optimum"
        if self.theta_a is not None:
            # both canonical: a singular term's factor is not unique (lme4 on shuffled rows returned a
            # theta 8.6e-6 off with the same G, V and criterion to the bit)
            theta_b = theta_from_cov(cov_b, b_sigma)
            s_a = sub.sigma if sub.sigma is not None else b_sigma
            theta_a = theta_from_cov(cov_from_theta(self.theta_a, cnms, s_a), s_a)
            out.append(
                Diff("theta", check, relative(theta_a, theta_b, floor=1.0), abs_diff(theta_a, theta_b), tol)
            )
        if sub.sigma is not None:
            out.append(
                Diff("sigma", check, abs(sub.sigma - b_sigma) / b_sigma, abs(sub.sigma - b_sigma), tol)
            )
        if sub.beta is not None and not self._model_problem("beta"):
            mine = sub.beta.reindex(lme.X_names).to_numpy(dtype=float)
            theirs = np.asarray(b.beta, dtype=float)
            out.append(Diff("beta", check, relative(mine, theirs), abs_diff(mine, theirs), tol))
        if sub.criterion is not None and b.criterion is not None:
            d = abs(sub.criterion - b.criterion)
            out.append(Diff("criterion", check, d / max(abs(b.criterion), 1.0), d, tol))
        if self.cov_a is not None:
            pairs = list(zip(self.cov_a, cov_b, strict=True))
            rel = max((relative(Ga, Gb, floor=b_sigma**2) for Ga, Gb in pairs), default=0.0)
            out.append(
                Diff("varcorr", check, rel, max((abs_diff(Ga, Gb) for Ga, Gb in pairs), default=0.0), tol)
            )
        rec = sub.record
        if rec is not None and rec.Lambdat is not None and rec.sigma is not None and not self.m.layout:
            Ga = rec.sigma**2 * (rec.Lambdat.T @ rec.Lambdat)  # q x q sparse: never dense (q up to 10^5)
            Gb = b_sigma**2 * (lme.Lambdat.T @ lme.Lambdat)
            rel, abs_d = sparse_diff(Ga, Gb, floor=b_sigma**2)
            out.append(Diff("G", check, rel, abs_d, tol))
        if sub.V is not None and not self._model_problem("V"):
            V_b = cons.AtTheta(lme, lme.theta, b_sigma).V()
            abs_d, rel = v_diff(sub.V, V_b, alignment(sub, b), lme.n)
            out.append(Diff("V", check, rel, abs_d, tol))
        if sub.ranef is not None and b.ranef is not None:
            rel, abs_d = ranef_diff(sub.ranef, b.ranef)
            out.append(Diff("ranef", check, rel, abs_d, tol))

    def which_lower(self) -> None:
        """lme4's criterion at its theta (the screen first: a clear tie needs no R round trip)."""
        m = self.m
        if self.theta_a is None or m.optimum is None:
            return
        d_a = self.crit(self.theta_a, self.b.REML, final=False)
        margin = self.tol_theta * max(abs(d_a), 1.0) if math.isfinite(d_a) else 0.0
        if self.screen is not None and not abs(d_a - m.optimum) <= m.tie - margin:
            d_a = self.crit(self.theta_a, self.b.REML)
        m.d_at_theta = d_a

    def other_reml(self) -> None:
        """Are its parameters lme4's optimum of the other criterion?  Asked only when the optima differ."""
        m = self.m
        if self.refit is None or self.theta_a is None or self.sub.sigma is None:
            return
        if all(d.rel <= d.tol for d in m.at_optimum):
            return
        alt = self.refit(not self.b.REML)
        alt_sigma = float(alt.sigma or 1.0)
        cnms = self.lme.cnms
        theta_alt = theta_from_cov(cov_from_theta(np.asarray(alt.theta), cnms, alt_sigma), alt_sigma)
        tol = max(self.tol_opt, 10 * tolerances.AT_OPTIMUM)
        m.other_reml = bool(
            relative(self.theta_a, theta_alt, floor=1.0) <= tol
            and abs(self.sub.sigma - alt_sigma) / alt_sigma <= tol
        )

    def ill_posed(self) -> None:
        m = self.m
        if m.q + m.p >= m.n:
            m.ill_posed.append(
                f"q + p = {m.q} + {m.p} >= n = {m.n}: as many random and fixed effects as observations"
            )
        if self.b.REML and m.n <= m.p:
            m.ill_posed.append(f"n = {m.n} <= p = {m.p}: the REML criterion is not defined")
        for who, value in (
            ("lme4's", m.optimum),
            ("lme4's at its theta", m.d_at_theta),
            ("its", self.sub.criterion),
        ):
            if value is not None and value == -math.inf:
                m.ill_posed.append(f"{who} criterion is -inf: the likelihood is unbounded")

    def not_available(self) -> None:
        sub = self.sub
        given = {
            "beta": sub.beta is not None,
            "sigma": sub.sigma is not None,
            "varcorr": sub.varcorr is not None,
            "theta": sub.varcorr is not None and sub.sigma is not None,
            "criterion": sub.criterion is not None or infinite(sub.extra.get("criterion_given")),
            "V": sub.V is not None,
            "ranef": sub.ranef is not None and self.b.ranef is not None,
        }
        for quantity, ok in given.items():
            if not ok:
                text = f"{sub.source} does not give {quantity}"
                if quantity == "ranef" and sub.ranef is not None:
                    text = "lme4's record has no conditional modes to compare with"
                elif quantity == "theta":
                    text = f"{sub.source} gives no varcorr and sigma to map onto lme4's theta"
                self.m.missing.append((quantity, text))

    def own_words(self) -> None:
        """The implementation's own convergence flag, warnings and versions (adapters give them)."""
        extra: dict[str, Any] = dict(self.sub.extra)
        rec = self.sub.record
        if rec is not None:
            extra = {**rec.extra, **extra}
        words: list[str] = []
        if extra.get("converged") is False:
            words.append("converged = False")
        if extra.get("pdHess") is False:
            words.append("pdHess = FALSE (Hessian not positive definite)")
        raw = extra.get("warnings") or []
        words.extend(str(w) for w in ([raw] if isinstance(raw, str) else raw))
        self.m.warnings = list(dict.fromkeys(words))
        versions = extra.get("versions")
        if isinstance(versions, dict):
            self.m.versions = {str(k): str(v) for k, v in versions.items()}


__all__ = ["Criterion", "Diff", "Measurements", "Refit", "measure", "readable"]
