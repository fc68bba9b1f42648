"""Every script in examples/ runs as-is on the fixture dataset (tiny configurations)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from gnnrec.models import available_models

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY_GNN = ["--set", "max_epochs=3"]


def _run_example(name: str, argv: list, monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *map(str, argv)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_every_example_has_a_smoke_test():
    tested = {
        "quickstart.py",
        "compare_models.py",
        "recommend_new_user.py",
        "recommend_new_movie.py",
        "tensorboard_inspect.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


needs_gnn = pytest.mark.skipif("gnn" not in available_models(), reason="the gnn model is not registered")


@needs_gnn
def test_quickstart(ml100k_fixture_dir, monkeypatch, capsys):
    out = _run_example("quickstart.py", ["--data-dir", ml100k_fixture_dir, "--fast", *TINY_GNN], monkeypatch, capsys)
    assert "trained 3 epochs" in out and "test rmse" in out and "top 5 for user 1:" in out


def test_compare_models(ml100k_fixture_dir, tmp_path, monkeypatch, capsys):
    argv = ["--data-dir", ml100k_fixture_dir, "--fast", "--models", "global-mean", "bias", "--out", tmp_path / "run"]
    out = _run_example("compare_models.py", argv, monkeypatch, capsys)
    assert "| global-mean | 1/1 |" in out and "lowest test RMSE: " in out
    assert (tmp_path / "run" / "results.md").is_file()


@needs_gnn
def test_recommend_new_user(ml100k_fixture_dir, monkeypatch, capsys):
    argv = ["--data-dir", ml100k_fixture_dir, "--fast", *TINY_GNN, "--liked", "1", "2:3", "-k", "3"]
    out = _run_example("recommend_new_user.py", argv, monkeypatch, capsys)
    assert "rated 5: Movie 1 (1951)" in out and "rated 3: Movie 2 (1952)" in out
    assert "top 3 for a 25-year-old F student:" in out and "  3. " in out


@needs_gnn
def test_recommend_new_movie(ml100k_fixture_dir, monkeypatch, capsys):
    argv = ["--data-dir", ml100k_fixture_dir, "--fast", *TINY_GNN, "--genres", "Comedy", "--rated", "1:5", "2"]
    argv += ["-k", "3"]
    out = _run_example("recommend_new_movie.py", argv, monkeypatch, capsys)
    assert "Comedy film, rated by 2 user(s) so far" in out and "top 3 users who would like it:" in out
    assert "  3. " in out and "  4. " not in out


@needs_gnn
def test_tensorboard_inspect(ml100k_fixture_dir, tmp_path, monkeypatch, capsys):
    argv = ["--data-dir", ml100k_fixture_dir, "--fast", *TINY_GNN, "--out", tmp_path / "tb"]
    out = _run_example("tensorboard_inspect.py", argv, monkeypatch, capsys)
    assert "scalar    rmse/val" in out and "histogram embeddings/movie" in out and "hparams   " in out
    assert "projector movie: 60 points, metadata columns title, year, genres, raw_id" in out
    assert "projector user: 40 points" in out and f"tensorboard --logdir {tmp_path / 'tb'}" in out
