"""Properties of vcheck against live lme4 on cases drawn by vcheck.auditing.strategies, and the
replayed corpus.

Every property is a `check_*` function of one case that raises AssertionError with the comparison table.
The hypothesis tests run them on drawn cases (profile `ci`: derandomized, 100 examples for the main
properties); `test_corpus` replays tests/corpus/*.json, each a case with its data written out and the name
of the check it failed, on every run.  When a hypothesis test fails, the shrunk case it reports (the last
failing call) is written to tests/corpus/<check>-<hash>.json (set VCHECK_SAVE_CORPUS=0 to turn that off):
commit it with the fix, and the failure stays a test.

Properties:
- design: vcheck.lFormula equals lme4's lFormula exactly (X, y, Zt, Lambdat, Lind, theta0, lower, cnms,
  level order);
- fit: vcheck.lmer against lme4 through compare: layout exact, at vcheck's own theta lme4's construction
  gives vcheck's V, beta and criterion to AT_THETA, and at the optimum everything agrees to AT_OPTIMUM or
  is the same optimum (lme4's criterion at vcheck's theta within CRITERION_ABS of lme4's own, or lower),
  unless lme4 says it did not converge (then lme4's optimum is no reference: counted, not failed);
- shuffle: vcheck on the rows shuffled gives the permuted V and the same criterion at any theta, and
  the same fit; relabel: renaming every level changes nothing.  Where lme4 itself lands on another
  optimum after the same transformation (a degenerate model, e.g. theta running off to 1e3 on five
  rows), vcheck may too: counted, not failed;
- gls: the GLS beta at V equals the PLS beta, for vcheck's fit and for lme4's;
- kronecker: the seed's recipe.  kronecker(diag(k), G) is lme4's G whenever there is one random term
  (sorted or not: its limit is the one term); the recipe's V, with each row's block taken by position as
  for sorted data, is lme4's V for one term on sorted rows, and compare calls it a construction
  disagreement whenever it is not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from faults import V_from_blocks, as_mapping, positional_Zt, term_covs
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import vcheck
from vcheck import reference
from vcheck.auditing import strategies
from vcheck.auditing.cases import Case
from vcheck.auditing.comparison import Comparison, compare
from vcheck.auditing.plugin import submission
from vcheck.core import covariance, tolerances
from vcheck.core.record import Design, LmerFit

pytestmark = pytest.mark.r

CORPUS = Path(__file__).parent / "corpus"


# --- helpers -------------------------------------------------------------------------------------------
def rel(a: Any, b: Any, floor: float = 1.0) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, f"shapes {a.shape} vs {b.shape}"
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), floor)) if a.size else 0.0


def dense(M: Any) -> np.ndarray:
    return M.toarray() if sp.issparse(M) else np.asarray(M)


def vcheck_fit(case: Case) -> LmerFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rank drops and scaling warnings, as lme4's messages
        return vcheck.lmer(case.formula, case.data, case.REML)


def lme4_criterion(case: Case) -> Callable[[np.ndarray, bool], float]:
    """lme4's own deviance function at (theta, REML), each closure made once."""
    made: dict[bool, Callable[[np.ndarray], float]] = {}

    def crit(theta: np.ndarray, REML: bool) -> float:
        if REML not in made:
            made[REML] = reference.devfun(case.formula, case.data, REML)
        return made[REML](theta)

    return crit


def tally(text: str) -> None:
    """Count something in hypothesis' statistics (only inside a hypothesis test; the corpus replays too)."""
    if currently_in_test_context():
        event(text)


def assert_agrees(cmp: Comparison, no_reference_optimum: str | None = None) -> None:
    """No construction or model disagreement; at the optimum only a tie or vcheck's lower criterion.

    no_reference_optimum: why lme4's optimum is no reference on this case (lme4 says it did not converge,
    or lme4 itself changes under the transformation being tested); optimization differences are then
    counted, not failed.  Construction and model disagreements fail whatever the optimum.
    """
    bad = [r for r in cmp.findings if r.kind in ("construction", "model")]
    worse = [r for r in cmp.findings if r.kind == "optimization" and cmp.lower != cmp.a]
    if worse and no_reference_optimum:
        tally(f"optimization difference where lme4's optimum is no reference: {no_reference_optimum}")
    else:
        bad += worse
    assert not bad, f"\n{cmp}" + (
        f"\n(lme4's optimum: {no_reference_optimum})" if no_reference_optimum else ""
    )
    if cmp.lower == cmp.a:
        tally("vcheck found a lower criterion than lme4 (lme4 stopped short)")


