"""lme4's formula syntax: `response ~ fixed part + (lhs | group) + ...` -> response, fixed part, random terms.

Does what lme4's `expandDoubleVerts`, `findbars` (with its `expandSlash`) and `nobars` do, on our own parse
tree (formulaic cannot parse `(1 + x | g)`):
- `(x || g)` becomes `(1 | g) + (0 + x | g)`, one term per term label of `~ x`, so a factor stays one
  correlated term;
- `(x | a/b)` becomes `(x | b:a) + (x | a)`, and `(x | a/b/c)` becomes `(x | c:(b:a)) + (x | b:a) + (x | a)`;
- everything that is not a random-effects term is the fixed part (`~ 1` when nothing is left).
Random-effects terms must be summands of the right-hand side (lme4 also finds bars nested inside other
operators, with odd results; vcheck refuses those), and grouping factors must be columns joined by `:`/`/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from vcheck.core.errors import FormulaError
from vcheck.core.rexpr import Call, Node, Num, Str, Sym, deparse, parse, symbols
from vcheck.core.terms import terms

# lme4's slashTerms/makeInteraction work on nested lists of grouping expressions
Nested = Node | list["Nested"]


@dataclass(frozen=True)
class Bar:
    """One random-effects term `(lhs | group)` after `||` and `/` expansion."""

    lhs: Node
    group: Node

    @property
    def group_name(self) -> str:
        """lme4's grouping-factor name, `deparse1(group)`: `Subject`, `b:a`, `c:(b:a)`."""
        return deparse(self.group, backtick=False)

    @property
    def label(self) -> str:
        """lme4's term name, `deparse1(lhs | group)`: `Days | Subject`, `0 + x | g`."""
        return deparse(Call("|", (self.lhs, self.group)))


@dataclass(frozen=True)
class ParsedFormula:
    """`text` = response ~ fixed + bars."""

    text: str
    response: Node
    fixed: Node
    bars: tuple[Bar, ...]


def _has_bar(node: Node) -> bool:
    if isinstance(node, Call):
        return node.fn in ("|", "||") or any(_has_bar(a) for a in node.args)
    return False


def _summands(node: Node, text: str) -> list[Node]:
    """Split the right-hand side on `+` (and parentheses around sums holding bars)."""
    if isinstance(node, Call) and node.fn == "+" and len(node.args) == 2:
        return _summands(node.args[0], text) + _summands(node.args[1], text)
    if isinstance(node, Call) and node.fn == "(" and _has_bar(node.args[0]):
        return _summands(node.args[0], text)
    if isinstance(node, Call) and node.fn in ("|", "||"):
        if _has_bar(node.args[0]) or _has_bar(node.args[1]):
            raise FormulaError(f"malformed formula {text!r}: nested bars in {deparse(node)!r}")
        return [node]
    if isinstance(node, Call) and node.fn in _COVARIANCE_SYNTAX and _has_bar(node):
        what = _COVARIANCE_SYNTAX[node.fn]
        if node.fn == "diag" and len(node.args) > 1:
            what = _LME4_2 + "lme4 1.1-31 rejects it too (base R's diag() gets an unused argument)"
        raise FormulaError(f"formula {text!r}: {deparse(node)!r} is " + what)
    if _has_bar(node):
        raise FormulaError(
            f"formula {text!r}: the random-effects term inside {deparse(node)!r} is not a summand of the "
            "formula; vcheck takes random-effects terms only as summands (write `... + (x | g)`)"
        )
    return [node]


_LME4_2 = "lme4 2.x's covariance-structure syntax, which vcheck does not take; "
#: what lme4 1.1-31 (vcheck's reference) does with lme4 2.x's covariance structures, as checked in R 4.2.2
_COVARIANCE_SYNTAX = {
    "us": _LME4_2 + 'lme4 1.1-31 rejects it too (could not find function "us")',
    "cs": _LME4_2 + 'lme4 1.1-31 rejects it too (could not find function "cs")',
    "ar1": _LME4_2 + 'lme4 1.1-31 rejects it too (could not find function "ar1")',
    "diag": _LME4_2 + "lme4 1.1-31 has no such structure either (it reads diag(1 | g) as a fixed-effect "
    "term, then fails with '0 (non-NA) cases')",
}


def _expand_double_vert(lhs: Node, group: Node) -> list[Bar]:
    """`(lhs || g)` -> `(1 | g)` (when lhs has an intercept) + `(0 + term | g)` for each term label."""
    lhs_terms = terms(lhs)
    bars = [Bar(Num(1.0), group)] if lhs_terms.intercept else []
    for label in lhs_terms.labels:
        bars.append(Bar(parse(f"0+{label}"), group))
    return bars


def _slash_terms(node: Node, text: str) -> Nested:
    if not _contains_op(node, "/"):
        return node
    if not (isinstance(node, Call) and node.fn == "/" and len(node.args) == 2):
        raise FormulaError(f"formula {text!r}: unparseable grouping factor {deparse(node)!r}")
    return [_slash_terms(node.args[0], text), _slash_terms(node.args[1], text)]


