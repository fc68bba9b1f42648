"""MovieLens-100k specifics on the tiny fixture (features, shipped and random splits) and the split helpers.

The contract every dataset shares (caching, bad input, downloads, ...) is in test_dataset_conformance.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrec.data import RATED_BY, RATES, MovieLens100K, RatingSplit
from gnnrec.data.partition import carve_validation, random_split


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _load(source: Path, root: Path, split: str = "u1", **kwargs) -> MovieLens100K:
    return MovieLens100K(root, split=split, source_dir=source, log=False, **kwargs)


def _pair_keys(index: torch.Tensor, num_movies: int) -> set[int]:
    return set((index[0] * num_movies + index[1]).tolist())


def test_graph_layout(ml100k_fixture_dir, tmp_path):
    data = _load(ml100k_fixture_dir, tmp_path)[0]
    assert data["user"].num_nodes == 40 and data["movie"].num_nodes == 60
    assert data["user"].x.shape == (40, 2 + 8)  # age, gender, 8 occupations
    assert data["movie"].x.shape == (60, 19 + 2)  # genres, year, missing-year flag
    assert torch.all((data["user"].x[:, 2:].sum(1)) == 1)
    assert data["user"].x[:, 0].min() == 0 and data["user"].x[:, 0].max() == 1
    # the fixture's last movie has no release date: flagged, year filled with the mean
    assert data["movie"].x[-1, -1] == 1 and data["movie"].x[:-1, -1].sum() == 0
    store = data[RATES]
    assert torch.equal(store.edge_index, store.train_edge_label_index)
    assert torch.equal(data[RATED_BY].edge_index, store.edge_index.flip(0))
    assert torch.equal(store.rating, store.train_edge_label)
    assert data["movie"].title[0] == "Movie 1 (1951)"
    assert data.genre_names[1] == "Action" and data.occupation_names[0] == "administrator"
    assert data["user"].raw_id.tolist() == list(range(1, 41))


@pytest.mark.parametrize("name", ["u1", "u2", "u3", "u4", "u5"])
def test_predefined_split_sizes(ml100k_fixture_dir, tmp_path, name):
    split = _load(ml100k_fixture_dir, tmp_path, split=name).rating_split()
    base = len((ml100k_fixture_dir / f"{name}.base").read_text().splitlines())
    test = len((ml100k_fixture_dir / f"{name}.test").read_text().splitlines())
    assert len(split.train) + len(split.val) == base and len(split.test) == test


def test_random_split_is_seeded(ml100k_fixture_dir, tmp_path):
    a = _load(ml100k_fixture_dir, tmp_path / "a", split="random", seed=3).rating_split()
    b = _load(ml100k_fixture_dir, tmp_path / "b", split="random", seed=3).rating_split()
    c = _load(ml100k_fixture_dir, tmp_path / "c", split="random", seed=4).rating_split()
    assert torch.equal(a.test.edge_label_index, b.test.edge_label_index)
    assert not torch.equal(a.test.edge_label_index, c.test.edge_label_index)
    assert len(a.test) == 200 and len(a.train) + len(a.val) == 800


def test_validation_carve_out_properties():
    users = np.repeat(np.arange(5), [1, 2, 20, 40, 100])
    mask = carve_validation(users, 0.05, seed=0)
    assert np.array_equal(mask, carve_validation(users, 0.05, seed=0))
    per_user_val = np.bincount(users[mask], minlength=5)
    assert per_user_val.tolist() == [0, 0, 1, 2, 5]
    assert np.all(np.bincount(users[~mask], minlength=5) >= 1)
    assert not carve_validation(users, 0.0, seed=0).any()
    with pytest.raises(ValueError, match="val_fraction"):
        carve_validation(users, 1.0, seed=0)


def test_random_split_helper():
    train, test = random_split(10, 0.2, seed=1)
    assert len(test) == 2 and sorted(np.r_[train, test].tolist()) == list(range(10))
    with pytest.raises(ValueError, match="test_fraction"):
        random_split(10, 1.5, seed=1)


def test_rating_split_accessors(tiny_split: RatingSplit):
    assert tiny_split.rating_min == 1 and tiny_split.rating_max == 5
    assert tiny_split.name == "ml-100k/u1"
    mask = tiny_split.seen_mask()
    assert mask.sum() == len(tiny_split.known)
    test_data = tiny_split.test_data
    assert torch.equal(test_data[RATES].edge_label, tiny_split.test.rating)
    assert "edge_label" not in tiny_split.graph[RATES]  # the shared graph is left untouched
    info = tiny_split.describe()
    assert sum(info["test"]["histogram"].values()) == len(tiny_split.test)
    with pytest.raises(ValueError, match="unknown part"):
        tiny_split.edges("holdout")
