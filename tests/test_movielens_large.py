"""MovieLens-10M/20M/25M loaders on tiny fixtures in the real file formats."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import gnnrec.data.movielens_large as large_module
from gnnrec.data import DataFormatError
from gnnrec.data.movielens_large import (
    HALF_STARS,
    MovieLens10M,
    MovieLens20M,
    MovieLens25M,
    read_ratings_csv,
    temporal_split,
)
from gnnrec.data.synthetic import ML25M_GENRES, generate_ratings
from gnnrec.testing.movielens_large import write_ml10m_fixture, write_ml25m_fixture

NUM_USERS, NUM_MOVIES, NUM_RATINGS = 30, 40, 400


@pytest.fixture(scope="module")
def ml10m_dir(tmp_path_factory) -> Path:
    return write_ml10m_fixture(tmp_path_factory.mktemp("ml10m"))


@pytest.fixture(scope="module")
def ml25m_dir(tmp_path_factory) -> Path:
    return write_ml25m_fixture(tmp_path_factory.mktemp("ml25m"))


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "src"))


def _edit_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = text + "\n"
    path.write_text("".join(lines))


def test_ml10m_layout(ml10m_dir, tmp_path):
    dataset = MovieLens10M(tmp_path / "root", source_dir=ml10m_dir, log=False)
    graph, split = dataset[0], dataset.rating_split()
    assert (split.num_users, split.num_movies) == (NUM_USERS, NUM_MOVIES)
    assert len(split.train) + len(split.val) + len(split.test) == NUM_RATINGS and len(split.test) == 40
    assert graph.rating_levels.tolist() == HALF_STARS and graph.num_unrated_movies == 1
    assert torch.equal(graph["user"].x, torch.ones(NUM_USERS, 1))
    assert graph["movie"].raw_id.tolist() == list(range(1, 2 * NUM_MOVIES, 2))
    assert graph["movie"].title[0].startswith("Star Film: Part 0") and graph["movie"].year[1] == 0
    assert graph["movie"].year[0] > 1900 and graph["movie"].x[1, -1] == 1.0  # missing-year flag
    assert graph["movie"].x.shape[1] == len(graph.genre_names) + 2
    assert "(no genres listed)" not in graph.genre_names


@pytest.mark.parametrize("cls", [MovieLens20M, MovieLens25M])
def test_csv_round_trip(cls, tmp_path):
    """The generator's CSV output, loaded back, holds exactly the generated ratings."""
    data = generate_ratings(NUM_USERS, NUM_MOVIES, NUM_RATINGS, seed=5)
    source = data.write_ml25m_csv(tmp_path / "src")
    graph = cls(tmp_path / "root", source_dir=source, val_fraction=0.0, log=False)[0]
    store = graph["user", "rates", "movie"]
    users, movies = graph["user"].raw_id - 1, graph["movie"].raw_id - 1
    loaded = set()
    for part in ("train", "test"):
        index = store[f"{part}_edge_label_index"]
        columns = (users[index[0]], movies[index[1]], store[f"{part}_edge_label"], store[f"{part}_edge_time"])
        loaded |= set(zip(*(c.tolist() for c in columns), strict=True))
    expected = set(zip(data.user.tolist(), data.movie.tolist(), data.rating.tolist(), data.time.tolist(), strict=True))
    assert loaded == expected
    assert graph["movie"].year.tolist() == data.year.tolist()
    for row in range(NUM_MOVIES):
        flagged = {g for g, flag in zip(graph.genre_names, graph["movie"].genre[row].tolist(), strict=True) if flag}
        assert flagged == {g for g, flag in zip(ML25M_GENRES, data.genres[row].tolist(), strict=True) if flag}


def test_quoted_titles_and_no_genres(ml25m_dir, tmp_path):
    source = _copy(ml25m_dir, tmp_path)
    movies = source / "movies.csv"
    movies.write_text(movies.read_text() + f'{10_000},"Odd, Title: ""X"" (2001)",(no genres listed)\n')
    graph = MovieLens25M(tmp_path / "root", source_dir=source, log=False)[0]
    assert graph.num_unrated_movies == 1 and graph["movie"].title[0].startswith('Movie 1: "Part"')


def test_random_split_is_seeded(ml25m_dir, tmp_path):
    def test_edges(seed: int) -> torch.Tensor:
        return MovieLens25M(tmp_path / f"r{seed}", source_dir=ml25m_dir, seed=seed, log=False)[0][
            "user", "rates", "movie"
        ].test_edge_label_index

    assert torch.equal(test_edges(0), test_edges(0)) and not torch.equal(test_edges(0), test_edges(1))


def test_temporal_split_takes_each_users_latest(ml25m_dir, tmp_path):
    graph = MovieLens25M(tmp_path / "root", "temporal", source_dir=ml25m_dir, log=False)[0]
    store = graph["user", "rates", "movie"]
    test_user, test_time = store.test_edge_label_index[0], store.test_edge_time
    earlier_user = torch.cat([store.train_edge_label_index[0], store.val_edge_label_index[0]])
    earlier_time = torch.cat([store.train_edge_time, store.val_edge_time])
    for user in range(graph["user"].num_nodes):
        mine = test_time[test_user == user]
        rest = earlier_time[earlier_user == user]
        assert len(rest) >= 1 and len(mine) == round(0.1 * (len(mine) + len(rest)))
        if len(mine):
            assert mine.min() >= rest.max()
    assert len(store.test_edge_label) > 0


