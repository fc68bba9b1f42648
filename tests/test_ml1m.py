"""MovieLens-1M specifics on a tiny fixture in the ``.dat`` formats: graph, features, splits (GLocal-K's).

The contract every dataset shares (caching, bad input, downloads, ...) is in test_dataset_conformance.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrec.data import RATED_BY, RATES, MovieLens1M
from gnnrec.testing.ml1m_monti import write_ml1m_fixture

NUM_USERS, NUM_LISTED, UNRATED, PER_USER = 30, 50, 4, 20


@pytest.fixture(scope="module")
def ml1m_dir(tmp_path_factory) -> Path:
    return write_ml1m_fixture(
        tmp_path_factory.mktemp("ml1m"), NUM_USERS, NUM_LISTED, ratings_per_user=PER_USER, unrated_movies=UNRATED
    )


def _load(source: Path, root: Path, split: str = "random-90", **kwargs) -> MovieLens1M:
    return MovieLens1M(root, split=split, source_dir=source, log=False, **kwargs)


def _triples(user, movie, rating) -> set[tuple[int, int, float]]:
    return set(
        zip(
            torch.as_tensor(user).tolist(),
            torch.as_tensor(movie).tolist(),
            torch.as_tensor(rating).tolist(),
            strict=True,
        )
    )


def test_graph_layout(ml1m_dir, tmp_path):
    data = _load(ml1m_dir, tmp_path)[0]
    num_movies = NUM_LISTED - UNRATED  # only rated movies are nodes, as in GLocal-K
    assert data["user"].num_nodes == NUM_USERS and data["movie"].num_nodes == num_movies
    assert data.num_unrated_movies == UNRATED and data.num_unrated_users == 0
    assert data["user"].x.shape == (NUM_USERS, 1 + 7 + 21)
    assert torch.all(data["user"].x[:, 1:8].sum(1) == 1) and torch.all(data["user"].x[:, 8:].sum(1) == 1)
    assert data["movie"].x.shape == (num_movies, 18 + 2)
    assert data["movie"].raw_id.tolist() == (1 + 2 * np.arange(num_movies)).tolist()  # ascending, gaps kept
    assert data["movie"].title[1] == "Café Movie 3 (1994)"  # latin-1 decoded
    assert data["movie"].year[1] == 1994 and data["movie"].year[2] == 0
    assert data["movie"].x[2, -1] == 1 and data["movie"].x[:, -1].sum() == 1  # "Untitled 5" has no year
    assert torch.all(data["movie"].x[:, :18].sum(1) >= 1)
    year = data["movie"].x[:, 18]
    assert year.min() == 0 and year.max() == 1
    assert data.rating_levels.tolist() == [1, 2, 3, 4, 5]
    assert data.dataset_name == "ml-1m" and data.split_name == "random-90"
    store = data[RATES]
    assert torch.equal(store.edge_index, store.train_edge_label_index)
    assert torch.equal(data[RATED_BY].edge_index, store.edge_index.flip(0))
    total = store.train_edge_label.numel() + store.val_edge_label.numel() + store.test_edge_label.numel()
    assert total == NUM_USERS * PER_USER


def test_user_feature_vector_matches_rows(ml1m_dir, tmp_path):
    data = _load(ml1m_dir, tmp_path)[0]
    for row in (0, 7, NUM_USERS - 1):
        user = data["user"]
        expected = MovieLens1M.user_feature_vector(user.gender[row], int(user.age[row]), int(user.occupation[row]))
        assert torch.equal(user.x[row], expected)
    with pytest.raises(ValueError, match="age must be one of"):
        MovieLens1M.user_feature_vector("F", 20, 3)


def _notebook_split(path: Path) -> tuple[set, set]:
    """An independent re-implementation of GLocal-K's ``load_data_1m`` (frac=0.1, seed=1234).

    Returns the (movie, user, rating) triples of its test and train matrices, indexed
    like the notebook: users and movies by rank of their id among those in the file.
    """
    # the notebook's np.loadtxt(delimiter="::"); NumPy >= 1.23 takes single-character delimiters only
    data = np.array([line.split("::") for line in path.read_text("latin-1").splitlines()], dtype="int32")
    n_r = data.shape[0]
    udict = {u: i for i, u in enumerate(np.unique(data[:, 0]).tolist())}
    mdict = {m: i for i, m in enumerate(np.unique(data[:, 1]).tolist())}
    state = np.random.get_state()
    try:
        np.random.seed(1234)
        idx = np.arange(n_r)
        np.random.shuffle(idx)
    finally:
        np.random.set_state(state)
    test, train = set(), set()
    for i in range(n_r):
        u_id, m_id, r = data[idx[i], 0], data[idx[i], 1], data[idx[i], 2]
        (test if i < int(0.1 * n_r) else train).add((mdict[m_id], udict[u_id], float(r)))
    return test, train


def test_random_90_reproduces_glocal_k(ml1m_dir, tmp_path):
    split = _load(ml1m_dir, tmp_path).rating_split()
    test, train = _notebook_split(ml1m_dir / "ratings.dat")
    assert len(split.test) == int(0.1 * NUM_USERS * PER_USER)
    assert _triples(split.test.movie, split.test.user, split.test.rating) == test
    known = split.known
    assert _triples(known.movie, known.user, known.rating) == train


def test_random_90_ignores_seed_and_is_identical_across_runs(ml1m_dir, tmp_path):
    a = _load(ml1m_dir, tmp_path / "a").rating_split()
    b = _load(ml1m_dir, tmp_path / "b").rating_split()
    c = _load(ml1m_dir, tmp_path / "c", seed=5).rating_split()
    assert torch.equal(a.test.edge_label_index, b.test.edge_label_index)
    assert torch.equal(a.val.edge_label_index, b.val.edge_label_index)
    assert torch.equal(a.test.edge_label_index, c.test.edge_label_index)  # the protocol's shuffle seed is fixed
    assert not torch.equal(a.val.edge_label_index, c.val.edge_label_index)  # the carve-out follows `seed`
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_random_80_is_seeded(ml1m_dir, tmp_path):
    a = _load(ml1m_dir, tmp_path / "a", split="random-80", seed=1).rating_split()
    b = _load(ml1m_dir, tmp_path / "b", split="random-80", seed=1).rating_split()
    c = _load(ml1m_dir, tmp_path / "c", split="random-80", seed=2).rating_split()
    assert torch.equal(a.test.edge_label_index, b.test.edge_label_index)
    assert not torch.equal(a.test.edge_label_index, c.test.edge_label_index)
    assert len(a.test) == round(0.2 * NUM_USERS * PER_USER)
    assert a.name == "ml-1m/random-80" and a.settings["test_fraction"] == 0.2
