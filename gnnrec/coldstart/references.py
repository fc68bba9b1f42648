"""What a practitioner would otherwise use for new people and new films: movie and group means, demographic
popularity, and item-based fold-in (item-kNN, EASE) from the films a new person rated, alone or blended with
liked-film popularity.

These reference predictors exist for the cold-start benchmark (:data:`REFERENCES` names them for suites);
they are :class:`RatingModel` subclasses so they share the fold-in interface, but they are not
registered (they are not meant as general-purpose models). Every mean is damped toward its parent
level with ``damping`` pseudo-ratings: ``(Σ r + k · parent) / (n + k)``. Config fields listed in a class's
``fold_in_settings`` are read by the fold-in alone, so a setting chosen on validation cold users needs no refit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from gnnrec.coldstart.fold_in import FoldInNotSupported
from gnnrec.config import Range, check_config
from gnnrec.data.split import RatingSplit
from gnnrec.data.user_features import layout_from_spec
from gnnrec.models.base import RatingModel
from gnnrec.models.ease import REG_GRID, GramSpectrum, check_fit_memory, gram_of, interaction_matrix
from gnnrec.models.popularity import Popularity

AGE_BUCKETS = (18, 25, 35, 45, 50, 56)  # the ML-1M age codes, used to bucket ML-100k ages too


@dataclass
class GroupMeanConfig:
    damping: float = 5.0  # pseudo-ratings pulling a mean toward its coarser level (fixed a priori, not tuned)

    def __post_init__(self) -> None:
        check_config(self, {"damping": Range(0.0)})


def damped_means(key: Tensor, rating: Tensor, parent: Tensor, num_keys: int, damping: float) -> Tensor:
    """Per key ``(Σ r + k · parent[key]) / (n + k)``; ``parent`` is ``[num_keys]`` (keys without ratings get it)."""
    total = torch.zeros(num_keys, dtype=torch.float64).index_add_(0, key, rating.double())
    count = torch.bincount(key, minlength=num_keys).double()
    return ((total + damping * parent.double()) / (count + damping)).float()


def demographic_keys(layout_spec: dict | None, x: Tensor) -> Tensor:
    """``[N, 3]`` (gender, age bucket, occupation) of user feature rows; raises if the layout has none."""
    layout = layout_from_spec(layout_spec)
    if layout.kind == "ml-100k":
        age = x[:, 0] * max(layout.age_max - layout.age_min, 1.0) + layout.age_min
        bucket = torch.bucketize(age, torch.tensor(AGE_BUCKETS, dtype=age.dtype), right=True)
        return torch.stack([x[:, 1].round().long(), bucket, x[:, 2:].argmax(1)], 1)
    if layout.kind == "ml-1m":
        buckets = len(layout.age_buckets)
        return torch.stack([x[:, 0].round().long(), x[:, 1 : 1 + buckets].argmax(1), x[:, 1 + buckets :].argmax(1)], 1)
    raise FoldInNotSupported(f"demographic-group means need user demographics; layout {layout.kind!r} has none")


class _MeanModel(RatingModel):
    config_class = GroupMeanConfig
    fold_in_kinds = ("users", "movies")

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        train = split.train
        k = self.config.damping
        self.mean = float(train.rating.double().mean())
        self.movie_mean = damped_means(
            train.movie, train.rating, torch.full((split.num_movies,), self.mean), split.num_movies, k
        )
        self.train_edges = (train.user, train.movie, train.rating)
        graph = split.graph
        self.user_x = graph["user"].x.float() if "x" in graph["user"] else torch.zeros(split.num_users, 0)
        self.movie_x = graph["movie"].x.float() if "x" in graph["movie"] else torch.zeros(split.num_movies, 0)
        self.layout_spec = split.user_layout.spec()
        self.history.append({"epoch": 1, "seconds": 0.0})

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return self.movie_mean[movie]

    def _new_movie_means(self, parent: Tensor, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        return damped_means(support[0], rating, parent, num_new, self.config.damping)

    def _state(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "movie_mean": self.movie_mean,
            "train_edges": self.train_edges,
            "user_x": self.user_x,
            "movie_x": self.movie_x,
            "layout_spec": self.layout_spec,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class MovieMean(_MeanModel):
    """New users: every film's (damped) mean rating, popular taste for everyone. New films: the damped
    mean of the film's revealed ratings (the global mean with none)."""

    name = "movie-mean"

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        if kind == "users":
            return self.movie_mean.expand(num_new, -1).clone()
        means = self._new_movie_means(torch.full((num_new,), self.mean), support, rating, num_new)
        return means[:, None].expand(-1, self.info.num_users).clone()


