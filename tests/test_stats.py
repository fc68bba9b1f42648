"""Tests for gnnrec.stats: t intervals and the paired user bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnnrec import stats
from gnnrec.stats import mean_std_ci, paired_bootstrap_mean, paired_bootstrap_rmse, per_user_sse


def test_mean_std_ci_known_values() -> None:
    out = mean_std_ci([1.0, 2.0, 3.0])
    assert out["mean"] == pytest.approx(2.0)
    assert out["std"] == pytest.approx(1.0)
    assert out["n"] == 3
    # t_{0.975, 2} = 4.302652729911275; half width = t * 1 / sqrt(3)
    half = 4.302652729911275 / math.sqrt(3)
    assert out["ci_low"] == pytest.approx(2.0 - half)
    assert out["ci_high"] == pytest.approx(2.0 + half)
    wider = mean_std_ci([1.0, 2.0, 3.0], confidence=0.99)
    assert wider["ci_low"] < out["ci_low"] and wider["ci_high"] > out["ci_high"]


def test_mean_std_ci_single_and_bad_input() -> None:
    assert mean_std_ci([0.9]) == {"mean": 0.9, "std": None, "n": 1, "ci_low": None, "ci_high": None}
    with pytest.raises(ValueError, match="no values"):
        mean_std_ci([])
    with pytest.raises(ValueError, match="confidence"):
        mean_std_ci([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="finite"):
        mean_std_ci([1.0, float("nan")])


def test_per_user_sse() -> None:
    sse, counts = per_user_sse(np.array([0, 2, 2, 0, 2]), np.array([1.0, 4.0, 0.25, 9.0, 1.0]), num_users=4)
    assert sse.tolist() == [10.0, 0.0, 5.25, 0.0]
    assert counts.tolist() == [2, 0, 3, 0]
    with pytest.raises(ValueError, match="num_users"):
        per_user_sse(np.array([0, 5]), np.array([1.0, 1.0]), num_users=3)
    with pytest.raises(ValueError, match="must be equal"):
        per_user_sse(np.array([0, 1]), np.array([1.0]))


def test_identical_models() -> None:
    rng = np.random.default_rng(1)
    sse, counts = rng.random(50) * 10, rng.integers(1, 20, 50)
    out = paired_bootstrap_rmse(sse, sse, counts, num_samples=500)
    assert out["diff"] == 0 and out["ci_low"] == 0 and out["ci_high"] == 0
    assert out["p_value"] == 1.0 and out["better"] is None
    values = rng.random(50)
    out = paired_bootstrap_mean(values, values, higher_is_better=True, num_samples=500)
    assert out["diff"] == 0 and out["p_value"] == 1.0


def test_better_on_every_user() -> None:
    rng = np.random.default_rng(2)
    counts = rng.integers(1, 30, 200)
    sse_b = counts * (1.0 + rng.random(200))
    sse_a = sse_b * 0.8  # A's squared errors 20 % lower for every user
    out = paired_bootstrap_rmse(sse_a, sse_b, counts, num_samples=2000)
    assert out["diff"] < 0 and out["ci_high"] < 0 and out["p_value"] == 0.0
    assert out["better"] == "a"
    ndcg_b = rng.random(200) * 0.5
    out = paired_bootstrap_mean(ndcg_b + 0.1, ndcg_b, higher_is_better=True, num_samples=2000)
    assert out["diff"] == pytest.approx(0.1) and out["ci_low"] > 0 and out["p_value"] == 0.0
    assert out["better"] == "a"
    out = paired_bootstrap_mean(ndcg_b + 0.1, ndcg_b, higher_is_better=False, num_samples=100)
    assert out["better"] == "b"


def test_rmse_is_pooled_not_mean_of_user_rmses() -> None:
    # user 0: one rating, squared error 4; user 1: three ratings, squared errors summing to 0.
    out = paired_bootstrap_rmse([4.0, 0.0], [1.0, 3.0], [1, 3], num_samples=10)
    assert out["diff"] == pytest.approx(math.sqrt(4 / 4) - math.sqrt(4 / 4))
    out = paired_bootstrap_rmse([4.0, 0.0], [0.0, 0.0], [1, 3], num_samples=10)
    assert out["diff"] == pytest.approx(1.0)  # pooled: sqrt(4 / 4); a mean of user RMSEs would give 1.0 too
    out = paired_bootstrap_rmse([9.0, 0.0], [0.0, 0.0], [1, 8], num_samples=10)
    assert out["diff"] == pytest.approx(1.0)  # pooled sqrt(9 / 9) = 1, mean of user RMSEs would be 1.5


def test_two_user_exhaustive_case() -> None:
    # Two users: a resample is (0,0), (0,1), (1,0) or (1,1), each with probability 1/4.
    # delta = [1, -3] -> resampled means 1, -1, -1, -3: P(d <= 0) = 3/4, P(d >= 0) = 1/4, so p = 0.5.
    out = paired_bootstrap_mean([1.0, 0.0], [0.0, 3.0], higher_is_better=True, num_samples=20000, seed=3)
    assert out["diff"] == pytest.approx(-1.0)
    assert out["p_value"] == pytest.approx(0.5, abs=0.03)
    assert out["ci_low"] == -3.0 and out["ci_high"] == 1.0
    # RMSE, counts [1, 1], sse_a [4, 0], sse_b [1, 1]: diffs 1 (p 1/4), sqrt(2) - 1 (1/2), -1 (1/4) -> p = 0.5.
    out = paired_bootstrap_rmse([4.0, 0.0], [1.0, 1.0], [1, 1], num_samples=20000, seed=3)
    assert out["diff"] == pytest.approx(math.sqrt(2) - 1)
    assert out["p_value"] == pytest.approx(0.5, abs=0.03)
    assert out["ci_low"] == pytest.approx(-1.0) and out["ci_high"] == pytest.approx(1.0)


def test_matches_hand_written_numpy_and_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 10, 30)  # includes users without ratings, which are dropped
    sse_a, sse_b = counts * rng.random(30), counts * rng.random(30)
    num_samples = 2500
    monkeypatch.setattr(stats, "_MAX_ELEMENTS", 1000)  # several internal batches, of an odd number of rows
    out = paired_bootstrap_rmse(sse_a, sse_b, counts, num_samples=num_samples, seed=7)

    keep = counts > 0
    a, b, n = sse_a[keep], sse_b[keep], counts[keep]
    idx = np.random.default_rng(7).integers(0, n.size, size=(num_samples, n.size))
    diffs = np.sqrt(a[idx].sum(1) / n[idx].sum(1)) - np.sqrt(b[idx].sum(1) / n[idx].sum(1))
    assert out["ci_low"] == pytest.approx(np.quantile(diffs, 0.025))
    assert out["ci_high"] == pytest.approx(np.quantile(diffs, 0.975))
    assert out["p_value"] == pytest.approx(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))

    assert paired_bootstrap_rmse(sse_a, sse_b, counts, num_samples=num_samples, seed=7) == out
    other = paired_bootstrap_rmse(sse_a, sse_b, counts, num_samples=num_samples, seed=8)
    assert other["ci_low"] != out["ci_low"]


def test_bootstrap_bad_input() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        paired_bootstrap_rmse([1.0, 2.0], [1.0], [1, 1])
    with pytest.raises(ValueError, match="no user has a rating"):
        paired_bootstrap_rmse([0.0], [0.0], [0])
    with pytest.raises(ValueError, match="num_samples"):
        paired_bootstrap_mean([1.0], [1.0], higher_is_better=True, num_samples=0)
    with pytest.raises(ValueError, match="shapes differ"):
        paired_bootstrap_mean([1.0, 2.0], [1.0], higher_is_better=True)
