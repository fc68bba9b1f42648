"""One network of the ``gnn`` model: encoder, rating decoder and (optionally) ranking head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from gnnrec.nn.decoders import BilinearDecoder, DotDecoder, MLPDecoder
from gnnrec.nn.encoder import RatingGraphEncoder
from gnnrec.nn.ranking import RankingHead
from gnnrec.nn.rating_messages import RATING_MESSAGES

DECODERS = ("bilinear", "dot", "mlp")


class RatingGNN(nn.Module):
    """A :class:`~gnnrec.nn.RatingGraphEncoder`, a decoder from :mod:`gnnrec.nn.decoders` (``bilinear``,
    ``dot`` or ``mlp``) and, with ``config.rank_weight > 0``, a :class:`~gnnrec.nn.ranking.RankingHead` on
    the same representations; built from a ``GNNConfig`` (:mod:`gnnrec.models.gnn`). ``side_graphs``: the node
    types with a same-type side graph (see :class:`~gnnrec.nn.RatingGraphEncoder`)."""

    def __init__(
        self,
        num_users: int,
        num_movies: int,
        user_features: int,
        movie_features: int,
        rating_values: Tensor,
        global_mean: float,
        config: Any,
        side_graphs: Sequence[str] = (),
    ) -> None:
        super().__init__()
        # None (a config whose preset was not resolved): GC-MC's per-level weights, the layers' default
        messages = getattr(config, "rating_messages", None) or "levels"
        if messages not in RATING_MESSAGES:
            raise ValueError(
                f"rating_messages={messages!r} is not resolved; build RatingGNN from GNNConfig.resolved(...) "
                "(one of " + ", ".join(RATING_MESSAGES) + ")"
            )
        unset = [key for key in ("dropout", "node_dropout") if getattr(config, key) is None]
        if unset:
            raise ValueError(f"config {', '.join(unset)} not resolved; build RatingGNN from GNNConfig.resolved(...)")
        self.register_buffer("rating_values", rating_values.float().clone())
        self.encoder = RatingGraphEncoder(
            num_users,
            num_movies,
            user_features,
            movie_features,
            len(rating_values),
            embedding_dim=config.embedding_dim,
            hidden_dim=config.hidden_dim,
            output_dim=config.output_dim,
            num_layers=config.num_layers,
            onehot=config.input == "onehot",
            use_ids=config.use_ids,
            use_features=config.use_features,
            layer_aggregation=config.layer_aggregation,
            dropout=config.dropout,
            side_graphs=side_graphs,
            rating_messages=messages,
            rating_values=rating_values,
            rating_bins=getattr(config, "rating_bins", 5),
            rating_stats=getattr(config, "rating_stats", False),
            act="leaky_relu",
            message=config.message,
            ordinal=config.ordinal,
            accumulate=config.accumulate,
            root_weight=config.root_weight,
            node_dropout=config.node_dropout,
        )
        out = config.output_dim
        if config.decoder == "bilinear":
            self.decoder = BilinearDecoder(out, rating_values, config.num_bases)
        elif config.decoder == "mlp":
            self.decoder = MLPDecoder(out, rating_values, config.dropout)
        else:
            self.decoder = DotDecoder(out, global_mean)
        self.ranker = RankingHead(out, num_movies, config.rank_dim) if config.rank_weight > 0 else None

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        self.decoder.reset_parameters()
        if self.ranker is not None:
            self.ranker.reset_parameters()

    def adjacency(self, edge_index: Tensor, rating_index: Tensor, num_users: int, num_movies: int):
        return self.encoder.adjacency(edge_index, rating_index, num_users, num_movies)

    def encode(self, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """:meth:`RatingGraphEncoder.forward <gnnrec.nn.RatingGraphEncoder.forward>`."""
        return self.encoder(*args, **kwargs)

    def decode(self, z_user: Tensor, z_movie: Tensor, user: Tensor, movie: Tensor) -> tuple[Tensor | None, Tensor]:
        """``(level logits [E, R] or None, rating [E])`` of the pairs ``(user[e], movie[e])``."""
        return self.decoder(z_user, z_movie, user, movie)

    def decode_all(self, z_user: Tensor, z_movie: Tensor) -> Tensor:
        """Expected ratings of every (user row, movie row) pair: ``[U, M]``."""
        return self.decoder.score_all(z_user, z_movie)

    def rank_all(self, z_user: Tensor, z_movie: Tensor) -> Tensor:
        """Ranking scores of every (user row, movie row) pair, ``[U, M]`` (the rating decoder's without a head)."""
        if self.ranker is None:
            return self.decode_all(z_user, z_movie)
        return self.ranker(z_user, z_movie)