class GroupMean(_MeanModel):
    """New users: per-film mean of the users in the same gender × age bucket × occupation group, backing
    off to gender × age, gender, then the film's mean. New films: mean rating of films with the same
    genre flags, then (with support) the film's own damped mean around it."""

    name = "group-mean"

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        k = self.config.damping
        user, movie, value = self.train_edges
        num_movies = self.info.num_movies
        if kind == "users":
            if features is None:
                raise FoldInNotSupported("group-mean needs the new users' demographic features")
            train_keys = demographic_keys(self.layout_spec, self.user_x)
            new_keys = demographic_keys(self.layout_spec, features)
            level = self.movie_mean.expand(num_new, -1)
            for width in (1, 2, 3):  # gender, + age bucket, + occupation
                groups, inverse = torch.unique(torch.cat([train_keys, new_keys])[:, :width], dim=0, return_inverse=True)
                train_group, new_group = inverse[: len(train_keys)], inverse[len(train_keys) :]
                cell = train_group[user] * num_movies + movie
                size = len(groups) * num_movies
                total = torch.zeros(size, dtype=torch.float64).index_add_(0, cell, value.double())
                count = torch.bincount(cell, minlength=size).double()
                new_cell = new_group[:, None] * num_movies + torch.arange(num_movies)
                level = ((total[new_cell] + k * level.double()) / (count[new_cell] + k)).float()
            return level
        flags = self._genre_flags(self.movie_x)
        new_flags = self._genre_flags(features) if features is not None else None
        if new_flags is None:
            parent = torch.full((num_new,), self.mean)
        else:
            groups, inverse = torch.unique(torch.cat([flags, new_flags]), dim=0, return_inverse=True)
            train_group, new_group = inverse[: len(flags)], inverse[len(flags) :]
            group_mean = damped_means(train_group[movie], value, torch.full((len(groups),), self.mean), len(groups), k)
            parent = group_mean[new_group]
        means = self._new_movie_means(parent, support, rating, num_new)
        return means[:, None].expand(-1, self.info.num_users).clone()

    def _genre_flags(self, x: Tensor) -> Tensor:
        """The binary (0/1) columns of the training films' features: genre flags on MovieLens."""
        binary = ((self.movie_x == 0) | (self.movie_x == 1)).all(0)
        return x[:, binary].round().long()


@dataclass
class DemographicPopularityConfig:
    """``min_rating``: a rating counts as liked from this value up; ``shrinkage``: pseudo-users pulling a
    group's liked rate toward its coarser group's (choose it on validation cold users)."""

    min_rating: float = 4.0
    shrinkage: float = 20.0

    def __post_init__(self) -> None:
        check_config(self, {"min_rating": Range(0.0), "shrinkage": Range(0.0)})


def shrunk_liked_rates(
    group_of_user: Tensor, liked_user: Tensor, liked_movie: Tensor, parent: Tensor, num_groups: int, shrinkage: float
) -> Tensor:
    """``[num_groups, num_movies]`` share of each group's users who liked each film, shrunk toward ``parent``
    (``[num_groups, num_movies]``, the coarser group's rates): ``(L_gj + s · parent_gj) / (U_g + s)`` with
    ``L_gj`` the group's users who liked film ``j`` and ``U_g`` the group's users."""
    num_movies = parent.size(1)
    cell = group_of_user[liked_user] * num_movies + liked_movie
    liked = torch.bincount(cell, minlength=num_groups * num_movies).view(num_groups, num_movies).double()
    users = torch.bincount(group_of_user, minlength=num_groups).double().unsqueeze(1)
    return ((liked + shrinkage * parent.double()) / (users + shrinkage)).float()


