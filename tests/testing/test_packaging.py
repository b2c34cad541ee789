"""What the built wheel ships: py.typed, the JSON Schemas, the pytest11 entry point, one version; and the
API documentation builds from the docstrings (as `nox -s docs` does).

The wheel is built from this checkout with pip and hatchling (no build isolation: no network; hatchling
is in the dev extra), then installed into a folder put first on sys.path, where pytest finds vcheck's
plugin through its entry point alone.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import vcheck

REPO = Path(__file__).resolve().parents[2]
USER_FILE = Path(__file__).resolve().parent / "user_project" / "test_user.py"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME", "PYTHONPATH")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("src") / "vcheck"
    # a copy of the package sources only (an in-tree build would leave build/ in the checkout)
    shutil.copytree(REPO / "vcheck", build / "vcheck", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "r_reference", build / "r_reference", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, build / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(build),
        ],
        check=True,
        env=clean_env(),
        timeout=300,
    )
    (found,) = out.glob("vcheck-*.whl")
    return found


def pyproject_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


def test_wheel_ships_types_schemas_and_the_pytest_plugin(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "vcheck/py.typed" in names
        assert "vcheck/schemas/findings.schema.json" in names
        assert "vcheck/testing/plugin.py" in names
        assert "vcheck/_r_reference/frozen/sleepstudy/reference.json" in names
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = z.read(entry_points).decode()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(metadata).decode()
    assert "[pytest11]\nvcheck = vcheck.testing.plugin" in text
    assert f"\nVersion: {pyproject_version()}\n" in meta


def test_version_has_one_source() -> None:
    assert vcheck.__version__ == pyproject_version()
    source = (REPO / "vcheck" / "__init__.py").read_text(encoding="utf-8")
    assert pyproject_version() not in source  # not typed a second time


@pytest.mark.slow
def test_installed_plugin_is_found_by_its_entry_point(wheel: Path, tmp_path: Path) -> None:
    """pytest with the wheel installed (into a folder first on sys.path): no -p, the entry point loads
    the plugin."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        env=clean_env(),
        timeout=300,
    )
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(USER_FILE, project / "test_user.py")
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {**clean_env(), "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--vcheck-reference=frozen",
            "-q",
            "-k",
            "sleepstudy or dyestuff2",
            "--collect-only",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_against_lme4[example-sleepstudy]" in proc.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import vcheck; print(vcheck.__file__, vcheck.__version__)"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(site) in where and pyproject_version() in where  # the wheel's vcheck, not the checkout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pdoc") is None, reason="pdoc is in the dev extra")
def test_api_docs_build(tmp_path: Path) -> None:
    """`nox -s docs`'s command: every module's page, vcheck.testing's docstring on its page."""
    spec = importlib.util.spec_from_file_location("noxfile_for_test", REPO / "noxfile.py")
    assert spec is not None and spec.loader is not None
    noxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noxfile)
    modules = noxfile._modules(REPO)
    assert "vcheck.testing.plugin" in modules and "vcheck.core.fit" in modules
    subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "pdoc", "-d", "markdown", "-o", str(tmp_path), *modules],
        cwd=REPO,
        check=True,
        env={**clean_env(), "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    page = (tmp_path / "vcheck" / "testing.html").read_text(encoding="utf-8")
    assert "assert_agrees" in page and "--vcheck-reference" in page
    assert (tmp_path / "vcheck" / "core" / "fit.html").is_file()
