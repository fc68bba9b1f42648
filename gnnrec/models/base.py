"""The interface every gnnrec model implements: fit, predict, recommend, save, load."""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from gnnrec.config import config_to_dict, update_config
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation.evaluator import user_chunk_size
from gnnrec.nn.sparse import row_pointer
from gnnrec.utils import atomic_path, resolve_device

CHECKPOINT_FORMAT = 1


class NotFittedError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class SplitInfo:
    """What a fitted model remembers of the split it was trained on."""

    name: str
    fingerprint: str
    num_users: int
    num_movies: int
    rating_min: float
    rating_max: float
    settings: dict
    dataset: str = ""  # registry name of the dataset ("ml-100k", ...); empty in checkpoints older than it

    @classmethod
    def from_split(cls, split: RatingSplit) -> SplitInfo:
        return cls(
            split.name,
            split.fingerprint,
            split.num_users,
            split.num_movies,
            split.rating_min,
            split.rating_max,
            split.settings,
            split.dataset,
        )


class RatingModel(abc.ABC):
    """Base class of every model: a Surprise/scikit-learn-like API over a :class:`RatingSplit`.

    Subclasses set ``name`` and ``config_class`` (a dataclass) and implement
    :meth:`_fit`, :meth:`_predict`, :meth:`_state` and :meth:`_load_state`.
    They may override :meth:`_score_matrix` with a faster full-catalogue scorer.
    Fitting uses only the split's train edges, with its validation edges for
    early stopping or model selection; the test edges are never read in fit
    (a model may offer a labelled protocol that does, e.g. GLocal-K's ``paper``).
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    # False for ranking-only models (popularity, EASE, LightGCN): their scores order movies but are
    # not ratings, so predict() refuses and the evaluator reports RMSE/MAE/full-list NDCG as None.
    predicts_ratings: ClassVar[bool] = True

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        config = config if config is not None else self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{self.name} expects a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = update_config(config, overrides) if overrides else config
        self.info: SplitInfo | None = None
        self.seen: Tensor | None = None  # [2, E] (user, movie) pairs known at fit time
        self.history: list[dict[str, float]] = []  # one dict per epoch, for learning curves
        self._seen_dense: tuple[Tensor, Tensor] | None = None  # CSR (row pointer, movies) of ``seen``

    @classmethod
    def test_config(cls) -> Any:
        """A small, fast config for smoke tests; models with costly defaults override it."""
        return cls.config_class()

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        """Train on ``split.train`` (validation on ``split.val``)."""

    @abc.abstractmethod
    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        """Unclipped predicted ratings (ranking-only models: scores) for 1-D index tensors of equal length."""

    @abc.abstractmethod
    def _state(self) -> dict[str, Any]:
        """Everything needed to predict again: tensors and plain Python values."""

    @abc.abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_state`; ``self.info`` and ``self.config`` are already set."""

    def _score_matrix(self, users: Tensor) -> Tensor:
        """Unclipped ``[len(users), num_movies]`` scores; override when a faster path exists."""
        num_movies = self.info.num_movies
        rows = []
        for chunk in users.split(max(1, 2**20 // num_movies)):
            user = chunk.repeat_interleave(num_movies)
            movie = torch.arange(num_movies).repeat(len(chunk))
            rows.append(self._predict(user, movie).view(len(chunk), num_movies))
        return torch.cat(rows) if rows else torch.empty(0, num_movies)

    def refit_overrides(self) -> dict[str, Any]:
        """Config overrides that repeat this fit's validation-based choices without validation data.

        After a fit that selected something on validation (a regularisation, an epoch count), refitting with
        these overrides on :meth:`RatingSplit.merge_validation` trains on train ∪ val with that choice fixed.
        The benchmark runner refits only models whose class overrides this method (a model that selects on
        validation but does not say how to repeat it keeps its selection fit); return ``{}`` to be refitted
        as configured.
        """
        return {}

    # ------------------------------------------------------------------ public API
    @property
    def device(self) -> torch.device:
        return resolve_device(getattr(self.config, "device", "cpu"))

    @property
    def is_fitted(self) -> bool:
        return self.info is not None

    def fit(self, split: RatingSplit, *, logger: Any | None = None) -> RatingModel:
        """Train on ``split``; ``logger`` is an optional TensorBoard ``SummaryWriter``."""
        if not isinstance(split, RatingSplit):
            raise TypeError(f"fit expects a gnnrec.data.RatingSplit, got {type(split).__name__}")
        self.info = SplitInfo.from_split(split)
        known = split.known
        self.seen = torch.stack([known.user, known.movie])
        self._seen_dense = None
        self.history = []
        self._fit(split, logger)
        return self

    def predict(self, user_index: Any, movie_index: Any) -> Tensor:
        """Predicted ratings (clipped to the rating scale) for paired user and movie indices."""
        info = self._require_fitted()
        if not self.predicts_ratings:
            raise TypeError(
                f"{self.name} is a ranking-only model: it scores movies for recommend()/score_matrix() "
                "but does not predict ratings"
            )
        user = self._as_index(user_index, info.num_users, "user")
        movie = self._as_index(movie_index, info.num_movies, "movie")
        if user.shape != movie.shape:
            raise ValueError(f"user_index has shape {tuple(user.shape)} but movie_index has {tuple(movie.shape)}")
        with torch.no_grad():
            out = self._predict(user.reshape(-1), movie.reshape(-1)).detach().float().cpu()
        return out.clamp(info.rating_min, info.rating_max).view(user.shape)

    def score_matrix(self, user_index: Any | None = None, *, clip: bool = True) -> Tensor:
        """Scores of the given users (default: all) for every movie.

        ``clip=True`` clips predicted ratings to the rating scale (for display); ranking uses
        ``clip=False``, the raw scores, so that predictions above the scale keep their order.
        Ranking-only models never clip: their scores are not ratings.
        """
        info = self._require_fitted()
        users = (
            torch.arange(info.num_users) if user_index is None else self._as_index(user_index, info.num_users, "user")
        )
        with torch.no_grad():
            scores = self._score_matrix(users.reshape(-1)).detach().float().cpu()
        return scores.clamp(info.rating_min, info.rating_max) if clip and self.predicts_ratings else scores

    def seen_mask(self, users: Tensor) -> Tensor:
        """``[len(users), num_movies]`` bool: movies each user rated in train or validation."""
        info = self._require_fitted()
        users = torch.as_tensor(users, dtype=torch.long).reshape(-1)
        if self._seen_dense is None:  # CSR of the known pairs (a dense users × movies mask would not fit at scale)
            order = torch.argsort(self.seen[0], stable=True)
            self._seen_dense = (row_pointer(self.seen[0][order], info.num_users), self.seen[1][order])
        pointer, movies = self._seen_dense
        start, count = pointer[users], pointer[users + 1] - pointer[users]
        offset = torch.arange(int(count.sum())) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        mask = torch.zeros(len(users), info.num_movies, dtype=torch.bool)
        mask[
            torch.repeat_interleave(torch.arange(len(users)), count), movies[start.repeat_interleave(count) + offset]
        ] = True
        return mask

    def recommend(self, user_index: Any, k: int = 10, exclude_seen: bool = True) -> tuple[Tensor, Tensor]:
        """Top-``k`` movie indices and their scores per user, ``[len(users), k]`` each.

        Movies are ranked by the raw (unclipped) scores; the scores returned are predicted ratings
        clipped to the scale (ranking-only models: raw scores). Ties keep the lower movie index.
        """
        info = self._require_fitted()
        users = self._as_index(user_index, info.num_users, "user").reshape(-1)
        if not 1 <= k <= info.num_movies:
            raise ValueError(f"k must lie in 1..{info.num_movies}, got {k}")
        tops, scores = [torch.zeros(0, k, dtype=torch.long)], [torch.zeros(0, k)]
        for rows in users.split(user_chunk_size(info.num_movies)):  # bounded memory: never all users at once
            raw = self.score_matrix(rows, clip=False)
            ranked = raw.masked_fill(self.seen_mask(rows), float("-inf")) if exclude_seen else raw
            top = torch.sort(ranked, dim=1, descending=True, stable=True).indices[:, :k]
            tops.append(top)
            scores.append(raw.gather(1, top))
        top, score = torch.cat(tops), torch.cat(scores)
        if self.predicts_ratings:
            score = score.clamp(info.rating_min, info.rating_max)
        return top, score

    def save(self, path: str | Path) -> Path:
        """Write weights, config, split fingerprint and history atomically to ``path``."""
        info = self._require_fitted()
        path = Path(path)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "model": self.name,
            "config": config_to_dict(self.config),
            "split": dataclasses.asdict(info),
            "seen": self.seen,
            "history": self.history,
            "state": self._state(),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, split: RatingSplit | None = None) -> RatingModel:
        """Load a checkpoint; with ``split``, refuse it unless it was trained on that split."""
        from gnnrec.models.registry import get_model_class

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - any unpickling failure means the same to the user
            raise ValueError(f"{path} is not a gnnrec checkpoint: {error}") from None
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a gnnrec checkpoint (format {CHECKPOINT_FORMAT})")
        model_cls = get_model_class(payload["model"])
        if cls is not RatingModel and not issubclass(model_cls, cls):
            raise ValueError(f"{path} holds a {payload['model']!r} model, not {cls.name!r}")
        info = SplitInfo(**payload["split"])
        if split is not None and split.fingerprint != info.fingerprint:
            raise ValueError(
                f"{path} was trained on {info.name} (fingerprint {info.fingerprint[:12]}), "
                f"not on {split.name} (fingerprint {split.fingerprint[:12]}); retrain it on this split"
            )
        config = update_config(model_cls.config_class(), payload["config"])
        model = model_cls(config)
        model.info = info
        model.seen = payload["seen"]
        model.history = payload["history"]
        model._load_state(payload["state"])
        return model

    # ------------------------------------------------------------------ helpers
    def _require_fitted(self) -> SplitInfo:
        if self.info is None:
            raise NotFittedError(f"{self.name} is not fitted yet; call fit(split) or load(path) first")
        return self.info

    @staticmethod
    def _as_index(values: Any, size: int, what: str) -> Tensor:
        index = torch.as_tensor(values)
        if index.is_floating_point() or index.dtype == torch.bool:
            raise TypeError(f"{what} indices must be integers, got {index.dtype}")
        index = index.long().cpu()
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= size):
            bad = index[(index < 0) | (index >= size)][0].item()
            raise IndexError(f"unknown {what} index {bad}; valid {what} indices are 0..{size - 1}")
        return index

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"
