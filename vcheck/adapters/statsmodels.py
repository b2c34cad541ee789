"""statsmodels `MixedLM` as a plug-in: translate the lme4 formula, fit, and report in lme4's terms.

statsmodels has one level of grouping (`groups`): within each group a correlated random vector with
design `re_formula` and covariance `cov_re`, plus independent variance components (`vc_formula`), each
one variance times an identity over its columns.  So an lme4 model is expressible when

- one grouping factor g contains every term's grouping factor (each term's levels lie within single
  levels of g, as `(1|sch/tch)`'s teachers within schools): the term on g becomes `re_formula` (one
  correlated term; further scalar terms on g become variance components `0 + x`), and every term on a
  factor nested in g must be scalar, a random intercept `0 + C(h)` or one numeric slope `0 + C(h):x`;
- or, with crossed factors, every term is scalar: all become variance components of one all-data group.

Anything else (a correlated slope on a nested factor, the seed's `(sx|sch/tch)`; a correlated term on a
crossed factor) raises `vcheck.Unsupported("model not expressible in statsmodels: ...")` (a
NotImplementedError), and so does a
rank-deficient fixed-effects matrix (MixedLM has no pivoted-QR column drop; it would fail with a
LinAlgError).

The fixed part and the random terms' variables are evaluated the R way (`vcheck.core.model_frame`: `log(y)`,
`I(x^2)`, factors with R's level order, NA rows dropped) and handed to statsmodels as columns v0, v1, ...;
its column names come back in R's spelling (`v3[T.reg+A]` -> `cltypereg+A`).  An ordered factor is
passed as `C(v, Poly)`, patsy's equivalent of R's `contr.poly` (`temperature.L`, ...): with patsy's
default treatment contrasts X would be another parametrization, so beta would have other names and
the REML criterion, which depends on X's parametrization through log|X'V^-1 X|, another value.

The trap (statsmodels 0.15's source, confirmed by fitting): `MixedLM.from_formula` adds the group's
random intercept only when neither `re_formula` nor `vc_formula` is given.  With
`vc_formula={"tch": "0 + C(tch)"}` and no `re_formula`, `k_re` is 0: the school intercept is silently
dropped and its variance absorbed by the teachers' (seed data: teacher variance 1.618 instead of
1.227 + school 0.420; -2 REML logLik 491.447 instead of 490.112).  `fit` passes `re_formula="1"`;
`fit_naive` makes the mistake on purpose, so an audit can show it as a "model" finding.

Fitting: `fit(reml=REML)` with statsmodels' default optimizers (bfgs, then lbfgs, then cg); `lbfgs`
alone fails with a singular-matrix error on boundary fits (Dyestuff2) that the default sequence handles.
Configurations (`CONFIGURATIONS`, audited one by one): `default` (that sequence) and each single
`method` statsmodels offers, `fit(reml=REML, method=...)` with bfgs, lbfgs, cg, nm (Nelder-Mead) and
powell.  With `method="lbfgs"`, when a variance reaches its bound, statsmodels 0.13-0.15 sets the fixed
effects to 0 and reports llf = +inf with converged = True (statsmodels#10239).

Criterion: statsmodels' `llf` has lme4's constants (REML includes -(n-p)/2 log(2 pi) and
-1/2 log|X'V^-1 X|), so `criterion = -2 llf` is on lme4's scale: sleepstudy gives 1743.628272 (REML)
and 1751.939344 (ML), lme4's to 1e-9 relative.

V is built from statsmodels' own design and estimates: per group, its `exog_re` rows with `cov_re` and
each variance component's matrix with its variance, as V = Z G Z' + scale I (scipy.sparse CSC) in the
row order of the data.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vcheck.adapters import MissingDependencyError
from vcheck.adapters.marginal import marginal_V
from vcheck.auditing import formula_terms as _formula
from vcheck.auditing.formula_terms import Formula, Term
from vcheck.core.errors import Unsupported
from vcheck.core.factors import Factor
from vcheck.core.rexpr import Call, Node, Sym, deparse

NOT_EXPRESSIBLE = "model not expressible in statsmodels"


@dataclass
class Translation:
    """An lme4 model as a `MixedLM.from_formula` call (names are the original data columns)."""

    formula: Formula
    top: str | None  # lme4 group name used as `groups`; None: one all-data group (crossed factors)
    re_term: Term | None  # the term that becomes `re_formula` (None: no `re_formula`)
    vc_terms: dict[str, Term] = field(default_factory=dict)  # vc name -> scalar term
    naive: bool = False
    fixed_text: str = ""  # the fixed part as passed to statsmodels, in the data's names (for `call`)

    def fitted_terms(self, data: pd.DataFrame) -> list[tuple[Term, str]]:
        """The terms statsmodels estimates, in lme4's order, with lme4's VarCorr group names."""
        kept = [self.re_term, *self.vc_terms.values()]
        return [
            (t, g) for t, g in _formula.varcorr_groups(self.formula.terms, data) if any(t is k for k in kept)
        ]

    def call(self) -> str:
        """The call a user would write, for reports."""
        fixed = self.fixed_text or f"{self.formula.response} ~ {self.formula.fixed}"
        groups = "<one group: all rows>" if self.top is None else self.top
        args = [repr(fixed), f"groups={groups!r}"]
        if self.re_term is not None:
            args.append(f"re_formula={_re_formula(self.re_term)!r}")
        if self.vc_terms:
            vc = {
                t.group if t.scalar_intercept else f"{t.group}:{t.slopes[0]}": _vc_formula(t, t.group)
                for t in self.vc_terms.values()
            }
            args.append(f"vc_formula={vc!r}")
        return f"MixedLM.from_formula({', '.join(args)})"


#: statsmodels' optimizers: `MixedLM.fit(method=...)`; "default" is its own sequence bfgs, lbfgs, cg
METHODS: tuple[str, ...] = ("bfgs", "lbfgs", "cg", "nm", "powell")
#: the configurations an audit covers, name -> keyword arguments of `fit`
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    **{f"method={m}": {"method": m} for m in METHODS},
}
#: what MixedLM fits (vcheck.auditing.capabilities); no rank-deficient X: it has no column drop, and
#: some models of each family are not expressible (raised as Unsupported per case)
CAPABILITIES: tuple[str, ...] = (
    "intercept",
    "slopes",
    "correlated_slopes",
    "factor_slopes",
    "nested",
    "crossed",
    "REML",
    "ML",
)


def fit(formula: str, data: pd.DataFrame, REML: bool = True, *, method: str | None = None) -> dict[str, Any]:
    """Fit `formula` (lme4 syntax) with statsmodels MixedLM, translated correctly.

    method: None for statsmodels' default sequence (bfgs, lbfgs, cg), or one of METHODS."""
    return _fit(formula, data, REML, naive=False, method=method)


