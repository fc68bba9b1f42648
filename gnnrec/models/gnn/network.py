"""The :class:`~gnnrec.nn.RatingGNN` a resolved :class:`~gnnrec.models.gnn.GNNConfig` describes."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from gnnrec.models.gnn.config import GNNConfig
from gnnrec.nn.network import RatingGNN


def build_network(
    num_users: int,
    num_movies: int,
    user_features: int,
    movie_features: int,
    rating_values: Tensor,
    global_mean: float,
    config: GNNConfig,
    side_graphs: Sequence[str] = (),
) -> RatingGNN:
    """One network of the model; ``config`` must be resolved (:meth:`GNNConfig.resolved`: no ``None`` field left)."""
    # None (a config whose preset was not resolved): GC-MC's per-level weights, the layers' default
    messages = config.rating_messages or "levels"
    if messages == "auto":
        raise ValueError("rating_messages='auto' is not resolved; build the network from GNNConfig.resolved(...)")
    unset = [key for key in ("dropout", "node_dropout") if getattr(config, key) is None]
    if unset:
        raise ValueError(f"config {', '.join(unset)} not resolved; build the network from GNNConfig.resolved(...)")
    return RatingGNN(
        num_users,
        num_movies,
        user_features,
        movie_features,
        rating_values,
        global_mean,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        output_dim=config.output_dim,
        num_layers=config.num_layers,
        onehot=config.input == "onehot",
        use_ids=config.use_ids,
        use_features=config.use_features,
        rating_stats=config.rating_stats,
        layer_aggregation=config.layer_aggregation,
        dropout=config.dropout,
        node_dropout=config.node_dropout,
        side_graphs=side_graphs,
        rating_messages=messages,
        rating_bins=config.rating_bins,
        message=config.message,
        ordinal=config.ordinal,
        accumulate=config.accumulate,
        root_weight=config.root_weight,
        decoder=config.decoder,
        num_bases=config.num_bases,
        ranking_head=config.rank_weight > 0,
        rank_dim=config.rank_dim,
        rank_encoder=config.rank_encoder,
        rank_neighbours=min(config.rank_neighbours or 0, num_movies - 1),  # a small catalogue: every other movie
    )
