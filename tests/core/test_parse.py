"""lme4 formula syntax without R: R's parser and deparse, terms.formula, findbars/expandSlash/`||`, collation.

Every expected value here was printed by R 4.2.2 / lme4 1.1-31 on this machine (deparse(), terms(),
findbars(), sort()); the live tests (test_design_live.py) check the same rules end to end against lme4.
"""

from __future__ import annotations

import pytest

from vcheck.core.collate import r_sorted
from vcheck.core.errors import FormulaError
from vcheck.core.parse import parse_formula
from vcheck.core.rexpr import Call, Sym, deparse, format_number, parse
from vcheck.core.terms import terms

# (source, R's deparse(str2lang(source)))
DEPARSE = [
    ("a/b", "a/b"),
    ("a*b", "a * b"),
    ("a^b", "a^b"),
    ("a:b", "a:b"),
    ("a|b", "a | b"),
    ("a %in% b", "a %in% b"),
    ("-a", "-a"),
    ("a - b", "a - b"),
    ("log(x, base = 2)", "log(x, base = 2)"),
    ("I(x^2)", "I(x^2)"),
    ("I(2*x)", "I(2 * x)"),
    ("I(x/2+1)", "I(x/2 + 1)"),
    ("c:(b:a)", "c:(b:a)"),
    ("1e5", "1e+05"),
    ("1e-3", "0.001"),
    ("2.50", "2.5"),
    ("100000", "1e+05"),
    ("123456", "123456"),
    ("0.1+x", "0.1 + x"),
    ("x+-1", "x + -1"),
    ("!a", "!a"),
    ("a==b", "a == b"),
    ("f(`a b`)", "f(`a b`)"),
    ("I(-x)", "I(-x)"),
    ("I(x-(-1))", "I(x - (-1))"),
    ("(a+b)*c", "(a + b) * c"),
    ("exp(-x^2)", "exp(-x^2)"),
    ("a^-1", "a^-1"),
    ("a*-b", "a * -b"),
    ("-(a+b)", "-(a + b)"),
    ("a - -b", "a - -b"),
]


@pytest.mark.parametrize(("source", "expected"), DEPARSE)
def test_deparse_matches_R(source: str, expected: str) -> None:
    assert deparse(parse(source)) == expected


def test_deparse_adds_R_parentheses_to_built_interactions() -> None:
    # expandSlash builds c:(b:a) without a paren node; R's deparse adds the parentheses
    built = Call(":", (Sym("c"), Call(":", (Sym("b"), Sym("a")))))
    assert deparse(built) == "c:(b:a)"
    assert deparse(Sym("my var"), backtick=False) == "my var"
    assert deparse(Sym("my var")) == "`my var`"


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (1e5, "1e+05"),
        (1e4, "10000"),
        (1e-4, "1e-04"),
        (0.001234, "0.001234"),
        (1234567890123456.0, "1234567890123456"),
        (0.1 + 0.2, "0.3"),
        (-1.5, "-1.5"),
        (1e100, "1e+100"),
        (3e-5, "3e-05"),
        (1 / 3, "0.333333333333333"),
        (123456.0, "123456"),
        (1e15, "1e+15"),
        (0.25, "0.25"),
    ],
)
def test_format_number_is_R_as_character(x: float, text: str) -> None:
    assert format_number(x) == text


def test_unary_minus_binds_tighter_than_colon_and_looser_than_power() -> None:
    assert parse("-a:b") == Call(":", (Call("-", (Sym("a"),)), Sym("b")))
    assert parse("-a^2") == Call("-", (Call("^", (Sym("a"), parse("2"))),))
    assert parse("a^b^c") == Call("^", (Sym("a"), Call("^", (Sym("b"), Sym("c")))))


# --- terms.formula --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rhs", "labels", "intercept"),
    [
        ("a*b*c", ["a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"], True),
        ("(a+b+c)^2", ["a", "b", "c", "a:b", "a:c", "b:c"], True),
        ("a/b", ["a", "a:b"], True),
        ("b %in% a", ["b:a"], True),
        ("a*b - a", ["b", "a:b"], True),
        ("b:a + a", ["a", "b:a"], True),
        ("0 + x", ["x"], False),
        ("-1 + x", ["x"], False),
        ("x - 1", ["x"], False),
        ("x - 1 + 1", ["x"], True),
        ("x - 0", ["x"], True),
        ("1", [], True),
        ("0", [], False),
        ("I(x^2) + log(z)", ["I(x^2)", "log(z)"], True),
        ("f/x", ["f", "f:x"], True),
        ("a*b - a:b", ["a", "b"], True),
    ],
)
def test_terms_labels_like_R(rhs: str, labels: list[str], intercept: bool) -> None:
    tt = terms(parse(rhs))
    assert tt.labels == labels
    assert tt.intercept is intercept