def fit_naive(
    formula: str, data: pd.DataFrame, REML: bool = True, *, method: str | None = None
) -> dict[str, Any]:
    """The same, but nested intercepts written the naive way: `vc_formula` without `re_formula="1"`."""
    return _fit(formula, data, REML, naive=True, method=method)


# --- translation ------------------------------------------------------------------------------------


def _is_scalar(term: Term, numeric: set[str]) -> bool:
    """One random effect per level: `(1|h)`, or `(0 + x|h)` with x one numeric column."""
    if term.scalar_intercept:
        return True
    if term.intercept or len(term.slopes) != 1:
        return False
    return term.slopes[0] in numeric


def translate(
    formula: Formula, data: pd.DataFrame, naive: bool = False, numeric: set[str] | None = None
) -> Translation:
    """Choose `groups`, `re_formula` and `vc_formula` for the model, or raise NotImplementedError.

    numeric: the model variables that are numeric (a slope needs one to be a variance component);
    by default the data's numeric, non-logical columns.
    """
    if numeric is None:
        numeric = {
            str(c)
            for c in data.columns
            if pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])
        }
    terms = list(formula.terms)
    codes = {t.group: _formula.group_codes(data, t.factors) for t in terms}
    nlevels = {g: c.nunique() for g, c in codes.items()}
    tops = [g for g in codes if all(_formula.nested_in(codes[t.group], codes[g]) for t in terms)]
    top = min(tops, key=lambda g: nlevels[g]) if tops else None

    on_top = [t for t in terms if t.group == top]
    re_term: Term | None = None
    if on_top:
        wide = [t for t in on_top if not _is_scalar(t, numeric)]
        if len(wide) > 1:
            raise Unsupported(
                f"{NOT_EXPRESSIBLE}: {len(wide)} correlated terms on {top}; re_formula holds only one"
            )
        re_term = wide[0] if wide else next((t for t in on_top if t.scalar_intercept), on_top[0])
    rest = [t for t in terms if t is not re_term]
    for t in rest:
        if not _is_scalar(t, numeric):
            where = "a crossed factor" if top is None else f"a factor nested in {top}"
            raise Unsupported(
                f"{NOT_EXPRESSIBLE}: ({t.lhs} | {t.group}) has correlated random effects on {where}; "
                "a variance component (vc_formula) has one variance"
            )
    if naive and re_term is not None and re_term.scalar_intercept and rest:
        re_term = None  # the trap: vc_formula without re_formula="1" has no group intercept
    vc_terms = {f"t{k:02d}": t for k, t in enumerate(rest)}
    return Translation(formula=formula, top=top, re_term=re_term, vc_terms=vc_terms, naive=naive)


