"""`vcheck.report.summary`: a fit printed the way lme4's summary() prints it, number for number.

The reference texts are R's own output (lme4 1.1-31, R 4.2.2): the seed note's sleepstudy summary, and
for every built-in example the live test prints R's summary next to ours.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from vcheck.reference import examples
from vcheck.report.summary import abbreviate, fit_to_dict, format_r, summary_text

#: R's print(summary(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))), as in the seed note
SLEEPSTUDY_R = """\
Linear mixed model fit by REML ['lmerMod']
Formula: Reaction ~ Days + (Days | Subject)
   Data: sleepstudy

REML criterion at convergence: 1743.6

Scaled residuals: 
    Min      1Q  Median      3Q     Max 
-3.9536 -0.4634  0.0231  0.4634  5.1793 

Random effects:
 Groups   Name        Variance Std.Dev. Corr
 Subject  (Intercept) 612.10   24.741       
          Days         35.07    5.922   0.07
 Residual             654.94   25.592       
Number of obs: 180, groups:  Subject, 18

Fixed effects:
            Estimate Std. Error t value
(Intercept)  251.405      6.825  36.838
Days          10.467      1.546   6.771

Correlation of Fixed Effects:
     (Intr)
Days -0.138
"""  # noqa: W291 (R pads these lines with spaces)


@pytest.mark.parametrize(
    ("values", "digits", "expected"),
    [
        ([612.100158, 35.071714, 654.94], 4, ["612.10", " 35.07", "654.94"]),
        ([24.741, 5.922, 25.592], 4, ["24.741", " 5.922", "25.592"]),
        ([1e-10, 141.788, 0.72], 4, ["1.000e-10", "1.418e+02", "7.200e-01"]),
        ([0.5, 100000], 4, ["5e-01", "1e+05"]),
        ([1e-3, 2.5e-4], 4, ["0.00100", "0.00025"]),
        ([0, 0], 4, ["0", "0"]),
        ([-0.00001234, 1], 4, ["-1.234e-05", " 1.000e+00"]),
        ([123456], 4, ["123456"]),
    ],
)
def test_format_r_matches_R(values: list[float], digits: int, expected: list[str]) -> None:
    assert format_r(values, digits) == expected


def test_abbreviate_like_R() -> None:
    assert [abbreviate(n, 6) for n in ("(Intercept)", "cltypereg", "cltypereg+A", "sxF")] == [
        "(Intr)",
        "cltypr",
        "clty+A",
        "sxF",
    ]


def test_frozen_lme4_fit_prints_exactly_as_R_does() -> None:
    fit = examples.load("sleepstudy").expected
    mine = summary_text(fit, data_name="sleepstudy").splitlines()
    theirs = SLEEPSTUDY_R.splitlines()
    assert [line for line in mine if not line.startswith("Formula:")] == [
        line for line in theirs if not line.startswith("Formula:")
    ]


def test_fit_to_dict_is_plain_json() -> None:
    fit = examples.load("star_k").expected
    d = json.loads(json.dumps(fit_to_dict(fit), allow_nan=False))
    assert d["REML"] is True and d["singular"] is True and d["n"] == 1150
    assert d["ngroups"] == {"tch:sch": 319, "sch": 79}
    assert d["beta"]["(Intercept)"] == pytest.approx(438.908738, rel=1e-8)
    assert [r["grp"] for r in d["varcorr"]][-1] == "Residual"


R_SUMMARIES = r"""
source(file.path("r_reference", "examples.R"))
for (e in vcheck_examples()) {
  cat("=====", e$name, "\n")
  m <- suppressMessages(suppressWarnings(lmer(as.formula(e$formula), data = e$data, REML = e$REML)))
  print(summary(m))
}
"""


@pytest.mark.r
def test_every_example_prints_like_R(tmp_path: Path) -> None:
    """lme4's own fit, printed by vcheck.report.summary, against R printing it (all but the Formula/Data
    lines)."""
    from vcheck import reference

    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "summaries.R"
    script.write_text(R_SUMMARIES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    out = subprocess.run(
        ["Rscript", str(script)], capture_output=True, text=True, cwd=root, env=env, check=True, timeout=600
    ).stdout
    blocks = {b.split("\n", 1)[0].strip(): b.split("\n", 1)[1] for b in out.split("===== ")[1:]}

    def body(text: str) -> list[str]:
        return [line for line in text.rstrip().splitlines() if not line.startswith(("Formula:", "   Data:"))]

    for name in examples.names():
        ex = examples.load(name)
        fit = reference.lmer(ex.formula, ex.data, REML=ex.REML)
        assert body(summary_text(fit, data_name=name)) == body(blocks[name]), name