def test_terms_codes_follow_R_TermCode() -> None:
    # y ~ a:b: neither a nor b alone precede, so both are coded by dummies (R gives a1:b1, a2:b1, ...)
    tt = terms(parse("a:b"), parse("y"))
    assert tt.codes == [{1: 2, 2: 2}]
    # y ~ a + a:b: a:b minus b is a, which precedes, so b gets contrasts; a:b minus a is b, which does not,
    # so a gets dummies (R's attr(terms(y ~ a + a:b), "factors"))
    tt = terms(parse("a + a:b"), parse("y"))
    assert tt.codes == [{1: 1}, {1: 2, 2: 1}]
    # y ~ a*b: every interaction variable is coded by contrasts
    assert terms(parse("a*b"), parse("y")).codes == [{1: 1}, {2: 1}, {1: 1, 2: 1}]


def test_terms_dot_offset_and_stray_numbers() -> None:
    # '.' needs the data's columns (parse_formula(columns=...) expands it before terms())
    with pytest.raises(FormulaError, match=r"'\.' \(all other columns\) needs the data's columns"):
        terms(parse("x + ."))
    # offset(z) is a variable but no term: R's attr(terms(y ~ x + offset(z)), "offset") is 3
    tt = terms(parse("x + offset(z)"), parse("y"))
    assert tt.labels == ["x"]
    assert tt.variable_names == ["y", "x", "offset(z)"]
    assert tt.offsets == [2]
    with pytest.raises(FormulaError, match="invalid term '2'"):
        terms(parse("x + 2"))


# --- findbars / nobars ----------------------------------------------------------------------------------


def bar_labels(formula: str) -> list[str]:
    return [b.label for b in parse_formula(formula).bars]


def test_slash_expands_like_lme4() -> None:
    assert bar_labels("y ~ x + (1|a/b)") == ["1 | b:a", "1 | a"]
    assert bar_labels("y ~ x + (1|a/b/c)") == ["1 | c:(b:a)", "1 | b:a", "1 | a"]
    assert [b.group_name for b in parse_formula("y ~ (1|a/b/c)").bars] == ["c:(b:a)", "b:a", "a"]
    assert bar_labels("y ~ x + (x|a/b)") == ["x | b:a", "x | a"]
    assert bar_labels("y ~ x + (1|a:b)") == ["1 | a:b"]


def test_double_bar_splits_per_term_label() -> None:
    assert bar_labels("y ~ (x + z||g)") == ["1 | g", "0 + x | g", "0 + z | g"]
    assert bar_labels("y ~ (1 + x||g)") == ["1 | g", "0 + x | g"]
    assert bar_labels("y ~ (0 + x||g)") == ["0 + x | g"]
    assert bar_labels("y ~ (x*z||g)") == ["1 | g", "0 + x | g", "0 + z | g", "0 + x:z | g"]
    # `||` first, then `/`, as lme4 does
    assert bar_labels("y ~ (x||a/b)") == ["1 | b:a", "1 | a", "0 + x | b:a", "0 + x | a"]


def test_fixed_part_is_what_nobars_leaves() -> None:
    parsed = parse_formula("y ~ x + (1|a/b/c) + z")
    assert deparse(parsed.fixed) == "x + z"
    assert deparse(parsed.response) == "y"
    assert deparse(parse_formula("y ~ (1|g)").fixed) == "1"
    assert deparse(parse_formula("log(y) ~ 0 + x + (x | g)").fixed) == "0 + x"
    assert bar_labels("y ~ x + ((1|g) + (1|h))") == ["1 | g", "1 | h"]


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~", "malformed formula 'y ~': unexpected end"),
        ("y ~ x +", "unexpected end"),
        ("y ~ x + (1|g", "missing '\\)' at the end"),
        ("y x ~ (1|g)", "unexpected 'x'"),
        ("y ~ x # (1|g)", "unexpected character '#'"),
        ("~ x + (1|g)", "has no response"),
        ("y + (1|g)", "no '~'"),
        ("", "malformed formula"),
        ("y ~ x", "no random effects terms specified"),
        ("y ~ x * (1|g)", "not a summand of the formula; vcheck takes random-effects terms only as summands"),
        ("y ~ x + (1|factor(g))", "vcheck takes grouping factors that are columns .* not 'factor\\(g\\)'"),
        ("y ~ x + (1|TRUE)", "grouping factor 'TRUE' is a constant, not a column"),
        ("y ~ x + (1|(a/b))", "unparseable grouping factor"),
        ("y ~ x + (1|g|h)", "nested bars"),
        ("(1|g) ~ x + (1|g)", "bad response"),
    ],
)
def test_malformed_or_unsupported_formulas(formula: str, message: str) -> None:
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)


