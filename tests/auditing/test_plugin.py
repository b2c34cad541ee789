"""The plug-in protocol (`vcheck.auditing.plugin`): answers validated into a Submission, varcorr rows
mapped onto lme4's terms, covariances turned into lme4's theta.  No R needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from vcheck.auditing.plugin import (
    PluginError,
    Submission,
    chol_psd,
    submission,
    term_covariances,
    theta_from_cov,
    unique_group_names,
)
from vcheck.core.errors import VcheckError
from vcheck.core.fit import lmer
from vcheck.reference import examples

CNMS = [("Subject", ["(Intercept)", "Days"])]


def mapping(**over: object) -> dict[str, object]:
    out: dict[str, object] = {
        "beta": {"(Intercept)": 251.4, "Days": 10.5},
        "sigma": 25.6,
        "varcorr": [
            ("Subject", "(Intercept)", None, 612.1),
            ("Subject", "Days", None, 35.1),
            ("Subject", "(Intercept)", "Days", 11.0),
            ("Residual", None, None, 654.9),
        ],
        "V": np.eye(3),
        "criterion": 1743.6,
        "REML": True,
        "note": "kept as extra",
    }
    out.update(over)
    return out


def test_a_mapping_becomes_a_submission() -> None:
    index = pd.Index([10, 11, 12])
    sub = submission(mapping(), data_index=index, source="toy")
    assert isinstance(sub, Submission) and sub.source == "toy"
    assert sub.beta is not None and sub.beta.to_dict() == {"(Intercept)": 251.4, "Days": 10.5}
    assert sub.sigma == 25.6 and sub.criterion == 1743.6 and sub.REML is True
    assert sub.varcorr is not None and len(sub.varcorr) == 3  # the residual row is dropped
    assert sub.row_index is index and sub.extra == {"note": "kept as extra"}
    assert submission(sub) is sub


def test_V_of_fewer_rows_than_the_data_loses_the_row_labels() -> None:
    sub = submission(mapping(V=sp.identity(2, format="csc")), data_index=pd.Index([1, 2, 3]))
    assert sub.row_index is None and sub.V.shape == (2, 2)
    op = aslinearoperator(np.eye(3))
    assert submission(mapping(V=op)).V is op


def test_a_varcorr_dataframe_is_accepted() -> None:
    frame = pd.DataFrame(
        {"grp": ["g", "Residual"], "var1": ["(Intercept)", None], "var2": [None, None], "vcov": [2.0, 1.0]}
    )
    assert submission(mapping(varcorr=frame)).varcorr == [("g", "(Intercept)", None, 2.0)]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ([1, 2], "must return an LmerFit or a mapping"),
        (mapping(beta=[1.0]), "beta must map"),
        (mapping(beta={"x": "one"}), "beta values must be numbers"),
        (mapping(sigma=-1.0), "sigma must be a positive finite number"),
        (mapping(varcorr=[("g", "x", None)]), "a varcorr row is"),
        (mapping(varcorr=[("g", None, None, 1.0)]), "has no var1"),
        (mapping(varcorr=[("g", "x", None, "big")]), "covariance must be a number"),
        (mapping(varcorr=pd.DataFrame({"grp": ["g"]})), "needs columns grp, var1, var2, vcov"),
        (mapping(V=np.ones((2, 3))), "V must be square"),
        (mapping(ranef={"g": [1.0]}), "ranef must map group names to DataFrames"),
    ],
)
def test_a_broken_answer_is_a_plugin_error(output: object, message: str) -> None:
    with pytest.raises(PluginError, match=message) as info:
        submission(output)  # type: ignore[arg-type]
    assert isinstance(info.value, VcheckError)


def test_a_record_carries_its_layout_and_varcorr_from_theta() -> None:
    ex = examples.load("sleepstudy")
    fit = lmer(ex.formula, ex.data, REML=True)
    fit.varcorr = None  # then varcorr comes from theta, cnms and sigma
    sub = submission(fit)
    assert sub.record is fit and sub.V.shape == (180, 180)
    assert sub.varcorr is not None
    rows = {(g, v1, v2): c for g, v1, v2, c in sub.varcorr}
    L = np.array([[fit.theta[0], 0.0], [fit.theta[1], fit.theta[2]]])
    G = fit.sigma**2 * (L @ L.T)
    assert rows[("Subject", "(Intercept)", None)] == pytest.approx(G[0, 0])
    assert rows[("Subject", "(Intercept)", "Days")] == pytest.approx(G[1, 0])


def test_unique_group_names_follow_make_unique() -> None:
    assert unique_group_names(["Subject", "Subject", "g", "Subject"]) == [
        "Subject",
        "Subject.1",
        "g",
        "Subject.2",
    ]


def test_varcorr_rows_map_onto_lme4s_terms() -> None:
    rows = [
        ("Subject", "Days", None, 35.0),
        ("Subject", "(Intercept)", None, 612.0),
        ("Subject", "(Intercept)", "Days", 11.0),
    ]
    mapped = term_covariances(rows, CNMS)
    assert mapped.problems == [] and mapped.unmapped == 0
    assert np.array_equal(mapped.cov[0], [[612.0, 11.0], [11.0, 35.0]])


def test_uncorrelated_terms_and_interactions_in_any_order() -> None:
    cnms = [("Subject", ["(Intercept)"]), ("Subject", ["Days"]), ("class:school", ["(Intercept)"])]
    rows = [
        ("Subject.1", "Days", None, 3.0),
        ("Subject", "(Intercept)", None, 5.0),
        ("(school:class)", "(Intercept)", None, 7.0),
    ]
    mapped = term_covariances(rows, cnms)
    assert mapped.problems == []
    assert [c.item() for c in mapped.cov] == [5.0, 3.0, 7.0]


def test_a_different_model_is_listed_as_problems() -> None:
    mapped = term_covariances(
        [("Subject", "(Intercept)", None, 612.0), ("Item", "(Intercept)", None, 1.0)], CNMS
    )
    assert mapped.unmapped == 1
    assert any("matches none of lme4's terms" in p for p in mapped.problems)
    assert any("has no variance for ['Days']" in p for p in mapped.problems)
    uncorrelated = term_covariances(
        [("Subject", "(Intercept)", None, 6.0), ("Subject", "Days", None, 3.0)], CNMS
    )
    assert uncorrelated.problems == [
        "lme4's term ((Intercept) + Days | Subject) is correlated; it gives no covariances (uncorrelated)"
    ]
    twice = term_covariances([("Subject", "Days", None, 3.0)] * 2, CNMS)
    assert any("given twice" in p for p in twice.problems)


def test_theta_from_an_implementations_covariances() -> None:
    sigma = 2.0
    L = np.array([[1.5, 0.0], [0.4, 0.8]])
    assert np.allclose(theta_from_cov([sigma**2 * L @ L.T], sigma), [1.5, 0.4, 0.8])
    with pytest.raises(PluginError, match="not positive semi-definite"):
        theta_from_cov([np.array([[1.0, 3.0], [3.0, 1.0]])], sigma)
    with pytest.raises(PluginError, match="not positive semi-definite"):
        chol_psd(np.array([[-1.0]]))
