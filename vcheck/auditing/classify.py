"""Classification: verdicts as a pure function of `vcheck.auditing.measure.Measurements`.

`classify(m)` returns a `Comparison`: one `Row` per quantity and check (agrees / differs / not available,
with its kind), and `Comparison.causes`: one `Cause` per root cause (kind), the row it starts from and
the other rows that differ because of it (`consequences`).

The kinds (`vcheck.auditing.kinds.Kind`), in the order the rows are judged:
- model: its REML flag, fixed columns, random terms or V's rows are not lme4's model; its criterion or
  sigma is lme4's OTHER criterion's at its parameters; its parameters are lme4's other optimum;
- construction: at its own parameters, V, beta (by backward error) or the criterion is not lme4's
  construction there beyond what the numerics allow, a layout differs, or no theta gives its varcorr;
- at the optimum, differences beyond AT_OPTIMUM take the root kind of the case: construction or model
  when there is one; else
  ill-posed when no unique optimum exists (both sides' criteria shown, no one blamed);
  optimization when lme4's criterion at its theta is higher than lme4's optimum by more than the tie
  tolerance, or its sigma is not the profiled sigma at its theta (no flat optimum excuses that);
  reference when lme4's criterion at its theta is LOWER than lme4's optimum by more than the tie
  tolerance (the evidence: both numbers);
  agreement when the two criteria tie and `flat_optimum` (a flat optimum), else optimization;
- not available: a quantity it does not give.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from vcheck.auditing.kinds import Kind
from vcheck.auditing.measurements import Diff, Measurements

AGREES, DIFFERS, NOT_AVAILABLE = "agrees", "differs", "not available"


@dataclass
class Row:
    """One quantity under one check.  verdict: "agrees", "differs" or "not available"."""

    quantity: str
    check: str  # "layout", "at its parameters", "at optimum", "model", "-"
    verdict: str
    kind: str | None  # a Kind; None when it agrees
    rel_diff: float | None = None
    abs_diff: float | None = None
    tol: float | None = None
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for key in ("rel_diff", "abs_diff", "tol"):
            if d[key] is not None and not math.isfinite(d[key]):
                d[key] = str(d[key])  # JSON has no inf/nan
        if d["kind"] is not None:
            d["kind"] = str(d["kind"])
        return d


@dataclass
class Cause:
    """One root cause: its kind, the root quantity and the rows that differ because of it."""

    kind: str
    quantity: str
    check: str
    rel_diff: float | None
    explanation: str
    consequences: list[dict[str, Any]] = field(default_factory=list)  # quantity, check, rel_diff


@dataclass
class Comparison:
    """The table `compare` returns; `findings` are its rows that do not agree (not available included),
    `causes` the same grouped by root cause."""

    formula: str
    REML: bool
    a: str
    b: str
    rows: list[Row] = field(default_factory=list)
    lower: str | None = None  # which criterion is lower when the optima differ: "lme4", a's source, "tie"
    warnings: list[str] = field(default_factory=list)  # what the implementation itself warned
    versions: dict[str, str] = field(default_factory=dict)  # the implementation's versions, as it gave them

    @property
    def findings(self) -> list[Row]:
        return [r for r in self.rows if r.verdict != AGREES]

    @property
    def ok(self) -> bool:
        """True when nothing disagrees (quantities that are not available do not count against it)."""
        return all(r.kind in (None, Kind.NOT_AVAILABLE) for r in self.rows)

    @property
    def causes(self) -> list[Cause]:
        """One cause per kind of disagreement: the first row of that kind is its root, the others its
        consequences (rows come root first: model, layout, at its parameters, at optimum, not given)."""
        out: dict[str, Cause] = {}
        for r in self.findings:
            if r.kind is None:
                continue
            kind = str(r.kind)
            if kind not in out:
                out[kind] = Cause(kind, r.quantity, r.check, r.rel_diff, r.explanation)
            else:
                out[kind].consequences.append(
                    {"quantity": r.quantity, "check": r.check, "rel_diff": r.rel_diff}
                )
        return list(out.values())

    def kinds(self) -> Counter[str]:
        return Counter(str(r.kind) for r in self.findings if r.kind is not None)

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
            "warnings": list(self.warnings),
            "versions": dict(self.versions),
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
                + (f"  {r.explanation}" if r.verdict != AGREES else "")
            )
        return "\n".join(lines)


def classify(m: Measurements) -> Comparison:
    """The verdicts for measurements `m` (see the module docstring); reads nothing but `m`."""
    out = Comparison(
        formula=m.formula, REML=m.REML, a=m.a, b=m.b, warnings=list(m.warnings), versions=dict(m.versions)
    )
    rows = out.rows
    model = [text for _, _, text in m.model]
    for quantity, check, text in m.model:
        rows.append(Row(quantity, check, DIFFERS, Kind.MODEL, explanation=text))
    if m.theta_error is not None:
        text = f"no theta gives its varcorr: {m.theta_error}"
        rows.append(Row("varcorr", "at its parameters", DIFFERS, Kind.CONSTRUCTION, explanation=text))
    _layout(m, rows)
    _at_parameters(m, rows, model)
    sigma_off = _sigma(m, rows, model)
    _at_optimum(m, out, model, sigma_off)
    for quantity, text in m.missing:
        rows.append(Row(quantity, "-", NOT_AVAILABLE, Kind.NOT_AVAILABLE, explanation=text))
    return out


def _layout(m: Measurements, rows: list[Row]) -> None:
    if m.layout is None:
        return
    for name, what, rel in m.layout:
        rows.append(Row(name, "layout", DIFFERS, Kind.CONSTRUCTION, rel, None, 0.0, what))
    if not m.layout:
        rows.append(Row("layout", "layout", AGREES, None, 0.0, None, 0.0, "X, Zt, Lambdat, Lind, cnms"))


_WHAT = {
    "V": "its V is not sigma^2 (Z Lambda Lambda' Z' + W^-1) at its own varcorr and sigma",
    "beta": "its beta is not the GLS beta at that V",
    "criterion": "its criterion is not lme4's at its parameters",
}


def _within(d: Diff | None) -> bool:
    return d is not None and d.within


def _at_parameters(m: Measurements, rows: list[Row], model: list[str]) -> None:
    for d in m.at_parameters:
        if _within(d):
            rows.append(Row(d.quantity, d.check, AGREES, None, d.rel, d.abs, d.tol, d.detail))
        elif d.quantity == "criterion" and m.reference_inconsistent and _same_criterion_as_lme4(m):
            text = f"{m.reference_inconsistent}; its criterion is the number lme4 reports ({d.detail})"
            rows.append(Row(d.quantity, d.check, DIFFERS, Kind.REFERENCE, d.rel, d.abs, d.tol, text))
        elif d.quantity == "criterion" and _within(m.criterion_other):
            assert m.criterion_other is not None
            text = (
                f"its criterion is lme4's {_name(not m.REML)} at its parameters "
                f"({m.criterion_other.detail}), "
                f"not the {_name(m.REML)} that was asked ({d.detail})"
            )
            model.append(text)
            rows.append(Row(d.quantity, d.check, DIFFERS, Kind.MODEL, d.rel, d.abs, d.tol, text))
        else:
            text = f"{_WHAT.get(d.quantity, d.quantity + ' differs')} (rel diff {d.rel:.1e} > tol {d.tol:.1e}"
            text += f"; {d.detail})" if d.detail else ")"
            rows.append(Row(d.quantity, d.check, DIFFERS, Kind.CONSTRUCTION, d.rel, d.abs, d.tol, text))


def _same_criterion_as_lme4(m: Measurements) -> bool:
    """Its criterion is the very number lme4 reports (the criterion row at the optimum agrees)."""
    return any(d.quantity == "criterion" and d.rel <= d.tol for d in m.at_optimum)


def _sigma(m: Measurements, rows: list[Row], model: list[str]) -> str:
    """The sigma row at its parameters; returns why its sigma is no optimum ("" when it is)."""
    d = m.sigma_own
    if d is None:
        return ""
    if _within(d):
        rows.append(Row("sigma", d.check, AGREES, None, d.rel, d.abs, d.tol, d.detail))
        return ""
    if _within(m.sigma_other):
        assert m.sigma_other is not None
        text = (
            f"its sigma is the {m.sigma_other.detail}, not the {_name(m.REML)} {d.detail} that was asked "
            f"(the {_name(not m.REML)} divisor {'n' if m.REML else 'n - p'}: sqrt(pwrss / "
            f"{'n' if m.REML else 'n - p'}))"
        )
        model.append(text)
        rows.append(Row("sigma", "model", DIFFERS, Kind.MODEL, d.rel, d.abs, d.tol, text))
        return ""
    off = (
        f"its sigma is not the {d.detail} (rel diff {d.rel:.1e} > {d.tol:.1e}, the deviation that raises "
        f"the {_name(m.REML)} criterion by the tie tolerance), so its (theta, sigma) is no optimum"
    )
    construction = [r for r in rows if r.kind == Kind.CONSTRUCTION]
    kind = Kind.OPTIMIZATION
    text = off
    if construction:
        kind, text = (
            Kind.CONSTRUCTION,
            f"follows from its construction disagreement in {construction[0].quantity}: {off}",
        )
    elif model:
        kind, text = Kind.MODEL, f"a different model ({model[0]}): {off}"
    elif m.ill_posed:
        kind, text = Kind.ILL_POSED, f"no unique optimum ({'; '.join(m.ill_posed)}): {off}"
    rows.append(Row("sigma", d.check, DIFFERS, kind, d.rel, d.abs, d.tol, text))
    return off


def _lower(m: Measurements) -> str | None:
    """ "lme4", "it" or "tie": whose optimum is lower by lme4's own criterion (None: not measured)."""
    if m.d_at_theta is None or m.optimum is None:
        return None
    delta = m.d_at_theta - m.optimum
    if delta > m.tie:
        return "lme4"
    if delta < -m.tie:
        return "it"
    return "tie" if delta == delta else None