def _re_formula(term: Term) -> str:
    return "1" if term.scalar_intercept else term.lhs


def _vc_formula(term: Term, group_column: str, forward: Mapping[str, str] | None = None) -> str:
    """`0 + C(h)` for a random intercept on h, `0 + C(h):x` for a numeric slope x on h."""
    if term.scalar_intercept:
        return f"0 + C({group_column})"
    slope = term.slopes[0] if forward is None else forward[term.slopes[0]]
    return f"0 + C({group_column}):{slope}"


# --- names ------------------------------------------------------------------------------------------

_LEVEL = re.compile(r"^(?P<var>.+?)\[(?:T\.)?(?P<level>.*)\]$")
_POLY = re.compile(r"^C\((?P<var>\w+), Poly\)(?P<suffix>.*)$")
_POLY_SUFFIX = {".Linear": ".L", ".Quadratic": ".Q", ".Cubic": ".C"}


def r_name(name: str, back: Mapping[str, str]) -> str:
    """A patsy/formulaic column name in R's spelling: `v3[T.reg+A]:v1` -> `cltypereg+A:x`."""
    if name == "Intercept":
        return "(Intercept)"
    parts = []
    for piece in name.split(":"):
        poly = _POLY.match(piece)
        if poly:  # `C(v5, Poly).Linear` -> `temperature.L`, `C(v5, Poly)^4` -> `temperature^4`
            suffix = poly.group("suffix")
            parts.append(back.get(poly.group("var"), poly.group("var")) + _POLY_SUFFIX.get(suffix, suffix))
            continue
        match = _LEVEL.match(piece)
        var, level = (match.group("var"), match.group("level")) if match else (piece, "")
        var = back.get(var, var)
        parts.append(f"{var}{level}")
    return ":".join(parts)


# --- fitting ----------------------------------------------------------------------------------------


def _statsmodels_mixedlm() -> Any:
    try:
        from statsmodels.regression.mixed_linear_model import MixedLM
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "the statsmodels adapter needs statsmodels: pip install 'vcheck[audit]'"
        ) from exc
    return MixedLM


