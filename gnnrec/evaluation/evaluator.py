"""One evaluation protocol for every model: rating accuracy, GLocal-K NDCG and full-catalogue top-K."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from gnnrec.data.graph import PARTS
from gnnrec.data.split import RatingEdges, RatingSplit
from gnnrec.evaluation.metrics import METRICS, RANKING, RATING, Metric, RatingPredictions, TopKRecommendations
from gnnrec.utils import all_finite, user_chunk_size


@dataclass
class EvaluationResult:
    """Metrics of one model on one part of one split.

    ``num_users`` counts the users with a rating in the part; ``num_ranked_users`` those with at
    least one relevant rating (the users the top-K metrics average over). A metric no user
    qualifies for is ``nan`` (``None`` in :meth:`to_dict`); a rating metric of a ranking-only model
    is ``None`` (not applicable). ``tie_seed`` seeded the random order of tied scores.
    ``seconds`` is the evaluation wall time.
    """

    model: str
    split: str
    part: str
    metrics: dict[str, float | None]
    num_ratings: int
    num_users: int
    seconds: float
    k: int = 10
    relevance_threshold: float = 4.0
    num_ranked_users: int = 0
    fingerprint: str = ""
    tie_seed: int = 0
    per_user: dict[str, Tensor] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe types (non-finite floats become ``None``); ``per_user`` is left out."""
        per_user, self.per_user = self.per_user, None
        try:
            out = asdict(self)
        finally:
            self.per_user = per_user
        out.pop("per_user")
        out["metrics"] = {
            name: (value if value is not None and math.isfinite(value) else None)
            for name, value in self.metrics.items()
        }
        return out


def _check_output(values: Tensor, shape: tuple[int, ...], model_name: str, what: str) -> Tensor:
    if not isinstance(values, Tensor):
        raise ValueError(f"{model_name}.{what} returned {type(values).__name__}, expected a tensor")
    if tuple(values.shape) != shape:
        raise ValueError(f"{model_name}.{what} returned shape {tuple(values.shape)}, expected {shape}")
    if not values.is_floating_point():
        raise ValueError(f"{model_name}.{what} returned dtype {values.dtype}, expected a floating-point tensor")
    if not all_finite(values):
        bad = int((~torch.isfinite(values)).sum())
        raise ValueError(f"{model_name}.{what} returned {bad} NaN/inf value(s) out of {values.numel()}")
    return values


def select_metrics(names: Sequence[str] | None, k: int) -> list[Metric]:
    """The registered metrics whose result names (``rmse``, ``ndcg@10``, …) are in ``names`` (all for ``None``)."""
    if names is None:
        return list(METRICS.values())
    by_key = {metric.key(k): metric for metric in METRICS.values()}
    unknown = [name for name in names if name not in by_key]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)} at k={k}; available: {', '.join(by_key)}")
    return [by_key[name] for name in dict.fromkeys(names)]


PREDICT_CHUNK = 1 << 22


def _raw_scores(model: Any, users: Tensor) -> Tensor:
    """Unclipped scores; a duck-typed model without a ``clip`` keyword is asked plainly."""
    try:
        return model.score_matrix(users, clip=False)
    except TypeError as error:
        if "clip" not in str(error):
            raise
        return model.score_matrix(users)


def _excluded_parts(part: str) -> tuple[str, ...]:
    """Known ratings hidden from recommendation: train and validation, except the evaluated part itself."""
    return tuple(p for p in ("train", "val") if p != part)


def _seen_rows(split: RatingSplit, users: Tensor, parts: tuple[str, ...]) -> Tensor:
    """``[len(users), num_movies]`` bool mask of the movies each user rated in ``parts``."""
    row_of_user = torch.full((split.num_users,), -1, dtype=torch.long)
    row_of_user[users] = torch.arange(len(users))
    mask = torch.zeros(len(users), split.num_movies, dtype=torch.bool)
    for part in parts:
        edges = split.edges(part)
        row = row_of_user[edges.user]
        keep = row >= 0
        mask[row[keep], edges.movie[keep]] = True
    return mask


