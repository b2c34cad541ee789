"""glmmtmb [optimizer=optim] on the model in this folder, beside lme4's fit of it.

optimization finding in theta: theta differs from lme4's optimum (rel diff 8.0e-02); lme4's optimum is lower: the REML at its theta is higher by 0.0241 (lme4's REML at its theta 225.9844689, at lme4's optimum 225.9603932)

Plain Python; run in this folder: python reproduce.py
"""

import math

import pandas as pd

FORMULA = 'y ~ x + (x | a) + (1 | b)'
REML = True
CONFIGURATION = {'optimizer': 'optim'}  # keyword arguments of the audited call (optimizer=optim)

# data.csv with the column types and factor levels (in R's order) that lme4 used
COLUMNS = [{'name': 'y', 'type': 'numeric'}, {'name': 'x', 'type': 'numeric'}, {'name': 'a', 'type': 'integer'}, {'name': 'b', 'type': 'integer'}]
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
LME4 = {'beta': {'(Intercept)': 1.7020557551777966, 'x': -1.7200970824365736}, 'sigma': 0.6577379244625662, 'varcorr': [['a', '(Intercept)', None, 0.17083334048443582], ['a', 'x', None, 2.9627010475741815], ['a', '(Intercept)', 'x', -0.711426814778199], ['b', '(Intercept)', None, 1.2109235371728089]], 'criterion': 225.96039323045107}

# --- the audited implementation, through the call the audit made --------------------------------------
from vcheck.adapters.glmmtmb import fit

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


print(f"{'quantity':<34} {'glmmtmb':>18} {'lme4':>18}  rel. diff")
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
