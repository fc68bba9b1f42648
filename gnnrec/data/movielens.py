"""MovieLens-100k as a PyG :class:`InMemoryDataset` of one bipartite rating graph."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData, InMemoryDataset, download_url, extract_zip

from gnnrec.data.errors import DataFormatError
from gnnrec.data.graph import RATES, build_rating_graph, fingerprint_files
from gnnrec.data.parsing import RatingTable, map_ids, read_movies, read_names, read_ratings, read_users
from gnnrec.data.splits import carve_validation, random_split
from gnnrec.utils import atomic_path, gnnrec_home

PREDEFINED_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
SPLITS = (*PREDEFINED_SPLITS, "random")
BASE_FILES = ("u.data", "u.item", "u.user", "u.genre", "u.occupation")


def _duplicate_check(table: RatingTable, seen: dict[int, str], num_movies: int, users, movies) -> None:
    """Refuse a (user, movie) pair that is rated twice, naming the line of the repeat."""
    for row, key in enumerate((users * num_movies + movies).tolist()):
        if key in seen:
            raise DataFormatError(
                table.path,
                f"user {table.user[row]} rates movie {table.movie[row]} again (already in {seen[key]})",
                int(table.line[row]),
            )
        seen[key] = f"{table.path.name} line {table.line[row]}"


class MovieLens100K(InMemoryDataset):
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
    splits = SPLITS
    default_split = "u1"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "u1",
        *,
        source_dir: str | Path | None = None,
        val_fraction: float = 0.05,
        seed: int = 0,
        test_fraction: float = 0.2,
        download: bool = True,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        self.split = split
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)
        self.test_fraction = float(test_fraction)
        self.allow_download = download
        self._source_dir = self._find_source(source_dir)
        self._fingerprint: str | None = None
        root = Path(root) if root is not None else gnnrec_home() / "datasets" / self.name
        super().__init__(str(root), transform, pre_transform, force_reload=force_reload, log=log)
        self.load(self.processed_paths[0], data_cls=HeteroData)

    def _find_source(self, source_dir: str | Path | None) -> Path | None:
        for origin, candidate in (("source_dir", source_dir), (self.env_var, os.environ.get(self.env_var))):
            if candidate:
                path = Path(candidate).expanduser()
                if not path.is_dir():
                    raise DataFormatError(path, f"directory given by {origin} does not exist")
                return path
        return None

    @property
    def raw_dir(self) -> str:
        if self._source_dir is not None:
            return str(self._source_dir)
        return os.path.join(self.root, "raw", "ml-100k")

    @property
    def raw_file_names(self) -> list[str]:
        if self.split in PREDEFINED_SPLITS:
            return [*BASE_FILES, f"{self.split}.base", f"{self.split}.test"]
        return list(BASE_FILES)

    @property
    def fingerprint(self) -> str:
        """MD5 of the raw files this split is built from, plus the split settings."""
        if self._fingerprint is None:
            digest = hashlib.md5(fingerprint_files([Path(p) for p in self.raw_paths]).encode())
            digest.update(repr(self._settings()).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def _settings(self) -> tuple:
        test = self.test_fraction if self.split == "random" else None
        return (self.split, self.val_fraction, self.seed, test)

    @property
    def processed_file_names(self) -> list[str]:
        return [f"{self.split}-{self.fingerprint[:16]}.pt"]

    def download(self) -> None:
        if self._source_dir is not None:
            missing = [f for f in self.raw_file_names if not (self._source_dir / f).is_file()]
            raise DataFormatError(self._source_dir, f"missing MovieLens-100k files: {', '.join(missing)}")
        if not self.allow_download:
            raise DataFormatError(
                self.raw_dir,
                f"MovieLens-100k not found; pass source_dir, set ${self.env_var}, or allow download",
            )
        raw_root = os.path.join(self.root, "raw")
        zip_path = download_url(self.url, raw_root, log=self.log)
        actual = hashlib.md5(Path(zip_path).read_bytes()).hexdigest()
        if actual != self.md5:
            os.remove(zip_path)
            raise DataFormatError(zip_path, f"MD5 mismatch: expected {self.md5}, got {actual}; file deleted")
        partial = os.path.join(raw_root, ".extracting")
        shutil.rmtree(partial, ignore_errors=True)
        extract_zip(zip_path, partial, log=self.log)
        os.replace(os.path.join(partial, "ml-100k"), self.raw_dir)
        shutil.rmtree(partial, ignore_errors=True)
        os.remove(zip_path)

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
            _duplicate_check(base, seen, len(movies.raw_id), train_all[0], train_all[1])
            _duplicate_check(test_table, seen, len(movies.raw_id), test[0], test[1])
        else:
            table = read_ratings(raw / "u.data")
            every = indexed(table)
            _duplicate_check(table, {}, len(movies.raw_id), every[0], every[1])
            train_pos, test_pos = random_split(len(table), self.test_fraction, self.seed)
            train_all = tuple(a[train_pos] for a in every)
            test = tuple(a[test_pos] for a in every)

        val_mask = carve_validation(train_all[0], self.val_fraction, self.seed)
        parts = {
            "train": tuple(a[~val_mask] for a in train_all),
            "val": tuple(a[val_mask] for a in train_all),
            "test": test,
        }
        data = build_rating_graph(
            user_x=self._user_features(users, occupations),
            movie_x=self._movie_features(movies),
            parts=parts,
            rating_levels=[1.0, 2.0, 3.0, 4.0, 5.0],
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
        data.year_range = self._year_range(movies)
        data.dataset_name = self.name
        data.split_name = self.split
        data.fingerprint = self.fingerprint
        data.split_settings = {
            "split": self.split,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "test_fraction": self.test_fraction if self.split == "random" else None,
        }
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        with atomic_path(self.processed_paths[0]) as tmp:
            self.save([data], str(tmp))

    @staticmethod
    def _year_range(movies) -> torch.Tensor:
        known = movies.year[movies.year > 0]
        return torch.tensor([float(known.min()), float(known.max())]) if len(known) else torch.tensor([0.0, 1.0])

    @staticmethod
    def user_feature_vector(age: float, gender: str, occupation: str, occupations: list[str], age_range) -> torch.Tensor:
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
            for a, g, o in zip(users.age.tolist(), users.gender, users.occupation)
        ]
        return torch.stack(rows)

    def _movie_features(self, movies) -> torch.Tensor:
        low, high = self._year_range(movies).tolist()
        known = movies.year > 0
        year = np.where(known, (movies.year - low) / max(high - low, 1.0), 0.0)
        if known.any():
            year = np.where(known, year, year[known].mean())  # missing date: the mean year
        features = np.column_stack([movies.genres, year, (~known).astype(np.float64)])
        return torch.from_numpy(features).float()

    def rating_split(self):
        """This dataset's graph wrapped with convenient accessors for models."""
        from gnnrec.data.split import RatingSplit

        return RatingSplit(self[0])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(split={self.split!r}, val_fraction={self.val_fraction}, seed={self.seed})"
