"""MovieLens-1M as a PyG :class:`InMemoryDataset` of one bipartite rating graph."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnnrec.data.base import RatingGraphDataset, movie_features, year_range
from gnnrec.data.errors import DataFormatError
from gnnrec.data.parsing import (
    check_listed,
    check_no_repeated_ratings,
    check_unique,
    iter_rows,
    parse_int,
    read_ratings,
)
from gnnrec.data.partition import random_split
from gnnrec.data.user_features import ML1MUserFeatures

ML1M_SPLITS = ("random-90", "random-80")
ML1M_FILES = ("ratings.dat", "users.dat", "movies.dat")
GLOCAL_K_SEED = 1234  # the shuffle seed of GLocal-K's ML-1M loader
ENCODING = "latin-1"

GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
AGE_BUCKETS = [1, 18, 25, 35, 45, 50, 56]  # users.dat codes: under 18, 18-24, ..., 56+
OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
]  # fmt: skip
_YEAR = re.compile(r"\((\d{4})\)\s*$")


@dataclass
class ML1MUsers:
    path: Path
    raw_id: np.ndarray
    gender: list[str]
    age: np.ndarray  # the age-bucket code (1, 18, 25, ...)
    occupation: np.ndarray  # occupation code 0..20
    zip_code: list[str]


@dataclass
class ML1MMovies:
    path: Path
    raw_id: np.ndarray
    title: list[str]
    year: np.ndarray  # 0 where the title carries no "(yyyy)"
    genres: np.ndarray  # [num_movies, 18] 0/1


def read_ml1m_users(path: str | Path) -> ML1MUsers:
    """Read users.dat: ``UserID::Gender::Age::Occupation::Zip-code``."""
    path = Path(path)
    ids, lines, genders, ages, jobs, zips = [], [], [], [], [], []
    for number, (uid, gender, age, job, zip_code) in iter_rows(path, "::", 5, ENCODING):
        ids.append(parse_int(uid, path, number, "user id"))
        lines.append(number)
        if gender not in ("M", "F"):
            raise DataFormatError(path, f"gender must be 'M' or 'F', got {gender!r}", number)
        age_code = parse_int(age, path, number, "age")
        if age_code not in AGE_BUCKETS:
            raise DataFormatError(path, f"age must be one of the codes {AGE_BUCKETS}, got {age_code}", number)
        job_code = parse_int(job, path, number, "occupation")
        if not 0 <= job_code < len(OCCUPATIONS):
            raise DataFormatError(path, f"occupation must lie in 0..{len(OCCUPATIONS) - 1}, got {job_code}", number)
        genders.append(gender)
        ages.append(age_code)
        jobs.append(job_code)
        zips.append(zip_code)
    check_unique(path, ids, lines, "user id")
    return ML1MUsers(path, np.asarray(ids), genders, np.asarray(ages), np.asarray(jobs), zips)


def read_ml1m_movies(path: str | Path) -> ML1MMovies:
    """Read movies.dat: ``MovieID::Title (yyyy)::Genre|Genre|...``."""
    path = Path(path)
    ids, lines, titles, years, flags = [], [], [], [], []
    for number, (mid, title, genres) in iter_rows(path, "::", 3, ENCODING):
        ids.append(parse_int(mid, path, number, "movie id"))
        lines.append(number)
        titles.append(title)
        match = _YEAR.search(title)
        years.append(int(match.group(1)) if match else 0)
        row = np.zeros(len(GENRES), dtype=np.int64)
        for genre in genres.split("|"):
            if genre not in GENRES:
                raise DataFormatError(path, f"unknown genre {genre!r}; valid: {', '.join(GENRES)}", number)
            row[GENRES.index(genre)] = 1
        flags.append(row)
    check_unique(path, ids, lines, "movie id")
    return ML1MMovies(path, np.asarray(ids), titles, np.asarray(years), np.stack(flags))


def glocal_k_split(num_ratings: int, test_fraction: float = 0.1, seed: int = GLOCAL_K_SEED):
    """Positions (in file order) of the train and test ratings of GLocal-K's ML-1M protocol.

    The notebook seeds NumPy's global generator with ``seed``, shuffles ``arange(n)``
    and sends the first ``int(test_fraction * n)`` shuffled positions to test.
    ``RandomState(seed).shuffle`` draws the same permutation without touching global state.
    """
    order = np.arange(num_ratings)
    np.random.RandomState(seed).shuffle(order)
    num_test = int(test_fraction * num_ratings)
    return np.sort(order[num_test:]), np.sort(order[:num_test])


class MovieLens1M(RatingGraphDataset):
    r"""MovieLens-1M (6,040 users, 3,706 rated movies, 1,000,209 ratings 1–5) as a rating graph.

    ``dataset[0]`` is a :class:`~torch_geometric.data.HeteroData` laid out like
    :class:`~gnnrec.data.MovieLens100K`'s: node types ``user`` (features: is-female,
    age-bucket one-hot (7), occupation one-hot (21)) and ``movie`` (18 genre flags,
    min–max year from the title's "(yyyy)", missing-year flag), edge type
    ``('user', 'rates', 'movie')`` with the training ratings as message edges and its
    reverse ``('movie', 'rated_by', 'user')``, supervision edges
    ``{train,val,test}_edge_label_index`` / ``_edge_label``.

    Nodes are the users and movies that occur in ``ratings.dat``, indexed in ascending
    raw-id order — as in GLocal-K's loader, whose matrix has 3,706 movies. The 177
    movies listed in ``movies.dat`` without a rating are left out (their number is kept
    in ``graph.num_unrated_movies``).

    Splits:

    * ``random-90`` — GLocal-K's protocol: ``ratings.dat`` in file order, shuffled with
      NumPy seed 1234 (fixed, whatever ``seed`` is); the first 10% of the shuffled
      positions (``int(0.1 * n)`` = 100,020) are test, the rest train.
    * ``random-80`` — a seeded 80/20 split (``seed``) via :func:`gnnrec.data.partition.random_split`.

    Each then gives ``val_fraction`` of every user's training ratings to validation
    (:func:`~gnnrec.data.partition.carve_validation`, ``seed``).

    Raw files are looked up in ``source_dir``, ``$GNNREC_ML1M_DIR``, ``root/raw/ml-1m``;
    otherwise the official zip is downloaded there and its MD5 checked.

    Args:
        root: writable dataset root (default ``$GNNREC_HOME/datasets/ml-1m``).
        split: ``random-90`` (default) or ``random-80``.
        source_dir: a directory holding ``ratings.dat``, ``users.dat`` and ``movies.dat``.
        val_fraction: share of each user's training ratings carved out for validation.
        seed: seed of the validation carve-out and of the ``random-80`` split.
        download: allow downloading the zip when no local copy is found.
    """

    url = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    md5 = "c4d9eecfca2ab87c1945afe126590906"
    env_var = "GNNREC_ML1M_DIR"
    name = "ml-1m"
    display_name = "MovieLens-1M"
    raw_folder = "ml-1m"
    splits = ML1M_SPLITS
    default_split = "random-90"
    genre_names = GENRES
    occupation_names = OCCUPATIONS
    age_buckets = AGE_BUCKETS

    def __init__(
        self, root: str | Path | None = None, split: str | None = None, *, download: bool = True, **common: Any
    ) -> None:
        self.allow_download = download
        super().__init__(root, split, **common)

    @property
    def raw_file_names(self) -> list[str]:
        return list(ML1M_FILES)

    def _settings(self) -> dict:
        return {
            "split": self.split,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "test_fraction": 0.1 if self.split == "random-90" else 0.2,
            "shuffle_seed": GLOCAL_K_SEED if self.split == "random-90" else self.seed,
        }

    def process(self) -> None:
        raw = Path(self.raw_dir)
        users = read_ml1m_users(raw / "users.dat")
        movies = read_ml1m_movies(raw / "movies.dat")
        table = read_ratings(raw / "ratings.dat", sep="::", encoding=ENCODING)

        # Nodes: rated users and movies in ascending id order; unknown ids name their line.
        check_listed(table, table.user, users.raw_id, "user", "users.dat")
        check_listed(table, table.movie, movies.raw_id, "movie", "movies.dat")
        user_order, movie_order = np.argsort(users.raw_id), np.argsort(movies.raw_id)
        rated_users, user = np.unique(table.user, return_inverse=True)
        rated_movies, movie = np.unique(table.movie, return_inverse=True)
        check_no_repeated_ratings(table, {}, len(rated_movies), user, movie)
        user_rows = user_order[np.searchsorted(users.raw_id[user_order], rated_users)]
        movie_rows = movie_order[np.searchsorted(movies.raw_id[movie_order], rated_movies)]

        every = (user, movie, table.rating, table.time)
        if self.split == "random-90":
            train_pos, test_pos = glocal_k_split(len(table))
        else:
            train_pos, test_pos = random_split(len(table), 0.2, self.seed)
        train_all = tuple(a[train_pos] for a in every)
        test = tuple(a[test_pos] for a in every)

        year = movies.year[movie_rows]
        data = self._build(
            self._user_features(users, user_rows),
            movie_features(movies.genres[movie_rows], year),
            train_all,
            test,
            [1.0, 2.0, 3.0, 4.0, 5.0],
        )
        data["user"].raw_id = torch.from_numpy(rated_users)
        data["user"].gender = [users.gender[i] for i in user_rows]
        data["user"].age = torch.from_numpy(users.age[user_rows])
        data["user"].occupation = torch.from_numpy(users.occupation[user_rows])
        data["user"].zip_code = [users.zip_code[i] for i in user_rows]
        data["movie"].raw_id = torch.from_numpy(rated_movies)
        data["movie"].title = [movies.title[i] for i in movie_rows]
        data["movie"].year = torch.from_numpy(year)
        data["movie"].genre = torch.from_numpy(movies.genres[movie_rows])
        data.genre_names = list(GENRES)
        data.occupation_names = list(OCCUPATIONS)
        data.age_buckets = torch.tensor(AGE_BUCKETS)
        data.user_layout = ML1MUserFeatures(AGE_BUCKETS, OCCUPATIONS).spec()
        data.year_range = year_range(year)
        data.num_unrated_movies = len(movies.raw_id) - len(rated_movies)
        data.num_unrated_users = len(users.raw_id) - len(rated_users)
        self._save_graph(data)

    @staticmethod
    def user_feature_vector(gender: str, age: int, occupation: int) -> torch.Tensor:
        """Feature row of one person: ``[is_female, age-bucket one-hot (7), occupation one-hot (21)]``."""
        if gender not in ("M", "F"):
            raise ValueError(f"gender must be 'M' or 'F', got {gender!r}")
        if age not in AGE_BUCKETS:
            raise ValueError(f"age must be one of the codes {AGE_BUCKETS}, got {age}")
        if not 0 <= occupation < len(OCCUPATIONS):
            raise ValueError(f"occupation must lie in 0..{len(OCCUPATIONS) - 1}, got {occupation}")
        row = torch.zeros(1 + len(AGE_BUCKETS) + len(OCCUPATIONS))
        row[0] = 1.0 if gender == "F" else 0.0
        row[1 + AGE_BUCKETS.index(age)] = 1.0
        row[1 + len(AGE_BUCKETS) + occupation] = 1.0
        return row

    def _user_features(self, users: ML1MUsers, rows: np.ndarray) -> torch.Tensor:
        if len(rows) == 0:
            return torch.zeros(0, 1 + len(AGE_BUCKETS) + len(OCCUPATIONS))
        return torch.stack(
            [self.user_feature_vector(users.gender[i], int(users.age[i]), int(users.occupation[i])) for i in rows]
        )
