"""The catalogue of large models (`MODELS`) and their data: InstEval from R, random slopes simulated.

- ``instEval``: `lme4::InstEval`, ``y ~ service + (1|s) + (1|d) + (1|dept:service)``, 73,421 rows of
  lecture ratings; students and lecturers are crossed, so the rows form one cluster.  Its data comes
  from R (`vcheck.reference.rbridge.r_data`).
- ``slope200k``: ``y ~ x + (x|g)``, 2,000 groups of 100 rows, simulated with a seed (intercept sd 2,
  slope sd 1, correlation 0.5, sigma 1), rows in random order; 2,000 clusters.
- ``slope20k`` and ``instEval10k``: the same models scaled down (200 groups and 20,000 rows; 10,000 of
  InstEval's rows drawn with the seed): the test suite's versions of the same code paths.

Nothing of the audit is imported here: a case of origin "large" rebuilds its data with `load_data`, and
`vcheck.auditing.large` makes the cases and compares their V.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vcheck.core.errors import DataError, VcheckError

#: seed of the simulated large models (the same data on every run and in every process)
DEFAULT_SEED = 20240

INSTEVAL_FORMULA = "y ~ service + (1|s) + (1|d) + (1|dept:service)"
SLOPE_FORMULA = "y ~ x + (x|g)"


@dataclass(frozen=True)
class LargeModel:
    """One large model: its formula, where its data comes from ("instEval" or "slope") and its size."""

    name: str
    formula: str
    description: str
    spec: dict[str, int]
    source: str
    REML: bool = True


MODELS: dict[str, LargeModel] = {
    "instEval": LargeModel(
        "instEval",
        INSTEVAL_FORMULA,
        "lme4::InstEval, 73,421 lecture ratings; students, lecturers and dept:service crossed",
        {"rows": 73421},
        "instEval",
    ),
    "slope200k": LargeModel(
        "slope200k",
        SLOPE_FORMULA,
        "simulated random slopes, 200,000 rows in 2,000 groups, rows in random order",
        {"rows": 200_000, "groups": 2000},
        "slope",
    ),
    "slope20k": LargeModel(
        "slope20k",
        SLOPE_FORMULA,
        "simulated random slopes, 20,000 rows in 200 groups (slope200k scaled down for the tests)",
        {"rows": 20_000, "groups": 200},
        "slope",
    ),
    "instEval10k": LargeModel(
        "instEval10k",
        INSTEVAL_FORMULA,
        "10,000 rows of lme4::InstEval drawn with the seed (instEval scaled down for the tests)",
        {"rows": 10_000},
        "instEval",
    ),
}


class LargeModelError(VcheckError, ValueError):
    """An unknown large model name."""


def names() -> list[str]:
    """The large models' names."""
    return list(MODELS)


def parse_names(text: str | None) -> list[str]:
    """`--large instEval,slope200k` -> ["instEval", "slope200k"] (case-insensitive, duplicates dropped)."""
    if not text:
        return []
    by_lower = {k.lower(): k for k in MODELS}
    out: list[str] = []
    for raw in text.split(","):
        key = raw.strip()
        if not key:
            continue
        if key.lower() not in by_lower:
            raise LargeModelError(f"--large: unknown model {key!r} (choose from {', '.join(MODELS)})")
        out.append(by_lower[key.lower()])
    return list(dict.fromkeys(out))


def load_data(name: str, seed: int | None = None, spec: dict[str, Any] | None = None) -> pd.DataFrame:
    """The data of large model `name` (what a case of origin "large" rebuilds)."""
    if name not in MODELS:
        raise LargeModelError(f"unknown large model {name!r} (choose from {', '.join(MODELS)})")
    model = MODELS[name]
    size = {**model.spec, **(spec or {})}
    seed = DEFAULT_SEED if seed is None else int(seed)
    if model.source == "instEval":
        data = instEval()
        rows = int(size["rows"])
        return data if rows >= len(data) else data.sample(n=rows, random_state=seed)
    return slope_data(int(size["rows"]), int(size["groups"]), seed)


def instEval() -> pd.DataFrame:
    """`lme4::InstEval` from the embedded R: factors as Categoricals in R's level order, y as float."""
    from vcheck.reference import rbridge

    data = rbridge.r_data("lme4::InstEval")
    data["y"] = data["y"].to_numpy(dtype=float)
    return data


def slope_data(rows: int, groups: int, seed: int) -> pd.DataFrame:
    """y = 10 + 2 x + b0_g + b1_g x + e, (b0, b1) ~ N(0, [[4, 1], [1, 1]]), e ~ N(0, 1).

    `groups` groups of rows / groups rows each, x ~ N(0, 1), group labels "g0001", ... as a Categorical;
    the rows are shuffled (data never comes sorted by group).
    """
    if groups < 2 or rows < 2 * groups:
        raise DataError(
            f"slope data needs at least 2 groups and 2 rows per group, not {rows} rows / {groups} groups: "
            "ask for more rows or fewer groups"
        )
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), -(-rows // groups))[:rows]
    rng.shuffle(g)
    x = rng.standard_normal(rows)
    G = np.array([[4.0, 1.0], [1.0, 1.0]])
    b = rng.standard_normal((groups, 2)) @ np.linalg.cholesky(G).T
    y = 10.0 + 2.0 * x + b[g, 0] + b[g, 1] * x + rng.standard_normal(rows)
    width = len(str(groups))
    labels = [f"g{i + 1:0{width}d}" for i in range(groups)]
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical.from_codes(g, categories=pd.Index(labels))})
