"""Rating and top-K metrics, and the registry of them that :func:`gnnrec.evaluation.evaluate` iterates.

Rating metrics see every held-out rating with its (clipped) prediction:

* ``rmse`` = sqrt(mean((r̂ - r)²)), ``mae`` = mean(|r̂ - r|).
* ``ndcg``: GLocal-K's full-list NDCG (:func:`glocal_ndcg`).

Top-K metrics see, for every user with at least one relevant held-out movie, the ``k`` movies
recommended from the whole catalogue (seen movies excluded) and that user's relevant movies.
They are PyG's ``torch_geometric.metrics`` link-prediction metrics, averaged over those users.
With ``R_u`` the user's relevant held-out movies and ``hits`` the recommended ones among them:

* ``precision@k`` = hits / k;  ``recall@k`` = hits / |R_u| (not capped at k, so it is below 1 when |R_u| > k);
* ``ndcg@k``: binary gains, log2 discount, ideal DCG of min(|R_u|, k) hits at the top;
* ``map@k`` = sum over hit ranks i of precision@i, divided by min(|R_u|, k);
* ``mrr@k`` = 1 / rank of the first hit (0 without a hit);  ``hit_rate@k`` = 1 if any hit else 0;
* ``coverage@k`` = distinct recommended movies over all evaluated users / number of movies.

Register further metrics with :func:`register_metric`; every model is then evaluated on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.metrics import (
    LinkPredCoverage,
    LinkPredHitRatio,
    LinkPredMAP,
    LinkPredMRR,
    LinkPredNDCG,
    LinkPredPrecision,
    LinkPredRecall,
)
from torch_geometric.metrics.link_pred import LinkPredMetricData

from gnnrec.utils import all_finite

RATING = "rating"
RANKING = "ranking"


@dataclass(frozen=True)
class RatingPredictions:
    """Held-out ratings of one part with a model's predictions, aligned 1-D tensors."""

    user: Tensor
    movie: Tensor
    pred: Tensor
    target: Tensor


@dataclass(frozen=True)
class TopKRecommendations:
    """Recommendations of the evaluated users and the relevant held-out movies of each.

    ``top_movies`` is ``[num_users, k]`` (best first); ``relevant`` is ``[2, R]`` with rows
    ``(row of top_movies, movie)``; ``num_movies`` is the catalogue size.
    """

    top_movies: Tensor
    relevant: Tensor
    num_movies: int

    @property
    def k(self) -> int:
        return int(self.top_movies.size(1))


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``function`` maps :class:`RatingPredictions` or :class:`TopKRecommendations` to a float."""

    name: str
    kind: str
    function: Callable[..., float]
    higher_is_better: bool
    per_user: Callable[..., Tensor] | None = None  # ranking: [num_users] values whose mean is ``function``

    def key(self, k: int) -> str:
        """Name in results: a ranking metric's ``@k`` becomes its cutoff, e.g. ``recall@10``."""
        return self.name.removesuffix("@k") + f"@{k}" if self.kind == RANKING else self.name


METRICS: dict[str, Metric] = {}


def register_metric(
    name: str, kind: str, *, higher_is_better: bool, per_user: Callable[..., Tensor] | None = None
) -> Callable:
    """Decorator: add ``function`` to :data:`METRICS` (``kind`` is ``"rating"`` or ``"ranking"``).

    Ranking metric names end in ``@k`` (e.g. ``"recall@k"``), which results replace by the cutoff.
    ``per_user`` (optional, ranking) returns one value per evaluated user, whose mean is the metric.
    """
    if kind not in (RATING, RANKING):
        raise ValueError(f"metric kind must be {RATING!r} or {RANKING!r}, got {kind!r}")
    if (kind == RANKING) != name.endswith("@k"):
        raise ValueError(f"metric {name!r}: ranking metric names, and only they, end in '@k'")

    def decorate(function: Callable[..., float]) -> Callable[..., float]:
        if name in METRICS and METRICS[name].function is not function:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, kind, function, higher_is_better, per_user)
        return function

    return decorate


# ---------------------------------------------------------------------- rating metrics
def _check_pair(pred: Tensor, target: Tensor, what: str) -> tuple[Tensor, Tensor]:
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"{what}: pred has shape {tuple(pred.shape)} but target has {tuple(target.shape)}")
    if pred.numel() == 0:
        raise ValueError(f"{what}: no ratings to evaluate (empty input)")
    if not all_finite(pred):
        raise ValueError(f"{what}: predictions contain NaN or inf")
    return pred.double(), target.double()


def rmse(pred: Tensor, target: Tensor) -> float:
    """Root mean squared error; raises ``ValueError`` on empty, mismatched or non-finite input."""
    pred, target = _check_pair(pred, target, "rmse")
    return float((pred - target).pow(2).mean().sqrt())


def mae(pred: Tensor, target: Tensor) -> float:
    """Mean absolute error; raises ``ValueError`` on empty, mismatched or non-finite input."""
    pred, target = _check_pair(pred, target, "mae")
    return float((pred - target).abs().mean())


