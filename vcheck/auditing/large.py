"""Large models in the audit: InstEval and a 200,000-row random-slope model, compared without a dense V.

An n x n V for InstEval (n = 73,421) would need 43 GB, so a large case compares V the way one can:

- by probes: ||V_a P - V_b P||_F / ||V_b P||_F for a few Gaussian probe vectors P (n x k), with V_b built
  from lme4's Zt, Lambdat and sigma by `vcheck.core.covariance.V_operator` (this is
  `vcheck.auditing.comparison`'s V row);
- by its diagonal: max_i |V_a[i, i] - V_b[i, i]| / V_b[i, i], V[i, i] = sigma^2 (sum_j W[j, i]^2 + 1),
  W = Lambdat Zt; every row counts alone, so one wrong row cannot hide in a norm over all of them;
- by blocks, when the rows fall into clusters small enough to hold (`vcheck.core.covariance.V_blocks`):
  max over clusters c of ||V_a,c - V_b,c||_F / ||V_b,c||_F, the worst cluster alone;

and theta, beta, sigma and the criterion directly, through `vcheck.auditing.comparison` (which also checks the
implementation's V, beta and criterion against lme4's construction at its own theta: a construction
disagreement, separated from an optimization one).

The models (`MODELS`):

- ``instEval``: `lme4::InstEval`, ``y ~ service + (1|s) + (1|d) + (1|dept:service)``, 73,421 rows of
  lecture ratings; students and lecturers are crossed, so the rows form one cluster (probes and the
  diagonal only).  Its data comes from R.
- ``slope200k``: ``y ~ x + (x|g)``, 2,000 groups of 100 rows, simulated with a seed (intercept sd 2,
  slope sd 1, correlation 0.5, sigma 1), rows in random order; 2,000 clusters, compared block by block.
- ``slope20k`` and ``instEval10k``: the same models scaled down (200 groups and 20,000 rows; 10,000 of
  InstEval's rows drawn with the seed): the test suite's versions of the same code paths.

A large case is a `vcheck.auditing.cases.Case` with origin ``"large"`` (name, seed, and the model's size in
`spec`), so it travels through sweeps, checkpoints and reports like any other case, and rebuilds its data
where it runs.  `audit_large_case(impl, case)` is its `vcheck.auditing.run.audit_case`: lme4 is fitted without
its extras (conditional variances cost InstEval ~30 s more), and the ranef row reads "not available".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vcheck.auditing.cases import Case
from vcheck.core import tolerances
from vcheck.core.errors import VcheckError

if TYPE_CHECKING:
    from vcheck.auditing.comparison import Comparison, Row
    from vcheck.auditing.plugin import Impl
    from vcheck.auditing.results import CaseResult
    from vcheck.core.record import LmerFit

#: seed of the simulated large models (the same data on every run and in every process)
DEFAULT_SEED = 20240

#: V's blocks are compared only when every cluster has at most this many rows (a 2,000-row block is 32 MB)
BLOCK_ROWS = 2000

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


def case(name: str, seed: int = DEFAULT_SEED, **size: int) -> Case:
    """The large model `name` as an audit case (origin "large"; its data is built when first used).

    `size` overrides the model's size (`rows`, `groups`), e.g. a smaller sample of InstEval's rows.
    """
    if name not in MODELS:
        raise LargeModelError(f"unknown large model {name!r} (choose from {', '.join(MODELS)})")
    model = MODELS[name]
    return Case(
        formula=model.formula,
        REML=model.REML,
        origin="large",
        seed=None if name == "instEval" and not size else seed,  # all of InstEval: no seed involved
        name=name,
        spec={**model.spec, **size},
        features=("large",),
    )


def load_data(name: str, seed: int | None = None, spec: dict[str, Any] | None = None) -> pd.DataFrame:
    """The data of large model `name` (`Case._rebuild` for origin "large")."""
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


# --- the data --------------------------------------------------------------------------------------------
def instEval() -> pd.DataFrame:
    """`lme4::InstEval` from the embedded R: factors as Categoricals in R's level order, y as float."""
    from vcheck.reference import rbridge

    s = rbridge.session()
    with rbridge._LOCK:
        frame = s.ri.baseenv.find("eval")(s.ri.parse("lme4::InstEval"))
    data = rbridge.frame_from_r(frame)
    data["y"] = data["y"].to_numpy(dtype=float)
    return data