def _make_interaction(x: Nested) -> Nested:
    """lme4's makeInteraction: [a, b] -> [b:a, a]; [[a, b], c] -> [c:(b:a), [b:a, a]]."""
    if not isinstance(x, list):
        return x
    first = _make_interaction(x[0])
    first_term = first[0] if isinstance(first, list) else first
    inner = x[1]  # slash terms nest on the left only: the right side is one expression
    assert not isinstance(inner, list) and not isinstance(first_term, list)
    return [Call(":", (inner, first_term)), first]


def _flatten(x: Nested) -> list[Node]:
    if isinstance(x, list):
        return [leaf for item in x for leaf in _flatten(item)]
    return [x]


def _contains_op(node: Node, op: str) -> bool:
    return isinstance(node, Call) and (node.fn == op or any(_contains_op(a, op) for a in node.args))


def _check_group(group: Node, text: str) -> None:
    """Grouping factors vcheck evaluates: columns, joined by `:`, in parentheses."""
    if isinstance(group, Sym):
        return
    if isinstance(group, Call) and group.fn in (":", "(") and group.args:
        for a in group.args:
            _check_group(a, text)
        return
    if isinstance(group, Num | Str):
        # checked in R 4.2.2: (1|TRUE) and (1|2) fail in lme4 1.1-31's lFormula too
        raise FormulaError(
            f"formula {text!r}: grouping factor {deparse(group)!r} is a constant, not a column"
        )
    raise FormulaError(
        f"formula {text!r}: vcheck takes grouping factors that are columns of the data joined by ':' or '/', "
        f"not {deparse(group)!r}; make it a column (lme4 1.1-31 evaluates such an expression within its "
        'model frame, where (1|factor(Subject)) fails with "couldn\'t evaluate grouping factor")'
    )


def _expand_dot(fixed: Node, response: Node, columns: list[str] | None, text: str) -> Node:
    """R's terms.formula(data = ...): `.` is every data column not on the left-hand side, in data order."""
    if not _contains_dot(fixed):
        return fixed
    if columns is None:
        raise FormulaError(f"formula {text!r}: '.' (all other columns) needs the data's columns")
    lhs = set(symbols(response)) | {deparse(response, backtick=False)}
    others: list[Node] = [Sym(c) for c in columns if c not in lhs]
    if not others:
        raise FormulaError(f"formula {text!r}: '.' stands for no columns (the data has only the response)")
    dot: Node = Call("(", (reduce(lambda a, b: Call("+", (a, b)), others),))  # R's "(a + b + c)"
    return _replace_dot(fixed, dot)


def _contains_dot(node: Node) -> bool:
    if isinstance(node, Sym):
        return node.name == "."
    return isinstance(node, Call) and any(_contains_dot(a) for a in node.args)


def _replace_dot(node: Node, dot: Node) -> Node:
    if isinstance(node, Sym) and node.name == ".":
        return dot
    if isinstance(node, Call):
        return Call(node.fn, tuple(_replace_dot(a, dot) for a in node.args), node.argnames)
    return node


def parse_formula(text: str, columns: list[str] | None = None) -> ParsedFormula:
    """Parse an lme4 model formula; `columns` (the data's) expand a `.` in the fixed part."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(f"malformed formula {text!r}: expected text like 'y ~ x + (x | g)'")
    tree = parse(text)
    if not (isinstance(tree, Call) and tree.fn == "~"):
        raise FormulaError(f"malformed formula {text!r}: no '~'")
    if len(tree.args) != 2:
        raise FormulaError(f"formula {text!r} has no response: lmer needs 'response ~ ...'")
    response, rhs = tree.args
    if _has_bar(response) or _contains_op(response, "~"):
        raise FormulaError(f"malformed formula {text!r}: bad response {deparse(response)!r}")
    fixed: list[Node] = []
    bars: list[Bar] = []
    for summand in _summands(rhs, text):
        if not (isinstance(summand, Call) and summand.fn in ("|", "||")):
            fixed.append(summand)
            continue
        lhs, group = summand.args
        expanded = _expand_double_vert(lhs, group) if summand.fn == "||" else [Bar(lhs, group)]
        for bar in expanded:
            groups = _flatten(_make_interaction(_slash_terms(bar.group, text)))
            for g in groups:
                _check_group(g, text)
                bars.append(Bar(bar.lhs, g))
    if not bars:
        raise FormulaError(f"formula {text!r}: no random effects terms specified (lme4 needs at least one)")
    fixed_node = reduce(lambda a, b: Call("+", (a, b)), fixed) if fixed else Num(1.0)
    if any(_contains_dot(b.lhs) for b in bars):
        raise FormulaError(
            f"formula {text!r}: vcheck expands '.' only in the fixed part, not in ({bars[0].label})"
        )
    fixed_node = _expand_dot(fixed_node, response, columns, text)
    return ParsedFormula(text, response, fixed_node, tuple(bars))
