"""vcheck's optimizers against lme4 1.1-31's (live R through rpy2): lmerControl(optimizer=, optCtrl=, ...)
as lme4's own tests call it.

For each case R fits `lmer(formula, data, control = <R's control>, start =)` on its data and vcheck
fits the same rows (read back from R, so both hold identical doubles) with the same control as a mapping.
The same optimizer on the same deviance follows lme4's path: feval equal, theta to PATH (relative), the
criterion to CRITERION_ABS, lme4's convergence code and message.  Nelder-Mead only compares criterion
values, so its evaluated thetas are lme4's bit for bit (test_nelder_mead_path_is_lme4s).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcheck.auditing.cases import Case as AuditCase
from vcheck.auditing.strategies import cases
from vcheck.core import tolerances
from vcheck.core.design import lFormula, start_theta
from vcheck.core.deviance import Devfun
from vcheck.core.fit import fit_design
from vcheck.core.optimize import optimize_lmer

pytestmark = pytest.mark.r

#: the agreement of theta along one optimizer path (BOBYQA's quadratic models carry the criterion's
#: last-bit differences into the points, measured up to 1.2e-8; Nelder-Mead's points are exact)
PATH = tolerances.AT_OPTIMUM

R_CODE = r"""
vcheck_opt_data <- function(expr) eval(parse(text = expr), envir = new.env())
vcheck_opt_fit <- function(formula, data, REML, control, start) vcheck_try({
  ctrl <- eval(parse(text = control))
  st <- if (length(start)) list(theta = as.numeric(start)) else NULL
  m <- lmer(as.formula(formula), data, REML = REML, control = ctrl, start = st)
  oi <- m@optinfo
  list(theta = m@theta, val = as.numeric(oi$val),
       feval = as.numeric(if (is.null(oi$feval)) NA else oi$feval),
       crit = unname(if (REML) m@devcomp$cmp["REML"] else m@devcomp$cmp["dev"]),
       message = as.character(oi$message), conv = as.numeric(oi$conv$opt),
       lme4_messages = as.character(unlist(oi$conv$lme4$messages)),
       lme4_code = as.numeric(unlist(oi$conv$lme4$code)),
       gradient = if (is.null(oi$derivs)) numeric(0) else oi$derivs$gradient,
       hessian = if (is.null(oi$derivs)) numeric(0) else as.numeric(oi$derivs$Hessian),
       optwarnings = as.character(unlist(oi$warnings)))
})
vcheck_opt_devfun <- function(formula, data, REML)
  lmer(as.formula(formula), data, REML = REML, devFunOnly = TRUE)
