"""Target normalisation shared by every model: ratings are mapped affinely onto the canonical 1–5 range.

Every default (learning rates, weight decay, initialisation, GLocal-K's "0 = unobserved" encoding, the
GNN's global-mean offset) was tuned on MovieLens' 1–5 stars. :class:`TargetScale` maps a split's declared
scale ``[r_min, r_max]`` onto ``[1, 5]`` before a model sees it and maps predictions back, so a model fitted on
ratings 1–100 or half stars 0.5–5 trains on the same numbers as on 1–5 and its errors scale with the unit.
The range of the declared rating levels is used rather than the training ratings' mean and std because it is
a property of the scale, not of the sample: a 1–5 dataset stays bit-identical, and the map is exact for any
affine change of unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from gnnrec.data.split import RatingSplit

CANONICAL_MIN = 1.0
CANONICAL_MAX = 5.0


@dataclass(frozen=True)
class TargetScale:
    """The affine map ``r ↦ 1 + 4 (r − r_min) / (r_max − r_min)`` from a rating scale onto ``[1, 5]``.

    A scale with a single level (``r_min == r_max``) is shifted onto 1 and not stretched.
    """

    rating_min: float
    rating_max: float

    @classmethod
    def of(cls, split: RatingSplit) -> TargetScale:
        return cls(split.rating_min, split.rating_max)

    @property
    def slope(self) -> float:
        """Model units per user unit."""
        span = self.rating_max - self.rating_min
        return (CANONICAL_MAX - CANONICAL_MIN) / span if span > 0 else 1.0

    @property
    def is_identity(self) -> bool:
        return self.rating_min == CANONICAL_MIN and self.rating_max == CANONICAL_MAX

    def to_model(self, rating: Tensor) -> Tensor:
        """User-scale ratings → model units."""
        if self.is_identity:
            return rating
        return CANONICAL_MIN + (rating - self.rating_min) * self.slope

    def to_user(self, value: Tensor) -> Tensor:
        """Model-unit predictions → the user's scale."""
        if self.is_identity:
            return value
        return self.rating_min + (value - CANONICAL_MIN) / self.slope

    def model_split(self, split: RatingSplit) -> RatingSplit:
        """``split`` with every rating in model units (:meth:`RatingSplit.map_ratings`); itself on 1–5 data."""
        if self.is_identity:
            return split
        return split.map_ratings(self.slope, CANONICAL_MIN - self.rating_min * self.slope)
