"""Checks on the real MovieLens-100k files (skipped when ../shared/data/ml-100k is absent)."""

from __future__ import annotations

import torch

from gnnrec.data import MovieLens100K
from gnnrec.data.parsing import read_ratings

NUM_MOVIES = 1682


def _keys(user, movie) -> set[int]:
    return set((torch.as_tensor(user) * NUM_MOVIES + torch.as_tensor(movie)).tolist())


def test_counts_and_features(real_u1_split):
    split = real_u1_split
    assert split.num_users == 943 and split.num_movies == NUM_MOVIES
    assert len(split.train) + len(split.val) == 80_000 and len(split.test) == 20_000
    assert split.graph["user"].x.shape == (943, 23)
    assert split.graph["movie"].x.shape == (NUM_MOVIES, 21)
    assert split.graph["movie"].title[0] == "Toy Story (1995)"


def test_validation_disjoint_from_train_and_test(real_u1_split):
    train = _keys(real_u1_split.train.user, real_u1_split.train.movie)
    val = _keys(real_u1_split.val.user, real_u1_split.val.movie)
    test = _keys(real_u1_split.test.user, real_u1_split.test.movie)
    assert not train & val and not val & test and not train & test
    assert torch.all(torch.bincount(real_u1_split.train.user, minlength=943) >= 1)


def test_u_data_totals(real_ml100k_dir):
    table = read_ratings(real_ml100k_dir / "u.data")
    assert len(table) == 100_000
    assert len(set(table.user.tolist())) == 943 and len(set(table.movie.tolist())) == NUM_MOVIES


def test_five_folds_partition_u_data(real_ml100k_dir):
    everything = read_ratings(real_ml100k_dir / "u.data")
    union: set[int] = set()
    total = 0
    for k in range(1, 6):
        fold = read_ratings(real_ml100k_dir / f"u{k}.test")
        keys = _keys(fold.user, fold.movie)
        assert not union & keys
        union |= keys
        total += len(fold)
    assert total == 100_000 and union == _keys(everything.user, everything.movie)


def test_ua_ub_ten_test_ratings_per_user(real_ml100k_dir, tmp_path):
    for name in ("ua", "ub"):
        split = MovieLens100K(tmp_path / name, split=name, source_dir=real_ml100k_dir, log=False).rating_split()
        counts = torch.bincount(split.test.user, minlength=943)
        assert torch.all(counts == 10)
