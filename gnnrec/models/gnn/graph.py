"""The graph a fitted ``gnn`` model keeps (:class:`TrainingGraph`) and what it is built from: the split's
training ratings as message edges, node features, rating levels and the user–user / movie–movie side graphs."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.utils import remove_self_loops, to_undirected

from gnnrec.data.graph import FOLLOWS, RATES, SIMILAR
from gnnrec.data.split import RatingSplit

SIDE_GRAPH_MODES = ("auto", "off")  # auto: every side relation the split has; off: ignore them
SIDE_RELATIONS = {"user": FOLLOWS, "movie": SIMILAR}  # node type -> its same-type relation


def side_graph_edges(data: HeteroData, mode: str = "auto") -> dict[str, tuple[Tensor, Tensor]]:
    """``{node type: (edge_index [2, E], edge_weight [E])}`` of the side graphs message passing uses.

    ``mode="off"`` gives none; ``"auto"`` every relation of :data:`SIDE_RELATIONS` the graph has with at least
    one edge besides self-loops. Each is made undirected (an edge listed in one direction gets the reverse with
    the same weight; a pair listed both ways gets the mean of its two weights on both) without self-loops (the
    encoder keeps a node's own representation anyway). Weights (``edge_weight``, default 1) must be finite and
    non-negative; node indices must be nodes of the graph.
    """
    if mode not in SIDE_GRAPH_MODES:
        raise ValueError(f"side_graphs={mode!r}; choose one of {', '.join(SIDE_GRAPH_MODES)}")
    out: dict[str, tuple[Tensor, Tensor]] = {}
    if mode == "off":
        return out
    for kind, edge_type in SIDE_RELATIONS.items():
        if edge_type not in data.edge_types:
            continue
        store = data[edge_type]
        name = "__".join(edge_type)
        edge_index = store.edge_index.long().cpu()
        weight = store.edge_weight.float().cpu() if "edge_weight" in store else torch.ones(edge_index.size(1))
        num_nodes = data[kind].num_nodes
        if edge_index.dim() != 2 or edge_index.size(0) != 2 or weight.shape != (edge_index.size(1),):
            raise ValueError(f"side graph {name}: edge_index {tuple(edge_index.shape)} and edge_weight "
                             f"{tuple(weight.shape)} must have shapes [2, E] and [E]")  # fmt: skip
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
            raise ValueError(f"side graph {name} names a node outside 0..{num_nodes - 1}")
        if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
            raise ValueError(f"side graph {name} has a negative or non-finite edge_weight")
        edge_index, weight = remove_self_loops(edge_index, weight)
        if edge_index.size(1) == 0:
            continue
        out[kind] = to_undirected(edge_index, weight, num_nodes=num_nodes, reduce="mean")
    return out


@dataclasses.dataclass
class TrainingGraph:
    """The tensors a fitted model keeps to run message passing again (also for cold start)."""

    user_x: Tensor  # [U, F_user] user side features (F_user may be 0)
    movie_x: Tensor  # [M, F_movie] movie side features
    edge_index: Tensor  # [2, E] (user, movie) message edges = training ratings
    rating_index: Tensor  # [E] 0-based rating levels of the message edges
    # side graphs used in message passing: {"user" / "movie": (edge_index, edge_weight)}, see side_graph_edges
    side: dict[str, tuple[Tensor, Tensor]] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, split: RatingSplit, side_graphs: str = "auto") -> TrainingGraph:
        """The training graph of ``split`` on the CPU (``side_graphs``: see :func:`side_graph_edges`)."""
        data = split.graph
        store = data[RATES]
        empty = torch.zeros
        user_x = data["user"].x.float() if "x" in data["user"] else empty(split.num_users, 0)
        movie_x = data["movie"].x.float() if "x" in data["movie"] else empty(split.num_movies, 0)
        return cls(
            user_x.cpu(),
            movie_x.cpu(),
            store.edge_index.long().cpu(),
            rating_level_index(store.rating.cpu(), split.rating_levels.float().cpu()),
            side_graph_edges(data, side_graphs),
        )

    @property
    def num_users(self) -> int:
        return self.user_x.size(0)

    @property
    def num_movies(self) -> int:
        return self.movie_x.size(0)

    def to(self, device: torch.device) -> TrainingGraph:
        return TrainingGraph(
            *(t.to(device) for t in (self.user_x, self.movie_x, self.edge_index, self.rating_index)),
            {kind: (edges.to(device), weight.to(device)) for kind, (edges, weight) in self.side.items()},
        )


def arrival_shares(split: RatingSplit) -> tuple[Tensor, Tensor] | None:
    """For each message edge of ``split`` (in :class:`TrainingGraph` order): the share of its user's and of its
    movie's training ratings given before it, by rating time (ties in edge order), as ``([E], [E])`` in ``[0, 1)``;
    ``None`` where the split has no rating times. Keeping the edges whose share is below ``f > 0`` keeps a node's
    earliest ``ceil(f * degree)`` ratings: at least its first (on ML-100k validation cold users that ranked better
    than rounding, which lets a node keep none)."""
    store = split.graph[RATES]
    if "time" not in store:
        return None
    edge_index, time = store.edge_index.long().cpu(), store.time.cpu()
    by_time = torch.argsort(time, stable=True)
    shares = []
    for node, count in ((edge_index[0], split.num_users), (edge_index[1], split.num_movies)):
        order = by_time[torch.argsort(node[by_time], stable=True)]  # by node, then time
        degree = torch.bincount(node, minlength=count)
        start = torch.cumsum(degree, 0) - degree
        rank = torch.empty_like(node)
        rank[order] = torch.arange(len(node)) - start[node[order]]
        shares.append(rank.float() / degree[node].float())
    return shares[0], shares[1]


def graph_metadata(split: RatingSplit) -> dict[str, Any]:
    """What a fitted model keeps of ``split`` besides its graph: rating levels, mean, user layout, raw movie ids."""
    data = split.graph
    return {
        "rating_values": split.rating_levels.float().cpu(),
        "global_mean": float(split.train.rating.float().mean()),
        "user_layout": split.user_layout.spec(),
        "movie_raw_ids": data["movie"].raw_id.cpu() if "raw_id" in data["movie"] else None,
    }


def rating_level_index(rating: Tensor, rating_values: Tensor) -> Tensor:
    """0-based level of each rating; raises if a rating is not one of ``rating_values``."""
    distance = (rating.float().unsqueeze(-1) - rating_values.float().to(rating.device)).abs()
    gap, index = distance.min(-1)
    if rating.numel() and float(gap.max()) > 1e-4:
        bad = float(rating.flatten()[gap.flatten().argmax()])
        values = ", ".join(f"{float(v):g}" for v in rating_values)
        raise ValueError(f"rating {bad:g} is not one of the split's rating levels ({values})")
    return index
