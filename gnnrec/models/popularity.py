"""Most-popular recommender: every user gets the movies rated most often in training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gnnrec.config import Range, check_config
from gnnrec.data.split import RatingSplit
from gnnrec.models.base import RatingModel
from gnnrec.models.registry import register_model


@dataclass
class PopularityConfig:
    """``min_rating``: count only training ratings ≥ this (0 counts every rating); ``seed`` orders equal counts."""

    min_rating: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_config(self, {"min_rating": Range(0.0), "seed": Range(integer=True)})


@register_model
class Popularity(RatingModel):
    """score(u, i) = number of training ratings of movie i, the same list for every user.

    Ranking-only: the score is a count, not a rating. Movies with equal counts are ordered by a
    seeded random permutation (a fraction below 1 added to the count), never by movie index.
    """

    name = "popularity"
    fold_in_kinds = ("users",)
    config_class = PopularityConfig
    predicts_ratings = False

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        cfg = self.config
        train = split.train
        keep = train.rating >= cfg.min_rating
        count = torch.bincount(train.movie[keep], minlength=split.num_movies).float()
        generator = torch.Generator().manual_seed(cfg.seed)
        tie_break = torch.randperm(split.num_movies, generator=generator).float() / split.num_movies
        self.scores = count + tie_break
        self.history.append({"epoch": 1, "seconds": 0.0})

    def refit_overrides(self) -> dict[str, Any]:
        return {}  # nothing selected, but a refit on train ∪ val counts more ratings

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return self.scores[movie]

    def _score_matrix(self, users: Tensor) -> Tensor:
        return self.scores.expand(len(users), -1).clone()

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        if kind != "users":
            return super()._fold_in(kind, features, support, rating, num_new)  # a new film has no popularity
        return self.scores.expand(num_new, -1).clone()

    def _state(self) -> dict[str, Any]:
        return {"scores": self.scores}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.scores = state["scores"].float()
