"""The benchmark's cases, fixed in advance so that none can be picked after the fact (`vcheck.bench`).

Three sets, every case of each is run:

1. **lme4's test models**: `vcheck.reference.corpus` (the models of lme4's own tests) when it is there,
   else `FALLBACK_CORPUS`, the models of lme4's tests that issue 15 measured;
2. **headline models**: sleepstudy, the kindergarten star model, InstEval, a 200,000-row random-slope
   model (`vcheck.auditing.large`'s slope200k) and the many-term star model of lme4's tests/extras.R;
3. **scaling series**: `y ~ x + (1|g)`, `y ~ x + (x|g)` and the crossed `y ~ x + (1|g) + (1|h)` on
   simulated data from 10^3 to 10^6 rows (g with n/10 levels, h with n/1000, at least 10), and at 10^5
   rows with 10 to 10^4 levels of g.

A case makes its data once, as pandas for vcheck and as the same data.frame in R for lme4.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: lme4's test models measured in issue 15, used until `vcheck.reference.corpus` exists:
#: name -> (formula, R code making `.vcheck_bench_data`)
FALLBACK_CORPUS: dict[str, tuple[str, str]] = {
    "orthodont": (
        "distance ~ age + (age | Subject)",
        "d <- as.data.frame(nlme::Orthodont); d$Subject <- factor(d$Subject, ordered = FALSE); d",
    ),
    "pastes": ("strength ~ (1 | batch/cask)", "lme4::Pastes"),
    "f_by_g": (
        "y ~ (1 | f:g)",
        "set.seed(101); data.frame(y = rnorm(1000), f = factor(sample(1:20, 1000, TRUE)),"
        " g = factor(sample(1:10, 1000, TRUE)))",
    ),
    "pixel": (
        "pixel ~ day + I(day^2) + (day | Dog) + (1 | Side/Dog)",
        "d <- as.data.frame(nlme::Pixel); d$Dog <- factor(d$Dog, ordered = FALSE);"
        " d$Side <- factor(d$Side, ordered = FALSE); d",
    ),
    "is_singular": (
        "y ~ 1 + (1 + x1 | group1) + (1 + x2 | group2)",
        "set.seed(102); n <- 500; d <- data.frame(group1 = factor(sample(1:50, n, TRUE)),"
        " group2 = factor(sample(1:30, n, TRUE)), x1 = rnorm(n), x2 = rnorm(n));"
        " d$y <- 1 + d$x1 + rnorm(50)[d$group1] + rnorm(n); d",
    ),
    "sleepstudy_uncorr": ("Reaction ~ Days + (Days || Subject)", "lme4::sleepstudy"),
    "penicillin": ("diameter ~ (1 | plate) + (1 | sample)", "lme4::Penicillin"),
    "cake": ("angle ~ recipe * temperature + (1 | recipe:replicate)", "lme4::cake"),
    "dyestuff_ml": ("Yield ~ 1 + (1 | Batch)", "lme4::Dyestuff"),
}

HEADLINE_R = {
    "sleepstudy": ("Reaction ~ Days + (Days|Subject)", "lme4::sleepstudy"),
    "star_kindergarten": (
        "read ~ cltype + sx + (sx|sch/tch)",
        'suppressPackageStartupMessages(library(mlmRev)); subset(star, gr == "K")'
        '[, c("read", "cltype", "sx", "sch", "tch")]',
    ),
    "InstEval": (
        "y ~ service + (1|s) + (1|d) + (1|dept:service)",
        'lme4::InstEval[, c("y", "service", "s", "d", "dept")]',
    ),
    "star_extras": (
        "math ~ gr + sx*eth + cltype + schtype + hdeg + clad + exp + trace + (yrs | id) + (1 | tch)"
        " + (yrs | sch)",
        "suppressPackageStartupMessages(library(mlmRev)); star",
    ),
}
#: issue 15's goals for the headline ratios (vcheck / lme4)
HEADLINE_GOALS = {
    "sleepstudy": 0.5,
    "star_kindergarten": 0.5,
    "InstEval": 0.1,
    "sim_200k": 0.05,
    "star_extras": 0.5,
}
SCALING_FORMULAS = {
    "(1|g)": "y ~ x + (1|g)",
    "(x|g)": "y ~ x + (x|g)",
    "crossed": "y ~ x + (1|g) + (1|h)",
}


@dataclass
class Case:
    """One benchmark case: `make()` returns the pandas data and puts the same data in R under `r_name`."""

    group: str  # "corpus", "headline" or "scaling"
    name: str
    formula: str
    make: Callable[[str], pd.DataFrame]
    REML: bool = True
    repeats: int = 5
    series: str = ""  # scaling: "rows" or "levels"
    model: str = ""  # scaling: a key of SCALING_FORMULAS
    size: int = 0  # scaling: rows
    levels: int = 0  # scaling: levels of g
    notes: list[str] = field(default_factory=list)
    skip: str = ""  # why the case cannot run (it is still listed)
    args: dict[str, Any] = field(default_factory=dict)  # lmer's further arguments (vcheck's keywords)
    r_args: str = ""  # the same for R: bridge.R's vcheck_call_args JSON ("" for none)

    @property
    def r_name(self) -> str:
        return ".vcheck_bench_data"


def r_eval(code: str) -> Any:
    """Evaluate R code in vcheck's embedded R session (rbridge) and return the R object."""
    from vcheck.reference import rbridge

    s = rbridge.session()
    return s.ri.baseenv.find("eval")(s.ri.parse(code), envir=s.ri.globalenv)