def _at_optimum(m: Measurements, out: Comparison, model: list[str], sigma_off: str) -> None:
    rows = out.rows
    differing = [d for d in m.at_optimum if not d.rel <= d.tol]
    lower = _lower(m)
    name = _name(m.REML)
    numbers = (
        f"lme4's {name} at its theta {m.d_at_theta:.10g}, at lme4's optimum {m.optimum:.10g}"
        if m.d_at_theta is not None and m.optimum is not None
        else "its parameters cannot be mapped onto lme4's theta to say which criterion is lower"
    )
    construction = [r for r in rows if r.kind == Kind.CONSTRUCTION]
    flat = False
    if construction:
        kind, why = (
            Kind.CONSTRUCTION,
            f"follows from its construction disagreement in {construction[0].quantity}",
        )
    elif model:
        kind, why = Kind.MODEL, f"a different model: {model[0]}"
        if m.other_reml and differing and not any(r.quantity == "REML" for r in rows):
            why = _other_reml_text(m)
            rows.append(Row("REML", "model", DIFFERS, Kind.MODEL, explanation=why))
    elif m.ill_posed and (differing or sigma_off):
        kind = Kind.ILL_POSED
        why = f"no unique optimum exists ({'; '.join(m.ill_posed)}); {numbers}"
        out.lower = {"lme4": m.b, "it": m.a}.get(lower or "", lower)
    elif m.other_reml and (lower != "tie" or not m.flat_optimum or sigma_off):
        why = _other_reml_text(m)
        rows.append(Row("REML", "model", DIFFERS, Kind.MODEL, explanation=why))
        kind = Kind.MODEL
    else:
        out.lower = {"lme4": m.b, "it": m.a}.get(lower or "", lower)
        if lower == "lme4":
            kind = Kind.OPTIMIZATION
            assert m.d_at_theta is not None and m.optimum is not None
            why = (
                f"lme4's optimum is lower: the {name} at its theta is higher by "
                f"{m.d_at_theta - m.optimum:.3g} ({numbers})"
            )
        elif lower == "it":
            kind = Kind.REFERENCE
            assert m.d_at_theta is not None and m.optimum is not None
            why = (
                f"lme4's optimum is the worse one: lme4's own {name} at its theta is lower than "
                f"lme4's optimum by {m.optimum - m.d_at_theta:.3g} ({numbers})"
            )
        elif lower == "tie":
            kind = Kind.OPTIMIZATION
            why = f"both thetas give the same {name} within {m.tie:g} (a flat or multiple optimum)"
            flat = m.flat_optimum and not sigma_off
        else:
            kind, why = Kind.OPTIMIZATION, numbers
        if sigma_off:
            why = f"{sigma_off}; {why}"
    for d in m.at_optimum:
        if d.rel <= d.tol:
            rows.append(Row(d.quantity, d.check, AGREES, None, d.rel, d.abs, d.tol))
        elif flat:
            text = f"same optimum: {why}; the parameters differ along a flat direction (rel diff {d.rel:.1e})"
            rows.append(Row(d.quantity, d.check, AGREES, None, d.rel, d.abs, d.tol, text))
        else:
            text = f"{d.quantity} differs from lme4's optimum (rel diff {d.rel:.1e}); {why}"
            rows.append(Row(d.quantity, d.check, DIFFERS, kind, d.rel, d.abs, d.tol, text))


def _other_reml_text(m: Measurements) -> str:
    other = _name(not m.REML)
    return f"its parameters are lme4's {other} optimum: it fitted {other} where {_name(m.REML)} was asked"


def _name(REML: bool) -> str:
    return "REML" if REML else "ML"