def rank_top_k(scores: Tensor, k: int, seed: int = 0) -> Tensor:
    """``[rows, k]`` column indices of the ``k`` largest scores per row, best first.

    Tied scores are ordered by one seeded random permutation of the columns (the same for every
    row), so that a tie carries no information: ordering ties by movie index would hand models with
    tied scores the dataset's index order, which correlates with popularity.
    """
    generator = torch.Generator().manual_seed(int(seed))
    num_columns = scores.size(1)
    permutation = torch.randperm(num_columns, generator=generator)
    order = torch.empty(len(scores), k, dtype=torch.long)
    # the stable sort's first k without sorting whole rows: where the k-th largest score beats the next one, the
    # top k are the same in any tie order, and only they are ordered (ties by their place in the permutation)
    exact = torch.zeros(len(scores), dtype=torch.bool)
    if k < num_columns:
        values, columns = torch.topk(scores, k + 1, dim=1)
        exact = values[:, k - 1] > values[:, k]
    if exact.any():
        place = torch.empty_like(permutation)
        place[permutation] = torch.arange(num_columns)
        columns = columns[exact, :k]
        by_place = torch.sort(place[columns], dim=1).indices
        columns, values = columns.gather(1, by_place), values[exact, :k].gather(1, by_place)
        best = torch.sort(values, dim=1, descending=True, stable=True).indices
        order[exact] = columns.gather(1, best)
    if not exact.all():  # a tie at the k-th score (or fewer than k + 1 finite ones): the permuted rows sorted whole
        tied = ~exact
        permuted = scores[tied].index_select(1, permutation)
        order[tied] = permutation[torch.sort(permuted, dim=1, descending=True, stable=True).indices[:, :k]]
    return order


def evaluate(
    model: Any,
    split: RatingSplit,
    *,
    part: str = "test",
    k: int = 10,
    relevance_threshold: float | None = 4.0,
    metrics: Sequence[str] | None = None,
    tie_seed: int = 0,
    per_user: bool = False,
    chunk_users: int | None = None,
    users: Tensor | None = None,
) -> EvaluationResult:
    """Evaluate a fitted model on ``part`` of ``split`` with every metric in :data:`METRICS`.

    * Rating metrics (``rmse``, ``mae``, GLocal-K ``ndcg``) use ``model.predict`` on the part's
      ratings, clipped to the split's rating range, in (user, movie) order. A ranking-only model
      (``predicts_ratings = False``) gets ``None`` for them: not applicable.
    * Top-K metrics (``…@k``) rank the whole catalogue by the model's raw, unclipped scores
      (``model.score_matrix(users, clip=False)``) for every user with a rating ≥
      ``relevance_threshold`` in the part; the user's other known ratings (train and validation,
      minus the evaluated part) are excluded. Tied scores are ordered by a random permutation
      seeded with ``tie_seed`` (:func:`rank_top_k`), so a model without preferences scores the
      random-ranking expectation, reproducibly. (A user with fewer than ``k`` unseen movies gets
      seen ones at the end of the list; they never count as hits.)

    ``metrics`` restricts the evaluation to these result names (e.g. ``["rmse", "ndcg@10"]``);
    without a ranking metric no score matrix is computed. ``None`` means every registered metric.
    ``relevance_threshold=None`` means 3/4 of the way up the split's rating scale (4 on 1–5).

    Memory stays bounded at any scale: users are scored in chunks of ``chunk_users`` (default from
    :data:`gnnrec.utils.SCORE_MEMORY_BUDGET`, :func:`gnnrec.utils.user_chunk_size`), never all users × all
    movies at once, and
    ratings are predicted in chunks of :data:`PREDICT_CHUNK`; results equal the unchunked ones
    (the tie permutation is the same for every chunk).

    ``users`` restricts the evaluation to these users' ratings in the part (e.g. a seeded sample of
    users when ranking the whole catalogue for every user would cost too much); each user's metrics
    are the ones the full evaluation gives them.

    ``per_user=True`` fills :attr:`EvaluationResult.per_user`: ``rating_user`` (users with a rating in
    the part), their ``sse``/``abs_error_sum`` (float64, clipped predictions) and ``count``;
    ``ranked_user`` and, per ranking metric with per-user values, ``{name}@k`` (mean = the metric).
    Raises ``ValueError`` when the model was fitted on another split, the part is empty, or the
    model returns predictions of the wrong shape or with NaN/inf.
    """
    start = time.perf_counter()
    if not isinstance(split, RatingSplit):
        raise TypeError(f"evaluate expects a gnnrec.data.RatingSplit, got {type(split).__name__}")
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    model_name = str(getattr(model, "name", type(model).__name__))
    info = getattr(model, "info", None)
    if info is not None and info.fingerprint != split.fingerprint:
        raise ValueError(
            f"{model_name} was fitted on {info.name} (fingerprint {info.fingerprint[:12]}), not on {split.name} "
            f"(fingerprint {split.fingerprint[:12]}); evaluate it on the split it was trained on"
        )
    if not 1 <= k <= split.num_movies:
        raise ValueError(f"k must lie in 1..{split.num_movies}, got {k}")
    low, high = split.rating_min, split.rating_max
    if relevance_threshold is None:
        relevance_threshold = low + 0.75 * (high - low)
    if not low <= relevance_threshold <= high:
        raise ValueError(f"relevance_threshold {relevance_threshold} lies outside the rating scale {low:g}..{high:g}")

    selected = select_metrics(metrics, k)
    edges = split.edges(part)
    if users is not None:
        edges = _edges_of_users(edges, users, split.num_users)
    if len(edges) == 0:
        raise ValueError(f"{split.name} has no {part} ratings to evaluate")
    order = torch.argsort(edges.user * split.num_movies + edges.movie)
    user, movie, target = edges.user[order], edges.movie[order], edges.rating[order]

    ratings = None
    if getattr(model, "predicts_ratings", True) and any(metric.kind == RATING for metric in selected):
        pred = torch.cat(
            [
                _check_output(model.predict(u, m), tuple(u.shape), model_name, "predict")
                for u, m in zip(user.split(PREDICT_CHUNK), movie.split(PREDICT_CHUNK), strict=True)
            ]
        )
        ratings = RatingPredictions(user, movie, pred.float().clamp(low, high), target)

    relevant = target >= relevance_threshold
    ranked_users, relevant_row = torch.unique(user[relevant], return_inverse=True)
    rankings = None
    if any(metric.kind == RANKING for metric in selected):
        top_movies = _top_k_in_chunks(model, model_name, split, ranked_users, part, k, tie_seed, chunk_users)
        rankings = TopKRecommendations(top_movies, torch.stack([relevant_row, movie[relevant]]), split.num_movies)

    values: dict[str, float | None] = {}
    for metric in selected:
        data = ratings if metric.kind == RATING else rankings
        values[metric.key(k)] = None if data is None else float(metric.function(data))
    details = _per_user(selected, k, ratings, rankings, ranked_users) if per_user else None

    return EvaluationResult(
        model=model_name,
        split=split.name,
        part=part,
        metrics=values,
        num_ratings=len(edges),
        num_users=int(torch.unique(user).numel()),
        seconds=time.perf_counter() - start,
        k=k,
        relevance_threshold=float(relevance_threshold),
        num_ranked_users=len(ranked_users),
        fingerprint=split.fingerprint,
        tie_seed=int(tie_seed),
        per_user=details,
    )


