"""What an implementation under audit supports, and what a case needs of it.

A plug-in declares its capabilities as a module-level (or attribute) `CAPABILITIES`, an iterable of
the names below; the audit draws its cases within them and lists once what fell outside.

Model families (what a case exercises):

| name                | the case has                                                             |
|---------------------|--------------------------------------------------------------------------|
| `intercept`         | a random intercept, `(1 | g)`                                            |
| `slopes`            | a random slope on a numeric variable, `(0 + x | g)`, `(x || g)`          |
| `correlated_slopes` | a term with more than one random effect per level, `(x | g)`, `(f | g)`  |
| `factor_slopes`     | a random slope on a factor, `(f | g)`, `(0 + f | g)`                     |
| `nested`            | grouping factors nested in one another, `(1 | s/t)`                      |
| `crossed`           | grouping factors that are not nested, `(1 | a) + (1 | b)`               |
| `rank_deficient`    | a fixed-effects matrix of lower rank than its columns (lme4 drops some)  |
| `REML`, `ML`        | the criterion                                                            |

Arguments (a case that passes one needs it): `weights`, `offset`, `subset`, `na_action`, `contrasts`,
`start`, `control`.

A case needs the union of what it exercises; it is within an implementation's capabilities when it
needs nothing outside them.  Without a declaration an implementation is taken to support every model
family and the arguments its signature names.  Anything else the implementation cannot do it says by
raising `vcheck.Unsupported` (or NotImplementedError): not a finding, listed once in the report.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from vcheck.core.errors import Unsupported, VcheckError

__all__ = [
    "ALL",
    "ARGUMENTS",
    "FAMILIES",
    "CapabilityError",
    "Unsupported",
    "declared",
    "needs_of",
    "parse_families",
    "spec_needs",
]

#: model families, in the order the report and --help list them
FAMILIES: tuple[str, ...] = (
    "intercept",
    "slopes",
    "correlated_slopes",
    "factor_slopes",
    "nested",
    "crossed",
    "rank_deficient",
    "REML",
    "ML",
)
#: lme4's arguments beyond formula, data and REML (issue 14); a case passing one needs it
ARGUMENTS: tuple[str, ...] = ("weights", "offset", "subset", "na_action", "contrasts", "start", "control")
#: every capability name
ALL: tuple[str, ...] = FAMILIES + ARGUMENTS

_ALIASES = {name.lower().replace("_", ""): name for name in ALL}
_ALIASES.update({"slope": "slopes", "factorslope": "factor_slopes", "rankdeficientx": "rank_deficient"})


class CapabilityError(VcheckError, ValueError):
    """An unknown capability name (in a plug-in's CAPABILITIES or on the command line)."""


def canonical(name: str) -> str:
    """A capability name in its canonical spelling: `correlated-slopes`, `Correlated slopes` ->
    `correlated_slopes`; raises CapabilityError for an unknown one."""
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    if key not in _ALIASES:
        raise CapabilityError(f"unknown capability {name!r}: choose from {', '.join(ALL)}")
    return _ALIASES[key]


def parse_families(text: str | Iterable[str]) -> frozenset[str]:
    """`--families intercept,slopes,REML` (or a list of names) as a set of canonical names.

    Naming no criterion means both: `--families intercept` is random intercepts by REML and by ML.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {canonical(item) for item in items if str(item).strip()}
    if not names:
        raise CapabilityError("no capability named: give e.g. --families intercept,slopes")
    if not names & {"REML", "ML"}:
        names |= {"REML", "ML"}
    return frozenset(names)


def declared(impl: Any) -> frozenset[str]:
    """The capabilities `impl` declares: its `CAPABILITIES` attribute, else its module's; without a
    declaration every model family and the arguments its signature takes."""
    value = _attribute(impl, "CAPABILITIES")
    if value is None:
        return frozenset(FAMILIES) | _signature_arguments(impl)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise CapabilityError(f"CAPABILITIES must be a list of names such as {list(FAMILIES[:3])}")
    return frozenset(canonical(v) for v in value)


def _attribute(impl: Any, name: str) -> Any:
    """`impl.NAME`, else NAME of the module `impl` was defined in (a plug-in's module-level constant)."""
    value = getattr(impl, name, None)
    if value is not None:
        return value
    import sys

    module = sys.modules.get(getattr(impl, "__module__", "") or "")
    return getattr(module, name, None) if module is not None else None


def _signature_arguments(impl: Any) -> frozenset[str]:
    try:
        params = inspect.signature(impl).parameters
    except (TypeError, ValueError):
        return frozenset()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return frozenset(ARGUMENTS)
    return frozenset(a for a in ARGUMENTS if a in params)


# --- what a case needs -------------------------------------------------------------------------------
def needs_of(
    formula: str, data: pd.DataFrame, REML: bool, arguments: Mapping[str, Any] | None = None
) -> frozenset[str]:
    """The capabilities fitting `formula` to `data` needs (families, criterion, arguments given).

    Terms come from vcheck's parser (lme4's `/` and `||` expansion), nesting from the observed levels
    of the grouping factors, the rank of X from vcheck's model matrix (lme4's pivoted QR, tol 1e-7).
    """
    from vcheck.auditing import formula_terms as _formula

    need = {"REML" if REML else "ML"}
    need |= {name for name, value in (arguments or {}).items() if name in ARGUMENTS and value is not None}
    parsed = _formula.parse(formula)
    if "offset(" in parsed.fixed.replace(" ", ""):
        need.add("offset")
    try:
        used, frame = _formula.model_rows(data, parsed)
    except Exception:  # data the model cannot be built on: let the implementation and lme4 say so
        used, frame = data, None
    for term in parsed.terms:
        if term.intercept:
            need.add("intercept")
        if len(term.slopes) + int(term.intercept) > 1 or _factor_columns(term, used) > 1:
            need.add("correlated_slopes")
        for slope in term.slopes:
            need.add("factor_slopes" if _is_factor(slope, used) else "slopes")
    need |= _grouping(parsed.terms, used)
    if frame is not None and _rank_deficient(formula, data):
        need.add("rank_deficient")
    return frozenset(need)


def _is_factor(variable: str, data: pd.DataFrame) -> bool:
    if variable not in data.columns:
        return False  # an expression (log(x), I(x^2)): numeric
    s = data[variable]
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _factor_columns(term: Any, data: pd.DataFrame) -> int:
    """Random effects per level a factor slope makes (levels, or levels - 1 beside an intercept)."""
    total = 0
    for slope in term.slopes:
        if _is_factor(slope, data):
            k = data[slope].nunique()
            total += k - 1 if term.intercept else k
    return total


def _grouping(terms: Iterable[Any], data: pd.DataFrame) -> set[str]:
    from vcheck.auditing import formula_terms as _formula

    groups = {t.group: t.factors for t in terms}
    if len(groups) < 2:
        return set()
    try:
        codes = {g: _formula.group_codes(data, f) for g, f in groups.items()}
    except KeyError:
        return set()
    names = sorted(codes, key=lambda g: codes[g].nunique())
    out: set[str] = set()
    for i, outer in enumerate(names):
        for inner in names[i + 1 :]:
            out.add("nested" if _formula.nested_in(codes[inner], codes[outer]) else "crossed")
    return out


def _rank_deficient(formula: str, data: pd.DataFrame) -> bool:
    """lme4 drops columns of X (pivoted QR, tol 1e-7): vcheck's design says which."""
    from vcheck.core.design import lFormula

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(lFormula(formula, data).dropped_columns)
    except Exception:
        return False


def spec_needs(spec: Any) -> frozenset[str]:
    """What a drawn case's `CaseSpec` needs, without building its data (for drawing within
    capabilities); the same as `needs_of` on the case it builds (tested)."""
    need = {"REML" if spec.REML else "ML"}
    part = spec.random_part
    family = spec.family
    if family == "intercept":
        need.add("intercept")
    elif family == "slope":
        need |= {"intercept", "slopes", "correlated_slopes"}
    elif family == "uncorrelated":
        need |= {"intercept", "slopes"}
    elif family == "factor_slope":
        need |= {"factor_slopes", "correlated_slopes"}
        if not part.startswith("(0"):
            need.add("intercept")
    else:
        need |= {family, "intercept"}
        if "x |" in part:
            need |= {"slopes", "correlated_slopes"}
    if spec.fixed == "x + x2":
        need.add("rank_deficient")
    return frozenset(need)


def missing(need: Iterable[str], capabilities: Iterable[str]) -> list[str]:
    """The needs outside the capabilities, in the vocabulary's order."""
    have = set(capabilities)
    wanted = set(need)
    return [name for name in ALL if name in wanted and name not in have]


def check(need: Iterable[str], capabilities: Iterable[str], name: str = "the implementation") -> None:
    """Raise Unsupported naming what the case needs outside `capabilities`."""
    outside = missing(need, capabilities)
    if outside:
        raise Unsupported(f"outside the declared capabilities of {name}: needs {', '.join(outside)}")


# --- cases outside capabilities -------------------------------------------------------------------
def outside(cases: Iterable[Any], capabilities: Iterable[str]) -> dict[str, list[str]]:
    """Cases outside `capabilities`, by the first capability each lacks: {capability: [labels]}."""
    have = frozenset(capabilities)
    out: dict[str, list[str]] = {}
    for case in cases:
        lacking = missing(needs_of(case.formula, case.data, case.REML), have)
        if lacking:
            out.setdefault(lacking[0], []).append(case.label)
    return out
