"""Cold-start protocol: hold out new users (or new movies) entirely, reveal a few of their ratings.

A seeded share of the users (default 20 %) or movies (default 10 %) leaves the training graph: every
rating of theirs is removed from the message edges, the supervision (train) edges and the validation
and test edges of the split, and from every other edge type that touches them. Node indices are kept
(the held-out nodes stay as isolated rows), so features and ids line up with the source split.

For each held-out node, :meth:`ColdstartDraw.episode` reveals ``n`` of its ratings as the *support*
set (its earliest by timestamp, or a seeded random choice) and keeps the rest as the *query* set that
is scored. Nodes with fewer than ``n + 1`` ratings are skipped for that ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gnnrec.data.graph import PARTS, RATES
from gnnrec.data.split import RatingEdges, RatingSplit

KINDS = ("users", "movies")
ORDERS = ("earliest", "random")
DEFAULT_SHARE = {"users": 0.2, "movies": 0.1}
DEFAULT_SUPPORT_SIZES = (0, 1, 3, 5, 10, 20)


@dataclass(frozen=True)
class ColdstartEpisode:
    """Support and query ratings of the held-out nodes covered at one support size ``n``.

    ``support`` and ``query`` are :class:`RatingEdges` in the source split's indices; ``nodes`` are the
    covered held-out node indices (rows of a fold-in, in this order); ``skipped`` counts held-out nodes
    with fewer than ``n + 1`` ratings.
    """

    kind: str
    n: int
    nodes: Tensor
    support: RatingEdges
    query: RatingEdges
    skipped: int

    def rows(self, edges: RatingEdges) -> tuple[Tensor, Tensor]:
        """``(row in nodes, other index)`` of ``edges``: the fold-in's view of them."""
        lookup = torch.full((int(self.nodes.max()) + 1 if len(self.nodes) else 1,), -1, dtype=torch.long)
        lookup[self.nodes] = torch.arange(len(self.nodes))
        entity, other = (edges.user, edges.movie) if self.kind == "users" else (edges.movie, edges.user)
        return lookup[entity], other


