"""Tests for gnnrec.provenance: commit, dirty flag and diff hash in a throw-away git repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import gnnrec
from gnnrec import provenance
from gnnrec.provenance import code_version, command_line, version_key

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    env_args = ["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *env_args, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "a.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("ignored/\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first")
    return root


def test_clean_checkout(repo: Path) -> None:
    info = code_version(repo)
    head = _git(repo, "rev-parse", "HEAD").strip()
    assert info["commit"] == head
    assert info["commit_short"] == head[:7]
    assert info["dirty"] is False
    assert info["reason"] is None
    assert info["gnnrec_version"] == gnnrec.__version__
    assert version_key(info).startswith(head)


def test_tracked_change_untracked_file_and_commit(repo: Path) -> None:
    clean = code_version(repo)

    (repo / "a.py").write_text("x = 2\n")
    edited = code_version(repo)
    assert edited["dirty"] is True
    assert edited["diff_sha256"] != clean["diff_sha256"]
    assert edited["commit"] == clean["commit"]

    (repo / "a.py").write_text("x = 3\n")
    edited_again = code_version(repo)
    assert edited_again["diff_sha256"] not in {clean["diff_sha256"], edited["diff_sha256"]}

    (repo / "a.py").write_text("x = 1\n")
    assert code_version(repo) == clean

    (repo / "new.py").write_text("y = 1\n")
    untracked = code_version(repo)
    assert untracked["dirty"] is True
    assert untracked["diff_sha256"] != clean["diff_sha256"]
    (repo / "new.py").write_text("y = 2\n")
    assert code_version(repo)["diff_sha256"] != untracked["diff_sha256"]

    (repo / "ignored").mkdir()
    (repo / "ignored" / "big.bin").write_text("data")
    before_ignored = code_version(repo)["diff_sha256"]
    (repo / "ignored" / "big.bin").write_text("other")
    assert code_version(repo)["diff_sha256"] == before_ignored

    _git(repo, "add", "new.py")
    _git(repo, "commit", "-q", "-m", "second")
    committed = code_version(repo)
    assert committed["dirty"] is False
    assert committed["commit"] != clean["commit"]
    assert committed["diff_sha256"] == clean["diff_sha256"]  # hash of "no changes"
    assert version_key(committed) != version_key(clean)


def test_not_a_checkout(tmp_path: Path) -> None:
    info = code_version(tmp_path)
    assert info["commit"] is None and info["dirty"] is None and info["diff_sha256"] is None
    assert info["reason"]
    assert info["gnnrec_version"] == gnnrec.__version__
    assert version_key(info) == f"nogit:{gnnrec.__version__}"


def test_git_missing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", missing)
    info = code_version(repo)
    assert info["commit"] is None
    assert "not installed" in info["reason"]


def test_command_line_quotes() -> None:
    assert command_line(["gnnrec", "train", "--set", "lr=0.1 x", "a'b"]) == "gnnrec train --set 'lr=0.1 x' 'a'\"'\"'b'"
    assert code_version(argv=["x", "y z"])["command"] == "x 'y z'"


def test_installed_copy_inside_a_checkout(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = repo / "ignored" / "site-packages" / "gnnrec"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.setattr(provenance, "__file__", str(package / "provenance.py"))
    info = code_version()
    assert info["commit"] is None
    assert "not tracked" in info["reason"]
    (repo / "gnnrec").mkdir()
    (repo / "gnnrec" / "__init__.py").write_text("")
    _git(repo, "add", "gnnrec")
    _git(repo, "commit", "-q", "-m", "package")
    monkeypatch.setattr(provenance, "__file__", str(repo / "gnnrec" / "provenance.py"))
    assert code_version()["commit"] == _git(repo, "rev-parse", "HEAD").strip()
