"""lme4's own test models (r_reference/corpus/): the loader, and vcheck's fits against lme4's frozen answers.

No R needed: the corpus holds lme4 1.1-31's outputs for every Gaussian lmer() call of lme4's tests/, man/
examples and vignettes (`python -m vcheck.reference.corpus --regenerate SRC_DIR` rebuilds it).

For every entry without extra arguments, and for every entry with them (weights, offset, subset,
na.action, contrasts, start, control, passed as vcheck.lmer's keywords from `entry.args`), vcheck must
either fit it and agree with lme4 (criterion to CRITERION_ABS / CRITERION_REL; theta, beta and
sigma to PATH_DIVERGED, the tolerance where the optimizer's path may leave lme4's on a flat optimum), or
refuse it with a VcheckError.  What vcheck refuses must be exactly the documented lists below, so
progress (or a regression) shows up as a change to this file.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import vcheck
from vcheck.core import tolerances
from vcheck.core.errors import VcheckError
from vcheck.reference import corpus

#: entries lme4 1.1-31 refuses (its error message), which vcheck must refuse too: lme4 2.x covariance
#: syntax, and broken data the tests feed on purpose.  name -> lme4's message
LME4_REFUSES = {
    "Covariance-class_L89_3669d2": "unused argument (hom = TRUE)",
    "Covariance-class_L93_8d0f9d": 'could not find function "cs"',
    "covariance_structures_L229_d1f079": 'could not find function "cs"',
    "test-NAhandling_L72_40379b": "NA/NaN/Inf in 'y'",
    "test-covariance_structures_L374_f814bf": 'could not find function "us"',
    "test-covariance_structures_L375_821e30": 'could not find function "cs"',
    "test-covariance_structures_L376_75757e": "0 (non-NA) cases",
    "test-covariance_structures_L379_5602c1": 'could not find function "ar1"',
    "test-covariance_structures_L381_2d5ad0": 'could not find function "ar1"',
    "test-covariance_structures_L388_81e861": 'could not find function "us"',
    "test-covariance_structures_L389_f0fc16": 'could not find function "cs"',
    "test-covariance_structures_L390_8ea1ed": "0 (non-NA) cases",
    "test-covariance_structures_L392_1115ee": 'could not find function "ar1"',
    "test-lmer_L155_dfc004": "number of levels of each grouping factor must be < number of observations",
    "test-lmer_L26_c57f5b": "object 'z' not found",
    "test-lmer_L372_2cb0ae": "0 (non-NA) cases",
    "test-lmer_L497_492ecd": 'could not find function "cs"',
    "test-lmer_L85_541c74": "grouping factors must have > 1 sampled level",
    "test-predict_L707_6f90dd": 'could not find function "ar1"',
}

#: entries lme4 fits but vcheck refuses: name -> what vcheck's message says.  Empty since the formula
#: language (poly, ns, dummy, '.', offset(), as.numeric(f)) landed.
VCHECK_REFUSES: dict[str, str] = {}

#: entries whose data the corpus could not keep (matrix columns): name -> why
NO_DATA = {
    "lmer_L2453_7e852e": "column 'polyDays' is a poly, not a vector",
    "test-lmer_L381_9bf964": "column 'y' is a matrix, not a vector",
    "test-simulate_formula_L196_17f95f": "column 'Days' is a matrix, not a vector",
}

#: entries where vcheck and lme4 reach different optima, beyond PATH_DIVERGED in theta, beta or sigma:
#: name -> (vcheck's criterion - lme4's, what happens).  Both are singular fits of test-isSingular.R.
OPTIMA_DIFFER = {
    # a flat singular optimum: the criteria agree (9.7e-7 apart) while theta moves along the ridge
    "test-isSingular_L64_d101a1": "flat singular optimum: same criterion, theta 0.27 apart along the ridge",
    # vcheck's BOBYQA run finds a criterion 6.1e-4 lower than lme4's: lme4 stops at the worse optimum
    "test-isSingular_L75_a92bf7": "lme4's optimum is worse: vcheck's criterion is 6.1e-4 lower",
}

# --- entries with arguments (weights, subset, na.action, contrasts, start, control) ----------------------

#: keywords of lme4's lmer that vcheck.lmer does not have (a Python TypeError, as for any unknown keyword)
ARGS_NOT_KEYWORDS = {
    "lmer-0_L10_fc0a68": "family",  # lmer(..., family = gaussian): lme4 1.1-31 still takes it
    "lmer-0_L12_a59ff2": "family",
    "lmer-0_L14_0d402b": "family",
    "test-lmer_L125_f193e9": "devFunOnly",
    "test-lmer_L187_9a3b70": "junkArg",  # lme4 warns about the extra argument and fits
}

#: lme4 fits these, vcheck refuses them: name -> what vcheck's message says
ARGS_VCHECK_REFUSES = {
    "lmerControl_L42_e7d06f": "couldn't find optimizer function 'optimwrap'",
    "nloptwrap_L26_4145ec": "optimizer 'nlminbwrap'",
    "test-lmer_L271_9b0d8b": "couldn't find optimizer function {'deparsed'",  # a user's optimizer function
    "testOptControl_L6_0497f9": "couldn't find optimizer function 'NMcopy'",
}

#: lme4 refuses these, vcheck fits them (none since lFormula acts on check.rankX = "stop" / "ignore")
ARGS_LME4_REFUSES_VCHECK_FITS: dict[str, str] = {}

#: both fit, to different optima: name -> what happens
ARGS_OPTIMA_DIFFER = {
    # one observation per level of obs: the obs variance and the residual variance are not identified
    # (a flat ridge): the criteria agree to 3e-12, theta does not
    "test-lmer_L149_f83fe9": "not identified",
    "test-lmer_L195_0fcf65": "not identified",
}

ALL = corpus.names()
ENTRIES = {name: corpus.load(name) for name in ALL}
PLAIN = [n for n in ALL if not ENTRIES[n].r_args and ENTRIES[n].data is not None]
WITH_ARGS = [n for n in ALL if ENTRIES[n].r_args and ENTRIES[n].data is not None]


def test_index_counts_and_names() -> None:
    index = json.loads((corpus.corpus_dir() / "index.json").read_text())
    assert sorted(index["entries"]) == ALL
    counts = index["counts"]
    assert counts["entries"] == len(ALL)
    assert counts["calls"] == sum(
        counts[k] for k in ("entries", "duplicates", "not_gaussian", "devfun", "undescribed")
    )
    assert index["versions"]["lme4"] == "1.1.31"
    # the corpus's size, as built from lme4's sources: distinct Gaussian calls, and those without arguments
    assert len(ALL) == 356
    assert len(PLAIN) == 118


def test_loader_round_trips() -> None:
    for name in ALL:
        e = ENTRIES[name]
        assert e.name == name and e.formula and isinstance(e.REML, bool)
        assert e.source["file"] and e.versions["R"].startswith("R version")
        if e.data is None:
            assert NO_DATA[name] == e.data_skipped
            continue
        spec = {c["name"]: c for c in e.columns}
        assert list(e.data.columns) == list(spec)
        for col, c in spec.items():
            series = e.data[col]
            if c["type"] in ("factor", "ordered"):
                assert isinstance(series.dtype, pd.CategoricalDtype)
                assert list(series.cat.categories) == list(c["levels"] or [])
                assert series.cat.ordered == (c["type"] == "ordered")
            elif c["type"] == "numeric":
                assert series.dtype == np.float64
            elif c["type"] == "integer":
                assert str(series.dtype) == "Int64"
            assert int(series.isna().sum()) == c["na"]
        for key in ("weights", "offset"):
            if key in e.args and e.args[key] is not None:
                assert isinstance(e.args[key], np.ndarray) and e.args[key].dtype == float
        if "na.action" in e.r_args:
            assert (
                e.args["na_action"] in ("na.omit", "na.exclude", "na.fail", "na.pass") or e.args["na_action"]
            )
        if "subset" in e.r_args:
            assert e.args["subset"] == e.r_args["subset"]["expr"]
    assert set(NO_DATA) == {n for n in ALL if ENTRIES[n].data is None}


def test_arguments_in_python_form() -> None:
    weighted = [ENTRIES[n] for n in ALL if "weights" in ENTRIES[n].r_args]
    assert weighted, "lme4's tests call lmer with weights"
    for e in weighted:
        if e.data is not None and e.args["weights"] is not None:
            assert len(e.args["weights"]) in (len(e.data), 1)
    controls = [ENTRIES[n].args["control"] for n in ALL if "control" in ENTRIES[n].r_args]
    assert any(isinstance(c, dict) and c.get("optimizer") for c in controls)


def _fit(e: corpus.CorpusEntry) -> vcheck.LmerFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vcheck.lmer(e.formula, e.data, REML=e.REML, condVar=False)


@pytest.mark.parametrize("name", PLAIN)
def test_vcheck_agrees_with_lme4(name: str) -> None:
    e = ENTRIES[name]
    if name in LME4_REFUSES:
        assert e.lme4["status"] == "error"
        assert LME4_REFUSES[name] in e.lme4["error"]
        with pytest.raises(VcheckError):
            _fit(e)
        return
    assert e.lme4["status"] == "fitted", f"lme4 refused {name}: {e.lme4.get('error')}"
    if name in VCHECK_REFUSES:
        with pytest.raises(VcheckError, match=re.escape(VCHECK_REFUSES[name])):
            _fit(e)
        return
    fit = _fit(e)
    ref = e.lme4
    crit = float(ref["criterion"])
    crit_tol = max(tolerances.CRITERION_ABS, tolerances.CRITERION_REL * abs(crit))
    assert list(fit.X_names) == list(ref["beta_names"])
    if name in OPTIMA_DIFFER:
        # documented: the optima differ; vcheck's is never the worse one
        assert fit.criterion <= crit + crit_tol
        return
    _agrees(fit, ref)


def _agrees(fit: vcheck.LmerFit, ref: dict[str, Any]) -> None:
    crit = float(ref["criterion"])
    assert abs(fit.criterion - crit) <= max(tolerances.CRITERION_ABS, tolerances.CRITERION_REL * abs(crit))
    theta = np.atleast_1d(np.asarray(ref["theta"], dtype=float))
    tol = tolerances.PATH_DIVERGED
    np.testing.assert_allclose(fit.theta, theta, rtol=tol, atol=tol * max(1.0, float(np.abs(theta).max())))
    beta = np.atleast_1d(np.asarray(ref["beta"], dtype=float))
    np.testing.assert_allclose(np.asarray(fit.beta), beta, rtol=tol, atol=tolerances.ABS_FLOOR)
    np.testing.assert_allclose(fit.sigma, ref["sigma"], rtol=tol)


@pytest.mark.parametrize("name", WITH_ARGS)
def test_vcheck_with_arguments_agrees_with_lme4(name: str) -> None:
    e = ENTRIES[name]
    kwargs = {k: v for k, v in e.args.items() if k != "verbose"}  # verbose changes nothing fitted
    if name in ARGS_NOT_KEYWORDS:
        assert ARGS_NOT_KEYWORDS[name] in kwargs
        with pytest.raises(TypeError, match=ARGS_NOT_KEYWORDS[name]):
            vcheck.lmer(e.formula, e.data, REML=e.REML, **kwargs)
        return
    if name in ARGS_VCHECK_REFUSES:
        assert e.fitted
        with pytest.raises(VcheckError, match=re.escape(ARGS_VCHECK_REFUSES[name])):
            vcheck.lmer(e.formula, e.data, REML=e.REML, **kwargs)
        return
    if e.lme4["status"] == "error" and name not in ARGS_LME4_REFUSES_VCHECK_FITS:
        with pytest.raises(VcheckError):
            _fit_with(e, kwargs)
        return
    fit = _fit_with(e, kwargs)
    if name in ARGS_LME4_REFUSES_VCHECK_FITS:
        assert ARGS_LME4_REFUSES_VCHECK_FITS[name] in e.lme4["error"]
        return
    assert e.fitted, f"lme4 refused {name}: {e.lme4.get('error')}"
    if name in ARGS_OPTIMA_DIFFER:
        crit = float(e.lme4["criterion"])
        if "worse" in ARGS_OPTIMA_DIFFER[name]:
            assert fit.criterion > crit + 1.0  # documented: remove the entry when this is fixed
        else:
            assert abs(fit.criterion - crit) <= tolerances.CRITERION_ABS
        return
    _agrees(fit, e.lme4)


def _fit_with(e: corpus.CorpusEntry, kwargs: dict[str, Any]) -> vcheck.LmerFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vcheck.lmer(e.formula, e.data, REML=e.REML, condVar=False, **kwargs)


def test_refused_sets_are_the_documented_ones() -> None:
    refused = {}
    for name in PLAIN:
        try:
            _fit(ENTRIES[name])
        except VcheckError as exc:
            refused[name] = str(exc)
    assert set(refused) == set(LME4_REFUSES) | set(VCHECK_REFUSES)
    documented = [ARGS_NOT_KEYWORDS, ARGS_VCHECK_REFUSES, ARGS_LME4_REFUSES_VCHECK_FITS, ARGS_OPTIMA_DIFFER]
    for listing in documented:
        assert set(listing) <= set(WITH_ARGS)
    assert set(LME4_REFUSES) == {n for n in PLAIN if ENTRIES[n].lme4["status"] == "error"}


# --- live: the recorder itself, on a small file of lmer() calls -----------------------------------------

RECORDED = """\
library(lme4)
fm <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
fm2 <- update(fm, REML = FALSE)
w <- rep(c(1, 2), 90)
fm3 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy, weights = w, subset = Days > 0,
            control = lmerControl(optimizer = "bobyqa"))
