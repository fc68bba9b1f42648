"""Every script in examples/ runs as-is on the fixture dataset (tiny configurations)."""

from __future__ import annotations

import ast
import re
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
    argv = ["--data-dir", ml100k_fixture_dir, "--fast", *TINY_GNN, "--liked", "1", "movie 2:3",
            "--disliked", "Movie 4 (1954)", "-k", "3"]  # fmt: skip
    out = _run_example("recommend_new_user.py", argv, monkeypatch, capsys)
    assert "rated 5: Movie 1 (1951)" in out and "rated 3: Movie 2 (1952)" in out and "rated 1: Movie 4 (1954)" in out
    assert "top 3 for a 25-year-old F student:" in out and "  3. " in out
    reasons = [line.strip() for line in out.splitlines() if line.startswith("       ")]
    assert len(reasons) == 3
    for reason in reasons:  # only the person's own films are named
        assert set(re.findall(r"Movie \d+ \(\d{4}\)", reason)) <= {"Movie 1 (1951)", "Movie 2 (1952)", "Movie 4 (1954)"}


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


README = EXAMPLES.parent / "README.md"
QUICKSTART_MARKER = "<!-- quickstart:"


def readme_quickstart() -> str:
    """The fenced Python block that follows the quickstart marker in README.md."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(QUICKSTART_MARKER))
    assert lines[start + 1] == "```python", "the quickstart marker must be followed by a ```python block"
    end = lines.index("```", start + 2)
    return "\n".join(lines[start + 2 : end]) + "\n"


def test_readme_quickstart_is_ten_lines():
    code = readme_quickstart()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    compile(code, "README.md quickstart", "exec")


@needs_gnn
def test_readme_quickstart_runs(ml100k_fixture_dir, tmp_path, monkeypatch, capsys):
    """The README's block as written, on the fixture data; only the model's config is made tiny."""
    import gnnrec.models

    monkeypatch.setenv("GNNREC_ML100K_DIR", str(ml100k_fixture_dir))
    monkeypatch.setenv("GNNREC_HOME", str(tmp_path / "home"))
    full_create_model = gnnrec.models.create_model
    monkeypatch.setattr(
        gnnrec.models, "create_model", lambda name, overrides=None: full_create_model(name, overrides, test_config=True)
    )
    exec(compile(readme_quickstart(), "README.md quickstart", "exec"), {"__name__": "readme_quickstart"})
    metrics_line, titles_line = capsys.readouterr().out.strip().splitlines()[-2:]
    assert metrics_line.startswith("{'rmse': ") and "'ndcg@10': " in metrics_line
    titles = ast.literal_eval(titles_line)
    assert len(titles) == 5 and all(title.startswith("Movie ") for title in titles)
    assert not any(title.startswith(("Movie 1 (", "Movie 50 (")) for title in titles)  # the liked films
