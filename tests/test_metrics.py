"""Metric functions on hand-computed cases, GLocal-K NDCG against scikit-learn, and the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from gnnrec.evaluation import METRICS, TopKRecommendations, glocal_ndcg, mae, register_metric, rmse


def test_rmse_and_mae_by_hand():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.5])
    target = torch.tensor([2.0, 2.0, 5.0, 4.0])
    assert rmse(pred, target) == pytest.approx(math.sqrt((1 + 0 + 4 + 0.25) / 4))
    assert mae(pred, target) == pytest.approx((1 + 0 + 2 + 0.5) / 4)


@pytest.mark.parametrize("metric", [rmse, mae])
def test_rating_metrics_refuse_bad_input(metric):
    with pytest.raises(ValueError, match="empty"):
        metric(torch.tensor([]), torch.tensor([]))
    with pytest.raises(ValueError, match="shape"):
        metric(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        metric(torch.tensor([1.0, float("nan")]), torch.ones(2))
    with pytest.raises(ValueError, match="NaN or inf"):
        metric(torch.tensor([1.0, float("inf")]), torch.ones(2))
    with pytest.raises(ValueError, match="NaN or inf"):
        metric(torch.tensor([float("-inf"), 1.0, 2.0]), torch.ones(3))


def test_glocal_ndcg_by_hand():
    # user 7 is ranked exactly backwards; user 3 has one rating and is left out
    user = torch.tensor([7, 7, 7, 3])
    target = torch.tensor([5.0, 3.0, 1.0, 5.0])
    pred = torch.tensor([1.0, 2.0, 3.0, 1.0])
    dcg = 1 / math.log2(2) + 7 / math.log2(3) + 31 / math.log2(4)
    idcg = 31 / math.log2(2) + 7 / math.log2(3) + 1 / math.log2(4)
    assert glocal_ndcg(user, pred, target) == pytest.approx(dcg / idcg)
    assert glocal_ndcg(user, target, target) == pytest.approx(1.0)  # perfect order of user 7 only


def test_glocal_ndcg_averages_over_users_not_ratings():
    user = torch.tensor([0, 0, 1, 1, 1, 1])
    target = torch.tensor([5.0, 1.0, 4.0, 4.0, 2.0, 1.0])
    pred = torch.tensor([1.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # user 0 reversed, user 1 perfect
    user0 = (1 + 31 / math.log2(3)) / (31 + 1 / math.log2(3))
    assert glocal_ndcg(user, pred, target) == pytest.approx((user0 + 1.0) / 2)


def test_glocal_ndcg_matches_sklearn_without_ties():
    generator = np.random.default_rng(0)
    users, preds, targets = [], [], []
    expected = []
    for u in range(30):
        n = int(generator.integers(1, 12))
        target = generator.integers(1, 6, size=n).astype(float)
        pred = generator.uniform(1, 5, size=n)  # continuous: no ties
        users += [u] * n
        preds.append(pred)
        targets.append(target)
        if n >= 2:
            expected.append(ndcg_score([2**target - 1], [pred], ignore_ties=True))
            assert ndcg_score([2**target - 1], [pred], ignore_ties=False) == pytest.approx(expected[-1])
    ours = glocal_ndcg(torch.tensor(users), torch.tensor(np.concatenate(preds)), torch.tensor(np.concatenate(targets)))
    assert ours == pytest.approx(float(np.mean(expected)), rel=1e-12)


def test_glocal_ndcg_breaks_ties_by_input_order():
    # two movies with the same prediction: the one given first ranks first
    target = torch.tensor([1.0, 5.0])
    pred = torch.tensor([3.0, 3.0])
    user = torch.tensor([0, 0])
    low_first = (1 + 31 / math.log2(3)) / (31 + 1 / math.log2(3))
    assert glocal_ndcg(user, pred, target) == pytest.approx(low_first)
    assert glocal_ndcg(user, pred.flip(0), target.flip(0)) == pytest.approx(1.0)
    # scikit-learn averages the gain over the tied group instead
    averaged = ndcg_score([[1.0, 31.0]], [[3.0, 3.0]], ignore_ties=False)
    assert averaged == pytest.approx((16 + 16 / math.log2(3)) / (31 + 1 / math.log2(3)))
    assert low_first < averaged < 1.0


def test_glocal_ndcg_without_a_qualifying_user_is_nan():
    assert math.isnan(glocal_ndcg(torch.tensor([0, 1, 2]), torch.ones(3), torch.ones(3)))
    # a zero ideal DCG (every rating 0 on a 0-based scale) leaves the user out too
    assert math.isnan(glocal_ndcg(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]), torch.zeros(2)))


def test_glocal_ndcg_refuses_bad_input():
    with pytest.raises(ValueError, match="empty"):
        glocal_ndcg(torch.tensor([], dtype=torch.long), torch.tensor([]), torch.tensor([]))
    with pytest.raises(ValueError, match="NaN"):
        glocal_ndcg(torch.tensor([0, 0]), torch.tensor([1.0, float("nan")]), torch.ones(2))
    with pytest.raises(ValueError, match="1-D"):
        glocal_ndcg(torch.tensor([0, 0, 0]), torch.ones(2), torch.ones(2))


def _ranking_value(name: str, data: TopKRecommendations) -> float:
    return METRICS[name].function(data)


def test_top_k_metrics_by_hand():
    # row 0: relevant {2, 9}, hit at rank 2;  row 1: relevant {8}, no hit;
    # row 2: relevant {0, 1, 3, 4, 6}, hits at ranks 1..3 (recall is capped by |R|, not by k)
    top = torch.tensor([[5, 2, 7], [1, 3, 4], [0, 1, 3]])
    relevant = torch.tensor([[0, 0, 1, 2, 2, 2, 2, 2], [2, 9, 8, 0, 1, 3, 4, 6]])
    data = TopKRecommendations(top, relevant, num_movies=10)
    third = 1 / math.log2(3)
    expected = {
        "precision@k": (1 / 3 + 0 + 1) / 3,
        "recall@k": (1 / 2 + 0 + 3 / 5) / 3,
        "ndcg@k": (third / (1 + third) + 0 + 1) / 3,
        "map@k": ((1 / 2) / 2 + 0 + 1) / 3,
        "mrr@k": (1 / 2 + 0 + 1) / 3,
        "hit_rate@k": 2 / 3,
        "coverage@k": 7 / 10,  # {0, 1, 2, 3, 4, 5, 7}
    }
    for name, value in expected.items():
        assert _ranking_value(name, data) == pytest.approx(value, abs=1e-6), name


def test_top_k_metrics_of_no_users_are_nan():
    data = TopKRecommendations(torch.empty(0, 3, dtype=torch.long), torch.empty(2, 0, dtype=torch.long), 10)
    for metric in METRICS.values():
        if metric.kind == "ranking":
            assert math.isnan(metric.function(data)), metric.name


def test_registry_holds_the_documented_metrics_in_order():
    assert [metric.key(10) for metric in METRICS.values()] == [
        "rmse", "mae", "ndcg", "ndcg@10", "recall@10", "precision@10", "map@10", "mrr@10", "hit_rate@10",
        "coverage@10",
    ]  # fmt: skip
    assert METRICS["recall@k"].key(5) == "recall@5"
    assert not METRICS["rmse"].higher_is_better and METRICS["ndcg"].higher_is_better


def test_register_metric_refuses_bad_names():
    with pytest.raises(ValueError, match="kind"):
        register_metric("spread", "pointwise", higher_is_better=True)
    with pytest.raises(ValueError, match="@k"):
        register_metric("novelty", "ranking", higher_is_better=True)
    with pytest.raises(ValueError, match="@k"):
        register_metric("bias@k", "rating", higher_is_better=False)
    with pytest.raises(ValueError, match="already registered"):
        register_metric("rmse", "rating", higher_is_better=False)(lambda data: 0.0)