@dataclass(frozen=True)
class ColdstartDraw:
    """One seeded held-out draw: the training split without the held-out nodes, and their ratings."""

    kind: str
    seed: int
    split: RatingSplit  # the source split minus every rating of the held-out nodes
    held_out: Tensor  # sorted held-out node indices
    ratings: RatingEdges  # every rating of the held-out nodes (train, val and test of the source split)
    time: Tensor  # timestamps of ``ratings``

    def episode(self, n: int, order: str = "earliest", seed: int = 0) -> ColdstartEpisode:
        """Reveal ``n`` ratings per held-out node (``order``: ``earliest`` by time or seeded ``random``)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"support size n must be a non-negative integer, got {n!r}")
        if order not in ORDERS:
            raise ValueError(f"unknown support order {order!r}; choose one of {', '.join(ORDERS)}")
        entity = self.ratings.user if self.kind == "users" else self.ratings.movie
        if order == "earliest":
            key = self.time.double()
        else:
            generator = torch.Generator().manual_seed(int(seed) + 7919 * n)
            key = torch.rand(len(entity), generator=generator, dtype=torch.float64)
        # sort by entity, then key (index breaks ties so the order is deterministic)
        order_index = torch.argsort(key, stable=True)
        order_index = order_index[torch.argsort(entity[order_index], stable=True)]
        sorted_entity = entity[order_index]
        counts = torch.bincount(sorted_entity, minlength=int(self.held_out.max()) + 1)[self.held_out]
        covered = self.held_out[counts >= n + 1]
        starts = torch.cumsum(torch.bincount(sorted_entity), 0) - torch.bincount(sorted_entity)
        rank = torch.arange(len(sorted_entity)) - starts[sorted_entity]
        is_covered = torch.zeros(int(self.held_out.max()) + 1, dtype=torch.bool)
        is_covered[covered] = True
        keep = is_covered[sorted_entity]
        support_index = order_index[keep & (rank < n)]
        query_index = order_index[keep & (rank >= n)]
        pick = self._pick
        return ColdstartEpisode(
            self.kind, n, covered, pick(support_index), pick(query_index), len(self.held_out) - len(covered)
        )

    def _pick(self, index: Tensor) -> RatingEdges:
        index = index.sort().values
        return RatingEdges(self.ratings.user[index], self.ratings.movie[index], self.ratings.rating[index])


VALIDATION_SEED_OFFSET = 104729  # validation draws use seed + this, so they never repeat a test draw's choice


def _choose(count: int, share: float, seed: int, exclude: Tensor | None = None) -> Tensor:
    generator = torch.Generator().manual_seed(int(seed))
    candidates = torch.arange(count)
    if exclude is not None and len(exclude):
        allowed = torch.ones(count, dtype=torch.bool)
        allowed[exclude] = False
        candidates = candidates[allowed]
    size = max(1, round(share * len(candidates)))
    return candidates[torch.randperm(len(candidates), generator=generator)[:size]].sort().values


def coldstart_draw(
    split: RatingSplit,
    kind: str = "users",
    *,
    share: float | None = None,
    seed: int = 0,
    exclude: Tensor | None = None,
) -> ColdstartDraw:
    """Hold out a seeded ``share`` of the users or movies of ``split`` (see the module docstring); nodes in
    ``exclude`` are never chosen (the share is of the others)."""
    if kind not in KINDS:
        raise ValueError(f"unknown cold-start kind {kind!r}; choose one of {', '.join(KINDS)}")
    share = DEFAULT_SHARE[kind] if share is None else float(share)
    if not 0.0 < share < 1.0:
        raise ValueError(f"cold-start share must lie in (0, 1), got {share}")
    node_type = "user" if kind == "users" else "movie"
    count = split.num_users if kind == "users" else split.num_movies
    held_out = _choose(count, share, seed, exclude)
    is_held = torch.zeros(count, dtype=torch.bool)
    is_held[held_out] = True

    graph = split.graph.clone()
    store = graph[RATES]
    users, movies, values, times = [], [], [], []
    for part in PARTS:
        index = store[f"{part}_edge_label_index"]
        held = is_held[index[0] if kind == "users" else index[1]]
        users.append(index[0, held])
        movies.append(index[1, held])
        values.append(store[f"{part}_edge_label"][held])
        time_key = f"{part}_edge_time"
        times.append(store[time_key][held] if time_key in store else torch.zeros(int(held.sum()), dtype=torch.long))
        store[f"{part}_edge_label_index"] = index[:, ~held]
        store[f"{part}_edge_label"] = store[f"{part}_edge_label"][~held]
        if time_key in store:
            store[time_key] = store[time_key][~held]
    for edge_type in graph.edge_types:
        edge_store = graph[edge_type]
        if "edge_index" not in edge_store:
            continue
        source, _, target = edge_type
        keep = torch.ones(edge_store.edge_index.size(1), dtype=torch.bool)
        if source == node_type:
            keep &= ~is_held[edge_store.edge_index[0]]
        if target == node_type:
            keep &= ~is_held[edge_store.edge_index[1]]
        num_edges = edge_store.edge_index.size(1)
        for key, value in list(edge_store.items()):
            if isinstance(value, Tensor) and value.dim() >= 1 and value.size(-1) == num_edges and key == "edge_index":
                edge_store[key] = value[:, keep]
            elif isinstance(value, Tensor) and value.dim() >= 1 and value.size(0) == num_edges and "label" not in key:
                if not key.endswith("_time") and not key.startswith(PARTS):
                    edge_store[key] = value[keep]
    graph.fingerprint = f"{split.fingerprint}-cold-{kind}-{share:g}-s{seed}"
    graph.split_name = f"{graph.split_name}+cold-{kind}-s{seed}"
    ratings = RatingEdges(torch.cat(users), torch.cat(movies), torch.cat(values))
    return ColdstartDraw(kind, int(seed), RatingSplit(graph), held_out, ratings, torch.cat(times))


def validation_draw(draw: ColdstartDraw, share: float | None = None) -> ColdstartDraw:
    """Validation cold nodes for choosing references' settings: the same ``share`` of ``draw``'s *training*
    nodes (its held-out nodes excluded), held out of ``draw.split`` the same way with a derived seed. Its
    episodes never read the test draw's support or query ratings."""
    share = DEFAULT_SHARE[draw.kind] if share is None else share
    return coldstart_draw(
        draw.split, draw.kind, share=share, seed=draw.seed + VALIDATION_SEED_OFFSET, exclude=draw.held_out
    )
