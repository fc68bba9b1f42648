"""A model-facing view of one split of a rating graph."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from gnnrec.data.graph import PARTS, RATED_BY, RATES
from gnnrec.data.partition import carve_validation
from gnnrec.data.user_features import UserFeatureLayout, graph_user_layout


@dataclass(frozen=True)
class RatingEdges:
    """Parallel tensors of 0-based user and movie indices with their ratings."""

    user: Tensor
    movie: Tensor
    rating: Tensor

    def __len__(self) -> int:
        return int(self.rating.numel())

    @property
    def edge_label_index(self) -> Tensor:
        return torch.stack([self.user, self.movie])

    def to(self, device: torch.device | str) -> RatingEdges:
        return RatingEdges(self.user.to(device), self.movie.to(device), self.rating.to(device))


def _messages_follow_train(graph: HeteroData) -> None:
    """Set the message edges of ``graph`` (both directions, with ratings and times) to its training ratings."""
    store, reverse = graph[RATES], graph[RATED_BY]
    store.edge_index = store.train_edge_label_index.clone()
    store.rating = store.train_edge_label.clone()
    reverse.edge_index = store.edge_index.flip(0)
    reverse.rating = store.rating.clone()
    if "train_edge_time" in store:
        store.time = store.train_edge_time.clone()
        reverse.time = store.time.clone()


class RatingSplit:
    """Train / validation / test ratings of one graph, plus what models need to know.

    ``graph`` is the full :class:`HeteroData` (message edges = training ratings).
    ``train``, ``val`` and ``test`` are :class:`RatingEdges`; ``train_data`` etc. give
    PyG's link-split convention (a graph copy with ``edge_label_index``/``edge_label``).
    """

    def __init__(self, graph: HeteroData) -> None:
        for part in PARTS:
            if f"{part}_edge_label_index" not in graph[RATES]:
                raise ValueError(f"graph has no {part}_edge_label_index on {RATES}; build it with gnnrec.data")
        self.graph = graph

    @property
    def num_users(self) -> int:
        return int(self.graph["user"].num_nodes)

    @property
    def num_movies(self) -> int:
        return int(self.graph["movie"].num_nodes)

    @property
    def dataset(self) -> str:
        """The dataset's registry name, e.g. ``"ml-100k"``."""
        return str(self.graph.dataset_name)

    @property
    def name(self) -> str:
        return f"{self.graph.dataset_name}/{self.graph.split_name}"

    @property
    def fingerprint(self) -> str:
        return str(self.graph.fingerprint)

    @property
    def settings(self) -> dict:
        return dict(self.graph.split_settings)

    @property
    def user_layout(self) -> UserFeatureLayout:
        """How this dataset encodes a person's demographics into a row of ``graph["user"].x``."""
        return graph_user_layout(self.graph)

    @property
    def rating_levels(self) -> Tensor:
        return self.graph.rating_levels

    @property
    def rating_min(self) -> float:
        return float(self.rating_levels.min())

    @property
    def rating_max(self) -> float:
        return float(self.rating_levels.max())

    def edges(self, part: str) -> RatingEdges:
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
        store = self.graph[RATES]
        index = store[f"{part}_edge_label_index"]
        return RatingEdges(index[0], index[1], store[f"{part}_edge_label"])

    @cached_property
    def train(self) -> RatingEdges:
        return self.edges("train")

    @cached_property
    def val(self) -> RatingEdges:
        return self.edges("val")

    @cached_property
    def test(self) -> RatingEdges:
        return self.edges("test")

    @cached_property
    def known(self) -> RatingEdges:
        """Every rating a model may see when fitting (train + validation)."""
        t, v = self.train, self.val
        return RatingEdges(torch.cat([t.user, v.user]), torch.cat([t.movie, v.movie]), torch.cat([t.rating, v.rating]))

    def seen_mask(self, parts: tuple[str, ...] = ("train", "val")) -> Tensor:
        """Dense ``[num_users, num_movies]`` bool mask of the ratings in ``parts``."""
        mask = torch.zeros(self.num_users, self.num_movies, dtype=torch.bool)
        for part in parts:
            edges = self.edges(part)
            mask[edges.user, edges.movie] = True
        return mask

    def link_data(self, part: str) -> HeteroData:
        """A shallow graph copy whose ``rates`` store has this part as ``edge_label_index``/``edge_label``."""
        edges = self.edges(part)
        data = copy.copy(self.graph)
        data[RATES].edge_label_index = edges.edge_label_index
        data[RATES].edge_label = edges.rating
        return data

    @property
    def train_data(self) -> HeteroData:
        return self.link_data("train")

    @property
    def val_data(self) -> HeteroData:
        return self.link_data("val")

    @property
    def test_data(self) -> HeteroData:
        return self.link_data("test")

    def merge_validation(self) -> RatingSplit:
        """A split for refitting: training ratings (and message edges) = train ∪ val, no validation, same test.

        The graph is a shallow copy whose ``rates``/``rated_by`` stores are replaced; the fingerprint gains a
        ``+trainval`` suffix so checkpoints of a refit are not mistaken for fits on the original split.
        """
        graph = copy.copy(self.graph)
        src = self.graph[RATES]
        store = graph[RATES]  # HeteroData's copy copies each store, so the original graph is left untouched
        for suffix in ("edge_label_index", "edge_label", "edge_time"):
            if f"train_{suffix}" not in src:
                continue
            train, val = src[f"train_{suffix}"], src[f"val_{suffix}"]
            store[f"train_{suffix}"] = torch.cat([train, val], dim=-1)
            store[f"val_{suffix}"] = val[..., :0].clone()
        _messages_follow_train(graph)
        graph.fingerprint = f"{self.fingerprint}+trainval"
        return RatingSplit(graph)

    def hold_out_train(self, fraction: float, seed: int) -> RatingSplit:
        """A split for a validation-only study: a second validation set carved out of the training ratings
        becomes the test part, so that what would be tested is never the real test split.

        ``fraction`` of each user's training ratings (seeded with ``seed``, as the validation carve-out:
        :func:`~gnnrec.data.partition.carve_validation`) move to ``test``; train keeps the rest (and the
        message edges follow it), validation is unchanged and the original test ratings are dropped. The
        fingerprint gains a ``+holdout`` suffix naming ``fraction`` and ``seed``.
        """
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"hold_out_train needs a fraction in (0, 1), got {fraction}")
        src = self.graph[RATES]
        held = torch.from_numpy(carve_validation(src.train_edge_label_index[0].numpy(), fraction, seed))
        graph = copy.copy(self.graph)
        store = graph[RATES]  # HeteroData's copy copies each store, so the original graph is left untouched
        for suffix in ("edge_label_index", "edge_label", "edge_time"):
            if f"train_{suffix}" not in src:
                continue
            train = src[f"train_{suffix}"]
            store[f"train_{suffix}"] = train[..., ~held].clone()
            store[f"test_{suffix}"] = train[..., held].clone()
        _messages_follow_train(graph)
        graph.fingerprint = f"{self.fingerprint}+holdout-{fraction:g}-{seed}"
        return RatingSplit(graph)

    def map_ratings(self, slope: float, offset: float) -> RatingSplit:
        """A split whose every rating ``r`` becomes ``slope · r + offset`` (``slope > 0``): the labels of every
        part, the message edges' ratings and the rating levels. Node features, indices, times and the
        fingerprint are shared with this split (the graph is a shallow copy; this split is left untouched)."""
        if not slope > 0:
            raise ValueError(f"map_ratings needs a positive slope (an order-preserving map), got {slope}")
        graph = copy.copy(self.graph)  # HeteroData's copy copies each store
        store = graph[RATES]
        for part in PARTS:
            store[f"{part}_edge_label"] = store[f"{part}_edge_label"] * slope + offset
        store.rating = store.rating * slope + offset
        graph[RATED_BY].rating = graph[RATED_BY].rating * slope + offset
        graph.rating_levels = graph.rating_levels * slope + offset
        return RatingSplit(graph)

    def describe(self) -> dict:
        """Counts and the rating histogram of each part (plain Python types)."""
        out: dict = {"dataset": self.name, "users": self.num_users, "movies": self.num_movies}
        for part in PARTS:
            ratings = self.edges(part).rating
            levels = self.rating_levels
            out[part] = {
                "ratings": len(self.edges(part)),
                "histogram": {f"{float(v):g}": int((ratings == v).sum()) for v in levels},
            }
        return out

    def __repr__(self) -> str:
        sizes = ", ".join(f"{p}={len(self.edges(p))}" for p in PARTS)
        return f"RatingSplit({self.name}, users={self.num_users}, movies={self.num_movies}, {sizes})"
