"""The ML-25M-shaped generator and the ``synthetic`` dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.data.movielens_large import HALF_STARS
from gnnrec.data.synthetic import SyntheticDataset, generate_ratings, user_degrees
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model


def test_sizes_scale_and_distinct_pairs():
    data = generate_ratings(num_users=300, num_movies=120, num_ratings=6000, seed=3)
    assert len(data) == 6000 and data.user.dtype == np.int32 and data.rating.dtype == np.float32
    assert set(np.unique(data.user)) == set(range(300)) and set(np.unique(data.movie)) == set(range(120))
    assert len(np.unique(data.user.astype(np.int64) * 120 + data.movie)) == 6000
    assert set(np.unique(data.rating)) <= set(HALF_STARS) and len(np.unique(data.rating)) >= 8
    assert 3.0 < data.rating.mean() < 4.2 and data.genres.shape == (120, 19) and data.genres.sum(1).min() >= 1


def test_other_levels():
    data = generate_ratings(num_users=50, num_movies=40, num_ratings=800, levels=[1, 2, 3, 4, 5], seed=0)
    assert set(np.unique(data.rating)) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_same_seed_same_data_other_seed_other_data():
    first, again = (generate_ratings(200, 80, 3000, seed=7) for _ in range(2))
    other = generate_ratings(200, 80, 3000, seed=8)
    for name in ("user", "movie", "rating", "time", "genres", "year"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.rating, other.rating)


def test_degrees_are_skewed():
    data = generate_ratings(num_users=2000, num_movies=800, num_ratings=60_000, seed=0)
    for degree in (np.bincount(data.user), np.bincount(data.movie)):
        assert degree.max() > 8 * np.median(degree)


def test_user_degrees_bounds():
    degree = user_degrees(np.random.default_rng(0), 100, 50, 2000, 0.8)
    assert degree.sum() == 2000 and degree.min() >= 1 and degree.max() <= 25
    with pytest.raises(ValueError, match="num_ratings must lie in"):
        generate_ratings(num_users=10, num_movies=10, num_ratings=5)


def test_dataset_layout_cache_and_seeds(tmp_path):
    kwargs = dict(num_users=150, num_movies=60, num_ratings=3000, log=False)
    dataset = SyntheticDataset(tmp_path, **kwargs)
    split = dataset.rating_split()
    assert (split.num_users, split.num_movies) == (150, 60)
    assert len(split.train) + len(split.val) + len(split.test) == 3000 and len(split.test) == 300
    graph = dataset[0]
    assert graph["user"].x.shape == (150, 1) and graph["movie"].x.shape == (60, 21)
    assert graph.split_settings["data_seed"] == 0 and graph.split_settings["seed"] == 0
    again = SyntheticDataset(tmp_path, **kwargs)
    assert again.processed_paths == dataset.processed_paths
    other = SyntheticDataset(tmp_path, data_seed=1, **kwargs)
    assert other.processed_paths != dataset.processed_paths
    with pytest.raises(ValueError, match="takes no source_dir"):
        SyntheticDataset(tmp_path, source_dir=tmp_path, **kwargs)


def test_low_rank_model_beats_bias_baseline(tmp_path):
    split = SyntheticDataset(tmp_path, num_users=400, num_movies=200, num_ratings=24_000, log=False).rating_split()
    bias = create_model("bias").fit(split)
    mf = create_model("mf", {"dim": 8, "reg": 0.02, "max_epochs": 40, "lr": 0.02, "batch_size": 1024, "device": "cpu"})
    mf.fit(split)
    bias_rmse = evaluate(bias, split, part="test", metrics=["rmse"]).metrics["rmse"]
    mf_rmse = evaluate(mf, split, part="test", metrics=["rmse"]).metrics["rmse"]
    assert mf_rmse < bias_rmse - 0.05, (mf_rmse, bias_rmse)


def test_gnn_learns_the_interaction_not_just_the_biases(tmp_path):
    """With the ``synthetic`` preset (no feature / node dropout) the GNN leaves the bias-only plateau: a clear
    margin under the bias baseline's validation RMSE. With ML-100k's dropouts it stays on the plateau."""
    torch.set_num_threads(1)
    split = SyntheticDataset(tmp_path, num_users=400, num_movies=200, num_ratings=20_000, log=False).rating_split()
    bias = evaluate(create_model("bias").fit(split), split, part="val", metrics=["rmse"]).metrics["rmse"]
    model = create_model("gnn", {"max_epochs": 300, "val_every": 10, "rank_weight": 0, "threads": 1, "device": "cpu"})
    model.fit(split)
    assert model.preset_name == "synthetic" and model.fit_config.dropout == model.fit_config.node_dropout == 0.0
    gnn = evaluate(model, split, part="val", metrics=["rmse"]).metrics["rmse"]
    assert gnn < 0.95 * bias, (gnn, bias)
