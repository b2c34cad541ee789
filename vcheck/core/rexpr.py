"""R expressions as a small syntax tree: tokenize, parse with R's operator precedence, deparse as R does.

lme4 works on R's parse tree (`findbars`, `expandSlash`, `deparse1`), and R names model-matrix columns and
grouping factors by deparsing it: `I(x/2 + 1)`, `c:(b:a)`, `1e+05`.  To reproduce those names exactly we keep
our own tree of three node kinds (`Sym`, `Num`, `Call`) and a `deparse` that follows R's spacing and
parenthesisation rules.  Operators are `Call`s: `a + b` is `Call("+", (a, b))`, `(a)` is `Call("(", (a,))`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from vcheck.core.errors import FormulaError


@dataclass(frozen=True)
class Sym:
    """A name: `Days`, or a backticked `` `my var` ``."""

    name: str


@dataclass(frozen=True)
class Num:
    """A numeric literal; `is_int` for R's `2L`; `logical` for R's constants TRUE (1) and FALSE (0)."""

    value: float
    is_int: bool = False
    logical: bool = False


@dataclass(frozen=True)
class Str:
    """A string literal (only as a function argument)."""

    value: str


@dataclass(frozen=True)
class Call:
    """An operator or function call; `argnames[i]` is the name of a named argument or None."""

    fn: str
    args: tuple[Node, ...]
    argnames: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.argnames:
            object.__setattr__(self, "argnames", (None,) * len(self.args))


Node = Sym | Num | Str | Call

# Binary operators: (binding power, right-associative).  R's ?Syntax, from loosest to tightest.
_BINARY: dict[str, tuple[int, bool]] = {
    "~": (10, False),
    "|": (20, False),
    "||": (20, False),
    "&": (30, False),
    "&&": (30, False),
    "==": (50, False),
    "!=": (50, False),
    "<": (50, False),
    ">": (50, False),
    "<=": (50, False),
    ">=": (50, False),
    "+": (60, False),
    "-": (60, False),
    "*": (70, False),
    "/": (70, False),
    # every %op% (%in%, %%, %/%) binds at 80
    ":": (90, False),
    "^": (110, True),
}
_SPECIAL_BP = 80
_UNARY_BP = {"~": 10, "!": 40, "-": 100, "+": 100}
# deparse writes these without surrounding spaces
_TIGHT = {"/", ":", "^", "%%", "%/%"}

#: R's reserved words that cannot be names (?Reserved); TRUE/FALSE are constants, the rest are refused
RESERVED = frozenset(
    {
        "if",
        "else",
        "repeat",
        "while",
        "function",
        "for",
        "next",
        "break",
        "in",
        "NULL",
        "NA",
        "Inf",
        "NaN",
        "NA_integer_",
        "NA_real_",
        "NA_character_",
        "NA_complex_",
        "TRUE",
        "FALSE",
    }
)

_CONSTANTS = frozenset(
    {"NULL", "NA", "Inf", "NaN", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_"}
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
  | (?P<qualified>(?:[^\W\d_]|\.(?!\d))[\w.]*:::?(?:[^\W\d_]|\.(?!\d))[\w.]*)
  | (?P<name>(?:[^\W\d_]|\.(?!\d))[\w.]*|\.)
  | (?P<backtick>`(?:[^`\\]|\\.)*`)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<special>%[^%]*%)
  | (?P<op>\|\||&&|==|!=|<=|>=|[-+*/^:~|&!<>()=,\[\]$@])
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split R source into (kind, text) tokens; kind is num, name (bare), quoted (a backticked name),
    qualified (`pkg::fn`), str, op."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FormulaError(f"malformed formula {text!r}: unexpected character {text[pos]!r} at {pos}")
        kind = m.lastgroup
        assert kind is not None
        value = m.group()
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "backtick":  # R's escapes inside backticks: \` and \\
            tokens.append(("quoted", re.sub(r"\\(.)", r"\1", value[1:-1])))
        elif kind == "special":
            tokens.append(("op", value))
        else:
            tokens.append((kind, value))
    return tokens


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'", "`": "`"}


def _unescape(text: str) -> str:
    """R's escapes inside a string literal: \\" \\' \\\\ \\n \\t ..."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


