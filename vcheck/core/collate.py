"""The order R's `sort()`/`factor()` give strings here: ICU's root collation.

R 4.2 on this machine is built with ICU and its LC_COLLATE is C.UTF-8, which is not "C"/"POSIX", so R
collates with ICU's root locale (`icuGetCollate()` is "root"), not by bytes:
`sort(c("b", "B", "a", "_", "Z", "1"))` is `"_" "1" "a" "b" "B" "Z"`.
ICU compares in levels: primary weights of the whole string first (letters ignoring case and accents,
punctuation and symbols before digits before letters), then accents (secondary), then case (tertiary,
lower before upper).  Control characters are ignorable.

`sort_key` is exact for ASCII (its primary order is read off R for all printable ASCII characters) and
for Latin letters with accents (decomposed to base letter + accent).  Other characters sort after the
letters by code point, an approximation: categoricals with explicit categories avoid the question.
"""

from __future__ import annotations

import unicodedata

# Printable ASCII in R's (ICU root) order; a letter and its capital share one primary weight.
_ASCII_ORDER = (
    " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQrRsStTuUvVwWxXyYzZ"
)
_PRIMARY: dict[str, int] = {}
for _ch in _ASCII_ORDER:
    _PRIMARY[_ch] = _PRIMARY[_ch.lower()] if _ch.isupper() else len(_PRIMARY) + 1
_AFTER_ASCII = max(_PRIMARY.values()) + 1
# letters that ICU expands to two primaries
_EXPANSIONS = {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ẞ": "SS"}


def sort_key(text: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(primary, secondary, tertiary) weights; compare keys to get R's string order."""
    primary: list[int] = []
    secondary: list[int] = []
    tertiary: list[int] = []
    for ch in text:
        expanded = _EXPANSIONS.get(ch)
        decomposed = unicodedata.normalize("NFD", expanded if expanded else ch)
        base, marks = decomposed[:1], decomposed[1:]
        if expanded:
            base, marks = expanded, ""
        for b in base:
            if unicodedata.category(b) == "Cc":
                continue  # ignorable
            if b in _PRIMARY:
                primary.append(_PRIMARY[b])
            else:
                primary.append(_AFTER_ASCII + ord(b.lower()))
            accent = sum(ord(m) for m in marks) if marks else 0
            secondary.append(accent + (1 if expanded else 0))
            tertiary.append(1 if b.isupper() else 0)
    return tuple(primary), tuple(secondary), tuple(tertiary)


def r_sorted(values: list[str]) -> list[str]:
    """`sort(values)` as this R does it (ties broken by code points, for determinism)."""
    return sorted(values, key=lambda s: (sort_key(s), s))