# --- collation ------------------------------------------------------------------------------------------


def test_strings_sort_as_this_R_sorts_them() -> None:
    # R here collates with ICU's root locale (LC_COLLATE=C.UTF-8 is not "C"), not by bytes
    assert r_sorted(["b", "B", "a", "_", "Z", "1"]) == ["_", "1", "a", "b", "B", "Z"]
    # fmt: off
    words = ["ab", "Ab", "aB", "AB", "a-b", "ab1", "a b", "a_b", "a", "A", "b", "B", "aa", "a10", "a2", "a.b",
             "a1", "A1", "ä", "æ", "ab ", "abc", "Ä", "é", "e", "f", "ẞ", "ß", "ss"]
    assert r_sorted(words) == [
        "a", "A", "ä", "Ä", "a b", "a_b", "a-b", "a.b", "a1", "A1", "a10", "a2", "aa", "ab", "aB", "Ab",
        "AB", "ab ", "ab1", "abc", "æ", "b", "B", "e", "é", "f", "ss", "ß", "ẞ",
    ]
    assert r_sorted(["x1", "X1", "x-1", "x 1", "x_1", "x01", "x1a", "x1A"]) == [
        "x 1", "x_1", "x-1", "x01", "x1", "X1", "x1a", "x1A",
    ]
    # fmt: on


# --- R's lexical rules: constants, reserved words, backticks, pkg:: ---------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("y ~ TRUE + x", "y ~ TRUE + x"),
        ("y ~ splines::ns(Days, 3)", "y ~ splines::ns(Days, 3)"),
        ("y ~ stats::poly(x, 2, raw = T)", "y ~ stats::poly(x, 2, raw = T)"),
        ("y ~ `a\\`b` + x", "y ~ `a\\`b` + x"),
        ("y ~ `my var` + (1 | `if`)", "y ~ `my var` + (1 | `if`)"),
        ("y ~ x + `TRUE`", "y ~ x + `TRUE`"),
    ],
)
def test_deparse_constants_backticks_and_prefixes(source: str, expected: str) -> None:
    # each expected string is R 4.2.2's deparse(quote(<source>))
    assert deparse(parse(source)) == expected


def test_true_false_are_constants_and_backticked_names_are_columns() -> None:
    tt = terms(parse("x + TRUE"))
    assert tt.labels == ["x"] and tt.intercept
    assert terms(parse("x + FALSE")).intercept is False
    assert terms(parse("x - TRUE")).intercept is False
    assert terms(parse("x + `TRUE`")).labels == ["x", "`TRUE`"]
    assert parse("`a\\`b`") == Sym("a`b")


@pytest.mark.parametrize("word", ["function", "if", "else", "for", "while", "repeat", "next", "break", "in"])
def test_reserved_words_are_r_parse_errors(word: str) -> None:
    with pytest.raises(FormulaError, match=f"'{word}' is a reserved word in R"):
        parse_formula(f"y ~ x + (1|{word})")
    assert parse_formula(f"y ~ x + (1|`{word}`)").bars[0].group_name == word


def test_unsupported_constants_and_prefixes_say_so() -> None:
    with pytest.raises(FormulaError, match="R's constant NA is not supported by vcheck"):
        parse_formula("y ~ x + NA + (1|g)")
    with pytest.raises(FormulaError, match="'splines::ns' is not called"):
        parse("y ~ splines::ns")


def test_string_escapes_as_r_reads_and_deparses_them() -> None:
    # R 4.2.2: deparse(quote(dummy(Sex, "Fe\"male"))), deparse(quote(f('it\'s'))), deparse(quote(f("a\\b")))
    assert deparse(parse('dummy(Sex, "Fe\\"male")')) == 'dummy(Sex, "Fe\\"male")'
    assert deparse(parse("f('it\\'s')")) == 'f("it\'s")'
    assert deparse(parse('f("a\\\\b")')) == 'f("a\\\\b")'
    assert deparse(parse('f("a\\nb")')) == 'f("a\\nb")'
