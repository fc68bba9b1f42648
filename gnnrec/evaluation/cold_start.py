"""Cold-start evaluation: fold held-out users (or movies) into a fitted model and score their query ratings.

Uses the shared metric registry (:data:`~gnnrec.evaluation.metrics.METRICS`) and the evaluator's tie-breaking
ranker (:func:`~gnnrec.evaluation.evaluator.rank_top_k`), so numbers mean what they mean in :func:`evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from gnnrec.coldstart import FoldInNotSupported
from gnnrec.data.cold_start import ColdStartDraw, ColdStartEpisode
from gnnrec.evaluation.evaluator import rank_top_k, select_metrics
from gnnrec.evaluation.metrics import RATING, RatingPredictions, TopKRecommendations

COLD_START_METRICS = ("rmse", "mae", "ndcg@10", "recall@10", "hit_rate@10")


def new_node_features(draw: ColdStartDraw, nodes: Tensor) -> Tensor | None:
    """Side-feature rows of the held-out nodes (``None`` where the dataset has none)."""
    store = draw.split.graph["user" if draw.kind == "users" else "movie"]
    if "x" not in store or store.x.size(1) == 0:
        return None
    if draw.kind == "users" and draw.split.user_layout.num_features == 0:
        return None  # the user rows are not demographics a new person could state
    return store.x[nodes].float()


def evaluate_cold_start(
    model: Any,
    draw: ColdStartDraw,
    episode: ColdStartEpisode,
    *,
    k: int = 10,
    relevance_threshold: float | None = 4.0,
    metrics: Sequence[str] | None = COLD_START_METRICS,
    tie_seed: int = 0,
) -> dict[str, float | None] | None:
    """Metrics of ``model`` (fitted on ``draw.split``) on the query ratings of ``episode``.

    Rating metrics compare the fold-in's clipped predictions with the query ratings; top-K metrics rank
    the whole other side (movies for new users, users for new movies) by raw scores, the support items
    excluded, relevant = query ratings ≥ ``relevance_threshold`` (``None``: 3/4 up the scale). Returns
    ``None`` when the model cannot fold in (not applicable); a ranking-only model's rating metrics are
    ``None``.
    """
    split = draw.split
    info = getattr(model, "info", None)
    if info is not None and info.fingerprint != split.fingerprint:
        raise ValueError(f"{model.name} was fitted on {info.name}, not on the cold-start training split {split.name}")
    if len(episode.nodes) == 0:
        raise ValueError(f"no held-out {draw.kind} have {episode.n + 1} or more ratings")
    low, high = split.rating_min, split.rating_max
    threshold = low + 0.75 * (high - low) if relevance_threshold is None else float(relevance_threshold)
    selected = select_metrics(metrics, k)
    support_row, support_other = episode.rows(episode.support)
    try:
        fold = model.fold_in(
            draw.kind,
            torch.stack([support_row, support_other]),
            episode.support.rating,
            num_new=len(episode.nodes),
            features=new_node_features(draw, episode.nodes),
        )
    except FoldInNotSupported:
        return None
    row, other = episode.rows(episode.query)
    target = episode.query.rating.float()
    ratings = None
    if fold.predicts_ratings:
        ratings = RatingPredictions(row, other, fold.predict(row, other).float().clamp(low, high), target)
    relevant = target >= threshold
    ranked_rows, relevant_row = torch.unique(row[relevant], return_inverse=True)
    scores = fold.rank_scores[ranked_rows].clone()
    mask = torch.zeros_like(fold.scores, dtype=torch.bool)
    mask[support_row, support_other] = True
    scores = scores.masked_fill(mask[ranked_rows], float("-inf"))
    top = rank_top_k(scores, k, tie_seed)
    rankings = TopKRecommendations(top, torch.stack([relevant_row, other[relevant]]), fold.scores.size(1))
    values: dict[str, float | None] = {}
    for metric in selected:
        data = ratings if metric.kind == RATING else rankings
        values[metric.key(k)] = (
            None if data is None or (data is rankings and not len(ranked_rows)) else float(metric.function(data))
        )
    return values


LOWER_IS_BETTER = ("rmse", "mae")


def choose_on_validation(
    make_model: Callable[[Any], Any],
    grid: Sequence[Any],
    validation: ColdStartDraw,
    support_sizes: Sequence[int],
    *,
    metric: str = "ndcg@10",
    k: int = 10,
    relevance_threshold: float | None = 4.0,
) -> tuple[Any, dict[Any, float]]:
    """The setting of ``grid`` whose model (``make_model(setting)``, fitted on ``validation.split``) scores
    best on the validation cold nodes, ``metric`` averaged over ``support_sizes`` (earliest-n support).

    ``validation`` is a :func:`~gnnrec.data.cold_start.validation_draw`, so the test draw's query ratings
    are never read while choosing. Returns ``(best setting, {setting: mean metric})``; ties keep the first.
    """
    if not grid:
        raise ValueError("choose_on_validation needs at least one setting in grid")
    lower = metric in LOWER_IS_BETTER
    table: dict[Any, float] = {}
    for setting in grid:
        model = make_model(setting).fit(validation.split)
        values = []
        for n in support_sizes:
            episode = validation.episode(n)
            if len(episode.nodes) == 0:
                continue
            result = evaluate_cold_start(
                model, validation, episode, k=k, relevance_threshold=relevance_threshold, metrics=[metric]
            )
            if result is None or result[metric] is None:
                raise ValueError(f"{model.name} gives no {metric} on validation cold {validation.kind}")
            values.append(result[metric])
        if not values:
            raise ValueError(f"no validation cold {validation.kind} have enough ratings for n in {list(support_sizes)}")
        table[setting] = sum(values) / len(values)
    best = (min if lower else max)(table, key=table.__getitem__)
    return best, table