def unconverged(fit: LmerFit) -> str | None:
    """lme4's own convergence complaints (a singular fit is a converged one), or None."""
    complaints = [m for m in fit.optinfo.get("lme4_messages", []) if "singular" not in m]
    return "lme4 did not converge: " + "; ".join(complaints) if complaints else None


def saturated(case: Case) -> str | None:
    """q + p >= n: fixed and random effects together can reproduce y, sigma is not identified and the
    profiled criterion falls without bound along sigma -> 0 (ML especially).  Each optimizer stops
    somewhere on that ridge, so no optimum is a reference; construction is still checked exactly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = vcheck.lFormula(case.formula, case.data)
    if d.q + d.p >= d.n:
        return f"saturated design (q + p = {d.q + d.p} >= n = {d.n}): no identified optimum"
    return None


def flat_boundary(mine: LmerFit, ref: LmerFit) -> str | None:
    """Both fits singular and their criteria equal to AT_OPTIMUM (relative): the optimum is a flat ridge.

    Beside a zero variance theta is not identified, and on tiny over-parameterised factor-slope models
    (7 to 20 rows, six theta) BOBYQA walks that ridge for hundreds of evaluations; an ulp of difference in
    the deviance sends the two runs to different stopping points 1e-6 to 1e-5 apart in the criterion
    (relative about 1e-7 to 1e-6).  Parameters there are no reference; the criterion still is.
    """
    if not (mine.singular and ref.singular) or mine.criterion is None or ref.criterion is None:
        return None
    if abs(mine.criterion - ref.criterion) > tolerances.AT_OPTIMUM * max(1.0, abs(ref.criterion)):
        return None
    return "both fits singular on a flat ridge, criteria equal to AT_OPTIMUM"


def lme4_changes(transformed: Case, ref: LmerFit) -> str | None:
    """Does lme4 itself give another optimum on the transformed data?  Then so may vcheck."""
    other = reference.lmer(transformed.formula, transformed.data, transformed.REML, extras=False)
    same = compare(without_layout(other, ranef=False), ref)
    if same.ok:
        return unconverged(ref)
    return "lme4 itself lands elsewhere on the transformed rows (no well-defined optimum)"


def without_layout(fit: LmerFit, *, ranef: bool = True) -> Any:
    """The fit as a plain plug-in answer: its Zt and level order belong to other data than lme4's."""
    sub = submission(fit)
    return dataclasses.replace(sub, record=None, ranef=sub.ranef if ranef else None)


# --- the checks ----------------------------------------------------------------------------------------
def check_design(case: Case) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine: Design = vcheck.lFormula(case.formula, case.data)
    ref = reference.lFormula(case.formula, case.data, case.REML)
    assert mine.X_names == ref.X_names, (mine.X_names, ref.X_names)
    assert rel(mine.X, ref.X) <= tolerances.AT_THETA
    assert rel(mine.y, ref.y) <= tolerances.AT_THETA
    assert mine.cnms == ref.cnms, (mine.cnms, ref.cnms)
    for g, f in ref.flist.items():
        assert [str(c) for c in mine.flist[g].categories] == [str(c) for c in f.categories], f"levels of {g}"
        assert np.array_equal(np.asarray(mine.flist[g].codes), np.asarray(f.codes)), f"codes of {g}"
    for name in ("Zt", "Lambdat"):
        m, r = getattr(mine, name), getattr(ref, name)
        assert m.shape == r.shape, (name, m.shape, r.shape)
        assert np.array_equal(m.indptr, r.indptr) and np.array_equal(m.indices, r.indices), f"{name} pattern"
        assert rel(m.data, r.data) <= tolerances.AT_THETA, name
    assert np.array_equal(mine.Lind, ref.Lind)
    assert np.array_equal(mine.theta, ref.theta)
    assert np.array_equal(mine.lower, ref.lower)
    assert list(mine.row_index) == list(ref.row_index)


def check_fit(case: Case) -> None:
    mine = vcheck_fit(case)
    ref = reference.lmer(case.formula, case.data, case.REML)
    assert_agrees(
        compare(mine, ref, criterion=lme4_criterion(case)),
        unconverged(ref) or saturated(case) or flat_boundary(mine, ref),
    )