class DemographicPopularity(RatingModel):
    """New users: the films most liked (rating ≥ ``min_rating``) by training users of the same gender ×
    age bucket × occupation, each group's rates shrunk toward gender × age bucket, gender, then everyone
    (``shrinkage`` pseudo-users per level). Ranking-only; without demographics, plain liked popularity."""

    name = "demographic-popularity"
    config_class = DemographicPopularityConfig
    fold_in_kinds = ("users",)
    predicts_ratings = False
    fold_in_settings: ClassVar[tuple[str, ...]] = ("shrinkage",)

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        train = split.train
        liked = train.rating >= self.config.min_rating
        self.liked_edges = (train.user[liked], train.movie[liked])
        graph = split.graph
        self.user_x = graph["user"].x.float() if "x" in graph["user"] else torch.zeros(split.num_users, 0)
        self.rated = torch.zeros(split.num_users, dtype=torch.bool)
        self.rated[train.user] = True  # users with training ratings: the held-out ones are no group members
        self.layout_spec = split.user_layout.spec()
        self.history.append({"epoch": 1, "seconds": 0.0})

    def _overall(self) -> Tensor:
        user, movie = self.liked_edges
        count = torch.bincount(movie, minlength=self.info.num_movies).float()
        return count / max(int(self.rated.sum()), 1)

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return self._overall()[movie]

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        overall = self._overall()
        if features is None or layout_from_spec(self.layout_spec).num_features == 0:
            return overall.expand(num_new, -1).clone()
        members = self.rated.nonzero().view(-1)
        lookup = torch.full((self.info.num_users,), -1, dtype=torch.long)
        lookup[members] = torch.arange(len(members))
        user, movie = self.liked_edges
        train_keys = demographic_keys(self.layout_spec, self.user_x[members])
        new_keys = demographic_keys(self.layout_spec, features)
        rates = overall.expand(num_new, -1)
        for width in (1, 2, 3):  # gender, + age bucket, + occupation
            groups, inverse = torch.unique(torch.cat([train_keys, new_keys])[:, :width], dim=0, return_inverse=True)
            train_group, new_group = inverse[: len(members)], inverse[len(members) :]
            parent = torch.zeros(len(groups), self.info.num_movies)
            parent[new_group] = rates  # a training-only group's parent never reaches a new user
            rates = shrunk_liked_rates(train_group, lookup[user], movie, parent, len(groups), self.config.shrinkage)[
                new_group
            ]
        return rates

    def _state(self) -> dict[str, Any]:
        return {"liked_edges": self.liked_edges, "user_x": self.user_x, "rated": self.rated,
                "layout_spec": self.layout_spec}  # fmt: skip

    def _load_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


# ---------------------------------------------------------------------- item-based fold-in
def support_rows(support: Tensor, rating: Tensor, num_new: int, num_movies: int, min_rating: float) -> Tensor:
    """Dense binary ``[num_new, movies]`` rows of the support films rated ≥ ``min_rating``."""
    rows = torch.zeros(num_new, num_movies)
    keep = rating >= min_rating
    rows[support[0, keep], support[1, keep]] = 1.0
    return rows


def cosine_neighbours(gram: Tensor, neighbours: int) -> Tensor:
    r"""Item-item cosine similarity ``S_ij = G_ij / \sqrt{G_ii G_jj}`` of a Gram matrix ``G = XᵀX`` (co-rating
    counts), diagonal zeroed, each row ``i`` keeping only its ``neighbours`` largest entries (0: all; ties keep
    the lower index). Films nobody rated have zero rows and columns."""
    norm = torch.diagonal(gram).clamp_min(0).sqrt()
    inverse = torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))
    similarity = gram * inverse[:, None] * inverse[None, :]
    similarity.fill_diagonal_(0.0)
    if 0 < neighbours < similarity.size(1):
        order = torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, :neighbours]
        kept = torch.zeros_like(similarity)
        kept.scatter_(1, order, similarity.gather(1, order))
        similarity = kept
    return similarity