def _fit(
    formula: str, data: pd.DataFrame, REML: bool, naive: bool, method: str | None = None
) -> dict[str, Any]:
    if method is not None and method not in METHODS:
        raise Unsupported(f"statsmodels MixedLM.fit: method {method!r} is not one of {', '.join(METHODS)}")
    parsed = _formula.parse(formula)
    used, frame = _formula.model_rows(data, parsed)
    # statsmodels' formula engines know neither R names such as `tch.cl` nor R functions: every model
    # variable (`Days`, `log(Reaction)`, `I(Days^2)`) is evaluated the R way and passed as a column v<i>
    forward = {key: f"v{i}" for i, key in enumerate(frame.values)}
    back = {v: k for k, v in forward.items()}
    safe = pd.DataFrame(
        {
            forward[key]: value.to_categorical() if isinstance(value, Factor) else value
            for key, value in frame.values.items()
        }
    )
    numeric = {key for key, value in frame.values.items() if not isinstance(value, Factor)}
    ordered = frozenset(
        key for key, value in frame.values.items() if isinstance(value, Factor) and value.ordered
    )
    plan = translate(parsed, used, naive=naive, numeric=numeric)

    safe["grp_"] = "all" if plan.top is None else _formula.group_codes(used, _top_factors(plan)).to_numpy()
    kwargs: dict[str, Any] = {"groups": "grp_"}
    if plan.re_term is not None:
        kwargs["re_formula"] = (
            "1" if plan.re_term.scalar_intercept else _patsy(plan.re_term.lhs_node, forward, ordered)
        )
    vc_formula = {}
    for key, term in plan.vc_terms.items():
        safe[f"g{key}"] = _formula.group_codes(used, term.factors).to_numpy()
        vc_formula[key] = _vc_formula(term, f"g{key}", forward)
    if vc_formula:
        kwargs["vc_formula"] = vc_formula
    fixed = f"{_patsy(parsed.response_node, forward)} ~ {_patsy(parsed.fixed_node, forward, ordered)}"
    same = {key: key for key in forward}
    plan.fixed_text = f"{_patsy(parsed.response_node, same)} ~ {_patsy(parsed.fixed_node, same, ordered)}"

    MixedLM = _statsmodels_mixedlm()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MixedLM.from_formula(fixed, data=safe, **kwargs)
        _check_rank(model)
        # method None: statsmodels' default optimizers, bfgs, then lbfgs, then cg
        result = model.fit(reml=REML) if method is None else model.fit(reml=REML, method=method)

    beta = {r_name(k, back): float(v) for k, v in result.fe_params.items()}
    re_names = [_re_column_name(n, back) for n in model.data.exog_re_names] if model.k_re else []
    varcorr = _varcorr(plan, result, re_names, used)
    V = _marginal_V(model, result)
    return {
        "beta": beta,
        "sigma": float(np.sqrt(result.scale)),
        "varcorr": varcorr,
        "V": V,
        "criterion": float(-2.0 * result.llf),
        "source": "statsmodels",
        "REML": REML,
        "formula": formula,
        "translation": plan.call(),
        "configuration": "default" if method is None else f"method={method}",
        "fit_call": f"fit(reml={REML})" if method is None else f"fit(reml={REML}, method={method!r})",
        "versions": {"statsmodels": _statsmodels_version()},
        "converged": bool(result.converged),
        "warnings": list(dict.fromkeys(str(w.message) for w in caught)),
        "n": len(used),
    }


def _statsmodels_version() -> str:
    import statsmodels

    return str(statsmodels.__version__)


def _check_rank(model: Any) -> None:
    """MixedLM does not drop aliased fixed-effects columns as lme4 does (pivoted QR): it cannot fit then."""
    X = np.asarray(model.exog, dtype=float)
    rank = int(np.linalg.matrix_rank(X))
    if rank < X.shape[1]:
        raise Unsupported(
            f"{NOT_EXPRESSIBLE}: the fixed-effects matrix has rank {rank} < {X.shape[1]} columns; "
            "MixedLM does not drop aliased columns as lme4 does"
        )


def _patsy(node: Node, forward: Mapping[str, str], ordered: frozenset[str] = frozenset()) -> str:
    """R formula text with each model variable replaced by its column v<i>; R's `^` is patsy's `**`.

    An ordered factor becomes `C(v<i>, Poly)`: R codes it with `contr.poly`, which patsy's `Poly`
    reproduces (same orthonormal columns), where patsy's default would be treatment contrasts.
    """

    def walk(n: Node) -> Node:
        key = deparse(n)
        if key in forward:
            return Call("C", (Sym(forward[key]), Sym("Poly"))) if key in ordered else Sym(forward[key])
        if isinstance(n, Call):
            return Call(n.fn, tuple(walk(a) for a in n.args), n.argnames)
        return n

    return deparse(walk(node), backtick=False).replace("^", "**")


def _top_factors(plan: Translation) -> tuple[str, ...]:
    for t in plan.formula.terms:
        if t.group == plan.top:
            return t.factors
    raise AssertionError("top group without a term")  # translate() picks top among the terms' groups


def _re_column_name(name: str, back: Mapping[str, str]) -> str:
    # from_formula renames the intercept of re_formula to the groups' name
    return "(Intercept)" if name == "grp_" else r_name(name, back)


def _varcorr(
    plan: Translation, result: Any, re_names: list[str], data: pd.DataFrame
) -> list[tuple[str, str, str | None, float]]:
    """lme4's `as.data.frame(VarCorr(fit))` rows (no residual), in lme4's term order."""
    vcomp = dict(zip(result.model.exog_vc.names, np.atleast_1d(result.vcomp), strict=True))
    rows: list[tuple[str, str, str | None, float]] = []
    cov_re = np.asarray(result.cov_re)
    for term, group in plan.fitted_terms(data):
        if term is plan.re_term:
            k = len(re_names)
            rows += [(group, re_names[i], None, float(cov_re[i, i])) for i in range(k)]
            rows += [
                (group, re_names[i], re_names[j], float(cov_re[j, i]))
                for i in range(k)
                for j in range(i + 1, k)
            ]
        else:
            key = next(k for k, t in plan.vc_terms.items() if t is term)
            var1 = "(Intercept)" if term.scalar_intercept else term.slopes[0]
            rows.append((group, var1, None, float(vcomp[key])))
    return rows


