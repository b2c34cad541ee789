"""statsmodels [default] on the model in this folder, beside lme4's fit of it.

optimization finding in theta: theta differs from lme4's optimum (rel diff 4.5e-02); lme4's optimum is lower: the REML at its theta is higher by 0.00212 (lme4's REML at its theta 3.958635547, at lme4's optimum 3.95651427)

Plain Python; run in this folder: python reproduce.py
"""

import math

import pandas as pd

FORMULA = 'y ~ 1 + (1 | g)'
REML = True
CONFIGURATION = {}  # keyword arguments of the audited call (default)

# data.csv with the column types and factor levels (in R's order) that lme4 used
COLUMNS = [{'name': 'y', 'type': 'numeric'}, {'name': 'g', 'type': 'factor', 'levels': ['w4x', 'u']}]
raw = pd.read_csv("data.csv", dtype=str, keep_default_na=False, na_values=["NA"])
data = pd.DataFrame()
for col in COLUMNS:
    values = raw[col["name"]]
    if col["type"] == "numeric":
        data[col["name"]] = values.astype(float)
    elif col["type"] == "integer":
        data[col["name"]] = values.astype("int64")
    elif col["type"] == "logical":
        data[col["name"]] = values == "TRUE"
    else:
        data[col["name"]] = pd.Categorical(values, categories=col["levels"], ordered=col["type"] == "ordered")

# lme4 1.1.31's fit of the same model (lme4.R prints it)
LME4 = {'beta': {'(Intercept)': -0.2858882179357744}, 'sigma': 0.3713654917364588, 'varcorr': [['g', '(Intercept)', None, 0.0]], 'criterion': 3.9565142700024216}

# --- statsmodels itself, as the audit called it ------------------------------------------------------
from statsmodels.regression.mixed_linear_model import MixedLM


def native_fit(data):
    model = MixedLM.from_formula('y ~ 1', data=data, groups='g', re_formula='1')
    result = model.fit(reml=True)
    return result


result = native_fit(data.copy())
print("statsmodels's own output:")
print(result.summary())
print("fe_params:", dict(result.fe_params))
print("llf:", result.llf, " converged:", result.converged)
print()

# --- the audited implementation, through the call the audit made --------------------------------------
from vcheck.adapters.statsmodels import fit

out = fit(FORMULA, data.copy(), REML, **CONFIGURATION)


def quantities(out):
    """beta, sigma, varcorr rows and criterion from a mapping or a fit record with those attributes."""
    get = out.get if hasattr(out, "get") else lambda key, default=None: getattr(out, key, default)
    varcorr = get("varcorr")
    if hasattr(varcorr, "itertuples"):  # as.data.frame(VarCorr(fit)) as a DataFrame
        varcorr = [
            (r.grp, r.var1, None if not isinstance(r.var2, str) else r.var2, r.vcov)
            for r in varcorr.itertuples()
            if r.grp != "Residual"
        ]
    beta = get("beta")
    return {
        "beta": {str(k): float(v) for k, v in dict(beta).items()},
        "sigma": float(get("sigma")),
        "varcorr": [tuple(r) for r in varcorr or []],
        "criterion": get("criterion"),
        "converged": get("converged"),
        "warnings": get("warnings"),
    }


out = quantities(out)


def rel(a, b):
    if a is None or b is None:
        return "—"
    if not (math.isfinite(a) and math.isfinite(b)):
        return "inf"
    if b == 0:
        return f"abs {abs(a):.3g}"
    return f"{abs(a - b) / abs(b):.3g}"


print(f"{'quantity':<34} {'statsmodels':>18} {'lme4':>18}  rel. diff")
for name, value in LME4["beta"].items():
    mine = out["beta"].get(name)
    print(f"{'beta ' + name:<34} {mine if mine is not None else float('nan'):>18.10g} {value:>18.10g}  {rel(mine, value)}")
print(f"{'sigma':<34} {out['sigma']:>18.10g} {LME4['sigma']:>18.10g}  {rel(out['sigma'], LME4['sigma'])}")
theirs = {(g, v1, v2): c for g, v1, v2, c in out["varcorr"]}
for g, v1, v2, value in LME4["varcorr"]:
    mine = theirs.get((g, v1, v2))
    label = f"varcorr {g} {v1}" + (f" {v2}" if v2 else "")
    print(f"{label:<34} {mine if mine is not None else float('nan'):>18.10g} {value:>18.10g}  {rel(mine, value)}")
crit = out.get("criterion")
print(f"{'criterion (-2 logLik)':<34} {crit if crit is not None else float('nan'):>18.10g} {LME4['criterion']:>18.10g}  {rel(crit, LME4['criterion'])}")
for key in ("converged", "warnings"):
    if out[key] is not None:
        print(f"{key}: {out[key]}")