vcheck_opt_path <- function(formula, data, REML, optimizer) vcheck_try({
  devfun <- lmer(as.formula(formula), data, REML = REML, devFunOnly = TRUE)
  rho <- environment(devfun)
  path <- numeric(0)
  rec <- function(theta) { path <<- c(path, theta); devfun(theta) }
  opt <- switch(optimizer,
    Nelder_Mead = Nelder_Mead(rec, rho$pp$theta, lower = rho$lower),
    bobyqa = minqa::bobyqa(rho$pp$theta, rec, lower = rho$lower, upper = Inf),
    nloptwrap = nloptwrap(rho$pp$theta, rec, lower = rho$lower, upper = rep(Inf, length(rho$lower))))
  list(path = path, feval = as.numeric(opt$feval), par = opt$par)
})
"""

DATA = {
    "sleepstudy": "lme4::sleepstudy",
    "sleep20": "lme4::sleepstudy[1:20, ]",
    "Dyestuff": "lme4::Dyestuff",
    "Penicillin": "lme4::Penicillin",
    "laurent": 'read.csv(system.file("testdata", "dat20101314.csv", package = "lme4"))',
    "koller13": 'source(system.file("testdata", "koller-data.R", package = "lme4"), local = TRUE); '
    "getData(13)",
}


@dataclass
class Case:
    """One lmer call: R's control expression and the same settings as vcheck's mapping."""

    id: str
    formula: str
    data: str
    r_control: str
    control: dict[str, Any]
    REML: bool = True
    start: list[float] = field(default_factory=list)
    #: False where the paths part (measured: the criterion's last bits flip a comparison on a flat
    #: optimum): then the optimum is compared, not feval
    exact_path: bool = True


CASES = [
    Case("sleep-nloptwrap", "Reaction ~ Days + (Days | Subject)", "sleepstudy", "lmerControl()", {}),
    Case(
        "sleep-bobyqa",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        'lmerControl(optimizer = "bobyqa")',
        {"optimizer": "bobyqa"},
    ),
    Case(
        "sleep-NM",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        'lmerControl(optimizer = "Nelder_Mead")',
        {"optimizer": "Nelder_Mead"},
    ),
    Case(
        "sleep-NM-ML",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        'lmerControl(optimizer = "Nelder_Mead")',
        {"optimizer": "Nelder_Mead"},
        REML=False,
    ),
    # tests/testthat/test-lmer.R: convergence warnings from limited evaluations
    Case(
        "sleep-maxeval3",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        "lmerControl(optCtrl = list(maxeval = 3))",
        {"optCtrl": {"maxeval": 3}},
    ),
    Case(
        "sleep-bobyqa-maxfun3",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        'lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 3))',
        {"optimizer": "bobyqa", "optCtrl": {"maxfun": 3}},
    ),
    Case(
        "sleep-NM-maxfun3",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        'lmerControl(optimizer = "Nelder_Mead", optCtrl = list(maxfun = 3))',
        {"optimizer": "Nelder_Mead", "optCtrl": {"maxfun": 3}},
    ),
    Case(
        "sleep20-NM-noderivs",
        "Reaction ~ Days + (Days | Subject)",
        "sleep20",
        'lmerControl(optimizer = "Nelder_Mead", calc.derivs = FALSE)',
        {"optimizer": "Nelder_Mead", "calc.derivs": False},
    ),
    Case(
        "sleep-int-tol6",
        "Reaction ~ 1 + (1 | Subject)",
        "sleepstudy",
        'lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-6, ftol_abs = 1e-6))',
        {"optimizer": "nloptwrap", "optCtrl": {"xtol_abs": 1e-6, "ftol_abs": 1e-6}},
    ),
    Case(
        "sleep-xtolrel8",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        "lmerControl(optCtrl = list(xtol_rel = 1e-8, ftol_rel = 1e-12))",
        {"optCtrl": {"xtol_rel": 1e-8, "ftol_rel": 1e-12}},
    ),
    Case(
        "Dyestuff-NM",
        "Yield ~ 1 | Batch",
        "Dyestuff",
        'lmerControl(optimizer = "Nelder_Mead")',
        {"optimizer": "Nelder_Mead"},
    ),
    Case(
        "Dyestuff-bobyqa",
        "Yield ~ 1 | Batch",
        "Dyestuff",
        'lmerControl(optimizer = "bobyqa")',
        {"optimizer": "bobyqa"},
    ),
    Case(
        "Penicillin-NM",
        "diameter ~ (1 | plate) + (1 | sample)",
        "Penicillin",
        'lmerControl(optimizer = "Nelder_Mead")',
        {"optimizer": "Nelder_Mead"},
    ),
    Case(
        "Penicillin-bobyqa-ML",
        "diameter ~ (1 | plate) + (1 | sample)",
        "Penicillin",
        'lmerControl(optimizer = "bobyqa")',
        {"optimizer": "bobyqa"},
        REML=False,
    ),
    # tests/boundary.R (Stephane Laurent's data, Manuel Koller's data)
    Case(
        "laurent-NM",
        "y ~ (1 | Operator) + (1 | Part) + (1 | Part:Operator)",
        "laurent",
        'lmerControl(optimizer = "Nelder_Mead")',
        {"optimizer": "Nelder_Mead"},
        exact_path=False,
    ),
    Case(
        "laurent-bobyqa-norestart",
        "y ~ (1 | Operator) + (1 | Part) + (1 | Part:Operator)",
        "laurent",
        'lmerControl(optimizer = "bobyqa", restart_edge = FALSE)',
        {"optimizer": "bobyqa", "restart_edge": False},
        exact_path=False,
    ),
    Case(
        "laurent-NM-norestart",
        "y ~ (1 | Operator) + (1 | Part) + (1 | Part:Operator)",
        "laurent",
        'lmerControl(optimizer = "Nelder_Mead", restart_edge = FALSE, check.conv.hess = "ignore")',
        {"optimizer": "Nelder_Mead", "restart_edge": False, "check.conv.hess": "ignore"},
        exact_path=False,
    ),
    Case(
        "koller-NM-lastparams",
        "y ~ (1 | Var2)",
        "koller13",
        'lmerControl(optimizer = "Nelder_Mead", use.last.params = TRUE)',
        {"optimizer": "Nelder_Mead", "use.last.params": True},
        start=[1.0],
    ),
    Case(
        "koller-NM-lastparams-norestart",
        "y ~ (1 | Var2)",
        "koller13",
        'lmerControl(optimizer = "Nelder_Mead", use.last.params = TRUE, restart_edge = FALSE, '
        'check.conv.hess = "ignore", check.conv.grad = "ignore")',
        {
            "optimizer": "Nelder_Mead",
            "use.last.params": True,
            "restart_edge": False,
            "check.conv.hess": "ignore",
            "check.conv.grad": "ignore",
        },
        start=[1.0],
    ),
    Case(
        "koller-bobyqa-lastparams",
        "y ~ (1 | Var2)",
        "koller13",
        'lmerControl(optimizer = "bobyqa", use.last.params = TRUE)',
        {"optimizer": "bobyqa", "use.last.params": True},
        start=[1.0],
    ),
    Case(
        "koller-NM",
        "y ~ (1 | Var2)",
        "koller13",
        'lmerControl(optimizer = "Nelder_Mead", check.conv.hess = "ignore", check.conv.grad = "ignore")',
        {"optimizer": "Nelder_Mead", "check.conv.hess": "ignore", "check.conv.grad": "ignore"},
        start=[1.0],
    ),
    Case(
        "koller-bobyqa",
        "y ~ (1 | Var2)",
        "koller13",
        'lmerControl(optimizer = "bobyqa")',
        {"optimizer": "bobyqa"},
        start=[1.0],
    ),
    Case(
        "sleep-none",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        "lmerControl(optimizer = NULL)",
        {"optimizer": None},
    ),
]


@pytest.fixture(scope="module")
def r() -> Any:
    from vcheck.reference import rbridge

    s = rbridge.session()
    ri = s.ri
    ri.baseenv.find("eval")(ri.parse(R_CODE), s.env)
    return s


_FRAMES: dict[str, pd.DataFrame] = {}


def r_data(r: Any, name: str) -> tuple[Any, pd.DataFrame]:
    from vcheck.reference import rbridge

    frame = r.function("vcheck_opt_data")(r.ri.StrSexpVector([DATA[name]]))
    if name not in _FRAMES:
        _FRAMES[name] = rbridge.frame_from_r(frame)
    return frame, _FRAMES[name]


def r_fit(r: Any, case: Case) -> dict[str, Any]:
    frame, _ = r_data(r, case.data)
    ri = r.ri
    return r.call(
        "vcheck_opt_fit",
        ri.StrSexpVector([case.formula]),
        frame,
        ri.BoolSexpVector([case.REML]),
        ri.StrSexpVector([case.r_control]),
        ri.FloatSexpVector(case.start),
    )


def lme4_devfun(r: Any, formula: str, frame: Any, REML: bool) -> Any:
    """lme4's devfun, called directly (rpy2 3.5.17's vector.memoryview() drops a reference to None on
    every call, so thousands of calls through vcheck.reference.devfun crash Python at exit)."""
    ri = r.ri
    closure = r.function("vcheck_opt_devfun")(ri.StrSexpVector([formula]), frame, ri.BoolSexpVector([REML]))
    return lambda theta: float(closure(ri.FloatSexpVector(np.asarray(theta, dtype=float)))[0])


def rel(a: Any, b: Any) -> float:
    """max |a - b| / max |b| (theta's components differ in scale; near-zero ones are not relative)."""
    a, b = arr(a), arr(b)
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1e-12))