class _Parser:
    """Pratt parser over R's operator table."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def fail(self, what: str) -> FormulaError:
        return FormulaError(f"malformed formula {self.text!r}: {what}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        self.pos += 1
        return tok

    def expect(self, op: str) -> None:
        if self.peek() is None:
            raise self.fail(f"missing {op!r} at the end")
        tok = self.take()
        if tok != ("op", op):
            raise self.fail(f"expected {op!r}, found {tok[1]!r}")

    def parse_all(self) -> Node:
        if not self.tokens:
            raise self.fail("empty")
        node = self.expr(0)
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def expr(self, min_bp: int) -> Node:
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op":
                if tok is not None:
                    raise self.fail(f"unexpected {tok[1]!r}")
                return left
            op = tok[1]
            if op.startswith("%"):
                bp, right_assoc = _SPECIAL_BP, False
            elif op in _BINARY:
                bp, right_assoc = _BINARY[op]
            else:
                return left  # ')' ',' '=' end this expression
            if bp < min_bp or (bp == min_bp and not right_assoc):
                return left
            self.take()
            right = self.expr(bp if right_assoc else bp + 1)
            left = Call(op, (left, right))

    def prefix(self) -> Node:
        kind, value = self.take()
        if kind == "num":
            is_int = value.endswith("L")
            return Num(float(value.rstrip("L")), is_int)
        if kind == "str":
            return Str(_unescape(value[1:-1]))
        if kind == "name" and value in ("TRUE", "FALSE"):
            return Num(float(value == "TRUE"), logical=True)
        if kind == "name" and value in _CONSTANTS:
            raise self.fail(f"R's constant {value} is not supported by vcheck in a formula")
        if kind == "name" and value in RESERVED:
            raise self.fail(
                f"{value!r} is a reserved word in R, which cannot parse it here; a column of that name "
                f"must be written in backticks (`{value}`)"
            )
        if kind == "qualified":
            if self.peek() != ("op", "("):
                raise self.fail(f"{value!r} is not called; vcheck takes `pkg::fn(...)` calls only")
            self.take()
            return self.call_args(value)
        if kind in ("name", "quoted"):
            if self.peek() == ("op", "("):
                self.take()
                return self.call_args(value)
            return Sym(value)
        if value == "(":
            inner = self.expr(0)
            self.expect(")")
            return Call("(", (inner,))
        if value in _UNARY_BP:
            return Call(value, (self.expr(_UNARY_BP[value]),))
        raise self.fail(f"unexpected {value!r}")

    def call_args(self, fn: str) -> Call:
        args: list[Node] = []
        names: list[str | None] = []
        if self.peek() == ("op", ")"):
            self.take()
            return Call(fn, ())
        while True:
            name = None
            if (
                self.pos + 1 < len(self.tokens)
                and self.tokens[self.pos][0] in ("name", "quoted")
                and self.tokens[self.pos + 1] == ("op", "=")
            ):
                name = self.take()[1]
                self.take()
            args.append(self.expr(0))
            names.append(name)
            tok = self.take()
            if tok == ("op", ")"):
                return Call(fn, tuple(args), tuple(names))
            if tok != ("op", ","):
                raise self.fail(f"expected ',' or ')' in call to {fn}, found {tok[1]!r}")


def parse(text: str) -> Node:
    """Parse one R expression (a formula is `Call("~", (lhs, rhs))`)."""
    return _Parser(text).parse_all()


# --- deparse ----------------------------------------------------------------------------------------------

_SYNTACTIC = re.compile(r"^((\.[^\W\d]|[^\W\d_])[\w.]*|\.)$")
_QUALIFIED = re.compile(r"^((\.[^\W\d]|[^\W\d_])[\w.]*):::?((\.[^\W\d]|[^\W\d_])[\w.]*)$")


def _backticked(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def syntactic(name: str) -> bool:
    """A name R deparses without backticks (not a reserved word)."""
    return bool(_SYNTACTIC.match(name)) and name not in RESERVED


def format_number(x: float) -> str:
    """R's `as.character()` / `deparse()` of a double: 15 significant digits, fixed or scientific,
    whichever is narrower (fixed wins ties): 1e5 -> "1e+05", 123456 -> "123456", 1/3 -> "0.333333333333333".
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    mantissa, exp_text = f"{abs(x):.14e}".split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    e = int(exp_text)
    sig = len(digits)
    neg = 1 if x < 0 else 0
    if e >= 0:
        decimals = max(0, sig - e - 1)
        fixed_width = neg + e + 1 + (decimals + 1 if decimals else 0)
    else:
        decimals = -e - 1 + sig
        fixed_width = neg + 2 + decimals
    sci_width = neg + 1 + (sig if sig > 1 else 0) + (4 if abs(e) < 100 else 5)
    if fixed_width <= sci_width:
        return f"{x:.{decimals}f}"
    mant = digits[0] + ("." + digits[1:] if sig > 1 else "")
    return f"{'-' if neg else ''}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def _binding(node: Node) -> int:
    """How tightly a node binds when deparsed (atoms and calls bind tightest)."""
    if isinstance(node, Call):
        if len(node.args) == 2 and node.fn in _BINARY:
            return _BINARY[node.fn][0]
        if len(node.args) == 2 and node.fn.startswith("%"):
            return _SPECIAL_BP
        if len(node.args) == 1 and node.fn in _UNARY_BP:
            return _UNARY_BP[node.fn]
    return 1000


