"""MovieLens-100k as a PyG :class:`InMemoryDataset` of one bipartite rating graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnnrec.data.base import RatingGraphDataset, movie_features, year_range
from gnnrec.data.parsing import (
    RatingTable,
    check_no_repeated_ratings,
    map_ids,
    read_movies,
    read_names,
    read_ratings,
    read_users,
)
from gnnrec.data.partition import random_split
from gnnrec.data.user_features import ML100KUserFeatures

PREDEFINED_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
SPLITS = (*PREDEFINED_SPLITS, "random")
BASE_FILES = ("u.data", "u.item", "u.user", "u.genre", "u.occupation")


class MovieLens100K(RatingGraphDataset):
    r"""MovieLens-100k (943 users, 1,682 movies, 100,000 ratings 1–5) as a rating graph.

    ``dataset[0]`` is a :class:`~torch_geometric.data.HeteroData` with node types
    ``user`` (features: min–max age, is-female, occupation one-hot) and ``movie``
    (19 genre flags, min–max release year, missing-date flag), the edge type
    ``('user', 'rates', 'movie')`` and its reverse ``('movie', 'rated_by', 'user')``.
    Message edges (``edge_index``, ``rating``, ``time``) are the training ratings
    only; supervision edges are ``{train,val,test}_edge_label_index`` and
    ``{train,val,test}_edge_label`` on the ``rates`` edge type.
    :meth:`rating_split` wraps it in a :class:`~gnnrec.data.RatingSplit`.

    Raw files are looked up, in order, in ``source_dir``, in ``$GNNREC_ML100K_DIR``,
    in ``root/raw/ml-100k``; otherwise the official zip is downloaded there and its
    MD5 checked. Processed graphs go to ``root/processed`` under a name that
    includes a fingerprint of the raw files, so a changed file is never served stale.

    Args:
        root: writable dataset root (default ``$GNNREC_HOME/datasets/ml-100k``).
        split: ``u1``..``u5``, ``ua``, ``ub`` (the files shipped with the data) or
            ``random`` (a seeded split of ``u.data`` with ``test_fraction`` test).
        source_dir: a directory holding the raw MovieLens-100k files.
        val_fraction: share of each user's training ratings carved out for validation.
        seed: seed of the validation carve-out and of the ``random`` split.
        test_fraction: test share of the ``random`` split.
        download: allow downloading the zip when no local copy is found.
    """

    url = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    md5 = "0e33842e24a9c977be4e0107933c0723"
    env_var = "GNNREC_ML100K_DIR"
    name = "ml-100k"
    display_name = "MovieLens-100k"
    splits = SPLITS
    default_split = "u1"

    raw_folder = "ml-100k"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str | None = None,
        *,
        test_fraction: float = 0.2,
        download: bool = True,
        **common: Any,
    ) -> None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        self.test_fraction = float(test_fraction)
        self.allow_download = download
        super().__init__(root, split, **common)

    @property
    def raw_file_names(self) -> list[str]:
        if self.split in PREDEFINED_SPLITS:
            return [*BASE_FILES, f"{self.split}.base", f"{self.split}.test"]
        return list(BASE_FILES)

    def _settings(self) -> dict:
        return {
            "split": self.split,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "test_fraction": self.test_fraction if self.split == "random" else None,
        }

    def process(self) -> None:
        raw = Path(self.raw_dir)
        occupations = read_names(raw / "u.occupation")
        genres = read_names(raw / "u.genre", sep="|")
        users = read_users(raw / "u.user", occupations)
        movies = read_movies(raw / "u.item", genres)

        def indexed(table: RatingTable) -> tuple[np.ndarray, ...]:
            u, m = map_ids(table, users.raw_id, movies.raw_id, "u.user", "u.item")
            return u, m, table.rating, table.time

        if self.split in PREDEFINED_SPLITS:
            base = read_ratings(raw / f"{self.split}.base")
            test_table = read_ratings(raw / f"{self.split}.test")
            train_all, test = indexed(base), indexed(test_table)
            seen: dict[int, str] = {}
            check_no_repeated_ratings(base, seen, len(movies.raw_id), train_all[0], train_all[1])
            check_no_repeated_ratings(test_table, seen, len(movies.raw_id), test[0], test[1])
        else:
            table = read_ratings(raw / "u.data")
            every = indexed(table)
            check_no_repeated_ratings(table, {}, len(movies.raw_id), every[0], every[1])
            train_pos, test_pos = random_split(len(table), self.test_fraction, self.seed)
            train_all = tuple(a[train_pos] for a in every)
            test = tuple(a[test_pos] for a in every)

        data = self._build(
            self._user_features(users, occupations),
            movie_features(movies.genres, movies.year),
            train_all,
            test,
            [1.0, 2.0, 3.0, 4.0, 5.0],
        )
        data["user"].raw_id = torch.from_numpy(users.raw_id)
        data["user"].age = torch.from_numpy(users.age)
        data["user"].gender = users.gender
        data["user"].occupation = users.occupation
        data["user"].zip_code = users.zip_code
        data["movie"].raw_id = torch.from_numpy(movies.raw_id)
        data["movie"].title = movies.title
        data["movie"].release_date = movies.release_date
        data["movie"].year = torch.from_numpy(movies.year)
        data["movie"].genre = torch.from_numpy(movies.genres)
        data.genre_names = genres
        data.occupation_names = occupations
        data.age_range = torch.tensor([float(users.age.min()), float(users.age.max())])
        data.user_layout = ML100KUserFeatures(float(users.age.min()), float(users.age.max()), occupations).spec()
        data.year_range = year_range(movies.year)
        self._save_graph(data)

    @staticmethod
    def user_feature_vector(
        age: float, gender: str, occupation: str, occupations: list[str], age_range
    ) -> torch.Tensor:
        """Feature row of one person: ``[min–max age, is_female, occupation one-hot]``."""
        low, high = float(age_range[0]), float(age_range[1])
        row = torch.zeros(2 + len(occupations))
        row[0] = (float(age) - low) / max(high - low, 1.0)
        row[1] = 1.0 if gender == "F" else 0.0
        row[2 + occupations.index(occupation)] = 1.0
        return row

    def _user_features(self, users, occupations: list[str]) -> torch.Tensor:
        age_range = (users.age.min(), users.age.max())
        rows = [
            self.user_feature_vector(a, g, o, occupations, age_range)
            for a, g, o in zip(users.age.tolist(), users.gender, users.occupation, strict=True)
        ]
        return torch.stack(rows)