def arr(v: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(v, dtype=float))


def strings(v: Any) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else [str(x) for x in v]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lmer_with_control_follows_lme4(r: Any, case: Case) -> None:
    lme4 = r_fit(r, case)
    _, data = r_data(r, case.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = lFormula(case.formula, data)
        fit = fit_design(design, REML=case.REML, control=case.control, start=case.start or None)
    oi = fit.optinfo
    feval = float(np.asarray(lme4["feval"], dtype=float).ravel()[0])
    assert (oi["feval"] is None) == np.isnan(feval)
    assert abs(fit.criterion - float(arr(lme4["crit"])[0])) < tolerances.CRITERION_ABS
    if case.exact_path:
        if oi["feval"] is not None:
            assert oi["feval"] == int(feval), (oi["feval"], feval)
        assert rel(fit.theta, lme4["theta"]) < PATH
    else:  # the criterion's last bits steer the path on a flat optimum: the same optimum, another path
        assert rel(fit.theta, lme4["theta"]) < tolerances.PATH_DIVERGED
    assert oi["conv"] == int(arr(lme4["conv"])[0]) and oi["message"] == strings(lme4["message"])[0]
    assert oi["warnings"] == strings(lme4["optwarnings"])
    assert oi["lme4_messages"] == strings(lme4["lme4_messages"])
    assert [int(c) for c in oi["lme4_code"]] == [int(c) for c in arr(lme4["lme4_code"])]
    grad = arr(lme4["gradient"])
    if not case.exact_path:
        return
    if oi["derivs"] is None:
        assert grad.size == 0
    else:
        # deriv12 at two optima dtheta apart differ by about H dtheta, plus the criterion's last-bit
        # differences amplified by 1/(2 delta) (gradient) and 1/delta^2 (Hessian), delta = 1e-4
        H = arr(lme4["hessian"]).reshape(len(grad), len(grad), order="F")
        val = arr(lme4["val"])  # deriv12 runs at the optimizer's answer
        dtheta = float(np.max(np.abs(np.asarray(oi["val"]) - val)))
        # the criterion's rounding (its last bit flips as theta moves) plus vcheck's differences from lme4
        noise = criterion_noise(r, case, data, val) + 2 * float(np.spacing(abs(fit.criterion)))
        g_tol = float(np.max(np.abs(H))) * dtheta * len(grad) + 2 * noise / 2e-4
        assert float(np.max(np.abs(oi["derivs"]["gradient"] - grad))) <= g_tol + tolerances.ABS_FLOOR
        H_tol = 4 * noise / 1e-8 + tolerances.PATH_DIVERGED * float(np.max(np.abs(H)))
        assert float(np.max(np.abs(oi["derivs"]["Hessian"] - H))) <= H_tol


def criterion_noise(r: Any, case: Case, data: pd.DataFrame, theta: np.ndarray) -> float:
    """max |vcheck's criterion - lme4's| at theta and theta +- 1e-4 e_j (deriv12's points)."""
    design = lFormula(case.formula, data)
    frame, _ = r_data(r, case.data)
    mine, theirs = Devfun(design, REML=case.REML), lme4_devfun(r, case.formula, frame, case.REML)
    points = [theta] + [theta + s * 1e-4 * e for e in np.eye(len(theta)) for s in (1, -1)]
    return max(abs(mine(t) - theirs(t)) for t in points)


def lme4_path(r: Any, optimizer: str, formula: str, data: str, REML: bool) -> tuple[Any, ...]:
    """(R frame, vcheck's design, R's answer, the thetas lme4's optimizer evaluated), the start's
    evaluations outside the optimizer dropped (minqa's check of the objective; nloptr's two)."""
    frame, df = r_data(r, data)
    ri = r.ri
    out = r.call(
        "vcheck_opt_path",
        ri.StrSexpVector([formula]),
        frame,
        ri.BoolSexpVector([REML]),
        ri.StrSexpVector([optimizer]),
    )
    design = lFormula(formula, df)
    k = len(design.lower)
    r_path = arr(out["path"]).reshape(-1, k)[{"bobyqa": 1, "nloptwrap": 2, "Nelder_Mead": 0}[optimizer] :]
    return frame, design, out, r_path


@pytest.mark.parametrize("optimizer", ["Nelder_Mead", "bobyqa", "nloptwrap"])
@pytest.mark.parametrize(
    ("formula", "data", "REML"),
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True),
        ("diameter ~ (1 | plate) + (1 | sample)", "Penicillin", False),
        ("Yield ~ 1 | Batch", "Dyestuff", False),
    ],
)
def test_optimizer_path_is_lme4s(r: Any, optimizer: str, formula: str, data: str, REML: bool) -> None:
    """Every theta the optimizer evaluates, in order, against the same optimizer on lme4's devfun:
    Nelder-Mead's are identical (it only compares values); BOBYQA's agree to PATH."""
    _, design, out, r_path = lme4_path(r, optimizer, formula, data, REML)
    k = len(design.lower)
    fn = Devfun(design, REML=REML)
    path: list[np.ndarray] = []

    def rec(theta: np.ndarray) -> float:
        path.append(np.array(theta, dtype=float))
        return fn(theta)

    from vcheck.core import optimizers

    lower, upper = design.lower, np.full(k, np.inf)
    # from lme4's own start (vcheck's start_theta can differ from R's var(ave(y, f)) in the last bit)
    run = optimizers.OPTIMIZERS[optimizer](rec, r_path[0], lower, upper, {})
    ours = np.array(path)
    if optimizer == "bobyqa":
        ours = ours[1:]
    assert run.feval == int(arr(out["feval"])[0]) == len(ours)
    assert len(r_path) >= len(ours)
    if optimizer == "Nelder_Mead":
        assert np.array_equal(ours, r_path[: len(ours)])
    else:
        assert max(rel(a, b) for a, b in zip(ours, r_path, strict=False)) < PATH