def _edges_of_users(edges: RatingEdges, users: Any, num_users: int) -> RatingEdges:
    """The ratings of ``users`` (user indices) among ``edges``."""
    users = torch.as_tensor(users, dtype=torch.long).reshape(-1)
    outside = (users < 0) | (users >= num_users)
    if outside.any():
        raise ValueError(f"users: index {int(users[outside][0])} is outside 0..{num_users - 1}")
    keep = torch.isin(edges.user, users)
    return RatingEdges(edges.user[keep], edges.movie[keep], edges.rating[keep])


def _top_k_in_chunks(
    model: Any, model_name: str, split: RatingSplit, users: Tensor, part: str, k: int, seed: int, chunk: int | None
) -> Tensor:
    """``[len(users), k]`` top movies (seen ones excluded), scoring ``chunk`` users at a time."""
    chunk = user_chunk_size(split.num_movies) if chunk is None else int(chunk)
    if chunk < 1:
        raise ValueError(f"chunk_users must be at least 1, got {chunk}")
    tops = [torch.zeros(0, k, dtype=torch.long)]
    for rows in users.split(chunk):
        scores = _raw_scores(model, rows)
        scores = _check_output(scores, (len(rows), split.num_movies), model_name, "score_matrix").float()
        scores = scores.masked_fill(_seen_rows(split, rows, _excluded_parts(part)), float("-inf"))
        tops.append(rank_top_k(scores, k, seed))
        del scores
    return torch.cat(tops)


def _per_user(
    selected: list[Metric],
    k: int,
    ratings: RatingPredictions | None,
    rankings: TopKRecommendations | None,
    ranked_users: Tensor,
) -> dict[str, Tensor]:
    """Per-user sums of the rating errors and per-user ranking metric values (for paired significance tests)."""
    out: dict[str, Tensor] = {}
    if ratings is not None:
        users, group = torch.unique(ratings.user, return_inverse=True)
        error = ratings.pred.double() - ratings.target.double()
        zeros = torch.zeros(len(users), dtype=torch.float64)
        out["rating_user"] = users
        out["sse"] = zeros.index_add(0, group, error.square())
        out["abs_error_sum"] = zeros.index_add(0, group, error.abs())
        out["count"] = torch.bincount(group, minlength=len(users))
    if rankings is not None:
        out["ranked_user"] = ranked_users
        for metric in selected:
            if metric.kind == RANKING and metric.per_user is not None:
                out[metric.key(k)] = metric.per_user(rankings)
    return out
