"""Two fit records -> a per-quantity table of differences, tolerance, verdict and kind of disagreement.

`compare(a, b)` judges `a` (any implementation: an `LmerFit`, or a plug-in's mapping, see
`vcheck.auditing.plugin`) against `b`, lme4's fit of the same model with its design (X, y, Zt, Lambdat,
Lind, cnms).
Each row is one quantity under one check:

- layout (only when `a` claims lme4's layout, i.e. is a full record): X, Zt, Lambdat's pattern, Lind,
  cnms and level order, exactly (X and Zt values to AT_THETA);
- at its parameters: a's varcorr and sigma are mapped onto lme4's theta (theta_k = chol(G_k / sigma^2)),
  and lme4's construction there, V = sigma^2 (Z Lambda Lambda' Z' + I), GLS beta at that V and lme4's
  criterion d(theta), is set against what a reports.  A difference is a *construction* disagreement.
  Its sigma is held to the profiled sigma at its theta, sqrt(pwrss / (n - p)) (REML) or sqrt(pwrss / n)
  (ML): any other sigma is not an optimum of the criterion (*optimization*, which no flat optimum in
  theta excuses), and the other criterion's divisor is ML where REML was asked (*model*);
- at optimum: theta, sigma, beta, criterion, varcorr (per-term covariance, so G up to a permutation of
  Z's columns), G (layout claimed only), V (up to row order), ranef, against lme4's fit.  When a is
  consistent with its own parameters, a difference is an *optimization* disagreement, and the row says
  which criterion is lower (lme4's d at a's theta against lme4's optimum: either side may be better);
- *model*: a's random terms do not map onto lme4's, its fixed-effect columns are not lme4's, or it fitted
  ML where REML was asked (it says so, its criterion is lme4's other criterion at its theta, or its
  parameters are lme4's optimum of the other criterion);
- *not available*: a quantity a does not give.  Never "passed".

At-optimum differences that follow from a construction or model disagreement carry that root kind.
A flat optimum is not a disagreement: parameters that differ beyond AT_OPTIMUM while lme4's criterion at
a's theta equals lme4's optimum within CRITERION_ABS or CRITERION_REL relative, whichever is larger, agree
(lme4 itself moves by ~1e-4 in theta on such models when the rows are shuffled); `flat_optimum=False`
makes every difference count.

A record in lme4's layout is judged at its own theta; a mapping at the Cholesky factor of its varcorr,
with the criterion's tolerance widened by that round trip's error (eps x the condition number of
G_k / sigma^2) near a singular G.  V is compared up to row order (a's V in its data's row order, lme4's
in its kept rows), densely for n <= DENSE_V_MAX, else through random probe vectors, never as a dense
n x n.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from vcheck.auditing.plugin import (
    Output,
    PluginError,
    Submission,
    cov_from_theta,
    submission,
    term_covariances,
    theta_from_cov,
)
from vcheck.core import tolerances
from vcheck.core.errors import RError
from vcheck.core.record import Design, LmerFit, RandomTerm

if TYPE_CHECKING:
    from vcheck.core.deviance import Devfun

KINDS = ("construction", "optimization", "model", "not available")
#: V is compared entry by entry up to this many rows; beyond, by probe vectors and the diagonal
DENSE_V_MAX = 2000
#: random probe vectors for a large V
N_PROBES = 8

#: (theta, REML) -> lme4's criterion at theta (REML criterion or ML deviance)
Criterion = Callable[[np.ndarray, bool], float]
#: REML -> lme4's fit of the same model and data with that REML flag
Refit = Callable[[bool], LmerFit]


@dataclass
class Row:
    """One quantity under one check.  verdict: "agrees", "differs" or "not available"."""

    quantity: str
    check: str  # "layout", "at its parameters", "at optimum", "model", "-"
    verdict: str
    kind: str | None  # None when it agrees
    rel_diff: float | None = None
    abs_diff: float | None = None
    tol: float | None = None
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)  # the fields, all plain values (dataclasses.asdict would deep-copy them)
        for key in ("rel_diff", "abs_diff", "tol"):
            if d[key] is not None and not math.isfinite(d[key]):
                d[key] = str(d[key])  # JSON has no inf/nan
        return d


@dataclass
class Comparison:
    """The table `compare` returns; `findings` are its rows that do not agree (not available included)."""

    formula: str
    REML: bool
    a: str
    b: str
    rows: list[Row] = field(default_factory=list)
    lower: str | None = None  # which criterion is lower when the optima differ: "lme4", a's source, "tie"

    @property
    def findings(self) -> list[Row]:
        return [r for r in self.rows if r.verdict != "agrees"]

    @property
    def ok(self) -> bool:
        """True when nothing disagrees (quantities that are not available do not count against it)."""
        return all(r.kind in (None, "not available") for r in self.rows)

    def kinds(self) -> Counter[str]:
        return Counter(r.kind for r in self.findings if r.kind is not None)

    def row(self, quantity: str, check: str | None = None) -> Row:
        for r in self.rows:
            if r.quantity == quantity and (check is None or r.check == check):
                return r
        raise KeyError(f"no row for {quantity!r}{'' if check is None else ' (' + check + ')'}")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.rows])

    def to_dict(self) -> dict[str, Any]:
        return {
            "formula": self.formula,
            "REML": self.REML,
            "a": self.a,
            "b": self.b,
            "lower": self.lower,
            "rows": [r.to_dict() for r in self.rows],
        }

    def __str__(self) -> str:
        head = f"{self.a} vs {self.b}: {self.formula} ({'REML' if self.REML else 'ML'})"
        lines = [head, f"{'quantity':<10} {'check':<18} {'rel diff':>10} {'tol':>8}  {'verdict':<13} kind"]
        for r in self.rows:
            rel = "" if r.rel_diff is None else f"{r.rel_diff:10.2e}"
            tol = "" if r.tol is None else f"{r.tol:8.0e}"
            lines.append(
                f"{r.quantity:<10} {r.check:<18} {rel:>10} {tol:>8}  {r.verdict:<13} {r.kind or ''}"
                + (f"  {r.explanation}" if r.verdict != "agrees" else "")
            )
        return "\n".join(lines)


# --- the comparison ------------------------------------------------------------------------------------
def compare(
    a: Output | Submission,
    b: LmerFit,
    *,
    criterion: Criterion | None = None,
    screen: Criterion | None = None,
    refit: Refit | None = None,
    data_index: pd.Index | None = None,
    tol_at_theta: float = tolerances.AT_THETA,
    tol_optimum: float = tolerances.AT_OPTIMUM,
    flat_optimum: bool = True,
) -> Comparison:
    """Judge implementation `a` against lme4's fit `b` (see the module docstring for the rows and kinds).

    criterion: lme4's criterion at (theta, REML); default: `vcheck.core.deviance` on lme4's own design.
    screen: a faster criterion tried first (e.g. vcheck.core.deviance on lme4's design when `criterion` calls
        into R): an agreement it finds stands, and every number in a finding comes from `criterion`.
    refit: lme4's fit with the other REML flag, to recognise "ML where REML was asked" (optional).
    data_index: the index of the data `a` was fitted to (V's row labels) when `a` is a mapping.
    flat_optimum: parameters that differ beyond tol_optimum while lme4's criterion at a's theta equals
        lme4's optimum within CRITERION_ABS (or CRITERION_REL) are the same optimum (BOBYQA stops
        anywhere on a flat one: lme4 itself moves by ~1e-4 on shuffled rows there), so they agree.
        False: any difference counts.
    """
    lme = _require_design(b)
    sub = submission(a, data_index=data_index)
    judge = _Judge(sub, b, lme, criterion or python_criterion(b), refit, tol_at_theta, tol_optimum)
    judge.screen = screen
    judge.flat_optimum = flat_optimum
    return judge.run()


class _Judge:
    """One comparison, step by step: model structure, layout, at its parameters, at the optimum."""

    def __init__(
        self,
        sub: Submission,
        b: LmerFit,
        lme: _Lme,
        criterion: Criterion,
        refit: Refit | None,
        tol_theta: float,
        tol_opt: float,
    ) -> None:
        self.sub, self.b, self.lme, self.criterion, self.refit = sub, b, lme, criterion, refit
        self.tol_theta, self.tol_opt = tol_theta, tol_opt
        self.out = Comparison(formula=b.formula, REML=b.REML, a=sub.source, b=b.source)
        self.cnms = lme.cnms
        self.theta_a: np.ndarray | None = None
        self.cov_a: list[np.ndarray] | None = None
        self.model_problems: list[str] = []
        self._V_b: Any = None
        self.screen: Criterion | None = None
        self.flat_optimum = True
        self.criterion_noise = 0.0  # relative error of lme4's criterion at theta mapped from varcorr
        self.sigma_off = ""  # why its sigma is not the profiled sigma at its own theta ("" when it is)
        self.sigma_other_criterion = False  # its sigma is the other criterion's profiled sigma
        self._on_design: OnLmeDesign | None = None

    def on_design(self) -> OnLmeDesign:
        """vcheck.core.deviance on lme4's design (criterion and profiled sigma at any theta), made once."""
        if self._on_design is None:
            owner = getattr(self.screen, "__self__", None)  # a screen that is OnLmeDesign(b).criterion
            self._on_design = (
                owner if isinstance(owner, OnLmeDesign) and owner.b is self.b else OnLmeDesign(self.b)
            )
        return self._on_design

    def crit(self, theta: np.ndarray, REML: bool, *, final: bool = True) -> float:
        """lme4's criterion at theta; `final=False` allows the fast screen (it only confirms agreement)."""
        if not final and self.screen is not None:
            return self.screen(theta, REML)
        try:
            return self.criterion(theta, REML)
        except RError:
            # lme4's devfun refuses some thetas of degenerate (saturated) models ("Downdated VtV is not
            # positive definite"); the same PLS formula on lme4's own design still answers (+inf where
            # the system is not positive definite), so the comparison goes on instead of crashing
            return self.on_design().criterion(theta, REML)

    def add(self, *args: Any, **kwargs: Any) -> Row:
        row = Row(*args, **kwargs)
        self.out.rows.append(row)
        return row

    def run(self) -> Comparison:
        self.model_structure()
        self.layout()
        self.at_its_parameters()
        self.at_optimum()
        self.not_available()
        return self.out

    # --- model: fixed columns, random terms, REML --------------------------------------------------------
    def model_structure(self) -> None:
        sub, b = self.sub, self.b
        if sub.REML is not None and sub.REML != b.REML:
            self.model_problems.append(
                f"it fitted {_crit_name(sub.REML)} where {_crit_name(b.REML)} was asked"
            )
            self.add("REML", "model", "differs", "model", explanation=self.model_problems[-1])
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
                self.model_problems.append(text)
                self.add("beta", "model", "differs", "model", explanation=text)
        if sub.varcorr is None or sub.sigma is None:
            return
        mapping = term_covariances(sub.varcorr, self.cnms)
        if mapping.problems:
            self.model_problems.extend(mapping.problems)
            self.add("varcorr", "model", "differs", "model", explanation="; ".join(mapping.problems))
        if mapping.unmapped:
            return  # a term lme4 does not have: no theta describes its model, so no construction check
        # absent terms/covariances are a sub-model: lme4's construction with those entries at 0
        cov = [np.where(np.isnan(G), 0.0, G) for G in mapping.cov]
        try:
            self.theta_a = theta_from_cov(cov, sub.sigma)
            self.cov_a = cov
            if not mapping.problems:
                self.use_own_theta(cov)
        except PluginError as exc:
            self.add(
                "varcorr",
                "at its parameters",
                "differs",
                "construction",
                explanation=f"no theta gives it: {exc}",
            )

    def use_own_theta(self, cov: list[np.ndarray]) -> None:
        """A record in lme4's term layout carries its theta: take it as is (any factor of G/sigma^2 gives
        the same V and criterion), instead of the Cholesky factor of its varcorr.  Near a singular G that
        round trip is ill-conditioned, and lme4's criterion there would carry the round trip's error.
        Otherwise the criterion check allows for that error: eps times the condition number of G/sigma^2."""
        rec, sigma = self.sub.record, self.sub.sigma
        if rec is not None and rec.theta is not None and rec.cnms == self.cnms and rec.sigma == sigma:
            self.theta_a = np.asarray(rec.theta, dtype=float)
            return
        assert sigma is not None
        worst = 1.0
        for G in cov:
            w = np.linalg.eigvalsh(G / sigma**2)
            positive = w[w > w.max() * 1e-14] if w.max() > 0 else w[:0]
            if positive.size:
                worst = max(worst, float(positive.max() / positive.min()))
        self.criterion_noise = float(np.finfo(float).eps) * worst

    # --- layout (a full record claims lme4's X, Zt, Lambdat, Lind, cnms) -------------------------------
    def layout(self) -> None:
        rec, b = self.sub.record, self.b
        if rec is None:
            return
        problems: list[tuple[str, str, float]] = []

        def exact(name: str, ok: bool, what: str) -> None:
            if not ok:
                problems.append((name, what, math.inf))

        exact("cnms", rec.cnms == b.cnms, f"terms {rec.cnms} vs lme4's {b.cnms}")
        exact(
            "X", list(rec.X_names or []) == list(b.X_names or []), f"X columns {rec.X_names} vs {b.X_names}"
        )
        if rec.flist is not None and b.flist is not None:
            for g, f in b.flist.items():
                mine = rec.flist.get(g)
                same = mine is not None and [str(c) for c in mine.categories] == [
                    str(c) for c in f.categories
                ]
                exact("flist", same, f"levels of {g} are not in lme4's order")
        if rec.X is not None and b.X is not None and rec.X.shape == b.X.shape:
            rel = _rel(rec.X, b.X, floor=1.0)
            if rel > self.tol_theta:
                problems.append(("X", f"X values differ (max rel {rel:.1e})", rel))
        elif rec.X is not None:
            exact("X", False, f"X is {rec.X.shape}, lme4's {None if b.X is None else b.X.shape}")
        for name in ("Zt", "Lambdat"):
            m, r = getattr(rec, name), getattr(b, name)
            if m is None:
                continue
            if m.shape != r.shape or not _same_pattern(m, r):
                exact(name, False, f"{name} is {m.shape} with another sparsity pattern than lme4's {r.shape}")
            elif name == "Zt":
                rel = (
                    _rel(m.toarray(), r.toarray(), floor=1.0)
                    if m.shape[1] <= DENSE_V_MAX
                    else _rel(m.data, r.data, 1.0)
                )
                if rel > self.tol_theta:
                    problems.append(("Zt", f"Zt values differ (max rel {rel:.1e})", rel))
        if rec.Lind is not None:
            exact(
                "Lind", np.array_equal(np.asarray(rec.Lind), np.asarray(b.Lind)), "Lind differs from lme4's"
            )
        if problems:
            for name, what, rel in problems:
                self.add(name, "layout", "differs", "construction", rel_diff=rel, tol=0.0, explanation=what)
        else:
            self.add(
                "layout",
                "layout",
                "agrees",
                None,
                rel_diff=0.0,
                tol=0.0,
                explanation="X, Zt, Lambdat, Lind, cnms",
            )

    # --- at a's own parameters: lme4's construction there -----------------------------------------------
    def at_its_parameters(self) -> None:
        sub, b = self.sub, self.b
        if self.theta_a is None or sub.sigma is None:
            return
        lme = self.lme
        Lt = _lambdat_at(lme, self.theta_a)
        check = "at its parameters"
        V_ref = _V(lme, Lt, sub.sigma)  # lme4's construction at its parameters
        # GLS beta and the criterion at theta are only as accurate as V/sigma^2 = W'W + I is conditioned:
        # its eigenvalues lie in [1, 1 + ||W||_F^2], W = Lambdat Zt.  Large theta (a degenerate fit) costs
        # digits on any implementation, so the tolerance there is eps times that bound.
        W = sp.csc_matrix(Lt @ lme.Zt)
        noise = float(np.finfo(float).eps) * (1.0 + float(np.sum(W.data**2)))
        tol_solve = max(self.tol_theta, 10 * noise)
        if sub.V is not None and self.V_rows_problem() is None:
            abs_d, rel = _v_diff(sub.V, V_ref, _alignment(sub, b), lme.n)
            self.judge_construction(
                "V",
                check,
                rel,
                abs_d,
                "its V is not sigma^2 (Z Lambda Lambda' Z' + I) at its own varcorr and sigma",
            )
        if sub.beta is not None and not self.beta_model_problem():
            gls = _gls_beta(lme, V_ref, Lt, sub.sigma)
            mine = sub.beta.reindex(lme.X_names).to_numpy(dtype=float)
            rel = _rel(mine, gls)
            text = "its beta is not the GLS beta at that V"
            self.judge_construction("beta", check, rel, _abs(mine, gls), text, tol=tol_solve)
        if sub.criterion is not None:
            self.criterion_at_its_theta(tol_solve)
        self.sigma_at_its_theta()

    def criterion_at_its_theta(self, tol_solve: float) -> None:
        """Its criterion against lme4's d(theta) at its theta (or the other criterion's: model)."""
        sub, b, check = self.sub, self.b, "at its parameters"
        assert sub.criterion is not None and self.theta_a is not None
        tol = max(tol_solve, 10 * self.criterion_noise)
        d_own = self.crit(self.theta_a, b.REML, final=False)
        rel = abs(sub.criterion - d_own) / max(abs(d_own), 1.0)
        if rel > tol and self.screen is not None:
            d_own = self.crit(self.theta_a, b.REML)
            rel = abs(sub.criterion - d_own) / max(abs(d_own), 1.0)
        if rel > tol:
            d_other = self.crit(self.theta_a, not b.REML)
            if abs(sub.criterion - d_other) / max(abs(d_other), 1.0) <= tol:
                text = (
                    f"its criterion {sub.criterion:.6g} is lme4's {_crit_name(not b.REML)} at its theta, "
                    f"not the {_crit_name(b.REML)} ({d_own:.6g}) that was asked"
                )
                self.model_problems.append(text)
                self.add("criterion", check, "differs", "model", rel, abs(sub.criterion - d_own), tol, text)
                return
        self.judge_construction(
            "criterion",
            check,
            rel,
            abs(sub.criterion - d_own),
            f"its criterion is not lme4's d(theta) = {d_own:.10g} at its theta",
            tol=tol,
        )

    def sigma_at_its_theta(self) -> None:
        """Its sigma against the profiled sigma at its own theta on lme4's design.

        lme4's criterion is profiled in sigma: at any theta, sigma = sqrt(pwrss / (n - p)) (REML) or
        sqrt(pwrss / n) (ML) minimizes it.  Any other sigma with that theta is not an optimum of the
        criterion (an *optimization* disagreement, which no flat optimum in theta excuses); the other
        criterion's divisor is ML's sigma where REML was asked, or the reverse (*model*)."""
        sub, b = self.sub, self.b
        if self.theta_a is None or sub.sigma is None:
            return
        from vcheck.core.blocks import NotPositiveDefinite

        try:
            own = self.on_design().sigma(self.theta_a, b.REML)
        except NotPositiveDefinite:
            return  # a degenerate theta: no profiled sigma to hold it to (its criterion row says more)
        n, p = self.lme.n, self.lme.X.shape[1]
        other = own * math.sqrt((n - p) / n if b.REML else n / (n - p)) if n > p else math.nan
        rel = abs(sub.sigma - own) / own if own > 0 else math.inf
        tol = self.tol_opt
        check = "at its parameters"
        if rel <= tol:
            self.add("sigma", check, "agrees", None, rel, abs(sub.sigma - own), tol)
            return
        if math.isfinite(other) and abs(sub.sigma - other) / other <= tol:
            divisor, asked = ("n", "n - p") if b.REML else ("n - p", "n")
            text = (
                f"its sigma {sub.sigma:.6g} is the {_crit_name(not b.REML)} sigma sqrt(pwrss / {divisor}) "
                f"at its theta, not the {_crit_name(b.REML)} sigma sqrt(pwrss / {asked}) = {own:.6g} "
                "that was asked"
            )
            self.model_problems.append(text)
            self.sigma_other_criterion = True
            self.add("sigma", "model", "differs", "model", rel, abs(sub.sigma - own), tol, text)
            return
        self.sigma_off = (
            f"its sigma {sub.sigma:.6g} is not the profiled sigma {own:.6g} at its own theta, so its "
            f"(theta, sigma) is not an optimum of the {_crit_name(b.REML)} criterion"
        )
        text = f"{self.sigma_off} (rel diff {rel:.1e})"
        kind = "optimization"
        construction = [r for r in self.out.rows if r.kind == "construction"]
        if construction:  # its theta is already wrong (e.g. sd for variance): sigma follows from that
            kind = "construction"
            text = f"follows from its construction disagreement in {construction[0].quantity}: {text}"
        elif self.model_problems:  # a different model: its sigma is profiled for that model, not lme4's
            kind = "model"
            text = f"a different model ({self.model_problems[0]}): {text}"
        self.add("sigma", check, "differs", kind, rel, abs(sub.sigma - own), tol, text)

    def V_rows_problem(self) -> str | None:
        """Why a's V cannot be lined up with lme4's rows (a model finding, raised once), or None."""
        sub, b = self.sub, self.b
        if sub.V is None:
            return None
        n = self.lme.n
        if sub.row_index is not None and b.row_index is not None:
            if sub.row_index.get_indexer(b.row_index).min(initial=0) >= 0:
                return None
            text = "its V's rows are not the data rows lme4 used"
        elif sub.V.shape[0] == n:
            return None
        else:
            text = f"its V has {sub.V.shape[0]} rows, lme4's model uses {n} (after dropping rows with NA)"
        if not any(r.quantity == "V" and r.check == "model" for r in self.out.rows):
            self.model_problems.append(text)
            self.add("V", "model", "differs", "model", explanation=text)
        return text

    def beta_model_problem(self) -> bool:
        return any(r.quantity == "beta" and r.check == "model" for r in self.out.rows)

    def judge_construction(
        self, quantity: str, check: str, rel: float, abs_d: float, text: str, tol: float | None = None
    ) -> None:
        tol = self.tol_theta if tol is None else tol
        if rel <= tol:
            self.add(quantity, check, "agrees", None, rel, abs_d, tol)
        else:
            self.add(
                quantity, check, "differs", "construction", rel, abs_d, tol, f"{text} (rel diff {rel:.1e})"
            )

    # --- at the optimum: against lme4's fit -------------------------------------------------------------
    def at_optimum(self) -> None:
        sub, b = self.sub, self.b
        b_sigma = self.lme.sigma
        cov_b = cov_from_theta(self.lme.theta, self.cnms, b_sigma)
        diffs: list[tuple[str, float, float]] = []  # (quantity, rel, abs)
        if self.theta_a is not None:
            theta_b = theta_from_cov(cov_b, b_sigma)  # canonical: boundary factors are not unique in lme4
            diffs.append(("theta", _rel(self.theta_a, theta_b, floor=1.0), _abs(self.theta_a, theta_b)))
        if sub.sigma is not None:
            diffs.append(("sigma", abs(sub.sigma - b_sigma) / b_sigma, abs(sub.sigma - b_sigma)))
        if sub.beta is not None and not self.beta_model_problem():
            mine = sub.beta.reindex(self.lme.X_names).to_numpy(dtype=float)
            theirs = np.asarray(b.beta, dtype=float)
            diffs.append(("beta", _rel(mine, theirs), _abs(mine, theirs)))
        if sub.criterion is not None and b.criterion is not None:
            d = abs(sub.criterion - b.criterion)
            diffs.append(("criterion", d / max(abs(b.criterion), 1.0), d))
        if self.cov_a is not None:
            rel = max(
                (_rel(Ga, Gb, floor=b_sigma**2) for Ga, Gb in zip(self.cov_a, cov_b, strict=True)),
                default=0.0,
            )
            diffs.append(
                (
                    "varcorr",
                    rel,
                    max((_abs(Ga, Gb) for Ga, Gb in zip(self.cov_a, cov_b, strict=True)), default=0.0),
                )
            )
        rec = sub.record
        if rec is not None and rec.Lambdat is not None and rec.sigma is not None and self._same_layout():
            Ga = (rec.sigma**2 * (rec.Lambdat.T @ rec.Lambdat)).toarray()
            Gb = (b_sigma**2 * (self.lme.Lambdat.T @ self.lme.Lambdat)).toarray()
            diffs.append(("G", _rel(Ga, Gb, floor=b_sigma**2), _abs(Ga, Gb)))
        if sub.V is not None and self.V_rows_problem() is None:
            abs_d, rel = _v_diff(sub.V, self.V_b(), _alignment(sub, b), self.lme.n)
            diffs.append(("V", rel, abs_d))
        if sub.ranef is not None and b.ranef is not None:
            rel, abs_d = _ranef_diff(sub.ranef, b.ranef)
            diffs.append(("ranef", rel, abs_d))

        differing = [d for d in diffs if not d[1] <= self.tol_opt]
        kind, why = self.root_cause(differing)
        flat = kind == "optimization" and self.out.lower == "tie" and self.flat_optimum and not self.sigma_off
        for quantity, rel, abs_d in diffs:
            if rel <= self.tol_opt:
                self.add(quantity, "at optimum", "agrees", None, rel, abs_d, self.tol_opt)
            elif flat:
                text = (
                    f"same optimum: {why}; the parameters differ along a flat direction (rel diff {rel:.1e})"
                )
                self.add(quantity, "at optimum", "agrees", None, rel, abs_d, self.tol_opt, text)
            else:
                text = f"{quantity} differs from lme4's optimum (rel diff {rel:.1e}); {why}"
                self.add(quantity, "at optimum", "differs", kind, rel, abs_d, self.tol_opt, text)

    def _same_layout(self) -> bool:
        return not any(r.check == "layout" and r.verdict == "differs" for r in self.out.rows)

    def V_b(self) -> Any:
        if self._V_b is None:
            self._V_b = _V(self.lme, self.lme.Lambdat, self.lme.sigma)
        return self._V_b

    def root_cause(self, differing: list[tuple[str, float, float]]) -> tuple[str, str]:
        """The kind of the at-optimum differences, and why, in a few words."""
        construction = [r for r in self.out.rows if r.kind == "construction"]
        if construction:
            return "construction", f"follows from its construction disagreement in {construction[0].quantity}"
        if self.model_problems:
            if self.sigma_other_criterion and differing:  # is it the other criterion's optimum, too?
                other = self.other_reml_match()
                if other:
                    self.add("REML", "model", "differs", "model", explanation=other)
                    return "model", other
            return "model", f"a different model: {self.model_problems[0]}"
        if not differing:
            return "optimization", self.sigma_off
        why = self.which_lower()
        if self.out.lower != "tie" or not self.flat_optimum or self.sigma_off:
            # not the same optimum: perhaps the other criterion's (lme4 refitted only in this case)
            other = self.other_reml_match()
            if other:
                self.model_problems.append(other)
                self.add("REML", "model", "differs", "model", explanation=other)
                self.out.lower = None
                return "model", other
        if self.sigma_off:
            why = f"{self.sigma_off}; {why}"
        return "optimization", why

    def other_reml_match(self) -> str | None:
        """Its parameters are lme4's optimum of the other criterion (ML for REML or the reverse)?"""
        if self.refit is None or self.theta_a is None or self.sub.sigma is None:
            return None
        alt = self.refit(not self.b.REML)
        alt_sigma = float(alt.sigma or 1.0)
        theta_alt = theta_from_cov(cov_from_theta(np.asarray(alt.theta), self.cnms, alt_sigma), alt_sigma)
        tol = max(self.tol_opt, 10 * tolerances.AT_OPTIMUM)
        if (
            _rel(self.theta_a, theta_alt, floor=1.0) <= tol
            and abs(self.sub.sigma - alt_sigma) / alt_sigma <= tol
        ):
            return (
                f"its parameters are lme4's {_crit_name(alt.REML)} optimum: it fitted {_crit_name(alt.REML)} "
                f"where {_crit_name(self.b.REML)} was asked"
            )
        return None

    def which_lower(self) -> str:
        """lme4's criterion at a's theta against lme4's optimum: which side found the lower one."""
        if self.theta_a is None or self.b.criterion is None:
            self.out.lower = None
            return "its parameters cannot be mapped onto lme4's theta to say which criterion is lower"
        tie = max(tolerances.CRITERION_ABS, tolerances.CRITERION_REL * abs(self.b.criterion))
        # the screen (vcheck.core.deviance on lme4's design) agrees with lme4's devfun to AT_THETA: a tie it
        # finds with that margin to spare is a tie (an agreement); any other verdict takes lme4's number
        d_a = self.crit(self.theta_a, self.b.REML, final=False)
        margin = self.tol_theta * max(abs(d_a), 1.0)
        if self.screen is not None and not abs(d_a - self.b.criterion) <= tie - margin:
            d_a = self.crit(self.theta_a, self.b.REML)
        delta = d_a - self.b.criterion
        name = _crit_name(self.b.REML)
        if delta > tie:
            self.out.lower = self.b.source
            return f"lme4's optimum is lower: the {name} at its theta is higher by {delta:.3g}"
        if delta < -tie:
            self.out.lower = self.sub.source
            return f"its theta is BETTER: lme4's {name} there is lower than lme4's optimum by {-delta:.3g}"
        self.out.lower = "tie"
        return f"both thetas give the same {name} within {tie:g} (a flat or multiple optimum)"

    # --- what a does not give ---------------------------------------------------------------------------
    def not_available(self) -> None:
        sub = self.sub
        given = {
            "beta": sub.beta is not None,
            "sigma": sub.sigma is not None,
            "varcorr": sub.varcorr is not None,
            "theta": sub.varcorr is not None and sub.sigma is not None,
            "criterion": sub.criterion is not None,
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
                self.add(quantity, "-", "not available", "not available", explanation=text)


# --- numerical helpers ---------------------------------------------------------------------------------
def _crit_name(REML: bool) -> str:
    return "REML" if REML else "ML"


@dataclass(frozen=True)
class _Lme:
    """lme4's fit with the design pieces a comparison needs, none of them missing."""

    X: np.ndarray
    y: np.ndarray
    Zt: sp.csc_matrix
    Lambdat: sp.csc_matrix
    Lind: np.ndarray
    theta: np.ndarray
    sigma: float
    X_names: list[str]
    cnms: list[tuple[str, list[str]]]
    n: int
    weights: np.ndarray | None = None  # prior weights (None: all 1): V = sigma^2 (W'W + diag(1 / w))
    offset: np.ndarray | None = None  # offset (None: 0): the GLS beta is fitted to y - offset


def _require_design(b: LmerFit) -> _Lme:
    """The design pieces of lme4's record; ValueError naming what is missing."""
    names = ("X", "y", "Zt", "Lambdat", "Lind", "theta", "cnms", "sigma", "X_names")
    missing = [n for n in names if getattr(b, n) is None]
    if missing:
        raise ValueError(f"the reference record ({b.source}) needs lme4's design; it has no {missing}")
    assert b.X is not None and b.y is not None and b.Zt is not None and b.Lambdat is not None
    assert b.Lind is not None and b.theta is not None and b.sigma is not None and b.cnms is not None
    return _Lme(
        X=np.asarray(b.X, dtype=float),
        y=np.asarray(b.y, dtype=float),
        Zt=sp.csc_matrix(b.Zt),
        Lambdat=sp.csc_matrix(b.Lambdat),
        Lind=np.asarray(b.Lind),
        theta=np.asarray(b.theta, dtype=float),
        sigma=float(b.sigma),
        X_names=list(b.X_names or []),
        cnms=[(g, list(names)) for g, names in b.cnms],
        n=int(b.X.shape[0]),
        weights=None if b.weights is None else np.asarray(b.weights, dtype=float),
        offset=None if b.offset is None else np.asarray(b.offset, dtype=float),
    )


def _rel(a: Any, b: Any, floor: float = tolerances.ABS_FLOOR) -> float:
    """max |a - b| / max(max |b|, floor); inf when shapes differ or a has NaN where b has numbers."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    diff = np.abs(a - b)
    if np.isnan(diff).any():
        return math.inf
    return float(diff.max() / max(float(np.abs(b).max()), floor))


def _abs(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return math.inf
    return float(np.abs(a - b).max()) if a.size else 0.0


def _same_pattern(m: sp.spmatrix, r: sp.spmatrix) -> bool:
    m, r = sp.csc_matrix(m), sp.csc_matrix(r)
    m.sort_indices()
    r.sort_indices()
    return bool(np.array_equal(m.indptr, r.indptr) and np.array_equal(m.indices, r.indices))


def _lambdat_at(lme: _Lme, theta: np.ndarray) -> sp.csc_matrix:
    """lme4's Lambdat template with its non-zeros set from theta: Lambdat.data = theta[Lind]."""
    L = sp.csc_matrix(lme.Lambdat, copy=True)
    L.data = np.asarray(theta, dtype=float)[lme.Lind]
    return L


def _V(lme: _Lme, Lambdat: sp.csc_matrix, sigma: float) -> Any:
    """lme4's V = sigma^2 (W'W + I), W = Lambdat Zt: a dense array for small n (the product
    covariance.V forms, without its sparse bookkeeping, which costs more than the product there), the
    operator `covariance.V_operator` beyond."""
    if lme.n <= DENSE_V_MAX:
        W = (sp.csc_matrix(Lambdat) @ lme.Zt).toarray()
        V = W.T @ W
        V[np.diag_indices_from(V)] += 1.0 if lme.weights is None else 1.0 / lme.weights
        return sigma**2 * V
    from vcheck.core import covariance

    return covariance.V_operator(lme.Zt, Lambdat, sigma, weights=lme.weights)


def _gls_beta(lme: _Lme, V: Any, Lambdat: sp.csc_matrix, sigma: float) -> np.ndarray:
    """The seed's getFE, beta = (X' V^-1 X)^-1 X' V^-1 y: by a Cholesky factor of a dense V (small n), else
    by `covariance.gls_beta` (V's cluster blocks, or Woodbury's identity)."""
    if isinstance(V, np.ndarray):
        cf = sla.cho_factor(V, lower=True, check_finite=False)
        ViX = sla.cho_solve(cf, lme.X, check_finite=False)
        Viy = sla.cho_solve(cf, lme.y if lme.offset is None else lme.y - lme.offset, check_finite=False)
        XtViX = lme.X.T @ ViX
        return np.linalg.solve((XtViX + XtViX.T) / 2.0, lme.X.T @ Viy)
    from vcheck.core import covariance

    return covariance.gls_beta(lme.X, lme.y, lme.Zt, Lambdat, sigma, weights=lme.weights, offset=lme.offset)


def _alignment(sub: Submission, b: LmerFit) -> np.ndarray | None:
    """Positions in a's V of lme4's rows (lme4 keeps the data's order, minus NA rows); None = identity."""
    if sub.row_index is None or b.row_index is None:
        return None
    if sub.row_index.equals(b.row_index):
        return None
    pos = sub.row_index.get_indexer(b.row_index)
    if (pos < 0).any():
        raise PluginError("V's rows cannot be matched to lme4's rows (labels of the data rows differ)")
    return np.asarray(pos)


def _v_diff(Va: Any, Vb: Any, pos: np.ndarray | None, n: int) -> tuple[float, float]:
    """(max abs diff, relative diff) of a's V (data rows, aligned by pos) and lme4's V (n x n).

    Entry by entry when both are small matrices; otherwise through N_PROBES Gaussian probe vectors
    (||(Va - Vb) P|| / ||Vb P||: any non-zero difference shows, with probability 1).
    """
    if Va.shape[0] < n:
        return math.inf, math.inf
    if n <= DENSE_V_MAX and not isinstance(Va, LinearOperator) and not isinstance(Vb, LinearOperator):
        A = _dense(Va)
        if pos is not None:
            A = A[np.ix_(pos, pos)]
        elif A.shape[0] != n:
            return math.inf, math.inf
        B = _dense(Vb)
        d = float(np.abs(A - B).max()) if n else 0.0
        return d, d / max(float(np.abs(B).max()) if n else 0.0, tolerances.ABS_FLOOR)
    rng = np.random.default_rng(0)
    P = rng.standard_normal((n, N_PROBES))
    opA = aslinearoperator(Va)
    if pos is not None:
        Pd = np.zeros((Va.shape[0], N_PROBES))
        Pd[pos] = P
        AP = (opA @ Pd)[pos]
    else:
        AP = opA @ P
    BP = aslinearoperator(Vb) @ P
    d = float(np.abs(AP - BP).max())
    rel = float(np.linalg.norm(AP - BP) / max(float(np.linalg.norm(BP)), tolerances.ABS_FLOOR))
    return d, rel


def _dense(M: Any) -> np.ndarray:
    """A dense copy of an ndarray or scipy.sparse matrix (small V only)."""
    toarray = getattr(M, "toarray", None)  # scipy.sparse, without narrowing M's type for mypy
    return np.asarray(toarray()) if toarray is not None else np.asarray(M, dtype=float)


def _ranef_diff(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> tuple[float, float]:
    """Conditional modes aligned by group, level label and coefficient name (not by position)."""
    rel, abs_d = 0.0, 0.0
    for g, ref in b.items():
        mine = a.get(g)
        if mine is None:
            return math.inf, math.inf
        ref = ref.copy()
        ref.index = ref.index.astype(str)
        mine = mine.copy()
        mine.index = mine.index.astype(str)
        aligned = mine.reindex(index=ref.index, columns=ref.columns)
        scale = max(float(np.abs(ref.to_numpy()).max()) if ref.size else 0.0, 1e-8)
        rel = max(rel, _rel(aligned.to_numpy(dtype=float), ref.to_numpy(dtype=float), floor=scale))
        abs_d = max(abs_d, _abs(aligned.to_numpy(dtype=float), ref.to_numpy(dtype=float)))
    return rel, abs_d


def reference_design(b: LmerFit) -> Design:
    """lme4's design as a vcheck `Design`, read off lme4's fit record (X, y, Zt, Lambdat, Lind, cnms)."""
    lme = _require_design(b)
    terms = []
    start = 0
    flist = b.flist or {}
    for group, names in lme.cnms:
        k = len(names) * (len(names) + 1) // 2
        levels = tuple(str(c) for c in flist[group].categories) if group in flist else ()
        terms.append(
            RandomTerm(group=group, cnms=tuple(names), levels=levels, theta_slice=(start, start + k))
        )
        start += k
    return Design(
        formula=b.formula,
        X=lme.X,
        X_names=lme.X_names,
        y=lme.y,
        Zt=lme.Zt,
        Lambdat=lme.Lambdat,
        Lind=lme.Lind,
        theta=lme.theta,
        lower=np.asarray(b.lower) if b.lower is not None else np.zeros(len(lme.theta)),
        terms=terms,
        flist=dict(flist),
        row_index=b.row_index if b.row_index is not None else pd.RangeIndex(lme.n),
        weights=lme.weights,
        offset=lme.offset,
    )


class OnLmeDesign:
    """vcheck.core.deviance on lme4's own design (X, y, Zt, Lambdat, Lind of lme4's record), no R needed:
    lme4's criterion d(theta) and the profiled sigma(theta) = sqrt(pwrss / (n - p)) (REML) or
    sqrt(pwrss / n) (ML), the sigma that minimizes the criterion at that theta."""

    def __init__(self, b: LmerFit) -> None:
        self.b = b
        self.design = reference_design(b)
        self._devfuns: dict[bool, Devfun] = {}

    def devfun(self, REML: bool) -> Devfun:
        """lme4's mkLmerDevfun for this design and REML flag (`vcheck.core.deviance.Devfun`), made once."""
        from vcheck.core import deviance

        if REML not in self._devfuns:
            self._devfuns[REML] = deviance.devfun(self.design, REML=REML)
        return self._devfuns[REML]

    def criterion(self, theta: np.ndarray, REML: bool) -> float:
        return float(self.devfun(REML)(np.asarray(theta, dtype=float)))

    def sigma(self, theta: np.ndarray, REML: bool) -> float:
        """Profiled sigma at theta; NotPositiveDefinite (vcheck.core.blocks) where the PLS system is
        singular."""
        from vcheck.core import deviance

        fn = self.devfun(REML)
        return deviance.sigma(fn.factor(np.asarray(theta, dtype=float)), fn.n, fn.p, REML)


def python_criterion(b: LmerFit) -> Criterion:
    """lme4's criterion at theta computed by vcheck.core.deviance on lme4's own design (no R needed)."""
    return OnLmeDesign(b).criterion


def summarize(comparisons: Sequence[Comparison]) -> Counter[tuple[str, str]]:
    """(kind, quantity) counts over many comparisons' findings."""
    out: Counter[tuple[str, str]] = Counter()
    for c in comparisons:
        for r in c.findings:
            out[(r.kind or "", r.quantity)] += 1
    return out
