"""A fit record printed the way lme4's `summary(lmer(...))` reads, and as plain JSON.

The layout follows lme4 1.1-31's `print.summary.merMod`: the method title, the formula, the REML criterion
(or the AIC table for ML), scaled residuals, the random-effects table (Groups, Name, Variance, Std.Dev.,
Corr), the numbers of observations and groups, the fixed effects (Estimate, Std. Error, t value) and their
correlations.  Numbers are formatted with R's rules for `format(x, digits = 4)`: one common number of
decimals per column, enough for every entry to show `digits` significant digits, scientific notation when
that is narrower.  Works on any `LmerFit` (vcheck's, lme4's, an adapter's); a section whose ingredients
the record lacks is left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from vcheck.core.record import LmerFit

__all__ = ["abbreviate", "fit_to_dict", "format_r", "residuals", "summary_text"]

#: lme4's default `digits` for printing a summary: max(3, getOption("digits") - 3)
SUMMARY_DIGITS = 4
#: R's default output width (getOption("width")), where cat(fill = TRUE) breaks lines
R_WIDTH = 80
#: lme4's `lme4.summary.cor.max`: the fixed-effect correlations are shown for at most this many columns
COR_MAX = 12


# --- R's number formatting --------------------------------------------------------------------------------


def _sig_parts(x: float, digits: int) -> tuple[int, int]:
    """(exponent, significant digits needed) of |x| at `digits` significant digits, as R's scientific()."""
    if x == 0.0:
        return 0, 1
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    return int(exponent), len(mantissa.replace(".", "").rstrip("0")) or 1