def check_shuffle(case: Case) -> None:
    shuffled, _ = strategies.shuffle_rows(case, seed=len(case.data))
    ref = reference.lmer(case.formula, case.data, case.REML, extras=False)
    # at a fixed theta (lme4's): the criterion is the same and V is the same matrix, its rows permuted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d0 = vcheck.devfun(vcheck.lFormula(case.formula, case.data), REML=case.REML)
        d1 = vcheck.devfun(vcheck.lFormula(shuffled.formula, shuffled.data), REML=case.REML)
    theta = np.asarray(ref.theta)
    assert abs(d0(theta) - d1(theta)) <= tolerances.AT_THETA * max(1.0, abs(d0(theta)))
    V0 = dense(covariance.V(d0.design.Zt, d0.design.Lambdat_at(theta), 1.0))
    V1 = dense(covariance.V(d1.design.Zt, d1.design.Lambdat_at(theta), 1.0))
    pos = d1.design.row_index.get_indexer(d0.design.row_index)
    assert rel(V1[np.ix_(pos, pos)], V0) <= tolerances.AT_THETA
    # fitted: the same optimum, V lined up by row labels
    mine = vcheck_fit(shuffled)
    cmp = compare(without_layout(mine), ref, criterion=lme4_criterion(case))
    assert_agrees(
        cmp,
        (lme4_changes(shuffled, ref) or saturated(case) or flat_boundary(mine, ref)) if not cmp.ok else None,
    )


def check_relabel(case: Case) -> None:
    relabelled = strategies.relabel_levels(case, seed=len(case.data))
    ref = reference.lmer(case.formula, case.data, case.REML, extras=False)
    mine = vcheck_fit(relabelled)
    cmp = compare(without_layout(mine, ranef=False), ref, criterion=lme4_criterion(case))
    assert_agrees(
        cmp,
        (lme4_changes(relabelled, ref) or saturated(case) or flat_boundary(mine, ref))
        if not cmp.ok
        else None,
    )


def check_gls(case: Case) -> None:
    for fit in (vcheck_fit(case), reference.lmer(case.formula, case.data, case.REML, extras=False)):
        assert fit.X is not None and fit.y is not None and fit.Zt is not None and fit.Lambdat is not None
        assert fit.beta is not None and fit.sigma is not None
        gls = covariance.gls_beta(fit.X, fit.y, fit.Zt, fit.Lambdat, fit.sigma)
        r = rel(gls, fit.beta.to_numpy(), floor=tolerances.ABS_FLOOR)
        assert r <= 1e-8, f"{fit.source}: GLS beta {gls} vs PLS beta {fit.beta.to_numpy()} (rel {r:.1e})"


def check_kronecker(case: Case) -> None:
    ref = reference.lmer(case.formula, case.data, case.REML, extras=False)
    assert ref.cnms is not None and ref.Gp is not None and ref.flist is not None
    covs = term_covs(ref)
    one_term = len(covs) == 1
    G = dense(covariance.G(ref.Lambdat, ref.sigma))
    if one_term:
        k = (int(ref.Gp[1]) - int(ref.Gp[0])) // len(covs[0])
        kron = np.kron(np.eye(k), covs[0])
        assert rel(kron, G, floor=ref.sigma**2) <= tolerances.AT_THETA, (
            "kronecker(diag(k), G) is not lme4's G"
        )
    V_recipe = V_from_blocks(ref, positional_Zt(ref), covs)
    V = dense(ref.V())
    codes = np.asarray(ref.flist[ref.cnms[0][0]].codes)
    if one_term and (np.diff(codes) >= 0).all():
        assert rel(V_recipe, V) <= tolerances.AT_THETA, "the recipe should be right on sorted rows"
    if rel(V_recipe, V) > tolerances.AT_THETA:
        tally("the seed's recipe is wrong on this case")
        cmp = compare(as_mapping(ref, V=V_recipe), ref, data_index=case.data.index)
        row = cmp.row("V", "at its parameters")
        assert (row.verdict, row.kind) == ("differs", "construction"), f"\n{cmp}"


CHECKS: dict[str, Callable[[Case], None]] = {
    "design": check_design,
    "fit": check_fit,
    "shuffle": check_shuffle,
    "relabel": check_relabel,
    "gls": check_gls,
    "kronecker": check_kronecker,
}


