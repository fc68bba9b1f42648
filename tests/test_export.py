"""``gnnrec export`` and :mod:`gnnrec.serving.export`: the tables match the model, every format, chunking
changes nothing, files appear whole or not at all, bad requests get one line and exit status 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from gnnrec.cli import main
from gnnrec.models import RatingModel, create_model
from gnnrec.serving import Catalogue, MovieSimilarity, top_k_frames, write_table
from gnnrec.serving.export import table_format


@pytest.fixture(scope="module")
def split(u1_split):
    return u1_split


@pytest.fixture(scope="module")
def mf_checkpoint(split, tmp_path_factory):
    return create_model("mf", test_config=True).fit(split).save(tmp_path_factory.mktemp("mf") / "model.safetensors")


def read(path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.DataFrame([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])


def export(checkpoint, data_dir, *argv) -> int:
    return main(["export", str(checkpoint), "--data-dir", str(data_dir), "--quiet", *map(str, argv)])


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_top_k_table_matches_the_model(gnn_checkpoint, ml100k_fixture_dir, split, tmp_path, suffix):
    out = tmp_path / f"top{suffix}"
    assert export(gnn_checkpoint, ml100k_fixture_dir, "--out", out, "-k", 7) == 0
    table = read(out)
    assert list(table.columns) == ["user", "rank", "movie", "title", "score"]
    model = RatingModel.load(gnn_checkpoint, split)
    top, score = model.recommend(torch.arange(split.num_users), k=7)
    catalogue = Catalogue(split)
    assert len(table) == split.num_users * 7
    assert table["user"].tolist() == [u for u in catalogue.user_ids for _ in range(7)]
    assert table["rank"].tolist() == list(range(1, 8)) * split.num_users
    assert table["movie"].tolist() == [catalogue.movie_ids[m] for m in top.reshape(-1).tolist()]
    assert table["title"].tolist() == [catalogue.titles[m] for m in top.reshape(-1).tolist()]
    assert table["score"].to_numpy() == pytest.approx(score.reshape(-1).numpy(), abs=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left


def test_default_output_and_chunking(gnn_checkpoint, ml100k_fixture_dir, split, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert export(gnn_checkpoint, ml100k_fixture_dir) == 0
    default = pd.read_parquet(tmp_path / "recommendations.parquet")
    model = RatingModel.load(gnn_checkpoint, split)
    unrated = split.num_movies - model.seen_mask(torch.arange(split.num_users)).sum(1)
    assert len(default) == int(unrated.clamp(max=50).sum())  # top-50 by default (60 films: fewer unseen here)
    assert export(gnn_checkpoint, ml100k_fixture_dir, "--out", "chunked.csv", "--chunk-users", 3) == 0
    chunked = pd.read_csv(tmp_path / "chunked.csv")
    pd.testing.assert_frame_equal(default.astype({"score": "float64"}), chunked, check_dtype=False, atol=1e-5)


def test_similar_films_and_embeddings(gnn_checkpoint, ml100k_fixture_dir, split, tmp_path):
    similar, embeddings = tmp_path / "similar.jsonl", tmp_path / "embeddings.parquet"
    assert export(gnn_checkpoint, ml100k_fixture_dir, "--similar", similar, "--similar-k", 4, "--embeddings",
                  embeddings) == 0  # fmt: skip
    assert not (tmp_path / "recommendations.parquet").exists()  # only the files asked for
    table = read(similar)
    assert list(table.columns) == ["movie", "title", "rank", "similar_movie", "similar_title", "similarity"]
    assert len(table) == split.num_movies * 4 and not (table["movie"] == table["similar_movie"]).any()
    model = RatingModel.load(gnn_checkpoint, split)
    vectors = torch.nn.functional.normalize(model.embeddings()["movie"], dim=1)
    first = table[table["movie"] == 1]
    cosine = vectors[0] @ vectors.T
    cosine[0] = -2
    assert first["similar_movie"].tolist() == (cosine.topk(4).indices + 1).tolist()  # fixture ids are index + 1
    assert first["similarity"].to_numpy() == pytest.approx(cosine.topk(4).values.numpy(), abs=1e-5)
    nodes = pd.read_parquet(embeddings)
    dims = model.embeddings()["user"].size(1)
    assert list(nodes.columns[:3]) == ["node_type", "id", "title"] and len(nodes.columns) == 3 + dims
    assert (nodes["node_type"] == "user").sum() == split.num_users and (nodes["node_type"] == "movie").sum() == 60
    user_rows = nodes[nodes["node_type"] == "user"].iloc[:, 3:].to_numpy()
    assert user_rows == pytest.approx(model.embeddings()["user"].numpy(), abs=1e-6)


def test_models_without_embeddings(mf_checkpoint, ml100k_fixture_dir, tmp_path, capsys):
    similar = tmp_path / "similar.csv"
    assert export(mf_checkpoint, ml100k_fixture_dir, "--similar", similar) == 0
    assert "score-profile-cosine" in capsys.readouterr().err and len(pd.read_csv(similar)) == 60 * 10
    assert export(mf_checkpoint, ml100k_fixture_dir, "--embeddings", tmp_path / "e.csv") == 2
    err = capsys.readouterr().err.strip()
    assert err == "gnnrec export: error: 'mf' has no node embeddings to export; models with them: gnn"
    assert not (tmp_path / "e.csv").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["similar.csv"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--out", "top.xlsx"], "cannot tell the format of top.xlsx from its suffix '.xlsx'"),
        (["--out", "a.csv", "--similar", "a.csv"], "--out, --similar and --embeddings must name different files"),
        (["--out", "a.csv", "-k", "0"], "k must lie in 1..60, got 0"),
        (["--out", "a.csv", "--chunk-users", "0"], "--chunk-users must be at least 1"),
        (["--similar", "s.csv", "--similar-k", "60"], "k must lie in 1..59, got 60"),
    ],
)
def test_bad_requests_exit_2_and_write_nothing(gnn_checkpoint, ml100k_fixture_dir, tmp_path, monkeypatch, capsys,
                                               argv, message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert export(gnn_checkpoint, ml100k_fixture_dir, *argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gnnrec export: error: ") and message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failure_midway_leaves_no_file(gnn_checkpoint, split, tmp_path, failure):
    model = RatingModel.load(gnn_checkpoint, split)
    out = tmp_path / "top.parquet"
    out.write_bytes(b"previous export")

    def failing():
        frames = top_k_frames(model, Catalogue(split), 5, chunk_users=8)
        yield next(iter(frames))
        raise failure

    with pytest.raises(type(failure)):
        write_table(out, failing())
    assert out.read_bytes() == b"previous export"  # the old file stays whole; no temporary file is left
    assert [p.name for p in tmp_path.iterdir()] == ["top.parquet"]


def test_format_option_overrides_the_suffix(tmp_path):
    assert table_format(tmp_path / "x.data", "csv") == "csv"
    assert table_format(tmp_path / "x.PQ") == "parquet" and table_format("x.ndjson") == "jsonl"
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        table_format("x.csv", "xml")


def test_users_who_rated_almost_everything_get_fewer_rows(split):
    model = create_model("bias", test_config=True).fit(split)
    catalogue = Catalogue(split)
    unrated = split.num_movies - model.seen_mask(torch.arange(split.num_users)).sum(1)
    k = int(unrated.min()) + 2
    table = pd.concat(top_k_frames(model, catalogue, k))
    counts = table.groupby("user").size()
    assert counts.tolist() == torch.clamp(unrated, max=k).tolist()


def test_similarity_from_score_profiles_is_symmetric(split):
    similarity = MovieSimilarity.of(create_model("bias", test_config=True).fit(split))
    assert similarity.method == "score-profile-cosine"
    full = similarity.vectors @ similarity.vectors.T
    assert torch.allclose(full, full.T, atol=1e-6)
    top, values = similarity.top_k(torch.tensor([0, 5]), 3)
    assert top.shape == (2, 3) and 0 not in top[0].tolist() and 5 not in top[1].tolist()


def test_a_checkpoint_on_non_default_loader_settings_exports_its_own_split(tmp_path):
    """The split is rebuilt with the loader settings the checkpoint was trained on (here a synthetic size that
    is not the default), not the dataset's defaults."""
    from gnnrec.data import load_split

    split = load_split("synthetic", num_users=37, num_movies=23, num_ratings=400, log=False)
    checkpoint = create_model("popularity").fit(split).save(tmp_path / "model.safetensors")
    out = tmp_path / "top.csv"
    assert main(["export", str(checkpoint), "--out", str(out), "-k", "3", "--quiet"]) == 0
    table = read(out)
    assert table["user"].nunique() == 37
    assert table["movie"].isin(split.graph["movie"].raw_id.tolist()).all()