def _from_r(code: str) -> Callable[[str], pd.DataFrame]:
    """A data maker: R code whose value is the data.frame; pandas gets R's own copy (factors as
    Categoricals in R's level order, integer columns as float)."""

    def make(r_name: str) -> pd.DataFrame:
        from vcheck.reference import rbridge

        r_eval(f"{r_name} <- local({{ {code} }})")
        df = rbridge.frame_from_r(r_eval(r_name))
        for col in df.columns:
            if df[col].dtype.kind in "iu":
                df[col] = df[col].astype(float)
        return df

    return make


def _to_r(fn: Callable[[], pd.DataFrame]) -> Callable[[str], pd.DataFrame]:
    """A data maker from a pandas data maker: the frame is copied into R."""

    def make(r_name: str) -> pd.DataFrame:
        from vcheck.reference import rbridge

        df = fn()
        rbridge.session().ri.globalenv[r_name] = rbridge.frame_to_r(df)
        return df

    return make


#: lmer arguments vcheck's lmer takes as keywords (corpus entries with others are listed, not run)
LMER_KEYWORDS = {"weights", "offset", "subset", "na_action", "contrasts", "start", "control"}


def _corpus_maker(name: str, case: Case) -> Callable[[str], pd.DataFrame]:
    """A data maker for corpus entry `name` (loaded only then, so the list stays light): the data with
    lmer's arguments prepared for R as `vcheck.reference.lmer` prepares them (array weights become
    columns, `case.r_args` their JSON)."""

    def make(r_name: str) -> pd.DataFrame:
        from vcheck.reference import _r_frame, corpus, rbridge
        from vcheck.reference.call_args import call_args

        data = corpus.load(name).data
        if data is None:
            raise ValueError(f"corpus entry {name} has no data")
        ca = call_args(data, **case.args)
        rbridge.session().ri.globalenv[r_name] = _r_frame(case.formula, ca.data, ca.columns)
        case.r_args = ca.json
        return data

    return make


def corpus_cases() -> list[Case]:
    """lme4's test models: every entry of `vcheck.reference.corpus` (FALLBACK_CORPUS without it).
    Entries that cannot be timed on both sides stay in the list with the reason."""
    try:
        from vcheck.reference import corpus
    except ImportError:
        return [
            Case("corpus", k, f, _from_r(code), REML=not k.endswith("_ml"))
            for k, (f, code) in FALLBACK_CORPUS.items()
        ]
    cases = []
    for name in corpus.names():
        entry = corpus.load(name)
        case = Case("corpus", name, entry.formula, _from_r("NULL"), REML=bool(entry.REML), repeats=3)
        case.make = _corpus_maker(name, case)
        other = sorted(set(entry.args) - LMER_KEYWORDS)
        if entry.data is None:
            case.skip = f"data not kept in the corpus ({getattr(entry, 'data_skipped', '')})"
        elif entry.lme4.get("status") != "fitted":
            case.skip = f"lme4 itself raised: {str(entry.lme4.get('error', ''))[:120]}"
        elif other:
            case.skip = f"lmer arguments vcheck's lmer does not take: {', '.join(other)}"
        else:
            case.args = dict(entry.args)
        cases.append(case)
        del entry  # the data are loaded again when the case runs
    return cases


def headline_cases() -> list[Case]:
    cases = [Case("headline", k, f, _from_r(code)) for k, (f, code) in HEADLINE_R.items()]
    for c in cases:
        c.repeats = {"sleepstudy": 11, "star_kindergarten": 5}.get(c.name, 1)

    def sim() -> pd.DataFrame:
        from vcheck.auditing.large_models import load_data

        return load_data("slope200k")

    cases.insert(3, Case("headline", "sim_200k", "y ~ x + (x|g)", _to_r(sim), repeats=1))
    return cases


def scaling_data(model: str, rows: int, levels: int, seed: int = 15) -> pd.DataFrame:
    """y = 1 + 0.5 x + a_g + b_g x [slope model] + c_h [crossed] + e, every level of g (and h) used, rows
    in random order; g has `levels` levels, h max(10, rows // 1000)."""
    rng = np.random.default_rng(seed)
    g = rng.permutation(np.arange(rows) % levels)
    x = rng.normal(size=rows)
    y = 1.0 + 0.5 * x + rng.normal(size=levels)[g] + rng.normal(size=rows)
    data = {"y": y, "x": x, "g": pd.Categorical.from_codes(g, pd.Index([f"g{i}" for i in range(levels)]))}
    if model == "(x|g)":
        data["y"] = y + 0.5 * rng.normal(size=levels)[g] * x
    if model == "crossed":
        hl = max(10, rows // 1000)
        h = rng.permutation(np.arange(rows) % hl)
        data["y"] = y + rng.normal(size=hl)[h]
        data["h"] = pd.Categorical.from_codes(h, pd.Index([f"h{i}" for i in range(hl)]))
    return pd.DataFrame(data)


def scaling_cases(max_rows: int = 10**6) -> list[Case]:
    """Rows 10^3..max_rows with n/10 levels, then 10^5 rows (or max_rows) with 10..10^4 levels."""
    grid: list[tuple[str, int, int]] = [
        ("rows", n, n // 10) for n in (10**3, 10**4, 10**5, 10**6) if n <= max_rows
    ]
    n_lev = min(10**5, max_rows)
    grid += [("levels", n_lev, k) for k in (10, 100, 1000, 10**4) if k * 10 <= n_lev and k != n_lev // 10]
    cases = []
    for model, formula in SCALING_FORMULAS.items():
        for series, n, k in grid:
            case = Case(
                "scaling",
                f"{model} n={n:,} levels={k:,}",
                formula,
                _to_r(functools.partial(scaling_data, model, n, k)),
                repeats=3 if n <= 10**4 else 1,
                series=series,
                model=model,
                size=n,
                levels=k,
            )
            cases.append(case)
    return cases
