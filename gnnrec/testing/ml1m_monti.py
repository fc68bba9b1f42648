"""Write small synthetic datasets in the MovieLens-1M and Monti et al. (MATLAB 7.3) formats.

For tests and demos. As in :mod:`gnnrec.testing.ml100k`, ratings come from a noisy
low-rank model, so a model that learns beats the global mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from gnnrec.data.monti import MAT_FILE
from gnnrec.data.movielens1m import AGE_BUCKETS, GENRES, OCCUPATIONS
from gnnrec.utils import atomic_path

MATLAB_USERBLOCK = 512
MONTI_FORMATS: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {
    "douban": (np.arange(1, 6, dtype=np.float64), ("W_users",)),
    "flixster": (np.arange(1, 11, dtype=np.float64) / 2, ("W_users", "W_movies")),
    "yahoo-music": (np.arange(1, 101, dtype=np.float64), ("W_tracks",)),
}


def _low_rank_scores(rng: np.random.Generator, num_users: int, num_items: int):
    users, items = rng.normal(size=(num_users, 3)), rng.normal(size=(num_items, 3))
    scores = (
        rng.normal(scale=0.5, size=num_items)
        + 0.7 * users @ items.T
        + rng.normal(scale=0.3, size=(num_users, num_items))
    )
    return (scores - scores.mean()) / scores.std(), users, items


def _to_levels(z: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Map standardised scores to ``levels``: ±2.5 standard deviations span the scale."""
    index = np.clip(np.rint((z + 2.5) / 5.0 * (len(levels) - 1)), 0, len(levels) - 1).astype(np.int64)
    return levels[index]


def write_ml1m_fixture(
    directory: str | Path,
    num_users: int = 30,
    num_movies: int = 50,
    ratings_per_user: int = 20,
    unrated_movies: int = 4,
    seed: int = 0,
) -> Path:
    """Write ``ratings.dat``, ``users.dat`` and ``movies.dat`` (``::``-separated, latin-1) into ``directory``.

    Movie ids have gaps (1, 3, 5, ...), the last ``unrated_movies`` listed movies get no
    rating, one title is non-ASCII and one has no "(yyyy)". Ratings are grouped by user,
    movies in random order within a user, as in the real file.
    """
    if ratings_per_user < 1 or ratings_per_user > num_movies - unrated_movies:
        raise ValueError("ratings_per_user must lie in 1..num_movies - unrated_movies")
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    users = []
    for uid in range(1, num_users + 1):
        zip_code = f"{10000 + uid}" if uid % 5 else f"{10000 + uid}-{1000 + uid}"
        age, job = AGE_BUCKETS[uid % len(AGE_BUCKETS)], uid % len(OCCUPATIONS)
        users.append(f"{uid}::{'MF'[uid % 2]}::{age}::{job}::{zip_code}")

    movie_ids = 1 + 2 * np.arange(num_movies)
    movies = []
    for position, mid in enumerate(movie_ids.tolist()):
        if position == 1:
            title = f"Café Movie {mid} (1994)"
        elif position == 2:
            title = f"Untitled {mid}"
        else:
            title = f"Movie {mid}, The ({1930 + position % 70})"
        chosen = [g for g in GENRES if rng.random() < 0.15] or [GENRES[position % len(GENRES)]]
        movies.append(f"{mid}::{title}::{'|'.join(chosen)}")

    z, _, _ = _low_rank_scores(rng, num_users, num_movies)
    stars = _to_levels(z, np.arange(1, 6)).astype(np.int64)
    ratings = []
    for u in range(num_users):
        for m in rng.choice(num_movies - unrated_movies, size=ratings_per_user, replace=False):
            stamp = 956703932 + int(rng.integers(0, 10**7))
            ratings.append(f"{u + 1}::{movie_ids[m]}::{stars[u, m]}::{stamp}")

    for name, lines in (("users.dat", users), ("movies.dat", movies), ("ratings.dat", ratings)):
        with atomic_path(directory / name) as tmp:
            tmp.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return directory