def _marginal_V(model: Any, result: Any) -> Any:
    """V = Z G Z' + scale I from statsmodels' own design (exog_re, exog_vc) and estimates, data order
    (sparse, or an operator when its non-zeros would be too many: `vcheck.adapters.marginal`)."""
    n = int(model.nobs)
    cov_re = np.asarray(result.cov_re)
    vcomp = np.atleast_1d(result.vcomp)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    g_blocks: list[sp.csr_matrix] = []
    q = 0
    for gi, label in enumerate(model.group_labels):
        idx = np.asarray(model.row_indices[label])
        pieces: list[tuple[sp.coo_matrix, sp.csr_matrix]] = []
        if model.k_re:
            pieces.append((sp.coo_matrix(np.asarray(model.exog_re_li[gi])), sp.csr_matrix(cov_re)))
        for j in range(len(model.exog_vc.names)):
            mat = sp.coo_matrix(model.exog_vc.mats[j][gi])  # dense or sparse (use_sparse)
            pieces.append((mat, sp.csr_matrix(sp.identity(mat.shape[1]) * float(vcomp[j]))))
        for coo, cov in pieces:
            rows.append(idx[coo.row])
            cols.append(coo.col + q)
            vals.append(coo.data)
            g_blocks.append(cov)
            q += coo.shape[1]
    Z = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, q))
    G = sp.block_diag(g_blocks, format="csc")
    return marginal_V(Z, G, float(result.scale))


# --- statsmodels code a maintainer can run (reproducers) ---------------------------------------------
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def native_code(formula: str, data: pd.DataFrame, REML: bool, method: str | None = None) -> str | None:
    """Plain statsmodels code fitting `formula` as this adapter does, for a DataFrame `data` whose
    factors are categoricals in R's level order; None when a model variable is not a plain column
    (`log(y)`, `I(x^2)`, an ordered factor): then only the adapter's own call reproduces it.

    The code defines `result` (MixedLMResults) and prints statsmodels' estimates."""
    parsed = _formula.parse(formula)
    used, frame = _formula.model_rows(data, parsed)
    if len(used) != len(data) or any(
        not _PLAIN.match(key) or (isinstance(v, Factor) and v.ordered) for key, v in frame.values.items()
    ):
        return None
    numeric = {key for key, value in frame.values.items() if not isinstance(value, Factor)}
    plan = translate(parsed, used, numeric=numeric)
    lines = []
    if plan.top is None:
        lines.append('data["all_rows"] = 1  # crossed factors: one group holding every row')
        groups = "all_rows"
    else:
        groups = _group_column(lines, _top_factors(plan))
    kwargs = [f"groups={groups!r}"]
    if plan.re_term is not None:
        kwargs.append(f"re_formula={_re_formula(plan.re_term)!r}")
    vc = {}
    for term in plan.vc_terms.values():
        column = _group_column(lines, term.factors)
        key = column if term.scalar_intercept else f"{column}:{term.slopes[0]}"
        vc[key] = _vc_formula(term, column)
    if vc:
        kwargs.append(f"vc_formula={vc!r}")
    fixed = f"{parsed.response} ~ {parsed.fixed}"
    fit_args = f"reml={REML}" + ("" if method is None else f", method={method!r}")
    lines += [
        f"model = MixedLM.from_formula({fixed!r}, data=data, {', '.join(kwargs)})",
        f"result = model.fit({fit_args})",
    ]
    return "\n".join(lines)


def _group_column(lines: list[str], factors: tuple[str, ...]) -> str:
    """A grouping factor as one column (the interaction of several columns as 'a:b' labels)."""
    if len(factors) == 1:
        return factors[0]
    name = "_".join(factors)
    joined = ' + ":" + '.join(f'data["{f}"].astype(str)' for f in factors)
    lines.append(f'data["{name}"] = {joined}')
    return name