def deparse(node: Node, backtick: bool = True) -> str:
    """R's deparse: `a + b`, `a/b`, `a:b`, `a^2`, `log(x, base = 2)`, `c:(b:a)`.

    R leaves a bare symbol un-backticked (`deparse1(quote(\\`my var\\`))` is "my var"), but backticks
    non-syntactic names inside calls; `backtick=False` gives the bare-symbol form.
    """
    if isinstance(node, Sym):
        if backtick and not syntactic(node.name):
            return _backticked(node.name)
        return node.name
    return _deparse(node)


def _deparse(node: Node) -> str:
    if isinstance(node, Sym):
        return deparse(node, backtick=True)
    if isinstance(node, Num):
        if node.logical:
            return "TRUE" if node.value else "FALSE"
        if node.is_int:
            return f"{int(node.value)}L"
        return format_number(node.value)
    if isinstance(node, Str):
        text = node.value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + '"'
    fn, args = node.fn, node.args
    if fn == "(" and len(args) == 1:
        return f"({_deparse(args[0])})"
    bp = _binding(node)
    if len(args) == 2 and bp < 1000:
        right_assoc = fn == "^"
        left, right = _deparse(args[0]), _deparse(args[1])
        lb, rb = _binding(args[0]), _binding(args[1])
        if lb < bp or (lb == bp and right_assoc):
            left = f"({left})"
        right_is_unary = isinstance(args[1], Call) and len(args[1].args) == 1 and args[1].fn in _UNARY_BP
        if not right_is_unary and (rb < bp or (rb == bp and not right_assoc)):
            right = f"({right})"
        sep = fn if fn in _TIGHT else f" {fn} "
        return f"{left}{sep}{right}"
    if len(args) == 1 and bp < 1000:
        inner = _deparse(args[0])
        if _binding(args[0]) < bp:
            inner = f"({inner})"
        return f"{fn}{inner}"
    name = fn if syntactic(fn) or _QUALIFIED.match(fn) else _backticked(fn)
    parts = [(f"{an} = " if an else "") + _deparse(a) for a, an in zip(args, node.argnames, strict=True)]
    return f"{name}({', '.join(parts)})"


def symbols(node: Node) -> list[str]:
    """All variable names in an expression, in order of first appearance (R's `all.vars`)."""
    out: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Sym):
            if n.name not in out:
                out.append(n.name)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)

    walk(node)
    return out