def rescale_rows(scores: Tensor) -> Tensor:
    """Each row mapped onto [0, 1] by its minimum and maximum (a constant row becomes 0)."""
    low = scores.min(dim=1, keepdim=True).values
    span = scores.max(dim=1, keepdim=True).values - low
    return torch.where(span > 0, (scores - low) / span.clamp_min(1e-12), torch.zeros_like(scores))


def blend_with_popularity(scores: Tensor, popularity: Tensor, weight: float) -> Tensor:
    """``(1 − w) · rescaled scores + w · rescaled popularity`` per row (see :func:`rescale_rows`); ``w = 0`` leaves
    ``scores`` unchanged."""
    if weight == 0:
        return scores
    popular = rescale_rows(popularity.view(1, -1)).expand_as(scores)
    return (1.0 - weight) * rescale_rows(scores) + weight * popular


@dataclass
class ItemFoldInConfig:
    """Shared settings of the item-based fold-ins.

    ``min_rating``: a rating ≥ this is an interaction, in training and in a new person's support (0: every
    rating); ``popularity_weight``: share of liked-film popularity (training ratings ≥ ``liked_rating``) in the
    blended score (0: the item-based score alone).
    """

    min_rating: float = 0.0
    popularity_weight: float = 0.0
    liked_rating: float = 4.0

    def ranges(self) -> dict[str, Range]:
        return {"min_rating": Range(0.0), "popularity_weight": Range(0.0, 1.0), "liked_rating": Range(0.0)}


ITEM_SCORE_CACHE = 8  # item-based scores kept per model: choosing the blend weight re-blends them


class _ItemFoldIn(RatingModel):
    """Fit: the training interactions' Gram matrix and liked-film popularity; fold-in: ``score(rows)``."""

    fold_in_kinds = ("users",)
    predicts_ratings = False
    item_settings: ClassVar[tuple[str, ...]] = ()  # the config fields the item-based score reads

    def _fit(self, split: RatingSplit, logger: Any | None) -> None:
        check_fit_memory(split.num_movies, torch.device("cpu"))
        rows = interaction_matrix(split, self.config.min_rating)
        self.fit_gram(gram_of(rows))
        liked = split.train.rating >= self.config.liked_rating
        self.popularity = torch.bincount(split.train.movie[liked], minlength=split.num_movies).float()
        self.interactions = torch.from_numpy(rows.toarray()).float()
        self.history.append({"epoch": 1, "seconds": 0.0})

    def fit_gram(self, gram: Tensor) -> None:
        raise NotImplementedError

    def item_scores(self, rows: Tensor) -> Tensor:
        raise NotImplementedError

    def _scores(self, rows: Tensor) -> Tensor:
        key = (tuple(getattr(self.config, name) for name in self.item_settings), rows.shape,
               hashlib.sha1(rows.numpy().tobytes()).hexdigest())  # fmt: skip
        cache = self.__dict__.setdefault("_item_score_cache", {})
        if key not in cache:
            if len(cache) >= ITEM_SCORE_CACHE:
                cache.pop(next(iter(cache)))
            cache[key] = self.item_scores(rows)
        return blend_with_popularity(cache[key], self.popularity, self.config.popularity_weight)

    def _predict(self, user: Tensor, movie: Tensor) -> Tensor:
        return self._score_matrix(user)[torch.arange(len(user)), movie]

    def _score_matrix(self, users: Tensor) -> Tensor:
        return self._scores(self.interactions[users])

    def _fold_in(self, kind: str, features: Tensor | None, support: Tensor, rating: Tensor, num_new: int) -> Tensor:
        return self._scores(support_rows(support, rating, num_new, self.info.num_movies, self.config.min_rating))


@dataclass
class ItemKnnConfig(ItemFoldInConfig):
    """``neighbours``: most similar films kept per film (0: all)."""

    neighbours: int = 0

    def __post_init__(self) -> None:
        check_config(self, {**self.ranges(), "neighbours": Range(0, integer=True)})