def test_temporal_split_ties_and_small_users():
    user = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2])
    time = np.array([5, 1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 9, 3])
    train, test = temporal_split(user, time)
    # User 1 (10 ratings) gives one: of its two time-9 ratings the later in the file; users 0 and 2 keep all.
    assert test.tolist() == [11] and len(train) == len(user) - 1


@pytest.mark.parametrize("cls", [MovieLens10M, MovieLens20M, MovieLens25M])
def test_download_verifies_md5(cls, ml10m_dir, ml25m_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(cls.env_var, raising=False)
    source = ml10m_dir if cls is MovieLens10M else ml25m_dir
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in sorted(source.iterdir()):
            handle.write(file, f"{cls.raw_folder}/{file.name}")
    digest = hashlib.md5(archive.read_bytes()).hexdigest()

    def fake_download(url, folder, log=True):
        assert url == cls.url and url.startswith("https://files.grouplens.org/datasets/movielens/")
        Path(folder).mkdir(parents=True, exist_ok=True)
        return shutil.copy(archive, Path(folder) / Path(url).name)

    monkeypatch.setattr(large_module, "download_url", fake_download)
    root = tmp_path / "root"
    with pytest.raises(DataFormatError, match="MD5 mismatch"):
        cls(root, log=False)
    assert not (root / "raw" / cls.raw_folder / cls.ratings_file).exists()
    assert not list((root / "raw").glob("*.zip"))
    monkeypatch.setattr(cls, "md5", digest)
    assert cls(root, log=False).rating_split().num_users == NUM_USERS
    assert (root / "raw" / cls.raw_folder / cls.ratings_file).is_file()


@pytest.mark.parametrize("cls", [MovieLens10M, MovieLens25M])
def test_no_download_when_disabled(cls, tmp_path, monkeypatch):
    monkeypatch.delenv(cls.env_var, raising=False)
    with pytest.raises(DataFormatError, match=f"{cls.title} not found"):
        cls(tmp_path / "root", download=False, log=False)


def test_env_var_and_missing_file(ml25m_dir, tmp_path, monkeypatch):
    source = _copy(ml25m_dir, tmp_path)
    monkeypatch.setenv("GNNREC_ML25M_DIR", str(source))
    assert MovieLens25M(tmp_path / "root", log=False).rating_split().num_users == NUM_USERS
    (source / "movies.csv").unlink()
    with pytest.raises(DataFormatError, match="missing MovieLens-25M files: movies.csv"):
        MovieLens25M(tmp_path / "root2", log=False)


@pytest.mark.parametrize(
    "line, text, match",
    [
        (5, "3,7,four,1200000000", "rating must be a number, got 'four'"),
        (5, "3,7,4.0", "missing field 'timestamp'"),
        (5, "3,7,4.0,1200000000,9", "malformed line"),
        (5, "", "missing field 'userId'"),
        (5, "3,7,5.5,1200000000", "rating 5.5 is not a half star"),
        (5, "3,7,0.25,1200000000", "rating 0.25 is not a half star"),
        (5, "3,99999,4.0,1200000000", "movie id 99999 is not in movies.csv"),
        (1, "user,movie,rating,timestamp", "header must be userId,movieId,rating,timestamp"),
    ],
)
def test_bad_csv_ratings_name_file_and_line(ml25m_dir, tmp_path, line, text, match):
    source = _copy(ml25m_dir, tmp_path)
    _edit_line(source / "ratings.csv", line, text)
    with pytest.raises(DataFormatError, match=match) as error:
        MovieLens25M(tmp_path / "root", source_dir=source, log=False)
    assert error.value.path.endswith("ratings.csv") and error.value.line == line


def test_repeated_pair_names_the_repeat(ml25m_dir, tmp_path):
    source = _copy(ml25m_dir, tmp_path)
    lines = (source / "ratings.csv").read_text().splitlines()
    user, movie = lines[3].split(",")[:2]
    _edit_line(source / "ratings.csv", 9, f"{user},{movie},3.0,1300000000")
    with pytest.raises(DataFormatError, match="rated a second time") as error:
        MovieLens25M(tmp_path / "root", source_dir=source, log=False)
    assert error.value.line == 9


@pytest.mark.parametrize(
    "file, line, text, match",
    [
        ("ratings.dat", 3, "1::3::4.5", "missing field 'time'"),
        ("ratings.dat", 3, "1::3:4.5::99", "expected 4 '::'-separated columns"),
        ("ratings.dat", 3, "1::x::4.5::99", "movie must be a number, got 'x'"),
        ("ratings.dat", 3, "1::3::7::99", "rating 7 is not a half star"),
        ("movies.dat", 2, "3::No Genres", "expected 3 '::'-separated columns"),
        ("movies.dat", 2, "1::Again (1999)::Drama", "duplicate movie id 1"),
    ],
)
def test_bad_dat_lines_name_file_and_line(ml10m_dir, tmp_path, file, line, text, match):
    source = _copy(ml10m_dir, tmp_path)
    _edit_line(source / file, line, text)
    with pytest.raises(DataFormatError, match=match) as error:
        MovieLens10M(tmp_path / "root", source_dir=source, log=False)
    assert error.value.path.endswith(file) and error.value.line == line


def test_ratings_reader_dtypes(ml25m_dir):
    table = read_ratings_csv(ml25m_dir / "ratings.csv")
    assert len(table) == NUM_RATINGS and table.rating.dtype == np.float32 and table.first_line == 2
    frame = pd.read_csv(ml25m_dir / "ratings.csv")
    np.testing.assert_array_equal(table.user, frame["userId"].to_numpy())
