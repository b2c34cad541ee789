"""Large models in the audit: InstEval and a 200,000-row random-slope model, compared without a dense V.

The models and their data are in `vcheck.auditing.large_models`.  A large case is a
`vcheck.auditing.cases.Case` with origin ``"large"`` (name, seed, and the model's size in `spec`), so it
travels through sweeps, checkpoints and reports like any other case, and rebuilds its data where it
runs.  `vcheck.auditing.run.audit_case` audits it like any case, except that lme4 is fitted without its
extras (conditional variances cost InstEval ~30 s more; the ranef row reads "not available") and, for a
full record, V is also compared by its diagonal and its cluster blocks (`V_rows`, with the numerics of
`vcheck.core.vdiff`).  theta, beta, sigma, the criterion and V by probes are compared by
`vcheck.auditing.comparison` as for every case (which also checks the implementation's V, beta and
criterion against lme4's construction at its own theta: a construction disagreement, separated from an
optimization one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcheck.auditing.cases import Case
from vcheck.auditing.large_models import DEFAULT_SEED, MODELS, LargeModelError
from vcheck.core import tolerances
from vcheck.core.vdiff import V_block_diff, V_diagonal_diff

if TYPE_CHECKING:
    from vcheck.auditing.comparison import Comparison, Row
    from vcheck.core.record import LmerFit


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


def root_kind(cmp: Comparison, rows: list[Row]) -> None:
    """Differences in V's diagonal or blocks carry the comparison's root kind (construction or model)
    when it has one, as compare's own at-optimum rows do."""
    for kind in ("construction", "model"):
        if any(r.kind == kind for r in cmp.rows):
            for r in rows:
                if r.kind is not None:
                    r.kind = kind
            return
