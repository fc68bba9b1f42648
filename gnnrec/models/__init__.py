"""Every gnnrec model implements :class:`RatingModel`; importing this package registers them."""

from gnnrec.models import (
    baselines,  # noqa: F401  (registers global-mean, bias, mf)
    glocal_k,  # noqa: F401  (registers glocal-k)
    gnn,  # noqa: F401  (registers gnn)
)
from gnnrec.models.base import NotFittedError, RatingModel, SplitInfo
from gnnrec.models.registry import available_models, create_model, get_model_class, register_model

__all__ = [
    "NotFittedError",
    "RatingModel",
    "SplitInfo",
    "available_models",
    "create_model",
    "get_model_class",
    "register_model",
]
