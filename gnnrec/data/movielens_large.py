"""MovieLens-10M, -20M and -25M as rating graphs: downloads, the ``random``/``temporal`` splits and the
graph builder they share; the vectorised file readers are in :mod:`gnnrec.data.movielens_large_files`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import download_url

from gnnrec.data.base import RatingGraphDataset, fetch_zip, movie_features, year_range
from gnnrec.data.errors import DataFormatError
from gnnrec.data.movielens_large_files import (
    HALF_STARS,
    Movies,
    Ratings,
    check_unique_pairs,
    dense_ids,
    read_movies_csv,
    read_movies_dat,
    read_ratings_csv,
    read_ratings_dat,
)
from gnnrec.data.partition import random_split

LARGE_SPLITS = ("random", "temporal")
TEST_FRACTION = 0.1


def temporal_split(user: np.ndarray, time: np.ndarray, test_fraction: float = TEST_FRACTION):
    """Positions of train and test: each user's latest ``round(test_fraction * n_u)`` ratings go to test.

    Ties in time keep file order; every user keeps at least one training rating.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    order = np.lexsort((np.arange(len(user)), time, user))
    sorted_user = user[order]
    starts = np.flatnonzero(np.r_[True, sorted_user[1:] != sorted_user[:-1]])
    counts = np.diff(np.r_[starts, len(user)])
    rank_from_end = np.repeat(starts + counts, counts) - np.arange(len(user))  # 1 for each user's latest
    quota = np.minimum(np.rint(counts * test_fraction).astype(np.int64), counts - 1)
    is_test = np.zeros(len(user), dtype=bool)
    is_test[order] = rank_from_end <= np.repeat(quota, counts)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def split_positions(split: str, user: np.ndarray, time: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test positions of the ``random`` (seeded 90/10) or ``temporal`` split."""
    if split == "random":
        return random_split(len(user), TEST_FRACTION, seed)
    if split == "temporal":
        return temporal_split(user, time)
    raise ValueError(f"unknown split {split!r}; choose one of {', '.join(LARGE_SPLITS)}")


class LargeMovieLens(RatingGraphDataset):
    r"""Shared loader of MovieLens-10M/20M/25M: half-star ratings 0.5–5, movie genres and year.

    ``dataset[0]`` is laid out like :class:`~gnnrec.data.MovieLens1M`'s graph: node types
    ``user`` (no features: a constant 1 per user, as the Monti datasets) and ``movie``
    (genre flags over the genres the file uses, min–max year from the title's "(yyyy)",
    missing-year flag), ``('user', 'rates', 'movie')`` with the training ratings as
    message edges and its reverse, supervision edges ``{train,val,test}_edge_label_*``.
    Nodes are the users and movies that occur in the ratings file, in ascending raw-id order.

    Splits: ``random`` (seeded 90/10 with ``seed``) and ``temporal`` (each user's latest
    10% of ratings by timestamp are test); then ``val_fraction`` of each user's training
    ratings go to validation (``seed``).

    Raw files are looked up in ``source_dir``, ``$<env_var>``, ``root/raw/<raw_folder>``;
    otherwise the official zip is downloaded there and its MD5 checked.
    """

    url: str
    md5: str
    title: str
    ratings_file: str
    movies_file: str
    splits = LARGE_SPLITS
    default_split = "random"

    def __init__(
        self, root: str | Path | None = None, split: str | None = None, *, download: bool = True, **common: Any
    ) -> None:
        self.allow_download = download
        super().__init__(root, split, **common)

    @property
    def raw_file_names(self) -> list[str]:
        return [self.ratings_file, self.movies_file]

    @property
    def fingerprint(self) -> str:
        """MD5 of the raw files (streamed: ratings files are up to 650 MB) plus the split settings."""
        if self._fingerprint is None:
            digest = hashlib.md5()
            for path in map(Path, self.raw_paths):
                digest.update(path.name.encode())
                with path.open("rb") as handle:
                    while chunk := handle.read(1 << 24):
                        digest.update(chunk)
            digest.update(repr(sorted(self._settings().items())).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def _settings(self) -> dict:
        return {"split": self.split, "val_fraction": self.val_fraction, "seed": self.seed, "test_fraction": 0.1}

    def download(self) -> None:
        if self._source_dir is not None:
            raise DataFormatError(self._source_dir, f"missing {self.title} files: {', '.join(self._missing_files())}")
        if not self.allow_download:
            raise DataFormatError(
                self.raw_dir, f"{self.title} not found; pass source_dir, set ${self.env_var}, or allow download"
            )
        raw_root = os.path.join(self.root, "raw")
        fetch_zip(
            self.url, self.md5, raw_root, self.raw_folder, self.raw_dir, download_url, log=self.log,
            instead=self.download_hint(),
        )  # fmt: skip

    def read(self) -> tuple[Ratings, Movies]:
        """Parse the raw ratings and movies files."""
        raise NotImplementedError

    def process(self) -> None:
        table, movies = self.read()
        listed = np.isin(table.movie, movies.raw_id)
        if not listed.all():
            row = int(np.flatnonzero(~listed)[0])
            raise DataFormatError(
                table.path, f"movie id {table.movie[row]} is not in {self.movies_file}", table.line(row)
            )
        rated_users, user = dense_ids(table.user)
        rated_movies, movie = dense_ids(table.movie)
        check_unique_pairs(table.path, user, movie, len(rated_movies), table.first_line)
        by_id = np.argsort(movies.raw_id)
        movie_rows = by_id[np.searchsorted(movies.raw_id, rated_movies, sorter=by_id)]
        year = movies.year[movie_rows]
        data = build_large_graph(self, user, movie, table.rating, table.time, len(rated_users), movies, movie_rows)
        data["user"].raw_id = torch.from_numpy(rated_users)
        data["movie"].raw_id = torch.from_numpy(rated_movies)
        data["movie"].title = [movies.title[i] for i in movie_rows]
        data["movie"].year = torch.from_numpy(year)
        data.year_range = year_range(year)
        data.num_unrated_movies = len(movies.raw_id) - len(rated_movies)
        self._save_graph(data)


def build_large_graph(
    dataset: RatingGraphDataset,
    user: np.ndarray,
    movie: np.ndarray,
    rating: np.ndarray,
    time: np.ndarray,
    num_users: int,
    movies: Movies,
    movie_rows: np.ndarray,
    levels: list[float] = HALF_STARS,
):
    """Split the ratings (``dataset.split``/``seed``), carve validation and build the graph."""
    train_pos, test_pos = split_positions(dataset.split, user, time, dataset.seed)
    every = (user, movie, rating, time)
    train_all = tuple(a[train_pos] for a in every)
    test = tuple(a[test_pos] for a in every)
    del train_pos, test_pos
    genres = movies.genres[movie_rows]
    data = dataset._build(
        torch.ones(num_users, 1), movie_features(genres, movies.year[movie_rows]), train_all, test, levels
    )
    data["movie"].genre = torch.from_numpy(genres)
    data.genre_names = list(movies.genre_names)
    return data


class MovieLens10M(LargeMovieLens):
    """MovieLens-10M (69,878 users, 10,677 rated movies, 10,000,054 half-star ratings); ``::`` files."""

    url = "https://files.grouplens.org/datasets/movielens/ml-10m.zip"
    md5 = "ce571fd55effeba0271552578f2648bd"
    env_var = "GNNREC_ML10M_DIR"
    name = "ml-10m"
    title = "MovieLens-10M"
    raw_folder = "ml-10M100K"
    ratings_file = "ratings.dat"
    movies_file = "movies.dat"

    def read(self) -> tuple[Ratings, Movies]:
        raw = Path(self.raw_dir)
        return read_ratings_dat(raw / self.ratings_file), read_movies_dat(raw / self.movies_file)


class MovieLens20M(LargeMovieLens):
    """MovieLens-20M (138,493 users, 26,744 rated movies, 20,000,263 half-star ratings); CSV files."""

    url = "https://files.grouplens.org/datasets/movielens/ml-20m.zip"
    md5 = "cd245b17a1ae2cc31bb14903e1204af3"
    env_var = "GNNREC_ML20M_DIR"
    name = "ml-20m"
    title = "MovieLens-20M"
    raw_folder = "ml-20m"
    ratings_file = "ratings.csv"
    movies_file = "movies.csv"

    def read(self) -> tuple[Ratings, Movies]:
        raw = Path(self.raw_dir)
        return read_ratings_csv(raw / self.ratings_file), read_movies_csv(raw / self.movies_file)


class MovieLens25M(MovieLens20M):
    """MovieLens-25M (162,541 users, 59,047 rated movies, 25,000,095 half-star ratings); CSV files."""

    url = "https://files.grouplens.org/datasets/movielens/ml-25m.zip"
    md5 = "6b51fb2759a8657d3bfcbfc42b592ada"
    env_var = "GNNREC_ML25M_DIR"
    name = "ml-25m"
    title = "MovieLens-25M"
    raw_folder = "ml-25m"
