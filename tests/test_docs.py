"""README.md is a short front page; docs/ is an MkDocs site that builds strictly and carries no history."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
HISTORY = re.compile(
    r"\bformerly\b|\bissues? #?\d+\b|\bcommit [0-9a-f]{7,40}\b|\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,12}\b",
    re.IGNORECASE,
)


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "make main" in text and "make test" in text and re.search(r"`\.ci/run` runs\s+`make test`", text)
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), f"README.md links to {link}, which does not exist"


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_docs_carry_no_history(path: Path):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = HISTORY.search(line)
        assert match is None, f"{path.relative_to(ROOT)}:{number}: history belongs in CHANGELOG.md: {match[0]!r}"


REPO_PATH = re.compile(r"`((?:gnnrec|benchmarks|examples|tests|docs)/[\w/.-]+)`")


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_repository_files_exist(path: Path):
    """A file a page names in a code span (`benchmarks/results/sizes.md`) is there: moves must update the docs."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for name in REPO_PATH.findall(line):
            assert (ROOT / name).exists(), f"{path.relative_to(ROOT)}:{number}: names {name}, which does not exist"


def test_every_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").rglob("*.md"):
        assert f": {page.relative_to(ROOT / 'docs').as_posix()}\n" in config, f"{page} is not in mkdocs.yml's nav"


def test_docs_build_strict(tmp_path: Path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "api" / "models" / "index.html").is_file()
    assert "gnnrec.models.RatingModel" in (tmp_path / "api" / "models" / "index.html").read_text(encoding="utf-8")


def test_sphinx_roles_become_code_spans():
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("sphinx_roles", ROOT / "docs" / "hooks" / "sphinx_roles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "a :class:`RatingSplit`, :meth:`fit`, :class:`~gnnrec.data.DataFormatError` and ``x``"
    assert module.without_roles(text) == "a `RatingSplit`, `fit`, `DataFormatError` and ``x``"
