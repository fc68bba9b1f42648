"""What a benchmark cell tests after selecting on validation: its refit protocol.

* ``none`` — the selection fit (trained on train only) is tested;
* ``refit`` — a refit on train ∪ validation with what validation selected (``refit_overrides``) is tested;
* ``scaled`` — the same refit, its epoch counts scaled by the data added (``|train ∪ val| / |train|``);
* ``average`` — :class:`AveragedFits` of the selection fit and the refit (both exist: it costs no fit).

Whatever the protocol, a refit first takes over what the selection fit learned where the model allows it
(``RatingModel.warm_start_from``: GLocal-K's pre-training, the GNN's networks).

``benchmarks/bench_refit_protocol.py`` compares them on a second validation carve-out; a model's default is
its attribute ``refit_protocol`` (:func:`refit_protocol_of`; ``refit`` for every registered model but the GNN, whose
refit follows its preset: ``refit`` where it continues the selection fit, ``scaled`` where it trains afresh).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

PROTOCOLS = ("none", "refit", "scaled", "average")
DEFAULT_PROTOCOL = "refit"


def refit_protocol_of(model: Any) -> str:
    """The refit protocol ``model`` asks for (its ``refit_protocol``; :data:`DEFAULT_PROTOCOL` without one)."""
    protocol = getattr(model, "refit_protocol", DEFAULT_PROTOCOL)
    if protocol not in PROTOCOLS:
        raise ValueError(f"{type(model).__name__}.refit_protocol is {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def is_epoch_count(key: str) -> bool:
    """Whether a refit override counts epochs (``max_epochs``, ``keep_rating_epoch``, ...)."""
    return key in ("max_epochs", "epochs") or key.endswith("_epoch")


def scaled_epochs(overrides: Mapping[str, Any], factor: float) -> dict[str, Any]:
    """``overrides`` with every epoch count (:func:`is_epoch_count`) multiplied by ``factor``, rounded, ≥ 1.

    For a full-batch model (one step per epoch) this scales the optimizer steps by ``factor``; for a
    mini-batch model, whose epochs already hold ``factor`` times more batches on the larger data, by
    ``factor²``.
    """
    return {
        key: max(1, round(value * factor)) if is_epoch_count(key) and isinstance(value, int) and value else value
        for key, value in overrides.items()
    }


def standardised_rows(scores: Tensor) -> Tensor:
    """Each row minus its mean, over its standard deviation (a constant row becomes zeros)."""
    centred = scores - scores.mean(dim=1, keepdim=True)
    spread = centred.std(dim=1, keepdim=True, correction=0)
    return torch.where(spread > 0, centred / spread.clamp_min(torch.finfo(scores.dtype).tiny), 0.0)


class AveragedFits:
    """Two fits of one model averaged: the selection fit (train only) and its refit (train ∪ validation).

    Ratings are the mean of the two fits' predictions (both in rating units, each clipped to the scale).
    Ranking scores (``score_matrix(clip=False)``) are the mean of each fit's scores standardised per user
    (:func:`standardised_rows`): a ranking depends only on each user's order of the catalogue, and the two
    fits' raw scores need not share a scale (a ranking head's logits, EASE's shrunk scores), so raw means would
    let the wider-spread fit decide alone. Displayed scores (``clip=True``) are the plain mean.

    It answers what :func:`gnnrec.evaluation.evaluate` asks of a model; ``info`` (the split it is evaluated on)
    is the refit's.

    Args:
        selection: the fit that selected on validation.
        refit: the refit on train ∪ validation.
        standardise: False averages the raw ranking scores instead (the comparison the study makes).
    """

    def __init__(self, selection: Any, refit: Any, *, standardise: bool = True) -> None:
        if type(selection) is not type(refit):
            kinds = f"{type(selection).__name__} and {type(refit).__name__}"
            raise TypeError(f"averaged fits must be two fits of one model, got {kinds}")
        self.selection, self.refit = selection, refit
        self.name = refit.name
        self.info = refit.info
        self.predicts_ratings = refit.predicts_ratings
        self.standardise = standardise

    def predict(self, user_index: Any, movie_index: Any) -> Tensor:
        return (self.selection.predict(user_index, movie_index) + self.refit.predict(user_index, movie_index)) / 2

    def score_matrix(self, user_index: Any | None = None, *, clip: bool = True) -> Tensor:
        first = self.selection.score_matrix(user_index, clip=clip)
        second = self.refit.score_matrix(user_index, clip=clip)
        if clip or not self.standardise:
            return (first + second) / 2
        return (standardised_rows(first) + standardised_rows(second)) / 2
