r"""The network of the ``gnn`` model: encoder, rating decoder and (optionally) ranking head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from gnnrec.nn.decoders import BilinearDecoder, DotDecoder, MLPDecoder
from gnnrec.nn.encoder import RatingGraphEncoder
from gnnrec.nn.ranking import RankingHead
from gnnrec.nn.rating_messages import RATING_MESSAGES

DECODERS = ("bilinear", "dot", "mlp")
RANK_ENCODERS = ("shared", "own")


class RatingGNN(nn.Module):
    r"""A :class:`~gnnrec.nn.RatingGraphEncoder`, a rating decoder and, with ``ranking_head``, a
    :class:`~gnnrec.nn.RankingHead`, on the same representations or on those of an encoder of its own.

    .. math::
        (\mathbf{z}_u, \mathbf{z}_m) = \mathrm{enc}(\mathcal{G}), \qquad
        p(r \mid u, m) = \mathrm{dec}(\mathbf{z}_u, \mathbf{z}_m), \qquad
        \hat r_{um} = \textstyle\sum_r r\, p(r \mid u, m), \qquad
        s(u, m) = \mathrm{rank}(\mathbf{z}'_u, \mathbf{z}'_m)

    with :math:`\mathbf{z}' = \mathbf{z}` (``rank_encoder="shared"``) or :math:`(\mathbf{z}'_u, \mathbf{z}'_m) =
    \mathrm{enc}'(\mathcal{G})`, a second encoder of the same shape trained by the ranking loss alone
    (``rank_encoder="own"``: the two objectives then no longer compete for one set of weights).

    with :math:`\mathrm{dec}` a :class:`~gnnrec.nn.BilinearDecoder` (``"bilinear"``, a mixture over levels),
    :class:`~gnnrec.nn.MLPDecoder` (``"mlp"``) or :class:`~gnnrec.nn.DotDecoder` (``"dot"``: a rating without
    level logits, offset by ``global_mean``).

    Args:
        num_users: number of users :math:`U`.
        num_movies: number of movies :math:`M`.
        user_features: width of the user side features (0: none).
        movie_features: width of the movie side features (0: none).
        rating_values: ``[R]`` values of the rating levels.
        global_mean: mean training rating (the ``dot`` decoder's offset).
        embedding_dim, hidden_dim, output_dim, num_layers, use_ids, use_features, rating_stats,
            layer_aggregation, dropout, node_dropout, side_graphs, rating_messages, rating_bins, message,
            ordinal, accumulate, root_weight: the encoder's (:class:`~gnnrec.nn.RatingGraphEncoder`,
            :class:`~gnnrec.nn.BipartiteRatingConv`).
        onehot: the first convolution reads node IDs (GC-MC's one-hot input) instead of layer 0.
        decoder: ``"bilinear"``, ``"dot"`` or ``"mlp"``.
        num_bases: basis matrices shared by the bilinear decoder's levels.
        ranking_head: add a :class:`~gnnrec.nn.RankingHead`.
        rank_dim: size of the ranking head's projections.
        rank_encoder: ``"shared"`` (the head reads the rating encoder's outputs) or ``"own"`` (an encoder of its own).
        rank_neighbours: neighbours per movie of the head's item–item term (0: none; :class:`~gnnrec.nn.RankingHead`).

    Shapes:
        - **encode:** node features :math:`(U, F_u)`, :math:`(M, F_m)`, edges :math:`(2, E)`, levels
          :math:`(E)` → :math:`(U, d)`, :math:`(M, d)` with :math:`d` = ``output_dim``
        - **decode:** :math:`(U, d)`, :math:`(M, d)`, pairs :math:`(P)`, :math:`(P)` → level logits
          :math:`(P, R)` or ``None``, ratings :math:`(P)`
        - **encode_ranking:** as **encode**, the representations the ranking head reads
        - **decode_all / rank_all:** user rows :math:`(B, d)`, :math:`(M, d)` → :math:`(B, M)` (``rank_all``'s
          optional history: pairs (row, movie) :math:`(H)`, :math:`(H)` of the rows' known movies)
    """

    def __init__(
        self,
        num_users: int,
        num_movies: int,
        user_features: int,
        movie_features: int,
        rating_values: Tensor,
        global_mean: float,
        *,
        embedding_dim: int = 32,
        hidden_dim: int = 250,
        output_dim: int = 75,
        num_layers: int = 1,
        onehot: bool = True,
        use_ids: bool = False,
        use_features: bool = True,
        rating_stats: bool = False,
        layer_aggregation: str = "concat",
        dropout: float = 0.0,
        node_dropout: float = 0.0,
        side_graphs: Sequence[str] = (),
        rating_messages: str = "levels",
        rating_bins: int = 5,
        message: str = "levels",
        ordinal: bool = True,
        accumulate: str = "stack",
        root_weight: bool = False,
        decoder: str = "bilinear",
        num_bases: int = 2,
        ranking_head: bool = False,
        rank_dim: int = 75,
        rank_encoder: str = "shared",
        rank_neighbours: int = 0,
    ) -> None:
        super().__init__()
        if rating_messages not in RATING_MESSAGES:
            raise ValueError(f"rating_messages={rating_messages!r}; choose one of {', '.join(RATING_MESSAGES)}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder={decoder!r}; choose one of {', '.join(DECODERS)}")
        if rank_encoder not in RANK_ENCODERS:
            raise ValueError(f"rank_encoder={rank_encoder!r}; choose one of {', '.join(RANK_ENCODERS)}")
        self.register_buffer("rating_values", rating_values.float().clone())
        encoder_args = (num_users, num_movies, user_features, movie_features, len(rating_values))
        encoder_options: dict[str, Any] = dict(
            embedding_dim=embedding_dim,
            hidden_dim=hidden_dim,
            output_dim=output_dim,
            num_layers=num_layers,
            onehot=onehot,
            use_ids=use_ids,
            use_features=use_features,
            layer_aggregation=layer_aggregation,
            dropout=dropout,
            side_graphs=side_graphs,
            rating_messages=rating_messages,
            rating_values=rating_values,
            rating_bins=rating_bins,
            rating_stats=rating_stats,
            act="leaky_relu",
            message=message,
            ordinal=ordinal,
            accumulate=accumulate,
            root_weight=root_weight,
            node_dropout=node_dropout,
        )
        self.encoder = RatingGraphEncoder(*encoder_args, **encoder_options)
        if decoder == "bilinear":
            self.decoder = BilinearDecoder(output_dim, rating_values, num_bases)
        elif decoder == "mlp":
            self.decoder = MLPDecoder(output_dim, rating_values, dropout)
        else:
            self.decoder = DotDecoder(output_dim, global_mean)
        self.ranker = RankingHead(output_dim, num_movies, rank_dim, rank_neighbours) if ranking_head else None
        own = ranking_head and rank_encoder == "own"
        # the same convolution layout as the rating encoder, so both read one adjacency
        self.rank_encoder = RatingGraphEncoder(*encoder_args, **encoder_options) if own else None

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        if self.rank_encoder is not None:
            self.rank_encoder.reset_parameters()
        self.decoder.reset_parameters()
        if self.ranker is not None:
            self.ranker.reset_parameters()

    def adjacency(self, edge_index: Tensor, rating_index: Tensor, num_users: int, num_movies: int):
        return self.encoder.adjacency(edge_index, rating_index, num_users, num_movies)

    def encode(self, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """:meth:`RatingGraphEncoder.forward <gnnrec.nn.RatingGraphEncoder.forward>`."""
        return self.encoder(*args, **kwargs)

    def encode_ranking(self, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """The representations :meth:`rank_all` reads: those of the ranking encoder, or :meth:`encode`'s."""
        return (self.rank_encoder or self.encoder)(*args, **kwargs)

    def decode(self, z_user: Tensor, z_movie: Tensor, user: Tensor, movie: Tensor) -> tuple[Tensor | None, Tensor]:
        """``(level logits [E, R] or None, rating [E])`` of the pairs ``(user[e], movie[e])``."""
        return self.decoder(z_user, z_movie, user, movie)

    def decode_all(self, z_user: Tensor, z_movie: Tensor) -> Tensor:
        """Expected ratings of every (user row, movie row) pair: ``[U, M]``."""
        return self.decoder.score_all(z_user, z_movie)

    def rank_all(self, z_user: Tensor, z_movie: Tensor, history: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Ranking scores of every (user row, movie row) pair, ``[U, M]`` (the rating decoder's without a head), from
        :meth:`encode_ranking`'s representations; ``history``: the rows' known (row, movie) pairs, which the head's
        item–item term reads."""
        if self.ranker is None:
            return self.decode_all(z_user, z_movie)
        return self.ranker(z_user, z_movie, None if history is None else (*history, 1.0))