# --- saving shrunk failures ----------------------------------------------------------------------------
_RUNNING: dict[str, str] = {}
#: test -> {distinct failure: the last failing (check, case, error)}
_FAILED: dict[str, dict[str, tuple[str, Case, str]]] = {}


def run(check: str, case: Case) -> None:
    """Run one check; remember the case if it fails.

    Hypothesis tells failures apart by exception type and where it was raised, shrinks each, and replays
    each shrunk case last: so the last failing case per (type, place) is the shrunk one.
    """
    try:
        CHECKS[check](case)
    except Exception as exc:
        test = _RUNNING.get("test")
        if test is not None:
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else ""
            text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            _FAILED.setdefault(test, {})[f"{type(exc).__name__}@{where}"] = (
                check,
                case,
                f"{type(exc).__name__}: {text}",
            )
        raise


def save_to_corpus(check: str, case: Case, error: str, test: str, note: str = "") -> Path:
    """Write tests/corpus/<check>-<hash of the case>.json: the case with its data, and why it is there."""
    entry = {"check": check, "test": test, "error": error, "case": case.to_dict(with_data=True)}
    if note:
        entry["note"] = note
    text = json.dumps(entry, indent=1, sort_keys=True)
    digest = hashlib.sha1(json.dumps(entry["case"], sort_keys=True).encode()).hexdigest()[:10]
    CORPUS.mkdir(exist_ok=True)
    path = CORPUS / f"{check}-{digest}.json"
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _corpus_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    name = request.node.nodeid
    _RUNNING["test"] = name
    _FAILED.pop(name, None)
    yield
    _RUNNING.pop("test", None)
    failed = _FAILED.pop(name, {})
    if os.environ.get("VCHECK_SAVE_CORPUS", "1") != "0" and "test_corpus" not in name:
        for check, case, error in failed.values():
            path = save_to_corpus(check, case, error, name)
            print(f"\nshrunk failing case saved to {path}: commit it to replay it on every run")


# --- hypothesis runs -----------------------------------------------------------------------------------
def share(fraction: float) -> int:
    """A fraction of the profile's examples (ci: 100), for the properties that refit several times."""
    return max(10, int(settings().max_examples * fraction))


@given(case=strategies.cases())
def test_vcheck_design_equals_lme4s(case: Case) -> None:
    run("design", case)


@given(case=strategies.cases())
def test_vcheck_fit_agrees_with_lme4(case: Case) -> None:
    run("fit", case)


@settings(max_examples=share(0.4))
@given(case=strategies.cases())
def test_shuffling_rows_permutes_V_and_changes_nothing_else(case: Case) -> None:
    run("shuffle", case)


@settings(max_examples=share(0.3))
@given(case=strategies.cases())
def test_relabelling_levels_changes_nothing(case: Case) -> None:
    run("relabel", case)


@settings(max_examples=share(0.5))
@given(case=strategies.cases())
def test_gls_beta_at_V_equals_pls_beta(case: Case) -> None:
    run("gls", case)


@settings(max_examples=share(0.5))
@given(case=strategies.cases(("intercept", "slope", "uncorrelated", "factor_slope", "nested")))
def test_seed_kronecker_recipe_holds_only_for_one_sorted_factor_and_is_caught(case: Case) -> None:
    run("kronecker", case)


@settings(max_examples=share(0.2))
@given(case=strategies.cases(("intercept", "slope")), seed=st.integers(0, 2**16))
def test_kronecker_recipe_is_caught_on_the_same_data_unsorted(case: Case, seed: int) -> None:
    sorted_case = case.inline(case.data.sort_values(list(strategies.grouping_columns(case)), kind="stable"))
    run("kronecker", sorted_case)  # right on sorted rows ...
    shuffled, _ = strategies.shuffle_rows(sorted_case, seed)
    run("kronecker", shuffled)  # ... and, when it is wrong, caught on the same rows shuffled


# --- the corpus: every saved failure, replayed ---------------------------------------------------------
def corpus_entries() -> list[Any]:
    entries = []
    for path in sorted(CORPUS.glob("*.json")):
        entry = json.loads(path.read_text(encoding="utf-8"))
        entries.append(pytest.param(entry, id=path.stem))
    return entries


@pytest.mark.parametrize("entry", corpus_entries())
def test_corpus(entry: dict[str, Any]) -> None:
    case = Case.from_dict(entry["case"])
    CHECKS[entry["check"]](case)


def test_the_corpus_is_not_empty() -> None:
    assert len(corpus_entries()) >= 3