def test_optimize_lmer_none_is_the_start(r: Any) -> None:
    """optimizer = NULL: the start, feval NA, conv 1000, "no optimization" (lme4's lmer)."""
    _, data = r_data(r, "sleepstudy")
    design = lFormula("Reaction ~ Days + (Days | Subject)", data)
    opt = optimize_lmer(Devfun(design), start_theta(design), design.lower, {"optimizer": None})
    assert opt.conv == 1000 and opt.feval is None and np.array_equal(opt.theta, [1.0, 0.0, 1.0])


ISSINGULAR = """set.seed(101); n_groups <- 20; n_per_group <- 20; n <- n_groups * n_per_group
dat <- data.frame(group1 = rep(1:n_groups, each = n_per_group), group2 = rep(1:n_groups, each = n_per_group),
                  x1 = rnorm(n), x2 = rnorm(n))
form <- y ~ 1 + (1 + x1|group1) + (1 + x2|group2)
dat$y <- simulate(form[-2], newdata = dat, family = gaussian,
                  newparams = list(beta = c(-2), theta = c(2, 3, 4, 2, 3, 4), sigma = 2))[[1]]
dat$y2 <- simulate(form[-2], newdata = dat, family = gaussian,
                   newparams = list(beta = c(-2), theta = c(0, 0, 0, 2.5, 1.5, 0.8), sigma = 2))[[1]]
dat"""
DATA["isSingular"] = ISSINGULAR  # lme4's tests/testthat/test-isSingular.R


