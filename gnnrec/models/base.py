"""The interface every gnnrec model implements: fit, predict, recommend, save, load."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from gnnrec.coldstart.fold_in import FOLD_IN_KINDS, FoldIn, FoldInNotSupported, leave_one_out_support
from gnnrec.config import config_to_dict, update_config
from gnnrec.data.split import RatingSplit
from gnnrec.data.target_scale import TargetScale
from gnnrec.models.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from gnnrec.nn.sparse import row_pointer
from gnnrec.utils import resolve_device, user_chunk_size

__all__ = [
    "FOLD_IN_KINDS",
    "CheckpointError",
    "FoldIn",
    "FoldInNotSupported",
    "NotFittedError",
    "RatingModel",
    "SplitInfo",
    "check_warm_start",
]


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


def check_warm_start(
    what: str,
    fitted_on: tuple[tuple[int, str], tuple[int, str]],
    split: RatingSplit,
    config: Any,
    source: Any,
    fields: Iterable[str],
) -> None:
    """Refuse a refit's warm start (``what``, e.g. ``"reuse pre-training"``) from a selection fit of another shape
    or settings: ``fitted_on`` is that fit's ``((count, name), (count, name))`` of catalogue axes, e.g.
    ``((943, "users"), (1682, "movies"))``, compared with ``split``'s; each of ``fields`` must be equal in this
    fit's ``config`` and the ``source`` config it comes from."""
    here = tuple(getattr(split, f"num_{name}") for _, name in fitted_on)
    if here != tuple(count for count, _ in fitted_on):
        (rows, row_name), (cols, col_name) = fitted_on
        raise ValueError(
            f"cannot {what}: it was fitted on {rows} {row_name} × {cols} {col_name}, "
            f"{split.name} has {here[0]} × {here[1]}"
        )
    for name in fields:
        if getattr(config, name) != getattr(source, name):
            raise ValueError(
                f"cannot {what}: {name} is {getattr(config, name)!r} here but {getattr(source, name)!r} in the fit "
                "it comes from"
            )


