"""MovieLens-10M, -20M and -25M as rating graphs, parsed with vectorised readers.

Ratings files have 10–25 million lines, so they are read with pandas' C parser into
typed columns; a bad line is found after parsing (a parse failure, a NaN or an
out-of-range value) and reported with its file and 1-based line number, as the
small loaders do. The module is over 300 lines because the three datasets share
the readers, the id mapping and the ``random``/``temporal`` splits.

One module over ~400 lines on purpose: the three large MovieLens formats share their vectorised readers,
splits and graph builder, which only these loaders use.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import download_url

from gnnrec.data.base import RatingGraphDataset, fetch_zip, movie_features, year_range
from gnnrec.data.errors import DataFormatError
from gnnrec.data.parsing import iter_rows, parse_int
from gnnrec.data.partition import random_split

LARGE_SPLITS = ("random", "temporal")
HALF_STARS = [x / 2 for x in range(1, 11)]  # 0.5, 1.0, ..., 5.0
NO_GENRES = "(no genres listed)"
TEST_FRACTION = 0.1
_YEAR = r"\((\d{4})\)\s*$"
_PANDAS_LINE = re.compile(r"line (\d+)")


@dataclass
class Ratings:
    """Parsed ratings with raw ids; row ``i`` sits on line ``i + first_line`` of ``path``."""

    path: Path
    user: np.ndarray  # int64 raw ids
    movie: np.ndarray  # int64 raw ids
    rating: np.ndarray  # float32
    time: np.ndarray  # int64 seconds
    first_line: int

    def __len__(self) -> int:
        return len(self.rating)

    def line(self, row: int) -> int:
        return int(row) + self.first_line


@dataclass
class Movies:
    path: Path
    raw_id: np.ndarray
    title: list[str]
    year: np.ndarray  # 0 where the title carries no "(yyyy)"
    genres: np.ndarray  # [num_movies, len(genre_names)] 0/1
    genre_names: list[str]


def _read_table(path: Path, read: Callable[..., pd.DataFrame], **kwargs) -> pd.DataFrame:
    """Run a pandas reader, turning its tokenising errors into :class:`DataFormatError` with the line."""
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        return read(path, **kwargs)
    except pd.errors.ParserError as error:
        match = _PANDAS_LINE.search(str(error))
        raise DataFormatError(path, f"malformed line ({error})", int(match.group(1)) if match else None) from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, "file is empty") from None


def _first_bad(frame: pd.DataFrame, columns: list[str], path: Path, first_line: int) -> None:
    """Raise for the first row (blank lines included) with a missing or non-numeric field among ``columns``."""
    first, reason = len(frame), ""
    for name in columns:
        text = frame[name]
        bad = np.flatnonzero(pd.to_numeric(text, errors="coerce").isna().to_numpy())
        if len(bad) and bad[0] < first:
            first = int(bad[0])
            value = text.iloc[first]
            reason = f"missing field {name!r}" if pd.isna(value) else f"{name} must be a number, got {value!r}"
    if first < len(frame):
        raise DataFormatError(path, reason, first + first_line)
    raise DataFormatError(path, "could not parse the file")


def _check_ratings(table: Ratings, names: tuple[str, str, str, str]) -> Ratings:
    """Vectorised checks: integer ids and time, ratings on the half-star scale 0.5..5."""
    for values, name in zip((table.user, table.movie, table.time), (names[0], names[1], names[3]), strict=True):
        bad = np.flatnonzero(values < 0)
        if len(bad):
            raise DataFormatError(table.path, f"{name} must be non-negative, got {values[bad[0]]}", table.line(bad[0]))
    doubled = table.rating * 2
    bad = np.flatnonzero((doubled != np.rint(doubled)) | (doubled < 1) | (doubled > 10))
    if len(bad):
        raise DataFormatError(
            table.path, f"rating {table.rating[bad[0]]:g} is not a half star in 0.5..5", table.line(bad[0])
        )
    if len(table) == 0:
        raise DataFormatError(table.path, "file has no ratings")
    return table


def read_ratings_csv(path: str | Path) -> Ratings:
    """Read ML-20M/25M ``ratings.csv`` (header ``userId,movieId,rating,timestamp``)."""
    path = Path(path)
    names = ["userId", "movieId", "rating", "timestamp"]
    kwargs = dict(engine="c", header=0, names=names, skip_blank_lines=False)
    try:
        frame = _read_table(
            path, pd.read_csv, dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float32,
                                      "timestamp": np.int64}, **kwargs
        )  # fmt: skip
    except (ValueError, TypeError) as error:
        if isinstance(error, DataFormatError):
            raise
        _first_bad(_read_table(path, pd.read_csv, dtype=str, **kwargs), names, path, 2)
    _check_header(path, names)
    table = Ratings(path, *(frame[n].to_numpy() for n in names), first_line=2)  # type: ignore[arg-type]
    return _check_ratings(table, tuple(names))  # type: ignore[arg-type]


def _check_header(path: Path, expected: list[str]) -> None:
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline().strip().split(",")
    if header != expected:
        raise DataFormatError(path, f"header must be {','.join(expected)}, got {','.join(header)}", 1)


def read_ratings_dat(path: str | Path) -> Ratings:
    """Read ML-10M ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``, no header).

    Read with ``:`` as separator, which keeps pandas on its C parser; the empty
    in-between columns must then be empty on every line.
    """
    path = Path(path)
    names = ["user", "gap1", "movie", "gap2", "rating", "gap3", "time"]
    gaps = ["gap1", "gap2", "gap3"]
    kwargs = dict(engine="c", sep=":", header=None, names=names, skip_blank_lines=False, quoting=3)
    fast = {"user": np.int64, "movie": np.int64, "rating": np.float32, "time": np.int64}
    try:
        frame = _read_table(path, pd.read_csv, dtype={**fast, **dict.fromkeys(gaps, np.float32)}, **kwargs)
    except (ValueError, TypeError) as error:
        if isinstance(error, DataFormatError):
            raise
        frame = _read_table(path, pd.read_csv, dtype=str, **kwargs)
    filled = np.flatnonzero(frame[gaps].notna().to_numpy().any(axis=1))
    if len(filled):
        raise DataFormatError(path, "expected 4 '::'-separated columns", int(filled[0]) + 1)
    if frame["user"].dtype != np.int64:  # read as text: the fast read failed on a field
        _first_bad(frame, list(fast), path, 1)
    table = Ratings(path, *(frame[n].to_numpy() for n in fast), first_line=1)  # type: ignore[index]
    return _check_ratings(table, ("user id", "movie id", "rating", "timestamp"))


def _genre_matrix(path: Path, genre_lists: list[str], lines: list[int]) -> tuple[np.ndarray, list[str]]:
    """0/1 flags over the sorted genres the file uses; ``(no genres listed)`` gives an all-zero row."""
    split = [g.split("|") if g != NO_GENRES else [] for g in genre_lists]
    for parts, line in zip(split, lines, strict=True):
        if any(not g.strip() for g in parts):
            raise DataFormatError(path, "empty genre name", line)
    names = sorted({g for parts in split for g in parts})
    column = {g: i for i, g in enumerate(names)}
    flags = np.zeros((len(split), len(names)), dtype=np.int64)
    rows = [i for i, parts in enumerate(split) for _ in parts]
    cols = [column[g] for parts in split for g in parts]
    flags[rows, cols] = 1
    return flags, names


def _movies(path: Path, ids: np.ndarray, titles: list[str], genres: list[str], lines: list[int]) -> Movies:
    order = np.argsort(ids, kind="stable")
    repeat = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(repeat):
        row = int(order[repeat[0] + 1])
        raise DataFormatError(path, f"duplicate movie id {ids[row]}", lines[row])
    year = pd.Series(titles, dtype=object).str.extract(_YEAR)[0].fillna(0).astype(np.int64).to_numpy()
    flags, names = _genre_matrix(path, genres, lines)
    return Movies(path, ids, titles, year, flags, names)


def read_movies_csv(path: str | Path) -> Movies:
    """Read ML-20M/25M ``movies.csv`` (header ``movieId,title,genres``; titles may be quoted)."""
    path = Path(path)
    names = ["movieId", "title", "genres"]
    frame = _read_table(path, pd.read_csv, engine="c", header=0, names=names, dtype=str, keep_default_na=False)
    _check_header(path, names)
    lines = list(range(2, len(frame) + 2))
    ids = pd.to_numeric(frame["movieId"], errors="coerce")
    bad = np.flatnonzero(ids.isna().to_numpy() | (frame["genres"] == "").to_numpy())
    if len(bad):
        row = int(bad[0])
        raise DataFormatError(path, f"bad movieId {frame['movieId'].iloc[row]!r} or empty genres", lines[row])
    return _movies(path, ids.to_numpy(np.int64), frame["title"].tolist(), frame["genres"].tolist(), lines)


def read_movies_dat(path: str | Path, encoding: str = "latin-1") -> Movies:
    """Read ML-10M ``movies.dat`` (``MovieID::Title (yyyy)::Genre|Genre``; ~10k lines, so read line by line)."""
    path = Path(path)
    ids, titles, genres, lines = [], [], [], []
    for number, (mid, title, genre) in iter_rows(path, "::", 3, encoding):
        ids.append(parse_int(mid, path, number, "movie id"))
        titles.append(title)
        genres.append(genre)
        lines.append(number)
    return _movies(path, np.asarray(ids, dtype=np.int64), titles, genres, lines)


def dense_ids(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted distinct ids, 0-based index of each entry)`` like ``np.unique(return_inverse=True)``.

    For the small non-negative ids of MovieLens a presence table does this in linear
    time instead of sorting 25M values.
    """
    top = int(raw.max()) if len(raw) else 0
    if top > 50 * len(raw) + 1_000_000:
        distinct, index = np.unique(raw, return_inverse=True)
        return distinct, index.astype(np.int32)
    present = np.zeros(top + 1, dtype=bool)
    present[raw] = True
    distinct = np.flatnonzero(present)
    position = np.cumsum(present, dtype=np.int64) - 1
    return distinct, position[raw].astype(np.int32)


def check_unique_pairs(path: Path, user: np.ndarray, movie: np.ndarray, num_movies: int, first_line: int) -> None:
    """Raise, naming the line of the repeat, if a (user, movie) pair is rated twice."""
    keys = user.astype(np.int64) * num_movies + movie
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeat = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if len(repeat):
        row = int(order[repeat + 1].min())
        raise DataFormatError(path, "this (user, movie) pair is repeated: rated a second time", row + first_line)


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
        fetch_zip(self.url, self.md5, raw_root, self.raw_folder, self.raw_dir, download_url, log=self.log)

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