def write_mat_v73(path: str | Path, variables: Mapping[str, np.ndarray | sp.spmatrix]) -> Path:
    """Write matrices as MATLAB's ``save(path, ..., '-v7.3')`` lays them out.

    The file is HDF5 behind a 512-byte MATLAB header. A dense ``r × c`` matrix is stored
    column-major, i.e. as an HDF5 dataset of shape ``(c, r)``; a sparse one as a group
    with ``data``, ``ir`` (row indices), ``jc`` (column pointers) and the row count in
    the ``MATLAB_sparse`` attribute. Each carries ``MATLAB_class = 'double'``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", userblock_size=MATLAB_USERBLOCK) as handle:
            for key, value in variables.items():
                if sp.issparse(value):
                    matrix = sp.csc_matrix(value, dtype=np.float64)
                    matrix.sort_indices()
                    group = handle.create_group(key)
                    group.attrs["MATLAB_class"] = np.bytes_("double")
                    group.attrs["MATLAB_sparse"] = np.uint64(matrix.shape[0])
                    group.create_dataset("data", data=matrix.data)
                    group.create_dataset("ir", data=matrix.indices.astype(np.uint64))
                    group.create_dataset("jc", data=matrix.indptr.astype(np.uint64))
                else:
                    array = np.asarray(value, dtype=np.float64)
                    if array.ndim < 2:
                        raise ValueError(f"{key} must have at least 2 dimensions (MATLAB has no 1-D arrays)")
                    dataset = handle.create_dataset(key, data=np.ascontiguousarray(array.T))  # axes reversed
                    dataset.attrs["MATLAB_class"] = np.bytes_("double")
        text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: gnnrec synthetic fixture HDF5 schema 1.00 ."
        header = text.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM"
        with open(tmp, "r+b") as raw:
            raw.write(header)
    return path


def _knn_graph(factors: np.ndarray, k: int) -> sp.csc_matrix:
    """Symmetric 0/1 graph joining each node to its ``k`` nearest neighbours (no self-loops)."""
    distance = ((factors[:, None, :] - factors[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distance, np.inf)
    neighbours = np.argsort(distance, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(factors)), k)
    graph = sp.coo_matrix((np.ones(len(rows)), (rows, neighbours.reshape(-1))), shape=(len(factors),) * 2)
    graph = ((graph + graph.T) > 0).astype(np.float64)
    return sp.csc_matrix(graph)


def monti_fixture_arrays(
    dataset: str = "douban",
    num_users: int = 30,
    num_items: int = 45,
    density: float = 0.3,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, np.ndarray | sp.csc_matrix]:
    """``M``, ``Otraining``, ``Otest`` and the dataset's ``W_*`` graphs, in MATLAB (row = user) orientation.

    Every user rates at least three items and keeps at least one training rating.
    """
    if dataset not in MONTI_FORMATS:
        raise ValueError(f"unknown Monti dataset {dataset!r}; choose one of {', '.join(MONTI_FORMATS)}")
    levels, side = MONTI_FORMATS[dataset]
    rng = np.random.default_rng(seed)
    z, user_factors, item_factors = _low_rank_scores(rng, num_users, num_items)
    observed = rng.random((num_users, num_items)) < density
    for u in range(num_users):
        if observed[u].sum() < 3:
            observed[u, rng.choice(num_items, size=3, replace=False)] = True
    ratings = np.where(observed, _to_levels(z, levels), 0.0)
    test = observed & (rng.random((num_users, num_items)) < test_fraction)
    for u in range(num_users):
        if not (observed[u] & ~test[u]).any():
            test[u, np.flatnonzero(observed[u])[0]] = False
    arrays: dict[str, np.ndarray | sp.csc_matrix] = {
        "M": ratings,
        "Otraining": (observed & ~test).astype(np.float64),
        "Otest": test.astype(np.float64),
    }
    for key in side:
        arrays[key] = _knn_graph(user_factors if key == "W_users" else item_factors, k=3)
    return arrays


def write_monti_fixture(
    directory: str | Path,
    dataset: str = "douban",
    num_users: int = 30,
    num_items: int = 45,
    density: float = 0.3,
    test_fraction: float = 0.2,
    dense_side_graphs: Sequence[str] = (),
    seed: int = 0,
) -> Path:
    """Write ``training_test_dataset.mat`` in the layout of ``dataset`` (douban, flixster, yahoo-music).

    Ratings use the dataset's scale (1–5, half stars 0.5–5, 1–100). Side graphs are
    stored sparse, as MATLAB does for sparse matrices, except those named in
    ``dense_side_graphs``. Returns ``directory``.
    """
    arrays = monti_fixture_arrays(dataset, num_users, num_items, density, test_fraction, seed)
    for key in dense_side_graphs:
        arrays[key] = arrays[key].toarray()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_mat_v73(directory / MAT_FILE, arrays)
    return directory