def format_r(values: Iterable[float], digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's `format(x, digits, nsmall)` of a numeric vector: common decimals and width for all entries.

    Fixed notation shows every entry with at least `digits` significant digits (trailing zeros dropped
    first); scientific notation is used when it is narrower, as R does with `scipen = 0`.
    """
    xs = [float(v) for v in values]
    finite = [x for x in xs if math.isfinite(x)]
    if not finite:
        return [_nonfinite(x) for x in xs]
    parts = [_sig_parts(x, digits) for x in finite]
    neg = any(x < 0 for x in finite)
    left = max(max(kp, 0) + 1 for kp, _ in parts) + (1 if neg else 0)
    rgt = max(max(nsig - kp - 1, 0) for kp, nsig in parts)
    width_fixed = left + rgt + (1 if rgt else 0)
    mxns = max(nsig for _, nsig in parts)
    big_exp = any(abs(kp) >= 100 for kp, _ in parts)
    width_sci = (1 if neg else 0) + (mxns + 1 if mxns > 1 else mxns) + (5 if big_exp else 4)
    if width_fixed <= width_sci:
        rgt = max(rgt, nsmall)
        strings = [f"{x:.{rgt}f}" if math.isfinite(x) else _nonfinite(x) for x in xs]
    else:
        strings = [f"{x:.{mxns - 1}e}" if math.isfinite(x) else _nonfinite(x) for x in xs]
    width = max(len(s) for s in strings)
    return [s.rjust(width) for s in strings]


def _nonfinite(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    return "Inf" if x > 0 else "-Inf"


def _round_r(x: float, ndigits: int) -> float:
    """R's round(): halves away from zero at the printed precision (close enough for display)."""
    if not math.isfinite(x):
        return x
    return float(np.round(x, ndigits))


def abbreviate(name: str, minlength: int) -> str:
    """R's `abbreviate(name, minlength)`: drop lower-case vowels from the right, then lower-case letters,
    never a word's first character, then truncate."""
    chars = list(name.strip())
    if len(chars) <= minlength:
        return "".join(chars)
    chars = [c for i, c in enumerate(chars) if c != " " or i == 0]

    def word_start(i: int) -> bool:
        return i == 0 or chars[i - 1] == " "

    for droppable in ("aeiou", "abcdefghijklmnopqrstuvwxyz"):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if chars[i] in droppable and not word_start(i):
                del chars[i]
            i -= 1
    return "".join(chars[:minlength]) if len(chars) > minlength else "".join(chars)


def _abbreviate_unique(names: Sequence[str], minlength: int) -> list[str]:
    """Abbreviate every name, lengthening all of them until the abbreviations are distinct."""
    length = minlength
    while True:
        out = [abbreviate(n, length) for n in names]
        if len(set(out)) == len(out) or length > max(len(n) for n in names):
            return out
        length += 1


def _named_vector_lines(names: Sequence[str], strings: Sequence[str]) -> list[str]:
    """R's print of a named vector: one common width, right-justified, each entry followed by a space."""
    width = max(max(len(n) for n in names), max(len(s) for s in strings))
    return ["".join(n.rjust(width) + " " for n in names), "".join(s.rjust(width) + " " for s in strings)]


def _matrix_lines(
    header: Sequence[str], rows: Sequence[Sequence[str]], rownames: Sequence[str], right: bool
) -> list[str]:
    """R's print of a character matrix (quote = FALSE): row names left-justified, columns one space apart."""
    rn_width = max([len(r) for r in rownames] + [0])
    widths = [max([len(header[j])] + [len(r[j]) for r in rows]) for j in range(len(header))]

    def line(first: str, cells: Sequence[str]) -> str:
        just = [c.rjust(w) if right else c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        return " ".join([first.ljust(rn_width), *just])

    return [line("", header)] + [line(rn, r) for rn, r in zip(rownames, rows, strict=True)]


# --- the pieces of a fit ----------------------------------------------------------------------------------


def residuals(fit: LmerFit) -> np.ndarray | None:
    """Response residuals y - X beta - Z b, with b = Lambda u the conditional modes at the fit's theta.

    u solves the penalized least-squares system (Lambda' Z' Z Lambda + I) u = Lambda' Z' (y - X beta),
    which is what lme4's `residuals()` uses: the record's own u (extra "u", as vcheck's fit keeps it from
    the PLS solution of `vcheck.core.blocks`), else solved here.  None when the record lacks X, y, Zt,
    Lambdat or beta.
    """
    stored = fit.extra.get("residuals")
    if stored is not None:
        return np.asarray(stored, dtype=float)
    if fit.X is None or fit.y is None or fit.Zt is None or fit.Lambdat is None or fit.beta is None:
        return None
    r = np.asarray(fit.y, dtype=float) - np.asarray(fit.X, dtype=float) @ np.asarray(fit.beta, dtype=float)
    Zt = sp.csc_matrix(fit.Zt)
    Lambdat = sp.csc_matrix(fit.Lambdat)
    LtZt = (Lambdat @ Zt).tocsc()  # Lambda' Z'
    u = fit.extra.get("u")  # vcheck's fit keeps the PLS solution (vcheck.core.fit)
    if u is None:  # another implementation's record: solve the PLS system for u at its beta
        A = (LtZt @ LtZt.T + sp.identity(LtZt.shape[0], format="csc")).tocsc()
        u = spla.spsolve(A, LtZt @ r)
    return np.asarray(r - LtZt.T @ np.atleast_1d(np.asarray(u, dtype=float)), dtype=float)


def _varcorr_groups(varcorr: pd.DataFrame) -> list[tuple[str, list[str], list[float], np.ndarray]]:
    """as.data.frame(VarCorr()) rows -> per group: (grp, names, std devs, correlation matrix)."""
    groups: list[tuple[str, list[str], list[float], np.ndarray]] = []
    for grp, rows in varcorr.groupby("grp", sort=False):
        is_var = rows["var2"].isna() | rows["var2"].map(lambda v: v is None)
        names = [("" if pd.isna(v) else str(v)) for v in rows.loc[is_var, "var1"]]
        sds = [float(v) for v in rows.loc[is_var, "sdcor"]]
        corr = np.eye(len(names))
        index = {n: i for i, n in enumerate(names)}
        for _, row in rows.loc[~is_var].iterrows():
            i, j = index.get(str(row["var1"])), index.get(str(row["var2"]))
            if i is not None and j is not None:
                corr[i, j] = corr[j, i] = float(row["sdcor"])
        groups.append((str(grp), names, sds, corr))
    return groups


def _random_effects_lines(varcorr: pd.DataFrame, digits: int) -> list[str]:
    """lme4's formatVC table: Groups, Name, Variance, Std.Dev. and the lower-triangle correlations."""
    groups = _varcorr_groups(varcorr)
    sds = [sd for _, _, s, _ in groups for sd in s]
    variances = format_r([sd**2 for sd in sds], digits)
    stddevs = format_r(sds, digits)
    maxlen = max(len(names) for _, names, _, _ in groups)
    ncorr = maxlen - 1
    rows: list[list[str]] = []
    k = 0
    corr_digits = max(2, digits - 2)
    for grp, names, _, corr in groups:
        nc = len(names)
        cc = np.full((nc, max(ncorr, 0)), "", dtype=object)
        if nc > 1:
            cstr = format_r([_round_r(v, corr_digits) for v in corr.ravel(order="F")], 7, nsmall=corr_digits)
            cmat = np.array(cstr, dtype=object).reshape((nc, nc), order="F")
            for i in range(nc):
                for j in range(min(i, ncorr)):
                    cc[i, j] = cmat[i, j]
        for i, name in enumerate(names):
            label = "Residual" if grp == "Residual" else grp
            rows.append([label if i == 0 else "", name, variances[k], stddevs[k], *map(str, cc[i])])
            k += 1
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (ncorr - 1) if ncorr > 0 else [])
    return ["Random effects:", *_matrix_lines(header, rows, [""] * len(rows), right=False)]


def _ngroups(fit: LmerFit) -> dict[str, int]:
    """Number of levels of each grouping factor, in flist order (lme4's ngrps())."""
    if fit.flist:
        return {name: len(f.categories) for name, f in fit.flist.items()}
    if fit.varcorr is not None:
        out: dict[str, int] = {}
        for grp in fit.varcorr["grp"]:
            if grp != "Residual" and fit.ranef and grp in fit.ranef:
                out[str(grp)] = len(fit.ranef[str(grp)])
        return out
    return {}


def _fixed_effects_lines(fit: LmerFit, digits: int) -> list[str]:
    """printCoefmat(): Estimate and Std. Error share decimals; t value rounded to digits - 1 decimals."""
    assert fit.beta is not None
    names = [str(n) for n in fit.beta.index]
    est = np.asarray(fit.beta, dtype=float)
    header = ["Estimate"]
    cols: list[list[str]] = []
    if fit.vcov is not None:
        se = np.sqrt(np.diag(np.asarray(fit.vcov, dtype=float)))
        acs = np.abs(np.concatenate([est, se]))
        acs = acs[np.isfinite(acs) & (acs != 0)]
        digmin = 1 + np.floor(np.log10([acs.min(), acs.max()])) if acs.size else np.array([0.0, 0.0])
        ndig = int(max(1, *(digits - digmin)))
        both = format_r([_round_r(v, ndig) for v in np.concatenate([est, se])], digits)
        cols = [both[: len(est)], both[len(est) :]]
        tval = est / se
        cols.append(format_r([_round_r(v, max(1, min(5, digits - 1))) for v in tval], digits))
        header += ["Std. Error", "t value"]
    else:
        cols = [format_r(est, digits)]
    rows = [list(r) for r in zip(*cols, strict=True)]
    return ["Fixed effects:", *_matrix_lines(header, rows, names, right=True)]


def _correlation_lines(fit: LmerFit) -> list[str]:
    """Correlation of Fixed Effects: lower triangle of cov2cor(vcov), 3 decimals, abbreviated names."""
    if fit.vcov is None or fit.beta is None:
        return []
    p = len(fit.beta)
    if p < 2 or p > COR_MAX:
        return []
    V = np.asarray(fit.vcov, dtype=float)
    sd = np.sqrt(np.diag(V))
    C = V / np.outer(sd, sd)
    cells = np.array(format_r([_round_r(v, 3) for v in C.ravel(order="F")], 7, nsmall=3), dtype=object)
    cmat = cells.reshape((p, p), order="F")
    names = [str(n) for n in fit.beta.index]
    rns = _abbreviate_unique(names, 11)
    cns = _abbreviate_unique(names, 6)
    rows = [[cmat[i, j] if j < i else "" for j in range(p - 1)] for i in range(1, p)]
    return ["Correlation of Fixed Effects:", *_matrix_lines(cns[:-1], rows, rns[1:], right=False)]


def _criterion_lines(fit: LmerFit) -> list[str]:
    """REML: the criterion rounded to 1 decimal.  ML: lme4's AIC / BIC / logLik / deviance / df.resid row."""
    if fit.criterion is None:
        return []
    if fit.REML:
        return [f"REML criterion at convergence: {format_r([_round_r(fit.criterion, 1)])[0].strip()}"]
    if fit.n is None or fit.beta is None or fit.theta is None:
        return [f"deviance: {format_r([_round_r(fit.criterion, 1)])[0].strip()}"]
    npar = len(fit.beta) + len(fit.theta) + 1
    loglik = fit.logLik if fit.logLik is not None else -fit.criterion / 2
    values = [-2 * loglik + 2 * npar, -2 * loglik + math.log(fit.n) * npar, loglik, fit.criterion]
    strings = format_r([_round_r(v, 1) for v in values])
    strings = [s.strip() for s in strings] + [str(fit.n - npar)]
    return _named_vector_lines(["AIC", "BIC", "logLik", "deviance", "df.resid"], strings)


def summary_text(
    fit: LmerFit,
    data_name: str | None = None,
    digits: int = SUMMARY_DIGITS,
    show_residuals: bool = True,
    correlation: bool = True,
) -> str:
    """The fit as lme4's `print(summary(fit))` shows it (see the module docstring for the sections)."""
    method = "REML" if fit.REML else "maximum likelihood "
    lines = [f"Linear mixed model fit by {method} ['lmerMod']"]
    lines.append(f"Formula: {fit.formula}")
    if data_name:
        lines.append(f"   Data: {data_name}")
    lines.append("")
    crit = _criterion_lines(fit)
    if crit:
        lines += [*crit, ""]
    if show_residuals and fit.sigma:
        res = residuals(fit)
        if res is not None and res.size:
            scaled = res / fit.sigma
            q = np.quantile(scaled, [0.0, 0.25, 0.5, 0.75, 1.0])
            # R 4.2's zapsmall(q, digits + 1): round to digits + 1 - log10(max|q|) places, R rounding
            # the (non-integer) number of places to the nearest integer
            mx = float(np.max(np.abs(q)))
            places = digits + 1 - (math.log10(mx) if mx > 0 else 0.0)
            q = np.round(q, max(0, math.floor(places + 0.5)))
            lines += [
                "Scaled residuals: ",
                *_named_vector_lines(["Min", "1Q", "Median", "3Q", "Max"], format_r(q, digits)),
                "",
            ]
    if fit.varcorr is not None and len(fit.varcorr):
        lines += _random_effects_lines(fit.varcorr, digits)
    ngrps = _ngroups(fit)
    if fit.n is not None:
        # R's cat(..., fill = TRUE): the groups go on a line of their own when both exceed 80 characters
        head = f"Number of obs: {fit.n}, groups: "
        groups = "; ".join(f"{name}, {k}" for name, k in ngrps.items())
        if len(head) + 1 + len(groups) > R_WIDTH:
            lines += [head + " ", groups]
        else:
            lines.append(f"{head} {groups}")
    if fit.beta is not None and len(fit.beta):
        lines += ["", *_fixed_effects_lines(fit, digits)]
        if correlation:
            corr = _correlation_lines(fit)
            if corr:
                lines += ["", *corr]
    lines += _fit_messages(fit)
    return "\n".join(lines) + "\n"


def _fit_messages(fit: LmerFit) -> list[str]:
    """lme4's closing lines: the rank-drop message, then the optimizer's code with lme4's convergence and
    boundary messages (when there are any)."""
    lines: list[str] = []
    dropped = fit.extra.get("dropped_columns") or []
    if dropped:
        k = len(dropped)
        s = "s" if k > 1 else ""
        lines += [
            "fit warnings:",
            f"fixed-effect model matrix is rank deficient so dropping {k} column{s} / coefficient{s}",
        ]
    info = fit.optinfo or {}
    code = info.get("conv") or 0
    messages = [str(m) for m in info.get("lme4_messages") or []]
    warnings = [str(w) for w in info.get("warnings") or []]
    if "optimizer" in info and (code or messages or warnings):
        status = "(OK)" if code == 0 else f"({info.get('message', '')})"
        lines += [f"optimizer ({info['optimizer']}) convergence code: {code} {status}", *messages, *warnings]
    elif fit.singular:
        lines.append("boundary (singular) fit: see help('isSingular')")
    return lines


# --- JSON -------------------------------------------------------------------------------------------------


def _json_float(x: Any) -> float | None:
    """A float for JSON: NaN and infinities become null."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def fit_to_dict(fit: LmerFit) -> dict[str, Any]:
    """The fit's summary-level quantities as plain JSON-ready data (floats at full precision).

    Keys: source, formula, REML, n, criterion, logLik, sigma, theta, beta and std_errors ({name: value}),
    vcov, varcorr (records as `as.data.frame(VarCorr())`), ngroups, singular, optinfo, versions.
    """
    out: dict[str, Any] = {
        "source": fit.source,
        "formula": fit.formula,
        "REML": bool(fit.REML),
        "n": None if fit.n is None else int(fit.n),
        "criterion": _json_float(fit.criterion),
        "criterion_name": "REML criterion" if fit.REML else "deviance",
        "logLik": _json_float(fit.logLik),
        "sigma": _json_float(fit.sigma),
        "theta": None if fit.theta is None else [_json_float(t) for t in np.asarray(fit.theta)],
    }
    if fit.beta is not None:
        out["beta"] = {str(k): _json_float(v) for k, v in fit.beta.items()}
    if fit.vcov is not None and fit.beta is not None:
        V = np.asarray(fit.vcov, dtype=float)
        out["std_errors"] = {str(k): _json_float(math.sqrt(V[i, i])) for i, k in enumerate(fit.beta.index)}
        out["vcov"] = [[_json_float(v) for v in row] for row in V]
    if fit.varcorr is not None:
        out["varcorr"] = [
            {
                "grp": str(r["grp"]),
                "var1": None if _missing(r["var1"]) else str(r["var1"]),
                "var2": None if _missing(r["var2"]) else str(r["var2"]),
                "vcov": _json_float(r["vcov"]),
                "sdcor": _json_float(r["sdcor"]),
            }
            for _, r in fit.varcorr.iterrows()
        ]
    out["ngroups"] = _ngroups(fit)
    out["singular"] = None if fit.singular is None else bool(fit.singular)
    out["optinfo"] = _jsonable(fit.optinfo)
    out["versions"] = {str(k): str(v) for k, v in fit.versions.items()}
    if fit.n_na_dropped:
        out["n_na_dropped"] = int(fit.n_na_dropped)
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _jsonable(value: Any) -> Any:
    """Best-effort conversion of optimizer facts (numpy scalars, arrays, tuples) to JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _json_float(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)