class ItemKnnFoldIn(_ItemFoldIn):
    """New users: ``score_j = Σ_{i ∈ support} S_ij`` with ``S`` the item-item cosine similarity of the training
    interactions (:func:`cosine_neighbours`, top ``neighbours`` per film), optionally blended with liked-film
    popularity (:func:`blend_with_popularity`). Ranking-only."""

    name = "item-knn"
    config_class = ItemKnnConfig
    item_settings = ("neighbours",)
    fold_in_settings: ClassVar[tuple[str, ...]] = ("neighbours", "popularity_weight")

    def fit_gram(self, gram: Tensor) -> None:
        self.gram = gram.float()
        self.similarity: dict[int, Tensor] = {}  # per ``neighbours``: choosing it on validation reuses each

    def item_scores(self, rows: Tensor) -> Tensor:
        neighbours = self.config.neighbours
        if neighbours not in self.similarity:
            self.similarity[neighbours] = cosine_neighbours(self.gram, neighbours)
        return rows @ self.similarity[neighbours]

    def _state(self) -> dict[str, Any]:
        return {"gram": self.gram, "popularity": self.popularity, "interactions": self.interactions}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.popularity, self.interactions = state["popularity"], state["interactions"]
        self.fit_gram(state["gram"])


@dataclass
class EaseFoldInConfig(ItemFoldInConfig):
    """``reg``: EASE's λ for a new person's fold-in (the Gram matrix is decomposed once, so any λ is cheap)."""

    reg: float = 500.0

    def __post_init__(self) -> None:
        check_config(self, {**self.ranges(), "reg": Range(0.0, low_open=True)})


class EaseFoldIn(_ItemFoldIn):
    """New users: EASE's ``x B(λ)`` from the binary support row ``x``, with ``B(λ)`` from one
    eigendecomposition of the training Gram matrix (:class:`~gnnrec.models.ease.GramSpectrum`), so λ can be
    chosen on validation cold users without refitting; optionally blended with liked-film popularity.
    Ranking-only."""

    name = "ease-fold-in"
    config_class = EaseFoldInConfig
    item_settings = ("reg",)
    fold_in_settings: ClassVar[tuple[str, ...]] = ("reg", "popularity_weight")

    def fit_gram(self, gram: Tensor) -> None:
        self.spectrum = GramSpectrum(gram.double())

    def item_scores(self, rows: Tensor) -> Tensor:
        return self.spectrum.scores(rows, self.config.reg)

    def _state(self) -> dict[str, Any]:
        return {
            "eigenvalues": self.spectrum.eigenvalues,
            "eigenvectors": self.spectrum.eigenvectors,
            "popularity": self.popularity,
            "interactions": self.interactions,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.spectrum = GramSpectrum.from_factors(state["eigenvalues"], state["eigenvectors"])
        self.popularity, self.interactions = state["popularity"], state["interactions"]


# ---------------------------------------------------------------------- the references a suite can name
POPULARITY_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class Reference:
    """A reference as a cold-start suite names it: its class, fixed ``overrides`` and the ``grid`` of settings
    (config key → values, all combinations) chosen on validation cold nodes."""

    model_class: type[RatingModel]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)


REFERENCES: dict[str, Reference] = {
    "movie-mean": Reference(MovieMean),
    "group-mean": Reference(GroupMean),
    "liked-popularity": Reference(Popularity, {"min_rating": 4.0}),
    "demographic-popularity": Reference(
        DemographicPopularity, {}, {"shrinkage": (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)}
    ),
    "item-knn": Reference(ItemKnnFoldIn, {}, {"neighbours": (10, 20, 50, 100, 200, 0)}),
    "item-knn+popularity": Reference(
        ItemKnnFoldIn, {}, {"neighbours": (10, 20, 50, 100, 200, 0), "popularity_weight": POPULARITY_WEIGHTS}
    ),
    "ease-fold-in": Reference(EaseFoldIn, {}, {"reg": REG_GRID}),
    "ease-fold-in+popularity": Reference(EaseFoldIn, {}, {"reg": REG_GRID, "popularity_weight": POPULARITY_WEIGHTS}),
}
