"""The rating-graph encoder of the ``gnn`` model: skip path, rating-aware convolutions, dense layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gnnrec.nn.activation import activation
from gnnrec.nn.conv import BipartiteRatingConv
from gnnrec.nn.grown_adjacency import GrownAdjacency
from gnnrec.nn.rating_messages import RatingMessageMap
from gnnrec.nn.rating_stats import rating_statistics, rating_stats_width
from gnnrec.nn.side_conv import SideGraphConv

LAYER_AGGREGATIONS = ("concat", "mean", "last")
SIDE_NODE_TYPES = ("user", "movie")  # node types that may have a same-type side graph


class RatingGraphEncoder(nn.Module):
    r"""User and movie representations from IDs, side features and rating-aware message passing.

    .. math::
        \mathbf{h}^0_u = \mathbf{E}_u[\mathrm{id}_u] + \mathbf{F}_u \mathbf{x}_u, \qquad
        (\mathbf{h}^\ell_u, \mathbf{h}^\ell_m) = \mathrm{conv}_\ell(\mathbf{h}^{\ell-1}_u, \mathbf{h}^{\ell-1}_m),
        \qquad \mathbf{z}_u = \mathbf{W}_d\,\mathrm{agg}(\mathbf{h}^0_u, \dots, \mathbf{h}^L_u) + \mathbf{b}_d

    and likewise for movies with their own parameters. Each term of layer 0 is present when ``use_ids`` /
    the features are on (row :math:`U` of :math:`\mathbf{E}_u` is the "unknown user" for ID dropout and
    cold start; row :math:`M` of the movie tables is the "unknown movie");
    :math:`\mathrm{conv}_\ell` is :class:`~gnnrec.nn.BipartiteRatingConv`. With ``onehot`` the
    first convolution reads node IDs, so every (node, level) pair has its own message weights (GC-MC).
    ``rating_messages`` other than ``"levels"`` pass the levels through a
    :class:`~gnnrec.nn.rating_messages.RatingMessageMap` (bins or interpolated basis levels), so the
    convolutions have one set of message weights per bin or basis level instead of per level.
    :math:`\mathrm{agg}` concatenates, averages or keeps the last layer; dropout acts on every
    convolution's and the dense layer's input.

    With a user–user side graph (``side_graphs`` holds ``"user"``) the dense layer also reads a convolution
    of the aggregated representations :math:`\mathbf{a}_u = \mathrm{agg}(\mathbf{h}^0_u, \dots, \mathbf{h}^L_u)`
    over that graph,

    .. math::
        \mathbf{z}_u = \mathbf{W}_d\,\big[\mathbf{a}_u \,\Vert\, \sigma\big(\mathrm{side}(\mathbf{a})_u\big)\big]
            + \mathbf{b}_d,

    with :math:`\mathrm{side}` a :class:`~gnnrec.nn.SideGraphConv` (its own parameters per relation) and
    :math:`\sigma` the convolutions' activation; movies likewise over a movie–movie graph. A node without
    side edges (e.g. a folded-in new user) gets :math:`\sigma(\mathbf{b})` in that block. Without side
    graphs nothing of this exists and the encoder is the one above.

    With ``rating_stats`` layer 0 also holds :math:`\mathbf{S}_u \mathbf{s}_u`, a projection of the node's
    rating statistics :math:`\mathbf{s}_u` (:func:`~gnnrec.nn.rating_stats.rating_statistics`: log-degree,
    scaled mean rating, share of each level), recomputed in every forward pass from the message edges it is
    given; it uses training ratings only, so it is an input for datasets (or ablations) without side features.

    Args:
        num_users: number of users :math:`U` (the ID table has :math:`U + 1` rows).
        num_movies: number of movies :math:`M` (the ID table has :math:`M + 1` rows).
        user_features: width of ``user_x`` (0: none).
        movie_features: width of ``movie_x`` (0: none).
        num_levels: number of rating levels :math:`R`.
        embedding_dim: size of layer 0 (ID embeddings and feature projections).
        hidden_dim: output size of each convolution (``accumulate="stack"``: rounded down to a multiple of R).
        output_dim: size of :math:`\mathbf{z}`.
        num_layers: number of convolutions :math:`L`.
        onehot: the first convolution reads node IDs instead of layer 0.
        use_ids: layer 0 holds an ID embedding.
        use_features: layer 0 holds a projection of the side features.
        rating_stats: layer 0 holds a projection of each node's rating statistics (needs ``rating_values``).
        layer_aggregation: ``"concat"``, ``"mean"`` or ``"last"``.
        dropout: feature dropout probability.
        side_graphs: node types (``"user"``, ``"movie"``) with a same-type side graph, one
            :class:`~gnnrec.nn.SideGraphConv` each; :meth:`forward` then needs their edges in ``side``.
        rating_messages: ``"levels"``, ``"binned"`` or ``"continuous"`` (:mod:`gnnrec.nn.rating_messages`).
        rating_values: ``[R]`` values of the levels (needed unless ``rating_messages="levels"``).
        rating_bins: bins or basis levels of ``binned`` / ``continuous`` messages.
        **conv_kwargs: passed to every :class:`~gnnrec.nn.BipartiteRatingConv` (``act``, ``accumulate``, ...).

    Shapes:
        - **input:** ``user_x`` :math:`(U', F_u)`, ``movie_x`` :math:`(M, F_m)`, ``edge_index`` :math:`(2, E)`,
          ``rating_index`` :math:`(E)`, ``user_ids`` :math:`(U')` (rows of the ID table), optional
          ``movie_ids`` :math:`(M')` (default: ``0..M'-1``), ``side`` ``{node type: (edge_index (2, E_s),
          edge_weight (E_s))}`` for every type in ``side_graphs``
        - **output:** :math:`(U', d_{out})` and :math:`(M, d_{out})`
    """

    def __init__(
        self,
        num_users: int,
        num_movies: int,
        user_features: int,
        movie_features: int,
        num_levels: int,
        *,
        embedding_dim: int = 32,
        hidden_dim: int = 250,
        output_dim: int = 75,
        num_layers: int = 1,
        onehot: bool = True,
        use_ids: bool = False,
        use_features: bool = True,
        layer_aggregation: str = "concat",
        dropout: float = 0.0,
        side_graphs: Sequence[str] = (),
        rating_messages: str = "levels",
        rating_values: Tensor | None = None,
        rating_bins: int = 5,
        rating_stats: bool = False,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()
        if layer_aggregation not in LAYER_AGGREGATIONS:
            raise ValueError(f"unknown layer_aggregation {layer_aggregation!r}; choose one of {LAYER_AGGREGATIONS}")
        d = embedding_dim
        onehot = onehot and num_layers > 0
        use_user_features = use_features and user_features > 0
        use_movie_features = use_features and movie_features > 0
        for kind, has_features in (("users", use_user_features), ("movies", use_movie_features)):
            if not (use_ids or has_features or onehot or rating_stats):
                raise ValueError(
                    f"{kind} would have no input: enable use_ids, give features, rating_stats or input='onehot'"
                )
        if rating_stats and (rating_values is None or len(rating_values) != num_levels):
            raise ValueError(f"rating_stats needs the {num_levels} rating_values")
        self.onehot = onehot
        self.dropout = dropout
        self.layer_aggregation = layer_aggregation
        # layer 0; the extra last rows are the "unknown user" and the "unknown movie" (cold start)
        self.user_id = nn.Embedding(num_users + 1, d) if use_ids else None
        self.movie_id = nn.Embedding(num_movies + 1, d) if use_ids else None
        self.user_features = nn.Linear(user_features, d) if use_user_features else None
        self.movie_features = nn.Linear(movie_features, d) if use_movie_features else None
        self.user_stats = nn.Linear(rating_stats_width(num_levels), d) if rating_stats else None
        self.movie_stats = nn.Linear(rating_stats_width(num_levels), d) if rating_stats else None
        if rating_stats:
            self.register_buffer("stat_values", rating_values.float().clone(), persistent=False)

        # many-level scales: the convolutions see bins or basis levels ("channels") instead of the levels
        self.rating_map = None
        if rating_messages != "levels" and conv_kwargs.get("message", "levels") != "plain":
            if rating_values is None or len(rating_values) != num_levels:
                raise ValueError(f"rating_messages={rating_messages!r} needs the {num_levels} rating_values")
            self.rating_map = RatingMessageMap(rating_values, rating_messages, rating_bins)
            num_levels = self.rating_map.num_channels
        hidden = hidden_dim
        if conv_kwargs.get("accumulate", "sum") == "stack":
            hidden = max(num_levels, hidden - hidden % num_levels)
        self.convs = nn.ModuleList()
        user_channels, movie_channels = (num_users + 1, num_movies + 1) if onehot else (d, d)
        for _ in range(num_layers):
            self.convs.append(BipartiteRatingConv(user_channels, movie_channels, hidden, num_levels, **conv_kwargs))
            user_channels = movie_channels = hidden
        if layer_aggregation == "concat":
            user_layer0 = self.user_id is not None or self.user_features is not None or rating_stats
            movie_layer0 = self.movie_id is not None or self.movie_features is not None or rating_stats
            user_in = d * user_layer0 + num_layers * hidden
            movie_in = d * movie_layer0 + num_layers * hidden
        else:
            user_in = movie_in = hidden if num_layers else d
        # side graphs: a convolution of the aggregated representation over each same-type relation
        unknown = sorted(set(side_graphs) - set(SIDE_NODE_TYPES))
        if unknown:
            raise ValueError(f"unknown side graph node types {unknown}; choose from {', '.join(SIDE_NODE_TYPES)}")
        self.side_convs = nn.ModuleDict()
        if "user" in side_graphs:
            self.side_convs["user"] = SideGraphConv(user_in, hidden)
            user_in += hidden
        if "movie" in side_graphs:
            self.side_convs["movie"] = SideGraphConv(movie_in, hidden)
            movie_in += hidden
        self.side_act = activation(conv_kwargs.get("act", "leaky_relu"))
        self.user_dense = nn.Linear(user_in, output_dim)
        self.movie_dense = nn.Linear(movie_in, output_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for embedding in (self.user_id, self.movie_id):
            if embedding is not None:
                nn.init.normal_(embedding.weight, std=0.1)
        linears = (self.user_features, self.movie_features, self.user_stats, self.movie_stats)
        for linear in (*linears, self.user_dense, self.movie_dense):
            if linear is not None:
                linear.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        for conv in self.side_convs.values():
            conv.reset_parameters()

    def adjacency(
        self, edge_index: Tensor, rating_index: Tensor, num_users: int, num_movies: int
    ) -> tuple[Tensor, Tensor] | None:
        """The sparse matrices every convolution multiplies (``None`` without convolutions)."""
        if not self.convs:
            return None
        if self.rating_map is None:
            return self.convs[0].adjacency(edge_index, rating_index, num_users, num_movies)
        channel, weight = self.rating_map(rating_index)
        return self.convs[0].adjacency(edge_index, channel, num_users, num_movies, weight)

    def grown_adjacency(
        self, edge_index: Tensor, rating_index: Tensor, num_users: int, num_movies: int
    ) -> GrownAdjacency | None:
        """:meth:`adjacency` of this graph plus new edges, without sorting this graph again at every call
        (:class:`~gnnrec.nn.grown_adjacency.GrownAdjacency`; ``None`` without convolutions)."""
        if not self.convs:
            return None
        return GrownAdjacency(self.convs[0], edge_index, rating_index, num_users, num_movies, self.rating_map)

    def forward(
        self,
        user_x: Tensor,
        movie_x: Tensor,
        edge_index: Tensor,
        rating_index: Tensor,
        user_ids: Tensor,
        adjacency: tuple[Tensor, Tensor] | None = None,
        movie_ids: Tensor | None = None,
        side: Mapping[str, tuple[Tensor, Tensor]] | None = None,
        statistics: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Final ``(user, movie)`` representations; ``adjacency`` (from :meth:`adjacency`) saves rebuilding it;
        ``side`` maps each node type of ``side_graphs`` to its ``(edge_index, edge_weight)``; ``statistics``
        (with rating statistics) gives the ``(user, movie)`` rows of
        :func:`~gnnrec.nn.rating_stats.rating_statistics` in place of those of ``edge_index``."""
        side = dict(side or {})
        if set(side) != set(self.side_convs):
            raise ValueError(
                f"side edges given for {sorted(side) or 'no node type'}, but this encoder has side-graph "
                f"convolutions for {sorted(self.side_convs) or 'none'}"
            )
        if movie_ids is None:
            movie_ids = torch.arange(movie_x.size(0), device=user_ids.device)
        if adjacency is None and self.convs:
            adjacency = self.adjacency(edge_index, rating_index, user_x.size(0), movie_x.size(0))
        user = movie = None
        if self.user_id is not None:
            user = self.user_id(user_ids)
            movie = self.movie_id(movie_ids)
        if self.user_features is not None:
            projected = self.user_features(user_x)
            user = projected if user is None else user + projected
        if self.movie_features is not None:
            projected = self.movie_features(movie_x)
            movie = projected if movie is None else movie + projected
        if self.user_stats is not None:  # from the message edges only (never the targets of a training step)
            user_s, movie_s = statistics or rating_statistics(
                edge_index, rating_index, self.stat_values, user_x.size(0), movie_x.size(0)
            )
            projected = self.user_stats(user_s)
            user = projected if user is None else user + projected
            projected = self.movie_stats(movie_s)
            movie = projected if movie is None else movie + projected
        users = [user] if user is not None else []
        movies = [movie] if movie is not None else []
        for index, conv in enumerate(self.convs):
            if index == 0 and self.onehot:
                user, movie = conv(user_ids, movie_ids, adjacency)
            else:
                user, movie = conv(self._dropout(user), self._dropout(movie), adjacency)
            users.append(user)
            movies.append(movie)
        if self.layer_aggregation == "concat":
            user, movie = torch.cat(users, dim=-1), torch.cat(movies, dim=-1)
        elif self.layer_aggregation == "mean":
            user, movie = torch.stack(users).mean(0), torch.stack(movies).mean(0)
        if self.side_convs:
            user, movie = self._with_side("user", user, side), self._with_side("movie", movie, side)
        return self.user_dense(self._dropout(user)), self.movie_dense(self._dropout(movie))

    def _with_side(self, kind: str, x: Tensor, side: Mapping[str, tuple[Tensor, Tensor]]) -> Tensor:
        """``x`` with the activated side convolution of ``x`` over ``kind``'s side graph appended (if it has one)."""
        if kind not in self.side_convs:
            return x
        edge_index, edge_weight = side[kind]
        return torch.cat([x, self.side_act(self.side_convs[kind](self._dropout(x), edge_index, edge_weight))], dim=-1)

    def _dropout(self, x: Tensor) -> Tensor:
        """Inverted dropout from a uniform mask: same as ``F.dropout``, faster on CPU than ``bernoulli_``."""
        p = self.dropout
        if not self.training or p == 0.0:
            return x
        return x * (torch.rand_like(x) >= p).to(x.dtype) * (1.0 / (1.0 - p))
