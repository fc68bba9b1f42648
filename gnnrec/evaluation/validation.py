"""Validation metrics for model selection and early stopping, computed by the one evaluator.

Every model that selects (epochs, regularisation, early stopping) names its criterion with a
``selection_metric`` config value: a result name of the metric registry such as ``"rmse"`` or
``"ndcg@10"`` (RecBole's ``valid_metric``). Whether larger is better comes from the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.evaluator import evaluate, select_metrics
from gnnrec.evaluation.metrics import METRICS

DEFAULT_K = 10


def _metric_for(name: str):
    base = name.split("@")[0] + "@k" if "@" in name else name
    metric = METRICS.get(base)
    if metric is None:
        raise ValueError(f"unknown selection metric {name!r}; available: {', '.join(METRICS)} (ranking ones as name@K)")
    return metric


def check_selection_metric(name: str) -> str:
    """Validate a ``selection_metric`` config value; return it."""
    metric = _metric_for(name)
    if "@" in name and not name.split("@", 1)[1].isdigit():
        raise ValueError(f"selection metric {name!r}: the cutoff after '@' must be a positive integer")
    if metric.kind == "ranking" and "@" not in name:
        raise ValueError(f"selection metric {name!r} is a ranking metric: give its cutoff, e.g. {metric.key(10)!r}")
    return name


def higher_is_better(name: str) -> bool:
    return _metric_for(name).higher_is_better


def improved(name: str, value: float, best: float | None, min_delta: float = 0.0) -> bool:
    """Whether ``value`` of metric ``name`` beats ``best`` by more than ``min_delta`` (always when ``best`` is None)."""
    if best is None:
        return True
    return value > best + min_delta if higher_is_better(name) else value < best - min_delta


def validation_metrics(
    model: Any,
    split: RatingSplit,
    metrics: Sequence[str] = ("rmse",),
    *,
    part: str = "val",
    relevance_threshold: float | None = None,
) -> dict[str, float]:
    """``{name: value}`` of ``metrics`` on the validation part, through :func:`~gnnrec.evaluation.evaluate`.

    The model must predict with its current weights (``fit`` sets ``model.info`` before training, so a
    model may call this from inside its training loop). The cutoff of ranking metrics comes from their
    names; all ranking metrics asked for must share one cutoff. ``relevance_threshold=None`` is 3/4 of
    the way up the split's rating scale (4 on 1–5), as in :func:`~gnnrec.evaluation.evaluate`.
    """
    cutoffs = {int(name.split("@")[1]) for name in metrics if "@" in name}
    if len(cutoffs) > 1:
        raise ValueError(f"validation metrics {list(metrics)} mix cutoffs {sorted(cutoffs)}; use one")
    k = cutoffs.pop() if cutoffs else DEFAULT_K
    select_metrics(list(metrics), k)  # unknown names fail before any work
    result = evaluate(
        model,
        split,
        part=part,
        k=min(k, split.num_movies),
        relevance_threshold=relevance_threshold,
        metrics=list(metrics),
    )
    return dict(result.metrics)
