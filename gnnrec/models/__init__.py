"""Every gnnrec model implements :class:`RatingModel`; importing this package registers them."""

from gnnrec.models import (
    baselines,  # noqa: F401  (registers global-mean, bias)
    ease,  # noqa: F401  (registers ease)
    glocal_k,  # noqa: F401  (registers glocal-k)
    gnn,  # noqa: F401  (registers gnn)
    lightgcn,  # noqa: F401  (registers lightgcn)
    mf,  # noqa: F401  (registers mf)
    popularity,  # noqa: F401  (registers popularity)
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
