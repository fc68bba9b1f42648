"""One evaluator and one metric registry shared by every model."""

from gnnrec.evaluation.evaluator import EvaluationResult, evaluate
from gnnrec.evaluation.metrics import (
    METRICS,
    Metric,
    RatingPredictions,
    TopKRecommendations,
    glocal_ndcg,
    mae,
    register_metric,
    rmse,
)
from gnnrec.evaluation.validation import check_selection_metric, improved, validation_metrics

__all__ = [
    "METRICS",
    "EvaluationResult",
    "Metric",
    "RatingPredictions",
    "TopKRecommendations",
    "evaluate",
    "glocal_ndcg",
    "mae",
    "register_metric",
    "check_selection_metric",
    "improved",
    "rmse",
    "validation_metrics",
]
