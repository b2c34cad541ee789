"""Tables shared by `vcheck compare` (plain text) and the report pages: checks and estimates side by side.

- `comparison_rows(result)`: `vcheck.auditing.comparison`'s rows (quantity, check, relative difference,
  tolerance,
  verdict, kind, explanation) as display rows;
- `estimate_rows(mine, ref)`: the estimates element by element (criterion, sigma, theta, beta, the
  variance components), each implementation's value and their difference;
- `format_text_table`: a fixed-width text table for the terminal.

Two precisions.  The terminal (`vcheck compare`) shows everything: values to 10 digits, differences to 2.
The committed reports must not change when nothing changed, but live lme4 is not bit-reproducible across R
sessions: its optimum moves by ~1e-9 relative with the memory layout (address-space randomization; within
one session it repeats exactly).  So the reports print values to 6 significant digits and differences to one,
with anything below a floor, far under every tolerance and above that noise, printed as `< floor`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vcheck.core.record import LmerFit

#: reports: differences below these are printed as "< floor" (at the optimum / at a fixed theta)
FLOOR_OPTIMUM = 1e-8
FLOOR_AT_THETA = 1e-12
#: reports: significant digits of a value
REPORT_DIGITS = 6


@dataclass(frozen=True)
class ComparisonRow:
    """One row of `vcheck.auditing.comparison`'s table, for display."""

    quantity: str
    check: str
    rel_diff: float | None
    tol: float | None
    verdict: str  # "agrees", "differs", "not available"
    kind: str  # "" when it agrees
    explanation: str

    @property
    def agrees(self) -> bool:
        return self.verdict == "agrees"

    @property
    def verdict_text(self) -> str:
        if self.agrees:
            return "agree"
        return self.kind or self.verdict

    @property
    def diff_report(self) -> str:
        """The relative difference for a report: exact zeros of layouts as `0`, else floored, one digit."""
        if self.check == "layout" and self.rel_diff == 0:
            return "0"
        floor = FLOOR_OPTIMUM if self.check == "at optimum" else FLOOR_AT_THETA
        return floored(self.rel_diff, floor)


def comparison_rows(result: Any) -> list[ComparisonRow]:
    """Display rows from a `vcheck.auditing.comparison.Comparison` (anything with `.rows` of compare's
    `Row`)."""
    rows = []
    for r in getattr(result, "rows", []):
        rows.append(
            ComparisonRow(
                quantity=str(r.quantity),
                check=str(getattr(r, "check", "")),
                rel_diff=_float(getattr(r, "rel_diff", None)),
                tol=_float(getattr(r, "tol", None)),
                verdict=str(r.verdict),
                kind=str(r.kind or ""),
                explanation=" ".join(str(getattr(r, "explanation", "") or "").split()),
            )
        )
    return rows


def _float(x: Any) -> float | None:
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class EstimateRow:
    """One estimate from both sides: value, value, and the difference (relative unless `absolute`)."""

    name: str
    mine: float | None
    ref: float | None

    @property
    def absolute(self) -> bool:
        """Differences of values near zero are shown absolute (a relative one would say nothing)."""
        return self.ref is not None and abs(self.ref) < 1e-8

    @property
    def difference(self) -> float | None:
        if (
            self.mine is None
            or self.ref is None
            or not (math.isfinite(self.mine) and math.isfinite(self.ref))
        ):
            return None
        d = abs(self.mine - self.ref)
        return d if self.absolute else d / abs(self.ref)


def _varcorr_items(fit: LmerFit) -> dict[str, float]:
    """Variance components as `var(grp: name)` and `cov(grp: name1, name2)`, `var(Residual)` last."""
    out: dict[str, float] = {}
    if fit.varcorr is None:
        return out
    for _, r in fit.varcorr.iterrows():
        var1 = r["var1"] if isinstance(r["var1"], str) else ""
        var2 = r["var2"] if isinstance(r["var2"], str) else ""
        if var2:
            out[f"cov({r['grp']}: {var1}, {var2})"] = float(r["vcov"])
        else:
            out[f"var({r['grp']}{': ' + var1 if var1 else ''})"] = float(r["vcov"])
    return out


def _named_values(fit: LmerFit) -> dict[str, float]:
    out: dict[str, float] = {}
    if fit.criterion is not None:
        out["REML criterion" if fit.REML else "deviance"] = float(fit.criterion)
    if fit.sigma is not None:
        out["sigma"] = float(fit.sigma)
    if fit.theta is not None:
        for i, t in enumerate(fit.theta):
            out[f"theta[{i + 1}]"] = float(t)
    if fit.beta is not None:
        for k, v in fit.beta.items():
            out[f"beta[{k}]"] = float(v)
    out.update(_varcorr_items(fit))
    return out


def estimate_rows(mine: LmerFit, ref: LmerFit) -> list[EstimateRow]:
    """The estimates of both fits, element by element, in the reference's order (then any extra of mine)."""
    a, b = _named_values(mine), _named_values(ref)
    names = list(b) + [k for k in a if k not in b]
    return [EstimateRow(k, a.get(k), b.get(k)) for k in names]


def floored(x: float | None, floor: float) -> str:
    """`3e-5`; `< 1e-8` below the floor; `—` when absent; `inf` as is."""
    if x is None or math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞"
    if x < floor:
        return f"< {floor:.0e}".replace("e-0", "e-")
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e+")


def value_report(x: float | None) -> str:
    """A value for a report: 6 significant digits, `≈ 0` below the floor (lme4's boundary noise)."""
    if x is not None and math.isfinite(x) and abs(x) < FLOOR_OPTIMUM:
        return "≈ 0"
    return value_text(x, REPORT_DIGITS)


def diff_report(row: EstimateRow) -> str:
    """An estimate's difference for a report (floored, one digit; absolute near zero)."""
    text = floored(row.difference, FLOOR_OPTIMUM)
    return f"{text} (abs)" if row.absolute and text not in ("—",) else text


def value_text(x: float | None, digits: int = 10) -> str:
    """A value at `digits` significant digits, `—` when absent."""
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    text = f"{x:#.{digits}g}"  # "#": trailing zeros kept, so that a column's digits line up
    return text[:-1] if text.endswith(".") else text


def diff_text(row: EstimateRow) -> str:
    """`3.1e-11`, `0`, or `2.0e-12 (abs)` for a difference of values near zero."""
    d = row.difference
    if d is None:
        return "—"
    text = "0" if d == 0 else f"{d:.1e}"
    return f"{text} (abs)" if row.absolute and d != 0 else text


def format_text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A fixed-width text table: columns padded to their widest cell, two spaces apart."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if rj else c.ljust(w) for c, w, rj in zip(cells, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]) + "\n"


def versions_line(fit: LmerFit) -> str:
    """`lme4 1.1.31, R 4.2.2 Patched (...), collation C.UTF-8` from a reference record."""
    v = fit.versions
    r = v.get("R", "R").replace("R version ", "R ")
    return f"reference: lme4 {v.get('lme4', '?')}, {r}, collation {v.get('LC_COLLATE', v.get('locale', '?'))}"
