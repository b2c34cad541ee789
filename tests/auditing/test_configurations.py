"""Configurations: parsing, targets with a bracket, declared mappings, options passed as keywords."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import vcheck
from vcheck import adapters
from vcheck.adapters import glmmtmb, nlme
from vcheck.adapters import statsmodels as sm
from vcheck.auditing import configurations as conf
from vcheck.auditing.strategies import draw_case


def test_parse_options_and_declared_names() -> None:
    c = conf.parse("method=lbfgs", sm.fit)
    assert (c.name, dict(c.options)) == ("method=lbfgs", {"method": "lbfgs"})
    assert conf.parse("default", sm.fit).options == {}
    c = conf.parse("method=newton,maxiter=500,profile=TRUE,tol=1e-8")
    assert dict(c.options) == {"method": "newton", "maxiter": 500, "profile": True, "tol": 1e-8}
    assert c.name == "method=newton,maxiter=500,profile=true,tol=1e-08"
    with pytest.raises(conf.ConfigurationError, match="KEY=VALUE"):
        conf.parse("lbfgs", sm.fit)


def test_split_target() -> None:
    assert conf.split_target("statsmodels[method=lbfgs]") == ("statsmodels", "method=lbfgs")
    assert conf.split_target("pkg.mod:fit[default]") == ("pkg.mod:fit", "default")
    assert conf.split_target("pkg.mod:fit") == ("pkg.mod:fit", None)
    assert conf.with_config("statsmodels", conf.Configuration("method=cg", {"method": "cg"})) == (
        "statsmodels[method=cg]"
    )


def test_builtin_adapters_declare_configurations() -> None:
    assert list(conf.declared(sm.fit)) == [
        "default",
        "method=bfgs",
        "method=lbfgs",
        "method=cg",
        "method=nm",
        "method=powell",
    ]
    assert list(conf.declared(glmmtmb.fit)) == ["default", "optimizer=optim", "profile=true"]
    assert list(conf.declared(nlme.fit)) == ["default", "opt=optim"]
    assert "crossed" not in vcheck.auditing.capabilities.declared(nlme.fit)
    assert "rank_deficient" not in vcheck.auditing.capabilities.declared(glmmtmb.fit)
    assert "rank_deficient" not in vcheck.auditing.capabilities.declared(sm.fit)


def test_resolve_binds_the_configuration() -> None:
    impl = adapters.resolve("statsmodels[method=lbfgs]")
    assert isinstance(impl, conf.Audited)
    assert impl.name == "statsmodels[method=lbfgs]"
    assert impl.configuration is not None and impl.configuration.options == {"method": "lbfgs"}
    assert adapters.resolve("statsmodels") is sm.fit


def test_audited_passes_options_as_keywords() -> None:
    seen: list[dict[str, Any]] = []

    def fit(formula: str, data: pd.DataFrame, REML: bool, **kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs)
        return {}

    audited = conf.Audited(fit, target="toy", configuration=conf.parse("solver=qr,tol=0.5"))
    case = draw_case(0, 1)
    audited(case.formula, case.data, case.REML)
    assert seen == [{"solver": "qr", "tol": 0.5}]


def test_statsmodels_method_is_used_and_unknown_method_unsupported() -> None:
    case = draw_case(0, 17)  # y ~ 1 + (1 | g), ML
    out = sm.fit(case.formula, case.data, case.REML, method="bfgs")
    assert out["configuration"] == "method=bfgs" and "method='bfgs'" in out["fit_call"]
    assert out["versions"]["statsmodels"]
    with pytest.raises(vcheck.Unsupported, match="newton"):
        sm.fit(case.formula, case.data, case.REML, method="newton")
