"""lme4's own test models (r_reference/corpus/): the loader, and vcheck's fits against lme4's frozen answers.

No R needed: the corpus holds lme4 1.1-31's outputs for every Gaussian lmer() call of lme4's tests/, man/
examples and vignettes (`python -m vcheck.reference.corpus --regenerate SRC_DIR` rebuilds it).

For every entry without extra arguments (weights, subset, control, ...: those are the `args` tests' job),
vcheck must either fit it and agree with lme4 (criterion to CRITERION_ABS / CRITERION_REL; theta, beta and
sigma to PATH_DIVERGED, the tolerance where the optimizer's path may leave lme4's on a flat optimum), or
refuse it with a VcheckError.  What vcheck refuses must be exactly the documented lists below, so
progress (or a regression) shows up as a change to this file.
"""

from __future__ import annotations

import json
import re
import warnings

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

ALL = corpus.names()
ENTRIES = {name: corpus.load(name) for name in ALL}
PLAIN = [n for n in ALL if not ENTRIES[n].r_args and ENTRIES[n].data is not None]


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
    assert abs(fit.criterion - crit) <= crit_tol
    theta = np.atleast_1d(np.asarray(ref["theta"], dtype=float))
    tol = tolerances.PATH_DIVERGED
    np.testing.assert_allclose(fit.theta, theta, rtol=tol, atol=tol * max(1.0, float(np.abs(theta).max())))
    np.testing.assert_allclose(
        np.asarray(fit.beta), np.atleast_1d(ref["beta"]), rtol=tol, atol=tolerances.ABS_FLOOR
    )
    np.testing.assert_allclose(fit.sigma, ref["sigma"], rtol=tol)


def test_refused_sets_are_the_documented_ones() -> None:
    refused = {}
    for name in PLAIN:
        try:
            _fit(ENTRIES[name])
        except VcheckError as exc:
            refused[name] = str(exc)
    assert set(refused) == set(LME4_REFUSES) | set(VCHECK_REFUSES)
    assert set(LME4_REFUSES) == {n for n in PLAIN if ENTRIES[n].lme4["status"] == "error"}