def slope_data(rows: int, groups: int, seed: int) -> pd.DataFrame:
    """y = 10 + 2 x + b0_g + b1_g x + e, (b0, b1) ~ N(0, [[4, 1], [1, 1]]), e ~ N(0, 1).

    `groups` groups of rows / groups rows each, x ~ N(0, 1), group labels "g0001", ... as a Categorical;
    the rows are shuffled (data never comes sorted by group).
    """
    if groups < 2 or rows < 2 * groups:
        raise ValueError(
            f"slope data needs at least 2 groups and 2 rows per group, not {rows} rows / {groups} groups"
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


# --- V without a dense n x n -----------------------------------------------------------------------------
def V_diagonal(Zt: sp.spmatrix, Lambdat: sp.spmatrix, sigma: float) -> np.ndarray:
    """diag(V) = sigma^2 (colSums(W^2) + 1), W = Lambdat Zt: O(nnz(W))."""
    W = sp.csc_matrix(sp.csc_matrix(Lambdat) @ sp.csc_matrix(Zt))
    return float(sigma) ** 2 * (np.asarray(W.multiply(W).sum(axis=0)).ravel() + 1.0)


def V_diagonal_diff(a: LmerFit, b: LmerFit) -> float:
    """max_i |V_a[i, i] - V_b[i, i]| / V_b[i, i] over the data rows (both in the data's row order)."""
    da = V_diagonal(a._need("Zt"), a._need("Lambdat"), a._need("sigma"))
    db = V_diagonal(b._need("Zt"), b._need("Lambdat"), b._need("sigma"))
    if da.shape != db.shape:
        return math.inf
    return float(np.max(np.abs(da - db) / db)) if len(db) else 0.0


def V_probe_diff(a: LmerFit, b: LmerFit, probes: int = 8, seed: int = 0) -> float:
    """||V_a P - V_b P||_F / ||V_b P||_F for `probes` Gaussian columns P, both V as operators."""
    Va, Vb = a.V_operator(), b.V_operator()
    if Va.shape != Vb.shape:
        return math.inf
    P = np.random.default_rng(seed).standard_normal((Vb.shape[0], probes))
    BP = Vb @ P
    return float(np.linalg.norm(Va @ P - BP) / max(float(np.linalg.norm(BP)), tolerances.ABS_FLOOR))


def V_block_diff(a: LmerFit, b: LmerFit, max_rows: int = BLOCK_ROWS) -> tuple[float, int] | None:
    """(max over clusters of ||V_a,c - V_b,c||_F / ||V_b,c||_F, number of clusters), or None when lme4's
    largest cluster has more than `max_rows` rows, or all of them (one crossed cluster, as in InstEval:
    its block would be the dense V).

    Different clusterings of the rows (a's random effects join other rows than lme4's) give inf.
    """
    from vcheck.core import covariance

    Zt_b = b._need("Zt")
    limit = min(max_rows, Zt_b.shape[1] - 1)
    try:
        blocks_b = covariance.V_blocks(Zt_b, b._need("Lambdat"), b._need("sigma"), max_rows=limit)
    except VcheckError:
        return None
    try:
        blocks_a = covariance.V_blocks(a._need("Zt"), a._need("Lambdat"), a._need("sigma"), max_rows=limit)
    except VcheckError:
        return math.inf, len(blocks_b)
    if len(blocks_a) != len(blocks_b):
        return math.inf, len(blocks_b)
    worst = 0.0
    for (rows_a, Va), (rows_b, Vb) in zip(blocks_a, blocks_b, strict=True):
        if not np.array_equal(rows_a, rows_b):
            return math.inf, len(blocks_b)
        worst = max(
            worst, float(np.linalg.norm(Va - Vb) / max(float(np.linalg.norm(Vb)), tolerances.ABS_FLOOR))
        )
    return worst, len(blocks_b)


def V_rows(a: LmerFit, b: LmerFit, tol: float = tolerances.AT_OPTIMUM) -> list[Row]:
    """The diagonal and per-block V rows (at each side's optimum) for two full records."""
    from vcheck.auditing.comparison import Row

    out: list[Row] = []
    checks: list[tuple[str, float, str]] = []
    if a.Zt is not None and a.Lambdat is not None and a.sigma is not None:
        checks.append(
            ("V diagonal", V_diagonal_diff(a, b), "max over rows of |V_a[i,i] - V_b[i,i]| / V_b[i,i]")
        )
        blocks = V_block_diff(a, b)
        if blocks is not None:
            rel, k = blocks
            checks.append(("V blocks", rel, f"worst of {k} clusters: ||V_a,c - V_b,c||_F / ||V_b,c||_F"))
    for quantity, rel, how in checks:
        if rel <= tol:
            out.append(Row(quantity, "at optimum", "agrees", None, rel, None, tol, how))
        else:
            text = f"{quantity} differs from lme4's (rel diff {rel:.1e}; {how})"
            out.append(Row(quantity, "at optimum", "differs", "optimization", rel, None, tol, text))
    return out


# --- one large case --------------------------------------------------------------------------------------
def audit_large_case(
    impl: Impl,
    case: Case,
    *,
    source: str | None = None,
    tol_at_theta: float = tolerances.AT_THETA,
    tol_optimum: float = tolerances.AT_OPTIMUM,
    criterion: str = "lme4",
    flat_optimum: bool = True,
) -> CaseResult:
    """`vcheck.auditing.run.audit_case` for a large case: never raises for a failing case (see `.error`).

    impl's answer is compared with lme4's fit by `vcheck.auditing.comparison` (V by probes, since n is
    large), and
    for a full record also by V's diagonal and its cluster blocks (`V_rows`).  lme4 is fitted without its
    extras (vcov, ranef, condVar).
    """
    from vcheck.auditing.comparison import compare
    from vcheck.auditing.oracle import LmeOracle
    from vcheck.auditing.plugin import PluginError, submission
    from vcheck.auditing.results import CaseResult
    from vcheck.auditing.run import call_impl, findings_of
    from vcheck.core.record import LmerFit

    start = time.perf_counter()
    name = source or str(getattr(impl, "__name__", "plugin"))
    result = CaseResult(case=case)
    try:
        data = case.data
    except Exception as exc:  # R missing for InstEval, ...: this case's error, not the sweep's
        result.error = f"cannot build the large model's data: {type(exc).__name__}: {_one_line(exc)}"
        return result
    output = call_impl(impl, case, data, name, result, start)
    if output is None:
        return result
    oracle = LmeOracle(case, criterion=criterion)
    try:
        sub = submission(output, data_index=data.index, source=name)
        b = oracle.fit(case.REML, extras=False)
        cmp = compare(
            sub,
            b,
            criterion=oracle.criterion,
            screen=oracle.on_design().criterion,
            refit=oracle.refit,
            tol_at_theta=tol_at_theta,
            tol_optimum=tol_optimum,
            flat_optimum=flat_optimum,
        )
        if isinstance(output, LmerFit):
            extra = V_rows(output, b, tol_optimum)
            _root_kind(cmp, extra)
            cmp.rows.extend(extra)
    except PluginError as exc:
        result.error = f"{name} broke the plug-in protocol: {_one_line(exc)}"
    except Exception as exc:  # lme4 failing on the model, or R failing
        result.error = f"{type(exc).__name__}: {_one_line(exc)}"
    else:
        result.findings = findings_of(cmp, case)
        result.comparison = cmp.to_dict()
    result.reference_seconds = oracle.seconds
    result.seconds = time.perf_counter() - start
    return result


def _root_kind(cmp: Comparison, rows: list[Row]) -> None:
    """Differences in V's diagonal or blocks carry the comparison's root kind (construction or model)
    when it has one, as compare's own at-optimum rows do."""
    for kind in ("construction", "model"):
        if any(r.kind == kind for r in cmp.rows):
            for r in rows:
                if r.kind is not None:
                    r.kind = kind
            return


def large_table(result: Any) -> str:
    """A text table of an audit's large cases: rows, fit times and each quantity's relative difference."""
    lines: list[str] = []
    for one in getattr(result, "cases", []):
        if one.case.origin != "large":
            continue
        model = MODELS.get(one.case.name or "")
        head = f"large model {one.case.name}: {one.case.formula}"
        if model is not None:
            head += f" ({model.description})"
        lines.append(head)
        if one.error is not None:
            lines.append(f"  did not run: {one.error}")
            continue
        lines.append(f"  fits: implementation {one.impl_seconds:.1f} s, lme4 {one.reference_seconds:.1f} s")
        for row in (one.comparison or {}).get("rows", []):
            rel = row.get("rel_diff")
            rel_text = f"{float(rel):9.2e}" if rel is not None else "        -"
            kind = row.get("kind") or ""
            lines.append(
                f"  {row['quantity']:<10} {row['check']:<18} {rel_text}  {row['verdict']:<13} {kind}"
            )
    return "\n".join(lines)


#: the rows of a large case's comparison shown in its Markdown table: (quantity, check)
MARKDOWN_ROWS = [
    ("V", "at its parameters"),
    ("criterion", "at its parameters"),
    ("theta", "at optimum"),
    ("beta", "at optimum"),
    ("sigma", "at optimum"),
    ("criterion", "at optimum"),
    ("V", "at optimum"),
    ("V diagonal", "at optimum"),
    ("V blocks", "at optimum"),
]


def large_markdown(result: Any) -> str:
    """The large cases of an audit as a Markdown table: rows, fit times, relative differences."""
    heads = [f"{q} ({'own theta' if c == 'at its parameters' else 'optimum'})" for q, c in MARKDOWN_ROWS]
    lines = [
        "| model | n | lme4 | implementation | " + " | ".join(heads) + " | findings |",
        "|---|---:|---:|---:|" + "---:|" * len(heads) + "---|",
    ]
    for one in getattr(result, "cases", []):
        if one.case.origin != "large":
            continue
        if one.error is not None:
            lines.append(
                f"| {one.case.name} | | | | {' | '.join('' for _ in heads)} | did not run: {one.error} |"
            )
            continue
        rows = {(r["quantity"], r["check"]): r for r in (one.comparison or {}).get("rows", [])}
        cells = []
        for key in MARKDOWN_ROWS:
            r = rows.get(key)
            rel = None if r is None else r.get("rel_diff")
            cells.append(
                "-"
                if rel is None
                else f"{float(rel):.1e}" + ("" if r and r["verdict"] == "agrees" else " **x**")
            )
        real = sorted({f"{f.kind}: {f.quantity}" for f in one.findings if f.kind != "not available"})
        n = (one.case.spec or {}).get("rows", "")
        lines.append(
            f"| {one.case.name} | {n:,} | {one.reference_seconds:.1f} s | {one.impl_seconds:.1f} s | "
            + " | ".join(cells)
            + f" | {', '.join(real) or 'none'} |"
        )
    return "\n".join(lines) + "\n"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
