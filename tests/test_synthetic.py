"""The ML-25M-shaped generator and the ``synthetic`` dataset."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.data import dataset_settings
from gnnrec.data.movielens_large import HALF_STARS
from gnnrec.data.synthetic import (
    DEFAULT_TASTE_EXPOSURE,
    SyntheticDataset,
    generate_ratings,
    latent_factors,
    sample_pairs,
    sample_taste_pairs,
    user_degrees,
)
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
    data = generate_ratings(num_users=100, num_movies=60, num_ratings=2500, levels=[1, 2, 3, 4, 5], seed=0)
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


# ---------------------------------------------------------------------- taste exposure
def digest(data) -> str:
    """The first 16 hex digits of the SHA-256 of every generated array."""
    sha = hashlib.sha256()
    for name in ("user", "movie", "rating", "time", "genres", "year"):
        sha.update(np.ascontiguousarray(getattr(data, name)).tobytes())
    return sha.hexdigest()[:16]


@pytest.mark.parametrize(
    ("args", "expected"),
    [  # digests of the generator before taste exposure existed (popularity-only exposure)
        ({"num_users": 300, "num_movies": 120, "num_ratings": 6000, "seed": 3}, "28f0917c373efa95"),
        ({"num_users": 60, "num_movies": 50, "num_ratings": 1400, "seed": 1, "levels": [1, 2, 3, 4, 5]},
         "cef6db9df1d05ff1"),
        ({"num_users": 20, "num_movies": 40, "num_ratings": 390, "seed": 2}, "b247f202f78c06ed"),  # near the cap
    ],
)  # fmt: skip
def test_taste_exposure_zero_is_the_popularity_only_generator_bit_for_bit(args, expected):
    assert digest(generate_ratings(**args, taste_exposure=0)) == expected


def test_taste_exposure_same_seed_same_data_other_strength_other_data():
    first, again = (generate_ratings(200, 80, 3000, seed=7, taste_exposure=1.5) for _ in range(2))
    assert digest(first) == digest(again)
    assert digest(first) != digest(generate_ratings(200, 80, 3000, seed=8, taste_exposure=1.5))
    assert digest(first) != digest(generate_ratings(200, 80, 3000, seed=7, taste_exposure=2.5))


def affinity_lift(strength: float, seed: int = 0) -> float:
    """Mean <p_u, q_m> of the rated pairs minus that of random unrated pairs."""
    num_users, num_movies, num_ratings = 300, 200, 6000
    rng = np.random.default_rng(seed)
    p, q, _, _ = latent_factors(rng, num_users, num_movies, rank=8)
    sizes = (num_users, num_movies, num_ratings, 0.8, 1.0)
    if strength == 0:
        user, movie = sample_pairs(rng, *sizes)
    else:
        user, movie = sample_taste_pairs(rng, *sizes, p, q, strength)
    affinity = p @ q.T
    rated = np.zeros((num_users, num_movies), dtype=bool)
    rated[user, movie] = True
    other = np.random.default_rng(seed + 1).integers(0, num_users * num_movies, 20_000)
    other = other[~rated.ravel()[other]]
    return float(affinity[user, movie].mean() - affinity.ravel()[other].mean())


def test_users_rate_the_movies_their_taste_favours_only_with_taste_exposure():
    lifts = {strength: affinity_lift(strength) for strength in (0.0, 1.0, DEFAULT_TASTE_EXPOSURE)}
    assert abs(lifts[0.0]) < 0.05, lifts  # popularity-only exposure: rated pairs are like random pairs
    assert 0.3 < lifts[1.0] < lifts[DEFAULT_TASTE_EXPOSURE], lifts


@settings(max_examples=30, deadline=None)
@given(
    num_users=st.integers(1, 40),
    num_movies=st.integers(1, 60),
    share=st.floats(0.0, 1.0),
    strength=st.one_of(st.just(0.0), st.floats(0.01, 6.0)),
    seed=st.integers(0, 2**32 - 1),
)
def test_exposure_keeps_exact_degrees_distinct_pairs_and_full_coverage(num_users, num_movies, share, strength, seed):
    cap = max(1, num_movies // 2)
    low, high = max(num_users, num_movies), num_users * cap
    if low > high:
        return  # no valid number of ratings for this shape
    num_ratings = low + round(share * (high - low))
    sizes = (num_users, num_movies, num_ratings, 0.8, 1.0)
    p, q, _, _ = latent_factors(np.random.default_rng(seed + 1), num_users, num_movies, rank=4)
    if strength == 0:
        user, movie = sample_pairs(np.random.default_rng(seed), *sizes)
    else:
        user, movie = sample_taste_pairs(np.random.default_rng(seed), *sizes, p, q, strength)
    expected_degree = user_degrees(np.random.default_rng(seed), num_users, num_movies, num_ratings, 0.8)
    assert user.dtype == movie.dtype == np.int32 and len(user) == num_ratings
    np.testing.assert_array_equal(np.bincount(user, minlength=num_users), expected_degree)
    assert len(np.unique(user.astype(np.int64) * num_movies + movie)) == num_ratings
    assert np.bincount(movie, minlength=num_movies).min() >= 1 and 0 <= movie.min() <= movie.max() < num_movies


def test_taste_exposure_is_a_dataset_setting(tmp_path):
    assert "taste_exposure" in dataset_settings("synthetic")
    kwargs = dict(num_users=60, num_movies=40, num_ratings=900, log=False)
    default = SyntheticDataset(tmp_path, **kwargs)
    assert default[0].split_settings["taste_exposure"] == DEFAULT_TASTE_EXPOSURE
    flat = SyntheticDataset(tmp_path, taste_exposure=0, **kwargs)
    assert flat.processed_paths != default.processed_paths
    edges = ("user", "rates", "movie")
    assert not torch.equal(flat[0][edges].edge_index, default[0][edges].edge_index)
    for bad in (-1.0, float("nan"), "strong"):
        with pytest.raises(ValueError, match="taste_exposure must be a finite number >= 0"):
            SyntheticDataset(tmp_path, taste_exposure=bad, **kwargs)