@pytest.mark.parametrize("optimizer", ["Nelder_Mead", "bobyqa", "nloptwrap"])
@pytest.mark.parametrize(
    ("formula", "data", "REML"),
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True),
        ("y ~ (1 | Operator) + (1 | Part) + (1 | Part:Operator)", "laurent", True),
        ("y2 ~ 1 + (1 + x1 | group1) + (1 + x2 | group2)", "isSingular", True),
    ],
)
def test_optimizers_on_lme4s_devfun_are_lme4s(
    r: Any, optimizer: str, formula: str, data: str, REML: bool
) -> None:
    """Given lme4's own criterion values, vcheck's optimizers evaluate exactly lme4's points, bit for bit
    and to the same count: Nelder-Mead (the C++ port), bobyqa (Powell's Fortran = minqa's) and nloptwrap
    (nlopt 2.11 here, 2.7.1 under R).  Where vcheck's paths leave lme4's (laurent, isSingular), the
    criterion's last bits are the cause, not the optimizer."""
    from vcheck.core import optimizers

    frame, design, out, r_path = lme4_path(r, optimizer, formula, data, REML)
    k = len(design.lower)
    theirs = lme4_devfun(r, formula, frame, REML)
    path: list[np.ndarray] = []

    def rec(theta: np.ndarray) -> float:
        path.append(np.array(theta, dtype=float))
        return theirs(theta)

    run = optimizers.OPTIMIZERS[optimizer](rec, r_path[0], design.lower, np.full(k, np.inf), {})
    ours = np.array(path)[1:] if optimizer == "bobyqa" else np.array(path)
    assert run.feval == int(arr(out["feval"])[0]) == len(ours)
    assert np.array_equal(ours, r_path[: len(ours)])
    assert np.array_equal(run.par, arr(out["par"]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases(), optimizer=st.sampled_from(["Nelder_Mead", "bobyqa", "nloptwrap"]))
def test_optimizers_on_drawn_cases_are_lme4s(r: Any, case: AuditCase, optimizer: str) -> None:
    """The same property on drawn data (unsorted, nested, crossed, slopes, boundaries): on lme4's own
    devfun each optimizer's evaluated points and count are lme4's, bit for bit."""
    from vcheck.core import optimizers
    from vcheck.reference import rbridge

    formula = case.formula
    frame = rbridge.frame_to_r(
        case.data, rbridge.referenced_columns(formula, [str(c) for c in case.data.columns])
    )
    ri = r.ri
    out = r.call(
        "vcheck_opt_path",
        ri.StrSexpVector([formula]),
        frame,
        ri.BoolSexpVector([case.REML]),
        ri.StrSexpVector([optimizer]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = lFormula(formula, case.data)
    k = len(design.lower)
    r_path = arr(out["path"]).reshape(-1, k)[{"bobyqa": 1, "nloptwrap": 2, "Nelder_Mead": 0}[optimizer] :]
    theirs = lme4_devfun(r, formula, frame, case.REML)
    path: list[np.ndarray] = []

    def rec(theta: np.ndarray) -> float:
        path.append(np.array(theta, dtype=float))
        return theirs(theta)

    run = optimizers.OPTIMIZERS[optimizer](rec, r_path[0], design.lower, np.full(k, np.inf), {})
    ours = np.array(path)[1:] if optimizer == "bobyqa" else np.array(path)
    assert run.feval == int(arr(out["feval"])[0]) == len(ours)
    assert np.array_equal(ours, r_path[: len(ours)])