def _rank_within_user(group: Tensor, score: Tensor) -> Tensor:
    """Order that sorts by ``group`` ascending, then ``score`` descending, then input position."""
    by_score = torch.argsort(score, descending=True, stable=True)
    return by_score[torch.argsort(group[by_score], stable=True)]


def glocal_ndcg(user: Tensor, pred: Tensor, target: Tensor, *, min_ratings: int = 2) -> float:
    """GLocal-K's NDCG: per user, rank the user's held-out movies by prediction; average over users.

    For a user with ratings ``r_1..r_n`` (n ≥ ``min_ratings``) ordered by predicted rating,
    ``DCG = Σ_i (2^{r_i} - 1) / log2(i + 1)`` over the full list (no cutoff) and ``IDCG`` is the
    same sum with the list sorted by true rating; the result is the mean of ``DCG / IDCG``.
    Users with fewer than ``min_ratings`` ratings, or with ``IDCG = 0``, are left out.

    Ties in the prediction keep the input order (a stable sort), as GLocal-K's stable sort keeps
    movie-index order; the evaluator passes ratings sorted by (user, movie), so tied movies are
    ranked by ascending movie index. (scikit-learn's ``ndcg_score`` instead averages tied groups.)

    Returns ``nan`` when no user qualifies; raises ``ValueError`` on empty, mismatched or
    non-finite input. Vectorised: two stable sorts and segment sums, no loop over users.
    """
    pred, target = _check_pair(pred, target, "glocal_ndcg")
    user = torch.as_tensor(user)
    if user.shape != pred.shape or user.dim() != 1:
        raise ValueError(f"glocal_ndcg: user, pred and target must be 1-D of one length, got {tuple(user.shape)}")
    _, group = torch.unique(user, return_inverse=True)
    num_groups = int(group.max()) + 1
    count = torch.bincount(group, minlength=num_groups)
    start = torch.cumsum(count, 0) - count  # first position of each user in a user-sorted order
    gain = torch.pow(2.0, target) - 1.0

    def dcg(order: Tensor) -> Tensor:
        sorted_group = group[order]
        position = torch.arange(len(order), dtype=torch.float64) - start[sorted_group]
        discounted = gain[order] / torch.log2(position + 2.0)
        return torch.zeros(num_groups, dtype=torch.float64).index_add_(0, sorted_group, discounted)

    actual = dcg(_rank_within_user(group, pred))
    ideal = dcg(_rank_within_user(group, target))
    keep = (count >= min_ratings) & (ideal > 0)
    if not keep.any():
        return float("nan")
    return float((actual[keep] / ideal[keep]).mean())


@register_metric("rmse", RATING, higher_is_better=False)
def _rmse(data: RatingPredictions) -> float:
    return rmse(data.pred, data.target)


@register_metric("mae", RATING, higher_is_better=False)
def _mae(data: RatingPredictions) -> float:
    return mae(data.pred, data.target)


@register_metric("ndcg", RATING, higher_is_better=True)
def _glocal_ndcg(data: RatingPredictions) -> float:
    return glocal_ndcg(data.user, data.pred, data.target)


# ---------------------------------------------------------------------- top-K metrics
def _link_pred_metric(metric_class: type) -> Callable[[TopKRecommendations], float]:
    def compute(data: TopKRecommendations) -> float:
        if data.top_movies.size(0) == 0:
            return float("nan")
        metric = metric_class(data.k)
        metric.update(data.top_movies, data.relevant)
        return float(metric.compute())

    compute.__doc__ = f"{metric_class.__name__} averaged over the evaluated users."
    return compute


def _link_pred_per_user(metric_class: type) -> Callable[[TopKRecommendations], Tensor]:
    def compute(data: TopKRecommendations) -> Tensor:
        if data.top_movies.size(0) == 0:
            return torch.zeros(0)
        # every evaluated user has a relevant movie, so PyG's mean is the mean of these rows
        rows = LinkPredMetricData(pred_index_mat=data.top_movies, edge_label_index=data.relevant)
        return metric_class(data.k)._compute(rows).float()

    compute.__doc__ = f"{metric_class.__name__} of each evaluated user."
    return compute


for _name, _class in (
    ("ndcg", LinkPredNDCG),
    ("recall", LinkPredRecall),
    ("precision", LinkPredPrecision),
    ("map", LinkPredMAP),
    ("mrr", LinkPredMRR),
    ("hit_rate", LinkPredHitRatio),
):
    register_metric(_name + "@k", RANKING, higher_is_better=True, per_user=_link_pred_per_user(_class))(
        _link_pred_metric(_class)
    )


@register_metric("coverage@k", RANKING, higher_is_better=True)
def _coverage(data: TopKRecommendations) -> float:
    if data.top_movies.size(0) == 0:
        return float("nan")
    metric = LinkPredCoverage(data.k, data.num_movies)
    metric.update(data.top_movies, data.relevant)
    return float(metric.compute())
