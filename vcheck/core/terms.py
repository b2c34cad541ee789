"""R's `terms.formula()`: the right-hand side of a model formula -> ordered terms, intercept, factor codes.

A term is a set of variables (`a:b` is {a, b}).  The operators follow R's model-formula algebra:
`+` joins, `:` interacts, `a*b = a + b + a:b`, `a/b = a + a:b`, `b %in% a = a:b`, `(a+b)^2`, `- t` removes,
`0`/`-1` drop the intercept and `1`/`-0` restore it.  Terms are then sorted by order (number of variables),
keeping their order of creation within an order, and each variable of each term gets R's code:
1 = coded by contrasts, 2 = coded by dummy variables (all levels), decided as R's `TermCode` does: by
contrasts exactly when the term without that variable is the empty term or is contained in a preceding term.
`offset(z)` is a variable but no term (its index is in `offsets`, R's attr(terms, "offset")); the
constants TRUE and FALSE are 1 and 0 (intercept in / out), as R's terms.formula takes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vcheck.core.errors import FormulaError
from vcheck.core.rexpr import Call, Node, Num, Str, Sym, deparse

# Operators that build terms; any other call (log(x), I(x^2), factor(g)) is one variable.
_FORMULA_OPS = {"+", "-", "*", "/", ":", "^", "%in%", "("}


@dataclass
class Terms:
    """The terms object: `variables` (response first when present), `terms` as sorted variable-index
    tuples in R's term order, `codes[t][v]` in {1, 2} for each variable v of term t."""

    variables: list[Node]
    terms: list[tuple[int, ...]]
    intercept: bool
    has_response: bool
    codes: list[dict[int, int]]
    offsets: list[int] = field(default_factory=list)  # variables that are offset(...) calls

    @property
    def variable_names(self) -> list[str]:
        """Names as R's model frame gives them (`deparse` of each variable)."""
        return [deparse(v) for v in self.variables]

    @property
    def labels(self) -> list[str]:
        """R's `attr(terms, "term.labels")`: `Days`, `cltype`, `a:b`, `I(age^2)`."""
        names = self.variable_names
        return [":".join(names[i] for i in term) for term in self.terms]


class _Encoder:
    """R's EncodeVars: walk the formula, return terms as frozensets of variable indices."""

    def __init__(self, text: str, variables: list[Node]) -> None:
        self.text = text
        self.variables = variables
        self.keys = [deparse(v) for v in variables]
        self.intercept = True
        self.parity = True
        self.offsets: list[int] = []

    def fail(self, what: str) -> FormulaError:
        return FormulaError(f"invalid model formula {self.text!r}: {what}")

    def install(self, node: Node) -> int:
        key = deparse(node)
        if key not in self.keys:
            self.keys.append(key)
            self.variables.append(node)
        return self.keys.index(key)

    def encode(self, node: Node) -> list[frozenset[int]]:
        if isinstance(node, Num):
            if node.value == 1:
                self.intercept = self.parity
            elif node.value == 0:
                self.intercept = not self.parity
            else:
                raise self.fail(f"invalid term {deparse(node)!r} (only 0 and 1 can stand alone)")
            return []
        if isinstance(node, Str):
            raise self.fail(f"a string {deparse(node)} is not a term")
        if isinstance(node, Sym):
            if node.name == ".":
                raise FormulaError(
                    f"formula {self.text!r}: '.' (all other columns) needs the data's columns here, and "
                    "vcheck expands it only in the fixed part of lmer's formula"
                )
            return [frozenset([self.install(node)])]
        fn, args = node.fn, node.args
        if fn not in _FORMULA_OPS:
            if fn in ("|", "||"):
                raise self.fail(f"random-effects term {deparse(node)!r} is not allowed here")
            if fn == "~":
                raise self.fail("a '~' inside a formula term")
            if fn in ("offset", "stats::offset"):
                index = self.install(node)
                if index not in self.offsets:
                    self.offsets.append(index)
                return []
            return [frozenset([self.install(node)])]
        if fn == "(":
            return self.encode(args[0])
        if fn == "+":
            if len(args) == 1:
                return self.encode(args[0])
            return _trim(self.encode(args[0]) + self.encode(args[1]))
        if fn == "-":
            if len(args) == 1:
                return self.delete([], args[0])
            return self.delete(self.encode(args[0]), args[1])
        left, right = self.encode(args[0]), None
        if fn == "^":
            power = args[1]
            if not isinstance(power, Num) or power.value < 1 or power.value != int(power.value):
                raise self.fail(f"invalid power in {deparse(node)!r}")
            result = left
            for _ in range(int(power.value) - 1):
                result = _trim([a | b for a in left for b in result])
            return result
        right = self.encode(args[1])
        if fn == ":":
            return _trim([a | b for a in left for b in right])
        if fn == "*":
            return _trim(left + right + [a | b for a in left for b in right])
        if fn == "/":
            all_left = frozenset().union(*left) if left else frozenset()
            return _trim(left + [all_left | b for b in right])
        # %in%: each left term nested in all of the right
        all_right = frozenset().union(*right) if right else frozenset()
        return _trim([a | all_right for a in left])

    def delete(self, left: list[frozenset[int]], removed: Node) -> list[frozenset[int]]:
        self.parity = not self.parity
        right = self.encode(removed)
        self.parity = not self.parity
        return [t for t in left if t not in right]


def _trim(terms: list[frozenset[int]]) -> list[frozenset[int]]:
    """Drop repeated terms (keep the first) and the empty term."""
    out: list[frozenset[int]] = []
    for t in terms:
        if t and t not in out:
            out.append(t)
    return out


def _install_order(node: Node, enc: _Encoder) -> None:
    """R's ExtractVars: variables are numbered in order of appearance, removed terms included."""
    if isinstance(node, Sym) and node.name != ".":
        enc.install(node)
    elif isinstance(node, Call):
        if node.fn in _FORMULA_OPS or node.fn == "~":
            for a in node.args[:1] if node.fn == "^" else node.args:
                _install_order(a, enc)
        elif node.fn not in ("|", "||"):
            enc.install(node)


def terms(rhs: Node, response: Node | None = None, text: str = "") -> Terms:
    """R's `terms(response ~ rhs)`."""
    variables: list[Node] = []
    enc = _Encoder(text or deparse(rhs), variables)
    if response is not None:
        enc.install(response)
    _install_order(rhs, enc)
    encoded = enc.encode(rhs)
    if response is not None:
        encoded = [t for t in encoded if t != frozenset([0])]
    # stable sort by order, as R's termsform does
    ordered = sorted(encoded, key=len)
    codes: list[dict[int, int]] = []
    for k, term in enumerate(ordered):
        term_codes = {}
        for v in term:
            rest = term - {v}
            contained = not rest or any(rest <= prev for prev in ordered[:k])
            term_codes[v] = 1 if contained else 2
        codes.append(term_codes)
    return Terms(
        variables=variables,
        terms=[tuple(sorted(t)) for t in ordered],
        intercept=enc.intercept,
        has_response=response is not None,
        codes=codes,
        offsets=sorted(enc.offsets),
    )