class RatingModel(abc.ABC):
    """Base class of every model: a Surprise/scikit-learn-like API over a :class:`RatingSplit`.

    Subclasses set ``name`` and ``config_class`` (a dataclass) and implement
    :meth:`_fit`, :meth:`_predict`, :meth:`_state` and :meth:`_load_state`.
    They may override :meth:`_score_matrix` with a faster full-catalogue scorer.
    Fitting uses only the split's train edges, with its validation edges for
    early stopping or model selection; the test edges are never read in fit
    (a model may offer a labelled protocol that does, e.g. GLocal-K's ``paper``).

    Targets are normalised for every model (:mod:`gnnrec.data.target_scale`): ``_fit`` receives the split
    with its ratings mapped onto 1–5 (unchanged for 1–5 data), the hooks work in those units, and the public
    methods map ratings in and predictions out. While ``_fit`` runs, ``self.info`` describes the mapped split,
    so a model that scores validation through :meth:`predict` compares like with like; ``history`` is in
    model units.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    # False for ranking-only models (popularity, EASE, LightGCN): their scores order movies but are
    # not ratings, so predict() refuses and the evaluator reports RMSE/MAE/full-list NDCG as None.
    predicts_ratings: ClassVar[bool] = True
    # rough relative cost of a default fit (1: a baseline's seconds); schedulers start the costly fits first
    fit_cost: ClassVar[float] = 1.0
    # which new nodes fold_in() can add without retraining: "users" and/or "movies" (none by default)
    fold_in_kinds: ClassVar[tuple[str, ...]] = ()
    # config fields read only by fold_in (not by fit): a fitted model can try other values without refitting
    fold_in_settings: ClassVar[tuple[str, ...]] = ()
    # what a benchmark cell tests after a refit (gnnrec.benchmark.refit_protocols): "refit", "scaled" (the refit
    # with its epoch counts scaled by the data added), "average" (of the selection fit and the refit) or "none";
    # read from the instance, so a model may make it depend on its config
    refit_protocol: str = "refit"

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

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        """Raw ``[num_new, num_other]`` scores of new nodes; ``support`` is ``[2, S]`` (new row, other index)."""
        raise FoldInNotSupported(f"{self.name} cannot fold in new {kind} without retraining")

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

    def warm_start_from(self, selection: RatingModel) -> bool:
        """Before this model refits on train ∪ validation, take over what its selection fit learned from the
        training ratings (which read the validation ratings only to choose); True if anything was taken.

        ``selection`` is the fit whose :meth:`refit_overrides` configured this model. The default takes nothing
        (the refit starts from scratch); GLocal-K reuses its fixed pre-training schedule, the GNN continues the
        selection fit's networks (:attr:`warm_start_note` says it in words).
        """
        return False

    @property
    def warm_start_note(self) -> str:
        """What :meth:`warm_start_from` takes, in a few words for a benchmark report ("" where it takes nothing)."""
        return ""

    def continue_share(self, selection: RatingModel) -> float:
        """The share of the selected epochs a refit after ``selection`` continues it for (0: the refit does not
        continue it): this config's ``refit_continue_share``, else the one ``selection``'s fit resolved from its
        preset (``fit_config``, a config of this model's class); 0 for a config without the field."""
        own = getattr(self.config, "refit_continue_share", None)
        if own is not None:
            return own
        resolved = getattr(selection, "fit_config", None)
        if not isinstance(resolved, type(self.config)):
            return 0.0
        return getattr(resolved, "refit_continue_share", None) or 0.0

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
        model_split = TargetScale.of(split).model_split(split)
        known = split.known
        self.seen = torch.stack([known.user, known.movie])
        self._seen_dense = None
        self.history = []
        self.info = SplitInfo.from_split(model_split)
        try:
            self._fit(model_split, logger)
        finally:
            self.info = SplitInfo.from_split(split)
        return self

    @property
    def target_scale(self) -> TargetScale:
        """The map between the scale of :attr:`info` and the model's units (the identity while fitting)."""
        info = self._require_fitted()
        return TargetScale(info.rating_min, info.rating_max)

    def _to_user(self, scores: Tensor) -> Tensor:
        """Model-unit outputs of the hooks in the user's scale (ranking-only scores are not ratings: unchanged)."""
        return self.target_scale.to_user(scores) if self.predicts_ratings else scores

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
            out = self._to_user(self._predict(user.reshape(-1), movie.reshape(-1)).detach().float().cpu())
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
            scores = self._to_user(self._score_matrix(users.reshape(-1)).detach().float().cpu())
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

    def fold_in(
        self,
        kind: str,
        support: Any = None,
        rating: Any = None,
        *,
        num_new: int | None = None,
        features: Any = None,
        explain: bool = False,
    ) -> FoldIn:
        """Add ``num_new`` new users (``kind="users"``) or movies (``"movies"``) and score them, weights unchanged.

        ``support`` is ``[2, S]`` integer pairs (new row in ``0..num_new-1``, existing movie index for new
        users / existing user index for new movies) with their ``rating`` ``[S]`` (may be empty: ``n = 0``).
        ``features`` is ``[num_new, F]`` side features of the new nodes where the dataset has them
        (``split.user_layout.encode(...)`` rows for users, movie feature rows for movies); ``None`` means
        unknown. Raises :class:`FoldInNotSupported` for models that cannot (e.g. GLocal-K).

        ``explain=True`` also fills ``FoldIn.contributions`` (read them with ``reasons``/``explain``), for any
        model, by leave-one-out: one more fold-in, batched, of ``num_new + S`` pseudo-nodes (each new node's
        whole support, and its support without each pair in turn); a pair's contribution is how much the
        ranking score drops without it. Every model folds each new node in as if it joined alone (the GNN's
        support messages flow into the new nodes only), so these are the drops of separate fold-ins. With
        ``features`` given it also fills ``FoldIn.uses_features`` (one more fold-in, without the features): whether
        each new node's features changed its scores (computed when first read), so that a reason says "from your
        profile" only where they did.
        """
        if kind not in FOLD_IN_KINDS:
            raise ValueError(f"unknown fold-in kind {kind!r}; choose one of {', '.join(FOLD_IN_KINDS)}")
        if kind not in self.fold_in_kinds:
            raise FoldInNotSupported(f"{self.name} cannot fold in new {kind} without retraining")
        info = self._require_fitted()
        support = torch.zeros(2, 0, dtype=torch.long) if support is None else torch.as_tensor(support)
        rating = torch.zeros(0) if rating is None else torch.as_tensor(rating, dtype=torch.float32).reshape(-1)
        if support.is_floating_point() or support.dtype == torch.bool:
            raise TypeError(f"fold-in support must hold integer indices, got {support.dtype}")
        if support.dim() != 2 or support.size(0) != 2:
            raise ValueError(f"fold-in support must have shape [2, S], got {tuple(support.shape)}")
        support = support.long()
        if support.size(1) != rating.numel():
            raise ValueError(f"fold-in support has {support.size(1)} pairs but {rating.numel()} ratings")
        num_new = int(support[0].max()) + 1 if num_new is None and support.size(1) else num_new
        if num_new is None or num_new < 1:
            raise ValueError("fold-in needs num_new >= 1 (how many new nodes), or support pairs to infer it")
        num_other = info.num_movies if kind == "users" else info.num_users
        other_name = "movie" if kind == "users" else "user"
        if support.size(1):
            if int(support[0].min()) < 0 or int(support[0].max()) >= num_new:
                bad = support[0][(support[0] < 0) | (support[0] >= num_new)][0].item()
                raise IndexError(f"fold-in support row {bad} is not a new node; valid rows are 0..{num_new - 1}")
            if int(support[1].min()) < 0 or int(support[1].max()) >= num_other:
                bad = support[1][(support[1] < 0) | (support[1] >= num_other)][0].item()
                raise IndexError(f"fold-in support: unknown {other_name} index {bad}; valid 0..{num_other - 1}")
            pair = support[0] * num_other + support[1]
            if torch.unique(pair).numel() != pair.numel():
                raise ValueError("fold-in support rates the same (new node, " + other_name + ") pair twice")
            outside = (rating < info.rating_min - 1e-6) | (rating > info.rating_max + 1e-6) | ~torch.isfinite(rating)
            if bool(outside.any()):
                raise ValueError(
                    f"fold-in rating {float(rating[outside][0]):g} lies outside the scale "
                    f"{info.rating_min:g}..{info.rating_max:g}"
                )
        if features is not None:
            features = torch.as_tensor(features, dtype=torch.float32)
            if features.dim() != 2 or features.size(0) != num_new:
                raise ValueError(f"fold-in features must have shape [{num_new}, F], got {tuple(features.shape)}")
        scores, ranking = self._scored_fold_in(kind, features, support, rating, num_new, num_other)
        contributions = None
        if explain:
            pseudo_support, pseudo_rating, owner = leave_one_out_support(support, rating, num_new)
            pseudo_features = None if features is None else features[owner]
            pseudo_scores, pseudo_ranking = self._scored_fold_in(
                kind, pseudo_features, pseudo_support, pseudo_rating, len(owner), num_other
            )
            rank = pseudo_scores if pseudo_ranking is None else pseudo_ranking
            contributions = rank[support[0]] - rank[num_new:]
        features_left_out = None
        if explain and features is not None:
            # a reason may say "from your profile" only where the features changed the list

            def features_left_out() -> Tensor:
                blind_scores, blind_ranking = self._scored_fold_in(kind, None, support, rating, num_new, num_other)
                return blind_scores if blind_ranking is None else blind_ranking

        return FoldIn(
            kind, scores, support, self.predicts_ratings, info.rating_min, info.rating_max, ranking, rating,
            contributions, features_left_out,
        )  # fmt: skip

    def _scored_fold_in(
        self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int, num_other: int
    ) -> tuple[Tensor, Tensor | None]:
        """``_fold_in`` of checked input: (scores in the user's units, ranking scores or None), shapes checked."""
        with torch.no_grad():
            out = self._fold_in(kind, features, support, self.target_scale.to_model(rating), num_new)
        scores, ranking = out if isinstance(out, tuple) else (out, None)
        scores = self._to_user(scores.detach().float().cpu())
        ranking = None if ranking is None else ranking.detach().float().cpu()
        for value in (scores, ranking):
            if value is not None and tuple(value.shape) != (num_new, num_other):
                raise ValueError(f"{self.name} fold-in returned shape {tuple(value.shape)}, not {(num_new, num_other)}")
        return scores, ranking

    def save(self, path: str | Path) -> Path:
        """Write weights, config, split info and history atomically to ``path`` (a safetensors checkpoint).

        The layout is described in :mod:`gnnrec.models.checkpoint`; ``path`` conventionally ends in
        ``.safetensors``. Nothing in the file is pickled, so loading it cannot run code.
        """
        info = self._require_fitted()
        return write_checkpoint(
            path,
            {
                "model": self.name,
                "config": config_to_dict(self.config),
                "split": dataclasses.asdict(info),
                "seen": self.seen,
                "history": self.history,
                "state": self._state(),
            },
        )

    @classmethod
    def load(cls, path: str | Path, split: RatingSplit | None = None) -> RatingModel:
        """Load a checkpoint; with ``split``, refuse it unless it was trained on that split.

        The file's SHA-256 is checked first; a pickle checkpoint of an older gnnrec, a damaged or changed
        file, or one whose state does not fit its model raises :class:`~gnnrec.models.checkpoint.CheckpointError`
        (a ``ValueError``) saying what is wrong.
        """
        from gnnrec.models.registry import get_model_class

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        payload = read_checkpoint(path)
        try:
            model_cls = get_model_class(payload["model"])
        except (KeyError, ValueError) as error:
            raise CheckpointError(f"{path} holds an unknown model: {error}") from None
        if cls is not RatingModel and not issubclass(model_cls, cls):
            raise ValueError(f"{path} holds a {payload['model']!r} model, not {cls.name!r}")
        try:
            info = SplitInfo(**payload["split"])
        except TypeError as error:
            raise CheckpointError(f"{path}: malformed split record ({error})") from None
        if split is not None and split.fingerprint != info.fingerprint:
            raise ValueError(
                f"{path} was trained on {info.name} (fingerprint {info.fingerprint[:12]}), "
                f"not on {split.name} (fingerprint {split.fingerprint[:12]}); retrain it on this split"
            )
        seen = payload["seen"]
        try:
            config = update_config(model_cls.config_class(), payload["config"])
            model = model_cls(config)
            if seen.numel() and not (
                0 <= int(seen.min()) and int(seen[0].max()) < info.num_users and int(seen[1].max()) < info.num_movies
            ):
                raise ValueError("its known (user, movie) pairs lie outside the split's users and movies")
            model.info = info
            model.seen = seen
            model.history = payload["history"]
            model._load_state(payload["state"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            reason = " ".join(str(error).split())[:400]
            raise CheckpointError(
                f"{path} does not hold a usable {payload['model']!r} model: {type(error).__name__}: {reason}"
            ) from None
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
