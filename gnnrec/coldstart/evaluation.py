"""Cold-start evaluation: fold held-out users (or movies) into a fitted model and score their query ratings, and
choose a model's settings on validation cold nodes (:func:`validation_scores`, :func:`choose_on_validation`).

Uses the shared metric registry (:data:`~gnnrec.evaluation.metrics.METRICS`) and the evaluator's tie-breaking
ranker (:func:`~gnnrec.evaluation.evaluator.rank_top_k`), so numbers mean what they mean in :func:`evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gnnrec.coldstart.fold_in import FoldInNotSupported
from gnnrec.coldstart.protocol import ColdstartDraw, ColdstartEpisode
from gnnrec.evaluation.evaluator import rank_top_k, select_metrics
from gnnrec.evaluation.metrics import RATING, RatingPredictions, TopKRecommendations

COLDSTART_METRICS = ("rmse", "mae", "ndcg@10", "recall@10", "hit_rate@10")


def new_node_features(draw: ColdstartDraw, nodes: Tensor) -> Tensor | None:
    """Side-feature rows of the held-out nodes (``None`` where the dataset has none)."""
    store = draw.split.graph["user" if draw.kind == "users" else "movie"]
    if "x" not in store or store.x.size(1) == 0:
        return None
    if draw.kind == "users" and draw.split.user_layout.num_features == 0:
        return None  # the user rows are not demographics a new person could state
    return store.x[nodes].float()


@dataclass(frozen=True)
class ColdstartResult:
    """Metrics of one fold-in on an episode's query ratings, and the per-node arrays behind them.

    ``per_node`` holds, like the evaluator's per-user arrays (keyed by source-split node index):
    ``rating_node``, ``sse``, ``count`` (rating models) and ``ranked_node`` with one array per ranking metric.
    """

    metrics: dict[str, float | None]
    per_node: dict[str, Tensor]


def evaluate_coldstart(
    model: Any,
    draw: ColdstartDraw,
    episode: ColdstartEpisode,
    *,
    k: int = 10,
    relevance_threshold: float | None = 4.0,
    metrics: Sequence[str] | None = COLDSTART_METRICS,
    tie_seed: int = 0,
) -> dict[str, float | None] | None:
    """Metrics of ``model`` (fitted on ``draw.split``) on the query ratings of ``episode``.

    Rating metrics compare the fold-in's clipped predictions with the query ratings; top-K metrics rank
    the whole other side (movies for new users, users for new movies) by raw scores, the support items
    excluded, relevant = query ratings ≥ ``relevance_threshold`` (``None``: 3/4 up the scale). Returns
    ``None`` when the model cannot fold in (not applicable); a ranking-only model's rating metrics are
    ``None``. :func:`evaluate_coldstart_nodes` also gives the per-node arrays.
    """
    result = evaluate_coldstart_nodes(
        model, draw, episode, k=k, relevance_threshold=relevance_threshold, metrics=metrics, tie_seed=tie_seed
    )
    return None if result is None else result.metrics


def evaluate_coldstart_nodes(
    model: Any,
    draw: ColdstartDraw,
    episode: ColdstartEpisode,
    *,
    k: int = 10,
    relevance_threshold: float | None = 4.0,
    metrics: Sequence[str] | None = COLDSTART_METRICS,
    tie_seed: int = 0,
) -> ColdstartResult | None:
    """:func:`evaluate_coldstart` with the per-node arrays a paired significance test needs."""
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
    per_node: dict[str, Tensor] = {}
    if ratings is not None:
        error = ratings.pred.double() - ratings.target.double()
        rows, group = torch.unique(row, return_inverse=True)
        per_node["rating_node"] = episode.nodes[rows]
        per_node["sse"] = torch.zeros(len(rows), dtype=torch.float64).index_add(0, group, error.square())
        per_node["count"] = torch.bincount(group, minlength=len(rows))
    per_node["ranked_node"] = episode.nodes[ranked_rows]
    for metric in selected:
        data = ratings if metric.kind == RATING else rankings
        values[metric.key(k)] = (
            None if data is None or (data is rankings and not len(ranked_rows)) else float(metric.function(data))
        )
        if metric.kind != RATING and metric.per_user is not None:
            per_node[metric.key(k)] = metric.per_user(rankings) if len(ranked_rows) else torch.zeros(0)
    return ColdstartResult(values, per_node)


LOWER_IS_BETTER = ("rmse", "mae")


def validation_scores(
    make_model: Callable[[Any], Any],
    grid: Sequence[Any],
    validation: ColdstartDraw,
    support_sizes: Sequence[int],
    *,
    metric: str = "ndcg@10",
    k: int = 10,
    relevance_threshold: float | None = 4.0,
) -> list[dict[int, float]]:
    """``metric`` on the validation cold nodes at each support size, for each setting of ``grid``.

    ``make_model(setting)`` gives an unfitted model, fitted here on ``validation.split`` (earliest-n support).
    Where ``grid`` holds mappings of config keys, settings that differ only in keys of the model class's
    ``fold_in_settings`` (read by the fold-in alone) share one fit. Support sizes that cover no validation
    node are left out.
    """
    if not grid:
        raise ValueError("choosing on validation needs at least one setting in grid")
    episodes = {n: validation.episode(n) for n in support_sizes}
    episodes = {n: e for n, e in episodes.items() if len(e.nodes)}
    if not episodes:
        raise ValueError(f"no validation cold {validation.kind} have enough ratings for n in {list(support_sizes)}")
    fitted: dict[str, Any] = {}
    table = []
    for setting in grid:
        model = make_model(setting)
        fold_in_only = set(getattr(type(model), "fold_in_settings", ()))
        if isinstance(setting, Mapping):
            fit_part = {key: value for key, value in setting.items() if key not in fold_in_only}
            fit_key = json.dumps(fit_part, sort_keys=True, default=str)
        else:
            fit_key = repr(setting)
        if fit_key in fitted:  # the same fit: only fold-in settings differ
            fitted[fit_key].config = model.config
            model = fitted[fit_key]
        else:
            model = fitted[fit_key] = model.fit(validation.split)
        values = {}
        for n, episode in episodes.items():
            result = evaluate_coldstart(
                model, validation, episode, k=k, relevance_threshold=relevance_threshold, metrics=[metric]
            )
            if result is None or result[metric] is None:
                raise ValueError(f"{model.name} gives no {metric} on validation cold {validation.kind}")
            values[n] = result[metric]
        table.append(values)
    return table


def best_setting(scores: Sequence[Mapping[int, float]], metric: str, n: int | None = None) -> int:
    """Index of the best setting in ``scores`` (from :func:`validation_scores`) at support size ``n`` (None: the
    mean over the support sizes); lowest for RMSE/MAE; ties keep the first."""
    means = [row[n] if n is not None else sum(row.values()) / len(row) for row in scores]
    pick = min if metric in LOWER_IS_BETTER else max
    return pick(range(len(means)), key=means.__getitem__)


def choose_on_validation(
    make_model: Callable[[Any], Any],
    grid: Sequence[Any],
    validation: ColdstartDraw,
    support_sizes: Sequence[int],
    *,
    metric: str = "ndcg@10",
    k: int = 10,
    relevance_threshold: float | None = 4.0,
) -> tuple[Any, dict[Any, float]]:
    """The setting of ``grid`` whose model (``make_model(setting)``, fitted on ``validation.split``) scores
    best on the validation cold nodes, ``metric`` averaged over ``support_sizes`` (earliest-n support).

    ``validation`` is a :func:`~gnnrec.coldstart.protocol.validation_draw`, so the test draw's query ratings
    are never read while choosing. Returns ``(best setting, {setting: mean metric})`` for hashable settings;
    ties keep the first.
    """
    scores = validation_scores(
        make_model, grid, validation, support_sizes, metric=metric, k=k, relevance_threshold=relevance_threshold
    )
    table = {setting: sum(row.values()) / len(row) for setting, row in zip(grid, scores, strict=True)}
    return grid[best_setting(scores, metric)], table