test_that("a block", {
  d <- sleepstudy
  d$Sex <- factor(rep(c("M", "F"), 90))
  expect_error(lmer(Reaction ~ Days + us(1 | Subject), d))
  lmer(Reaction ~ Days + (1 | Subject), d)
})
lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
"""


@pytest.mark.r
def test_recorder_round_trip(tmp_path: Path) -> None:
    from vcheck.reference import corpus_build

    src = tmp_path / "src"
    (src / "tests").mkdir(parents=True)
    (src / "tests" / "calls.R").write_text(RECORDED)
    summary = corpus_build.regenerate(src, tmp_path / "corpus", timeout=300, jobs=1)
    assert summary["files"] == [{"file": "tests/calls.R", "status": "ok"}]
    # 6 calls: the last repeats the first (one entry; its also_in names the repeat)
    assert summary["counts"]["calls"] == 6
    assert summary["counts"]["duplicates"] == 1
    entries = {(e.source["line"], e.formula): e for e in corpus.load_all(tmp_path / "corpus")}
    assert len(entries) == 5
    first = entries[(2, "Reaction ~ Days + (Days | Subject)")]
    assert first.fitted and first.REML and first.also_in[0]["line"] == 13
    assert first.lme4["beta_names"] == ["(Intercept)", "Days"]
    np.testing.assert_allclose(first.lme4["sigma"], 25.591799, rtol=1e-6)
    assert list(first.data.columns) == ["Reaction", "Days", "Subject"]
    assert first.data["Subject"].cat.categories[0] == "308"
    ml = entries[(3, "Reaction ~ Days + (Days | Subject)")]
    assert ml.REML is False and ml.lme4["isREML"] is False
    weighted = entries[(5, "Reaction ~ Days + (1 | Subject)")]
    np.testing.assert_array_equal(weighted.args["weights"], np.tile([1.0, 2.0], 90))
    assert weighted.args["subset"] == "Days > 0"
    assert weighted.args["control"] == {"optimizer": "bobyqa"}
    refused = entries[(10, "Reaction ~ Days + us(1 | Subject)")]
    assert refused.lme4["status"] == "error" and 'could not find function "us"' in refused.lme4["error"]
    assert "Sex" not in refused.data.columns  # only the columns the call uses
    fit = vcheck.lmer(first.formula, first.data)
    np.testing.assert_allclose(fit.criterion, first.lme4["criterion"], rtol=1e-9)
