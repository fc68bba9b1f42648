"""One evaluation protocol for every model: rating accuracy, GLocal-K NDCG and full-catalogue top-K."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch_geometric.metrics import (
    LinkPredHitRatio,
    LinkPredMAP,
    LinkPredMRR,
    LinkPredNDCG,
    LinkPredPrecision,
    LinkPredRecall,
)
from torch_geometric.metrics.link_pred import LinkPredMetricData

from gnnrec.data.graph import PARTS
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.metrics import METRICS, RANKING, RATING, Metric, RatingPredictions, TopKRecommendations


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
        """Plain JSON-safe types (non-finite floats become ``None``)."""
        out = asdict(self)
        out.pop("per_user", None)
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
    bad = ~torch.isfinite(values)
    if bad.any():
        raise ValueError(f"{model_name}.{what} returned {int(bad.sum())} NaN/inf value(s) out of {values.numel()}")
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
    permutation = torch.randperm(scores.size(1), generator=generator)
    order = torch.sort(scores[:, permutation], dim=1, descending=True, stable=True).indices[:, :k]
    return permutation[order]


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
    if len(edges) == 0:
        raise ValueError(f"{split.name} has no {part} ratings to evaluate")
    order = torch.argsort(edges.user * split.num_movies + edges.movie)
    user, movie, target = edges.user[order], edges.movie[order], edges.rating[order]

    ratings = None
    if getattr(model, "predicts_ratings", True) and any(metric.kind == RATING for metric in selected):
        pred = model.predict(user, movie)
        pred = _check_output(pred, tuple(user.shape), model_name, "predict").float().clamp(low, high)
        ratings = RatingPredictions(user, movie, pred, target)

    relevant = target >= relevance_threshold
    ranked_users, relevant_row = torch.unique(user[relevant], return_inverse=True)
    rankings = None
    if any(metric.kind == RANKING for metric in selected):
        scores = _raw_scores(model, ranked_users)
        scores = _check_output(scores, (len(ranked_users), split.num_movies), model_name, "score_matrix").float()
        scores = scores.masked_fill(_seen_rows(split, ranked_users, _excluded_parts(part)), float("-inf"))
        top_movies = rank_top_k(scores, k, tie_seed)
        rankings = TopKRecommendations(top_movies, torch.stack([relevant_row, movie[relevant]]), split.num_movies)

    values: dict[str, float | None] = {}
    for metric in selected:
        data = ratings if metric.kind == RATING else rankings
        values[metric.key(k)] = None if data is None else float(metric.function(data))

    arrays = _per_user_arrays(ratings, rankings, ranked_users, selected, k) if per_user else None
    return EvaluationResult(
        per_user=arrays,
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
    )


PER_USER_RANKING = {
    "ndcg@k": LinkPredNDCG,
    "recall@k": LinkPredRecall,
    "precision@k": LinkPredPrecision,
    "map@k": LinkPredMAP,
    "mrr@k": LinkPredMRR,
    "hit_rate@k": LinkPredHitRatio,
}


def _per_user_arrays(
    ratings: RatingPredictions | None, rankings: TopKRecommendations | None, ranked_users: Tensor, selected, k: int
) -> dict[str, Tensor]:
    """Per-user values for a paired bootstrap: rating error sums per rated user, one value per ranked user and
    per-user ranking metric (PyG's per-row ``_compute``; coverage is a catalogue metric and has none)."""
    out: dict[str, Tensor] = {}
    if ratings is not None:
        users, row = torch.unique(ratings.user, return_inverse=True)
        error = ratings.pred.double() - ratings.target.double()
        out["rating_user"] = users
        out["sse"] = torch.zeros(len(users), dtype=torch.float64).index_add_(0, row, error.pow(2))
        out["abs_error_sum"] = torch.zeros(len(users), dtype=torch.float64).index_add_(0, row, error.abs())
        out["count"] = torch.bincount(row, minlength=len(users))
    if rankings is not None and rankings.top_movies.size(0):
        out["ranked_user"] = ranked_users
        data = LinkPredMetricData(rankings.top_movies, rankings.relevant)
        for metric in selected:
            cls = PER_USER_RANKING.get(metric.name)
            if cls is not None:
                out[metric.key(k)] = cls(k)._compute(data).float()
    return out
