"""A non-editable install (outside the checkout) ships the suites and the web page and runs
``python -m gnnrec benchmark``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gnnrec.models import available_models

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("gnnrec", "setup.cfg", "pyproject.toml", "README.md")


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --target`` of a copy of the sources (a copy, so the build leaves nothing in the checkout)."""
    pytest.importorskip("setuptools", reason="building gnnrec needs setuptools (no build isolation offline)")
    pytest.importorskip("wheel", reason="building gnnrec needs wheel (no build isolation offline)")
    base = tmp_path_factory.mktemp("install")
    source = base / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    target = base / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    _run([*command, "--target", str(target), str(source)], cwd=base, env=dict(os.environ))
    return target


def test_the_installed_package_ships_the_suites(installed):
    suites = installed / "gnnrec" / "benchmark" / "suites"
    assert {"quick.json", "paper.json", "cv5.json", "douban.json"} <= {p.name for p in suites.glob("*.json")}


def test_the_installed_package_ships_the_web_page(installed):
    page = installed / "gnnrec" / "serving" / "static" / "index.html"
    assert page.is_file() and "<script>" in page.read_text(encoding="utf-8")


def test_python_m_gnnrec_benchmark_runs_from_the_installed_package(installed, ml100k_fixture_dir, tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),
        "GNNREC_ML100K_DIR": str(ml100k_fixture_dir),
        "GNNREC_HOME": str(tmp_path / "home"),
        "OMP_NUM_THREADS": "1",
    }
    where = _run([sys.executable, "-c", "import gnnrec; print(gnnrec.__file__)"], cwd=cwd, env=env).stdout
    assert Path(where.strip()).is_relative_to(installed), f"imported gnnrec from {where.strip()}, not the install"
    out = tmp_path / "run"
    command = [sys.executable, "-m", "gnnrec", "benchmark", "quick", "--test-config", "--out", str(out)]
    _run([*command, "--no-tensorboard", "--no-plots"], cwd=cwd, env=env)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["suite"]["name"] == "quick" and results["run"]["complete"]
    assert results["cells"] and all(cell["status"] == "ok" for cell in results["cells"])
    assert {cell["model"] for cell in results["cells"]} == set(available_models())  # "models": "all"
    assert (out / "results.md").is_file() and (out / "results.csv").is_file()
