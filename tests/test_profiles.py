"""The hypothesis profiles keep covering every family of drawn cases (tests/conftest.py).

The `ci` profile is sized for the suite's time budget (issue 15); a smaller budget must not drop a
family: the fewest examples any property test draws from `strategies.cases()` (the main properties'
`max_examples`, and `share(0.2)` for the narrowest ones) still reach nested, crossed, slope and
intercept models, on unsorted rows.
"""

from __future__ import annotations

from hypothesis import given, settings

from vcheck.auditing import strategies
from vcheck.auditing.cases import Case


def _families_drawn(max_examples: int) -> set[str]:
    seen: set[str] = set()

    @settings(max_examples=max_examples, derandomize=True, database=None)
    @given(case=strategies.cases())
    def draw(case: Case) -> None:
        spec = case.spec or {}
        seen.add(str(spec.get("family", "")))
        if spec.get("shuffled"):
            seen.add("unsorted")

    draw()
    return seen


def test_ci_profile_draws_every_family() -> None:
    needed = {"nested", "crossed", "slope", "intercept", "unsorted"}
    drawn = _families_drawn(settings.get_profile("ci").max_examples)
    assert needed <= drawn, f"the ci profile's draws miss {sorted(needed - drawn)}"
