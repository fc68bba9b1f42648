"""The evaluator on the tiny fixture (with scripted models) and the baselines' calibration on real u1."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor

from gnnrec.data import MovieLens100K, RatingSplit
from gnnrec.evaluation import METRICS, EvaluationResult, Metric, evaluate, rmse
from gnnrec.models import NotFittedError, RatingModel, create_model

EXPECTED_KEYS = ["rmse", "mae", "ndcg", "ndcg@{k}", "recall@{k}", "precision@{k}", "map@{k}", "mrr@{k}"]
EXPECTED_KEYS += ["hit_rate@{k}", "coverage@{k}"]


@dataclass
class TableConfig:
    pass


class TableModel(RatingModel):
    """Predicts from a fixed ``[num_users, num_movies]`` table built by ``make_table(split)`` (not registered)."""

    name = "table"
    config_class = TableConfig

    def __init__(self, make_table) -> None:
        super().__init__()
        self.make_table = make_table

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        self.table = self.make_table(split)

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return self.table[user, movie]

    def _state(self) -> dict[str, Any]:
        return {"table": self.table}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.table = state["table"]


def oracle_table(split: RatingSplit) -> Tensor:
    """Known (train+val) movies score the maximum, test movies their true rating, the rest the minimum."""
    table = torch.full((split.num_users, split.num_movies), split.rating_min)
    table[split.known.user, split.known.movie] = split.rating_max
    table[split.test.user, split.test.movie] = split.test.rating
    return table


def test_result_has_the_documented_keys_and_is_json_safe(tiny_split):
    model = create_model("bias").fit(tiny_split)
    for k in (10, 3):
        result = evaluate(model, tiny_split, k=k)
        assert isinstance(result, EvaluationResult)
        assert list(result.metrics) == [key.format(k=k) for key in EXPECTED_KEYS]
        assert all(math.isfinite(v) for v in result.metrics.values())
        assert result.to_dict()["tie_seed"] == 0
        assert (result.model, result.split, result.part, result.k) == ("bias", tiny_split.name, "test", k)
        assert result.num_ratings == len(tiny_split.test)
        assert result.num_users == len(torch.unique(tiny_split.test.user))
        assert result.seconds > 0
        assert json.loads(json.dumps(result.to_dict()))["metrics"] == pytest.approx(result.metrics)


def test_rating_metrics_use_predictions_clipped_to_the_scale(tiny_split):
    # the table puts every prediction 2 above the truth, beyond the top of the scale for high ratings
    model = TableModel(lambda split: oracle_table(split) + 2.0).fit(tiny_split)
    result = evaluate(model, tiny_split)
    test = tiny_split.test
    clipped = (test.rating + 2.0).clamp(tiny_split.rating_min, tiny_split.rating_max)
    assert result.metrics["rmse"] == pytest.approx(rmse(clipped, test.rating))
    assert result.metrics["rmse"] < 2.0


def test_oracle_gets_perfect_scores_once_seen_movies_are_excluded(tiny_split):
    model = TableModel(oracle_table).fit(tiny_split)
    k = 3
    result = evaluate(model, tiny_split, k=k)
    test = tiny_split.test
    assert result.metrics["rmse"] == 0.0 and result.metrics["mae"] == 0.0
    assert result.metrics["ndcg"] == pytest.approx(1.0)
    relevant = test.rating >= 4.0
    per_user = torch.bincount(test.user[relevant], minlength=tiny_split.num_users)
    per_user = per_user[per_user > 0].double()
    assert result.num_ranked_users == len(per_user)
    assert result.metrics[f"precision@{k}"] == pytest.approx(float((per_user.clamp(max=k) / k).mean()))
    assert result.metrics[f"recall@{k}"] == pytest.approx(float((per_user.clamp(max=k) / per_user).mean()))
    for name in ("ndcg", "map", "mrr", "hit_rate"):
        assert result.metrics[f"{name}@{k}"] == pytest.approx(1.0), name


def test_top_k_equals_the_stable_sort_of_whole_rows():
    from gnnrec.evaluation.evaluator import rank_top_k

    generator = torch.Generator().manual_seed(0)
    for trial in range(60):
        rows, columns = (int(n) for n in torch.randint(1, 30, (2,), generator=generator))
        k = int(torch.randint(1, columns + 1, (1,), generator=generator))
        scores = torch.randn(rows, columns, generator=generator)
        if trial % 3 == 1:  # many ties, at the k-th score too
            scores = torch.randint(0, 3, (rows, columns), generator=generator).float()
        if trial % 3 == 2:  # rows with fewer than k finite scores
            scores[torch.rand(rows, columns, generator=generator) < 0.7] = float("-inf")
        permutation = torch.randperm(columns, generator=torch.Generator().manual_seed(trial))
        order = torch.sort(scores[:, permutation], dim=1, descending=True, stable=True).indices[:, :k]
        assert torch.equal(rank_top_k(scores, k, seed=trial), permutation[order]), trial


def test_ties_are_broken_by_a_seeded_random_order(tiny_split):
    model = create_model("global-mean").fit(tiny_split)
    k = 4
    result = evaluate(model, tiny_split, k=k, tie_seed=3)
    assert result.tie_seed == 3
    assert evaluate(model, tiny_split, k=k, tie_seed=3).metrics == pytest.approx(result.metrics)
    # Monte-Carlo: the mean over tie seeds is the random-ranking expectation, not one index order
    seen = tiny_split.seen_mask()
    test = tiny_split.test
    relevant = test.rating >= 4.0
    expected = []
    for user in torch.unique(test.user[relevant]).tolist():
        unseen = int((~seen[user]).sum())
        expected.append(min(k, unseen) / unseen)  # expected recall@k: chance a relevant movie is in the top k
    mean = sum(evaluate(model, tiny_split, k=k, tie_seed=s).metrics[f"recall@{k}"] for s in range(200)) / 200
    assert mean == pytest.approx(sum(expected) / len(expected), abs=0.03)


def test_ranking_only_models_report_no_rating_metrics(tiny_split):
    model = create_model("popularity").fit(tiny_split)
    result = evaluate(model, tiny_split)
    assert result.metrics["rmse"] is None and result.metrics["mae"] is None and result.metrics["ndcg"] is None
    assert 0.0 <= result.metrics["ndcg@10"] <= 1.0
    assert json.loads(json.dumps(result.to_dict()))["metrics"]["rmse"] is None
    with pytest.raises(TypeError, match="ranking-only"):
        model.predict([0], [0])
    top, scores = model.recommend([0, 1], k=3)
    assert top.shape == scores.shape == (2, 3)


def test_ranking_uses_unclipped_scores(tiny_split):
    # every table score is above the scale; clipping would tie them all
    model = TableModel(lambda split: oracle_table(split) + 10.0).fit(tiny_split)
    result = evaluate(model, tiny_split, k=3)
    assert result.metrics["hit_rate@3"] == pytest.approx(1.0)


def test_users_without_relevant_ratings_are_left_out_of_top_k(tiny_split):
    model = TableModel(oracle_table).fit(tiny_split)
    test = tiny_split.test
    result = evaluate(model, tiny_split, relevance_threshold=tiny_split.rating_max)
    assert result.num_ranked_users == len(torch.unique(test.user[test.rating == tiny_split.rating_max]))
    assert result.num_ranked_users < result.num_users
    assert result.relevance_threshold == tiny_split.rating_max
    # None means 3/4 up the scale: 4 on 1..5
    assert evaluate(model, tiny_split, relevance_threshold=None).relevance_threshold == 4.0


def test_validation_part_excludes_only_training_movies(tiny_split):
    def val_oracle(split: RatingSplit) -> Tensor:
        table = torch.full((split.num_users, split.num_movies), split.rating_min)
        table[split.train.user, split.train.movie] = split.rating_max
        table[split.val.user, split.val.movie] = split.val.rating
        return table

    result = evaluate(TableModel(val_oracle).fit(tiny_split), tiny_split, part="val", k=2)
    assert result.part == "val" and result.num_ratings == len(tiny_split.val)
    assert result.metrics["rmse"] == 0.0
    assert result.num_ranked_users > 0
    assert result.metrics["hit_rate@2"] == pytest.approx(1.0)  # validation movies are not excluded


def test_a_registered_metric_is_reported_for_every_model(tiny_split, monkeypatch):
    monkeypatch.setitem(
        METRICS, "max_error", Metric("max_error", "rating", lambda d: float((d.pred - d.target).abs().max()), False)
    )
    result = evaluate(create_model("global-mean").fit(tiny_split), tiny_split)
    assert result.metrics["max_error"] > 0


def test_bad_arguments_are_refused(tiny_split, ml100k_fixture_dir, tmp_path):
    model = create_model("global-mean").fit(tiny_split)
    with pytest.raises(ValueError, match="unknown part"):
        evaluate(model, tiny_split, part="holdout")
    with pytest.raises(ValueError, match="k must lie"):
        evaluate(model, tiny_split, k=0)
    with pytest.raises(ValueError, match="outside the rating scale"):
        evaluate(model, tiny_split, relevance_threshold=40.0)
    with pytest.raises(TypeError, match="RatingSplit"):
        evaluate(model, tiny_split.graph)
    other = MovieLens100K(tmp_path / "u2", split="u2", source_dir=ml100k_fixture_dir, log=False).rating_split()
    with pytest.raises(ValueError, match="fitted on .*fingerprint"):
        evaluate(model, other)
    with pytest.raises(NotFittedError):
        evaluate(create_model("global-mean"), tiny_split)


def test_an_empty_part_is_refused(ml100k_fixture_dir, tmp_path):
    split = MovieLens100K(tmp_path / "r", source_dir=ml100k_fixture_dir, val_fraction=0.0, log=False).rating_split()
    model = create_model("global-mean").fit(split)
    with pytest.raises(ValueError, match="no val ratings"):
        evaluate(model, split, part="val")


class WrongShape(TableModel):
    def predict(self, user_index, movie_index):
        return super().predict(user_index, movie_index)[:-1]


def one_value(table: Tensor, value: float) -> Tensor:
    """``table`` with its first cell set to ``value`` (one bad prediction among finite ones)."""
    table = table.clone()
    table.view(-1)[0] = value
    return table


class WrongScoreShape(TableModel):
    def score_matrix(self, user_index=None, *, clip=True):
        return super().score_matrix(user_index, clip=clip)[:, :-1]


@pytest.mark.parametrize(
    "model, message",
    [
        (TableModel(lambda s: torch.full((s.num_users, s.num_movies), float("nan"))), r"table\.predict .*NaN"),
        (TableModel(lambda s: one_value(oracle_table(s), float("inf"))), r"table\.score_matrix returned 1 NaN/inf"),
        (TableModel(lambda s: one_value(oracle_table(s), float("-inf"))), r"table\.score_matrix returned 1 NaN/inf"),
        (TableModel(lambda s: one_value(oracle_table(s), float("nan"))), r"table\.score_matrix returned 1 NaN/inf"),
        (WrongShape(oracle_table), r"table\.predict returned shape"),
        (WrongScoreShape(oracle_table), r"table\.score_matrix returned shape"),
    ],
)
def test_broken_predictions_are_refused(tiny_split, model, message):
    with pytest.raises(ValueError, match=message):
        evaluate(model.fit(tiny_split), tiny_split)


def test_non_finite_full_catalogue_scores_are_refused(tiny_split):
    def nan_outside_test(split: RatingSplit) -> Tensor:
        table = torch.full((split.num_users, split.num_movies), float("nan"))
        table[split.test.user, split.test.movie] = split.test.rating
        return table

    with pytest.raises(ValueError, match=r"table\.score_matrix .*NaN"):
        evaluate(TableModel(nan_outside_test).fit(tiny_split), tiny_split)


@pytest.mark.slow
def test_real_u1_baseline_calibration(real_u1_split):
    global_mean = evaluate(create_model("global-mean").fit(real_u1_split), real_u1_split)
    assert global_mean.metrics["rmse"] == pytest.approx(1.1537, abs=0.002)
    assert global_mean.num_ratings == 20_000 and global_mean.num_users == 459
    bias = evaluate(create_model("bias").fit(real_u1_split), real_u1_split)
    assert bias.metrics["rmse"] <= 0.975
    assert bias.metrics["ndcg"] > global_mean.metrics["ndcg"]


def test_evaluate_metric_subset_and_validation_helpers(tiny_split) -> None:
    from gnnrec.evaluation import check_selection_metric, improved, validation_metrics
    from gnnrec.models import create_model

    model = create_model("global-mean").fit(tiny_split)
    only = evaluate(model, tiny_split, part="val", metrics=["rmse"])
    assert set(only.metrics) == {"rmse"}
    full = evaluate(model, tiny_split, part="val")
    assert only.metrics["rmse"] == full.metrics["rmse"]
    values = validation_metrics(model, tiny_split, ["rmse", "ndcg@5"])
    assert set(values) == {"rmse", "ndcg@5"}
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(model, tiny_split, metrics=["rmse", "nope"])
    with pytest.raises(ValueError, match="mix cutoffs"):
        validation_metrics(model, tiny_split, ["ndcg@5", "recall@10"])
    assert check_selection_metric("ndcg@10") == "ndcg@10"
    with pytest.raises(ValueError, match="cutoff"):
        check_selection_metric("ndcg@k")
    with pytest.raises(ValueError, match="unknown selection metric"):
        check_selection_metric("accuracy")
    assert improved("rmse", 0.9, None) and improved("rmse", 0.9, 1.0) and not improved("rmse", 1.0, 0.9)
    assert improved("ndcg@10", 0.5, 0.4) and not improved("ndcg@10", 0.4, 0.5)


@pytest.mark.parametrize("name", ["mf", "global-mean", "popularity"])
def test_chunked_scoring_equals_the_unchunked_path(tiny_split, name):
    model = create_model(name, {"max_epochs": 2} if name == "mf" else None, test_config=True).fit(tiny_split)
    whole = evaluate(model, tiny_split, k=5, chunk_users=10_000)
    for chunk in (1, 3):
        chunked = evaluate(model, tiny_split, k=5, chunk_users=chunk)
        assert chunked.metrics == whole.metrics
    with pytest.raises(ValueError, match="chunk_users"):
        evaluate(model, tiny_split, chunk_users=0)


def test_recommend_in_chunks_equals_one_block(tiny_split, monkeypatch):
    import gnnrec.models.base as base_module

    model = create_model("mf", {"max_epochs": 2}, test_config=True).fit(tiny_split)
    users = torch.arange(tiny_split.num_users)
    top, scores = model.recommend(users, k=4)
    raw = model.score_matrix(users, clip=False).masked_fill(tiny_split.seen_mask(), float("-inf"))
    assert torch.equal(top, torch.sort(raw, dim=1, descending=True, stable=True).indices[:, :4])
    monkeypatch.setattr(base_module, "user_chunk_size", lambda num_movies: 2)
    top2, scores2 = model.recommend(users, k=4)
    assert torch.equal(top, top2) and torch.allclose(scores, scores2, rtol=1e-6)  # BLAS blocks differ by size
    assert int(model.seen_mask([0]).sum()) == int((tiny_split.known.user == 0).sum())


def test_per_user_outputs_average_to_the_metrics(tiny_split):
    model = create_model("bias").fit(tiny_split)
    result = evaluate(model, tiny_split, k=5, per_user=True, chunk_users=2)
    details = result.per_user
    assert "per_user" not in result.to_dict() and evaluate(model, tiny_split).per_user is None
    count = details["count"]
    assert int(count.sum()) == result.num_ratings and len(details["rating_user"]) == result.num_users
    assert math.isclose(math.sqrt(float(details["sse"].sum() / count.sum())), result.metrics["rmse"], rel_tol=1e-9)
    assert math.isclose(float(details["abs_error_sum"].sum() / count.sum()), result.metrics["mae"], rel_tol=1e-9)
    assert len(details["ranked_user"]) == result.num_ranked_users
    for name in ("ndcg@5", "recall@5", "precision@5", "map@5", "mrr@5", "hit_rate@5"):
        assert details[name].shape == (result.num_ranked_users,)
        assert math.isclose(float(details[name].double().mean()), result.metrics[name], rel_tol=1e-5, abs_tol=1e-7)
    assert "coverage@5" not in details
    ranking_only = evaluate(create_model("popularity").fit(tiny_split), tiny_split, per_user=True).per_user
    assert "sse" not in ranking_only and "rating_user" not in ranking_only and "ndcg@10" in ranking_only


def test_a_sample_of_users_gets_the_metrics_the_full_evaluation_gives_them(tiny_split):
    model = create_model("bias").fit(tiny_split)
    full = evaluate(model, tiny_split, k=5, per_user=True).per_user
    sample = full["ranked_user"][::2]
    result = evaluate(model, tiny_split, k=5, per_user=True, users=sample)
    assert result.num_ranked_users == len(sample) and torch.equal(result.per_user["ranked_user"], sample)
    rows = torch.isin(full["ranked_user"], sample)
    assert math.isclose(result.metrics["ndcg@5"], float(full["ndcg@5"][rows].double().mean()), rel_tol=1e-5)
    rated = torch.isin(full["rating_user"], sample)
    sse, count = full["sse"][rated].sum(), full["count"][rated].sum()
    assert result.num_ratings == int(count)
    assert math.isclose(result.metrics["rmse"], math.sqrt(float(sse / count)), rel_tol=1e-9)
    everyone = evaluate(model, tiny_split, k=5, users=torch.arange(tiny_split.num_users))
    assert everyone.metrics == evaluate(model, tiny_split, k=5).metrics
    with pytest.raises(ValueError, match=r"users: index -1 is outside"):
        evaluate(model, tiny_split, users=[-1])
