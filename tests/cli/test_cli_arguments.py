"""`vcheck fit` / `vcheck compare` with lmer's arguments: --weights, --offset, --subset, --na-action,
--contrasts, --control; what they mean is vcheck.lmer's, and bad values are one clean error line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from test_cli import assert_clean_error, vcheck

import vcheck as vc
from vcheck.cli.arguments import add_lmer_arguments, lmer_kwargs
from vcheck.core.errors import DataError
from vcheck.reference import examples

FORMULA = "Reaction ~ Days + (Days|Subject)"


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sleep.csv"
    examples.load("sleepstudy_na_exclude").data.to_csv(path, index=False)
    return path


def parse(*argv: str) -> dict[str, object]:
    p = argparse.ArgumentParser()
    add_lmer_arguments(p)
    return lmer_kwargs(p.parse_args(list(argv)))


def test_flags_become_lmer_keywords() -> None:
    kw = parse(
        "--weights", "w", "--offset", "o", "--subset", "Days > 0", "--na-action", "na.exclude",
        "--contrasts", "f=contr.sum", "--control", "optimizer=bobyqa", "--control", "optCtrl.maxfun=2000",
        "--control", "calc.derivs=FALSE", "--control", "boundary.tol=1e-6",
    )  # fmt: skip
    assert kw == {
        "weights": "w",
        "offset": "o",
        "subset": "Days > 0",
        "na_action": "na.exclude",
        "contrasts": {"f": "contr.sum"},
        "control": {
            "optimizer": "bobyqa",
            "optCtrl": {"maxfun": 2000},
            "calc.derivs": False,
            "boundary.tol": 1e-6,
        },
    }
    assert parse() == {}
    with pytest.raises(DataError, match="KEY=VALUE"):
        parse("--control", "optimizer")


def test_fit_json_with_arguments_is_vcheck_lmer(csv: Path) -> None:
    proc = vcheck("fit", FORMULA, "--data", str(csv), "--weights", "w", "--offset", "o",
                  "--subset", "Days > 0", "--na-action", "na.exclude", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    import pandas as pd

    data = pd.read_csv(csv)
    fit = vc.lmer(FORMULA, data, weights="w", offset="o", subset="Days > 0", na_action="na.exclude")
    assert out["criterion"] == pytest.approx(fit.criterion, rel=1e-12)
    assert out["n"] == fit.n


def test_bad_argument_is_one_error_line(csv: Path) -> None:
    assert_clean_error(vcheck("fit", FORMULA, "--data", str(csv), "--weights", "nope"), "weights", "nope")
    assert_clean_error(vcheck("fit", FORMULA, "--data", str(csv), "--subset", "Days > 0 && TRUE"), "&&")
    assert_clean_error(vcheck("fit", FORMULA, "--data", str(csv), "--control", "nope=1"), "nope")


@pytest.mark.r
def test_compare_with_arguments_agrees(csv: Path) -> None:
    flags = ["--weights", "w", "--offset", "o", "--subset", "Days > 0", "--na-action", "na.exclude"]
    proc = vcheck("compare", FORMULA, "--data", str(csv), *flags, "--control", "optimizer=bobyqa")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "arguments: weights='w', offset='o', subset='Days > 0', na_action='na.exclude'" in proc.stdout
    assert "all " in proc.stdout and "checks agree" in proc.stdout
