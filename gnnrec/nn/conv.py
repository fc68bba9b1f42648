"""Rating-aware message passing on the bipartite user–movie graph."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from gnnrec.nn.activation import activation
from gnnrec.nn.sparse import ConstantSparse, coo_to_csr

MESSAGE_MODES = ("levels", "plain")
ACCUMULATIONS = ("sum", "stack")


def edge_norm(edge_index: Tensor, size: tuple[int, int]) -> Tensor:
    r"""Per-edge weight :math:`1/\sqrt{|N(j)|\,|N(i)|}` (symmetric normalisation).

    Degrees are counted on ``edge_index`` itself, so a graph thinned by edge
    dropout is normalised by the degrees it actually has.
    """
    src, dst = edge_index
    deg_dst = torch.bincount(dst, minlength=size[1]).clamp_(min=1).to(torch.get_default_dtype())
    deg_src = torch.bincount(src, minlength=size[0]).clamp_(min=1).to(torch.get_default_dtype())
    return (deg_src[src] * deg_dst[dst]).rsqrt()


class RatingConv(MessagePassing):
    r"""One direction (source type :math:`\to` target type) of a rating-aware graph convolution.

    .. math::
        \mathbf{h}_i' = \mathbf{W}_0 \mathbf{h}_i + \mathbf{b}
        + \operatorname{acc}_{r=1}^{R} \sum_{j \in \mathcal{N}_r(i)} c_{ij}\, \mathbf{m}_r(\mathbf{h}_j),
        \qquad c_{ij} = \frac{1}{\sqrt{|\mathcal{N}(i)|\,|\mathcal{N}(j)|}}

    where :math:`\mathcal{N}_r(i)` are the neighbours linked to :math:`i` by rating level :math:`r`,
    :math:`\operatorname{acc}` is a sum (``accumulate="sum"``) or a concatenation (``"stack"``,
    each level filling ``out_channels / R`` of the output as in GC-MC), and the message is

    * ``levels``: :math:`\mathbf{m}_r(\mathbf{h}) = \mathbf{W}_{r}\mathbf{h}` with one matrix per level;
      with ``ordinal=True`` they share weights as in GC-MC, :math:`\mathbf{W}_r = \sum_{s \le r} \mathbf{T}_s`;
    * ``plain``: :math:`\mathbf{m}_r(\mathbf{h}) = \mathbf{W}\mathbf{h}` (ignores the rating; for ablations).

    An edge may also spread its message over several levels: with ``rating_index`` ``[E, A]`` and
    ``rating_weight`` :math:`w_{ea}` it sends :math:`w_{ea}\, c_{ij}\, \mathbf{m}_{r_{ea}}(\mathbf{h}_j)` through
    each of its levels :math:`r_{ea}` (:mod:`gnnrec.nn.rating_messages` maps many-level scales onto a few
    bins or interpolated basis levels this way; :math:`R` is then the number of those channels).

    Messages are computed once per (source node, level) pair, :math:`O(N_{src} R\, d)`, then
    either gathered and scattered per edge (``edge_index`` input, :math:`O(E\,d)`) or multiplied
    by the sparse matrix from :meth:`adjacency` (fused, faster on CPU); no dense adjacency is built.

    Featureless nodes: pass their IDs as a long tensor instead of features; the feature
    size is then the number of IDs and each ID selects its own weight rows (one-hot
    input without building the one-hot matrix).

    Args:
        in_channels: size of source features, or ``(source, target)`` sizes.
        out_channels: size of the output features.
        num_levels: number of rating levels :math:`R`.
        message: ``"levels"`` or ``"plain"``.
        ordinal: cumulative (ordinal) weight sharing across levels (``levels`` only).
        accumulate: ``"sum"`` or ``"stack"`` (needs ``out_channels`` divisible by :math:`R`; each
            edge then carries only ``out_channels / R`` numbers, :math:`R` times less work).
        root_weight: add the transformed target features :math:`\mathbf{W}_0 \mathbf{h}_i`.
        bias: learn the additive bias :math:`\mathbf{b}`.
        node_dropout: in training, the share of source nodes whose messages are all
            dropped (the rest are scaled by :math:`1/(1-p)`), as GC-MC's node dropout.

    Shapes:
        - **input:** source features :math:`(N_{src}, F_{src})` (or IDs :math:`(N_{src})`), optional target
          features :math:`(N_{dst}, F_{dst})`, ``edge_index`` :math:`(2, E)` and ``rating_index`` :math:`(E)`,
          or the CSR matrix :math:`(N_{dst} T, N_{src} K)` from :meth:`adjacency`
        - **output:** :math:`(N_{dst}, F_{out})`
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        num_levels: int,
        *,
        message: str = "levels",
        ordinal: bool = True,
        accumulate: str = "sum",
        root_weight: bool = True,
        bias: bool = True,
        node_dropout: float = 0.0,
    ) -> None:
        super().__init__(aggr="add", node_dim=0)
        if message not in MESSAGE_MODES:
            raise ValueError(f"unknown message mode {message!r}; choose one of {', '.join(MESSAGE_MODES)}")
        if accumulate not in ACCUMULATIONS:
            raise ValueError(f"unknown accumulation {accumulate!r}; choose one of {', '.join(ACCUMULATIONS)}")
        if num_levels < 1:
            raise ValueError(f"num_levels must be at least 1, got {num_levels}")
        if accumulate == "stack" and (message == "plain" or out_channels % num_levels):
            raise ValueError(
                f"accumulate='stack' needs a rating-aware message and out_channels ({out_channels}) "
                f"divisible by the number of levels ({num_levels})"
            )
        if not 0.0 <= node_dropout < 1.0:
            raise ValueError(f"node_dropout must lie in [0, 1), got {node_dropout}")
        src_channels, dst_channels = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_levels = num_levels
        self.message_mode = message
        self.ordinal = ordinal
        self.accumulate = accumulate
        self.node_dropout = node_dropout
        # every (source, level) pair has a message of message_channels numbers
        self.message_channels = out_channels // num_levels if accumulate == "stack" else out_channels
        weights = num_levels if message == "levels" else 1
        self.weight = nn.Parameter(torch.empty(weights, src_channels, self.message_channels))
        self.root = nn.Linear(dst_channels, out_channels, bias=False) if root_weight else None
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        bound = math.sqrt(6.0 / (self.weight.size(1) + self.weight.size(2)))
        if self.message_mode == "levels" and self.ordinal:
            # W_r = sum_{s<=r} T_s: start the increments small so every W_r has a comparable scale
            nn.init.uniform_(self.weight, -bound / self.num_levels, bound / self.num_levels)
            with torch.no_grad():
                self.weight[0].uniform_(-bound, bound)
        else:
            nn.init.uniform_(self.weight, -bound, bound)
        if self.root is not None:
            self.root.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def level_weights(self) -> Tensor:
        """``[R, in, message_channels]`` effective per-level matrices :math:`\\mathbf{W}_r` (``levels`` mode)."""
        return self.weight.cumsum(0) if self.ordinal else self.weight

    @property
    def sources_per_node(self) -> int:
        """Rows of the message table per source node: one per rating level, or one for ``plain``."""
        return 1 if self.message_mode == "plain" else self.num_levels

    @property
    def targets_per_node(self) -> int:
        """Output blocks per target node: one per rating level when stacking, else one."""
        return self.num_levels if self.accumulate == "stack" else 1

    def virtual_edges(
        self, edge_index: Tensor, rating_index: Tensor | None, norm: Tensor, rating_weight: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Edges between virtual nodes ``j * K + r`` (node ``j`` seen through level ``r``) and their weights.

        ``rating_index`` is ``[E]`` (one level per edge), or ``[E, A]`` with ``rating_weight`` ``[E, A]``: edge
        ``e`` then sends ``rating_weight[e, a]`` of its message through each level ``rating_index[e, a]``
        (:class:`~gnnrec.nn.rating_messages.RatingMessageMap`'s ``continuous`` messages).
        """
        if self.sources_per_node == 1:
            return edge_index, norm
        if rating_index is None:
            raise ValueError(f"message={self.message_mode!r} needs the rating_index of every edge")
        if rating_index.dim() not in (1, 2) or rating_index.size(0) != edge_index.size(1):
            raise ValueError(
                f"rating_index has {rating_index.size(0) if rating_index.dim() else 0} entries for "
                f"{edge_index.size(1)} edges (shape {tuple(rating_index.shape)}; expected [E] or [E, A])"
            )
        if rating_index.numel() and (int(rating_index.min()) < 0 or int(rating_index.max()) >= self.num_levels):
            raise ValueError(f"rating_index must lie in 0..{self.num_levels - 1}")
        if rating_weight is not None and rating_weight.shape != rating_index.shape:
            shapes = f"{tuple(rating_weight.shape)}, rating_index {tuple(rating_index.shape)}"
            raise ValueError(f"rating_weight has shape {shapes}")
        if rating_index.dim() == 2:  # every (edge, channel) pair becomes one virtual edge
            per_edge = rating_index.size(1)
            weight = torch.ones_like(norm).unsqueeze(-1) if rating_weight is None else rating_weight.to(norm)
            norm = (norm.unsqueeze(-1) * weight).reshape(-1)
            edge_index = edge_index.repeat_interleave(per_edge, dim=1)
            rating_index = rating_index.reshape(-1)
        elif rating_weight is not None:
            norm = norm * rating_weight.to(norm)
        source = edge_index[0] * self.num_levels + rating_index
        target = edge_index[1] * self.num_levels + rating_index if self.accumulate == "stack" else edge_index[1]
        return torch.stack([source, target]), norm

    def adjacency(
        self,
        edge_index: Tensor,
        rating_index: Tensor | None,
        size: tuple[int, int],
        rating_weight: Tensor | None = None,
    ) -> Tensor:
        """Normalised sparse CSR matrix ``[N_dst * T, N_src * K]`` for :meth:`forward`'s fused path.

        Build it once and reuse it while the graph does not change; multiplying it
        is several times faster on CPU than gathering and scattering messages.
        """
        virtual, norm = self.virtual_edges(edge_index, rating_index, edge_norm(edge_index, size), rating_weight)
        rows = size[1] * self.targets_per_node
        return coo_to_csr(virtual[1], virtual[0], norm, (rows, size[0] * self.sources_per_node))

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Tensor,
        rating_index: Tensor | None = None,
        size: tuple[int, int] | None = None,
        rating_weight: Tensor | None = None,
    ) -> Tensor:
        """Aggregate rating-aware messages from source to target nodes.

        Args:
            x: source features ``[N_src, in]``, or ``(source, target)`` features; the
                target part may be ``None`` when ``root_weight=False``. Long tensors are
                IDs of featureless nodes (one-hot input).
            edge_index: ``[2, E]`` long tensor of (source, target) node indices, or the
                sparse matrix returned by :meth:`adjacency` (then ``rating_index`` is unused), or that
                matrix as a :class:`~gnnrec.nn.sparse.ConstantSparse` with its transpose (the backward pass
                then multiplies the given transpose instead of transposing the matrix at every step).
            rating_index: ``[E]`` long tensor of 0-based rating levels (or ``[E, A]``, see ``rating_weight``).
            size: ``(N_src, N_dst)``; defaults to the sizes of ``x``.
            rating_weight: ``[E, A]`` share of each edge's message sent through each of its ``A`` levels
                (``None``: all of it through its one level).
        """
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        table = self._message_table(x_src)  # [N_src * K, message_channels]
        constant = isinstance(edge_index, ConstantSparse)  # with its transpose, for the backward pass
        if constant or edge_index.layout == torch.sparse_csr:
            if edge_index.shape[1] != table.size(0):
                raise ValueError(
                    f"adjacency has {edge_index.shape[1]} columns but {x_src.size(0)} sources need "
                    f"{table.size(0)}; build it with this layer's adjacency()"
                )
            out = edge_index @ table if constant else self.propagate(edge_index, x=(table, None), norm=None)
        else:
            if size is None:
                if x_dst is None:
                    raise ValueError("pass size=(num_src, num_dst) when the target features are None")
                size = (x_src.size(0), x_dst.size(0))
            virtual, norm = self.virtual_edges(edge_index, rating_index, edge_norm(edge_index, size), rating_weight)
            virtual_size = (table.size(0), size[1] * self.targets_per_node)
            out = self.propagate(virtual, x=(table, None), norm=norm, size=virtual_size)
        out = out.reshape(-1, self.out_channels)  # stacked levels side by side
        if self.root is not None:
            if x_dst is None:
                raise ValueError("root_weight=True needs target features")
            if x_dst.is_floating_point():
                out = out + self.root(x_dst)
            else:
                out = out + self.root.weight.t().index_select(0, x_dst)
        if self.bias is not None:
            out = out + self.bias
        return out

    def _message_table(self, x_src: Tensor) -> Tensor:
        """Message of every (source, level) pair, computed once per source node: ``[N_src * K, message_channels]``.

        A long ``x_src`` holds node IDs of featureless nodes, which select weight rows.
        """
        featureless = not x_src.is_floating_point()
        if self.message_mode == "levels":
            weight = self.level_weights()  # [R, in, c]
            if featureless:
                table = weight.index_select(1, x_src).transpose(0, 1)  # [N_src, R, c]
            else:
                table = x_src @ weight.permute(1, 0, 2).reshape(weight.size(1), -1)  # [N_src, R * c]
        else:
            table = self.weight[0].index_select(0, x_src) if featureless else x_src @ self.weight[0]
        table = table.reshape(x_src.size(0), self.sources_per_node, self.message_channels)
        if self.training and self.node_dropout > 0:
            # drop every message of a random share of source nodes, keeping the expected sum
            keep = torch.rand(x_src.size(0), 1, 1, device=table.device) >= self.node_dropout
            table = table * keep / (1.0 - self.node_dropout)
        return table.reshape(-1, self.message_channels)

    def message(self, x_j: Tensor, norm: Tensor | None) -> Tensor:
        return x_j if norm is None else x_j * norm.unsqueeze(-1)

    def message_and_aggregate(self, adj_t: Tensor, x: tuple[Tensor, Tensor | None], norm: Tensor | None) -> Tensor:
        # the sparse matrix already holds the normalisation, so ``norm`` is None on this path
        return torch.sparse.mm(adj_t, x[0])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, levels={self.num_levels}, "
            f"message={self.message_mode}, ordinal={self.ordinal}, "
            f"accumulate={self.accumulate})"
        )


class BipartiteRatingConv(nn.Module):
    r"""A :class:`RatingConv` per direction, with separate parameters for each.

    .. math::
        \mathbf{u}_i' = \sigma\Big(\mathbf{W}^{mu}_0 \mathbf{u}_i + \mathbf{b}^{mu}
            + \operatorname{acc}_r \sum_{j \in \mathcal{N}_r(i)} c_{ij}\, \mathbf{m}^{mu}_r(\mathbf{v}_j)\Big), \quad
        \mathbf{v}_j' = \sigma\Big(\mathbf{W}^{um}_0 \mathbf{v}_j + \mathbf{b}^{um}
            + \operatorname{acc}_r \sum_{i \in \mathcal{N}_r(j)} c_{ij}\, \mathbf{m}^{um}_r(\mathbf{u}_i)\Big)

    with :math:`\mathbf{u}` user and :math:`\mathbf{v}` movie features (or long tensors of IDs for
    featureless nodes), both updated from the previous layer's features (a synchronous update);
    :math:`\sigma` is ``act``; messages, normalisation and accumulation as in :class:`RatingConv`.

    Args:
        user_channels: size of user features (or number of user IDs for featureless users).
        movie_channels: size of movie features (or number of movie IDs).
        out_channels: size of the new user and movie features.
        num_levels: number of rating levels :math:`R`.
        act: activation :math:`\sigma`, a name from :data:`gnnrec.nn.activation.ACTIVATIONS`.
        **kwargs: passed to both :class:`RatingConv` directions (``message``, ``ordinal``, ``accumulate``,
            ``root_weight``, ``bias``, ``node_dropout``).

    Shapes:
        - **input:** ``x_user`` :math:`(U, F_u)`, ``x_movie`` :math:`(M, F_m)` (or ID tensors),
          ``edge_index`` :math:`(2, E)` (user, movie) with ``rating_index`` :math:`(E)`, or the pair from
          :meth:`adjacency`
        - **output:** :math:`(U, F_{out})` and :math:`(M, F_{out})`
    """

    def __init__(
        self,
        user_channels: int,
        movie_channels: int,
        out_channels: int,
        num_levels: int,
        *,
        act: str = "leaky_relu",
        **kwargs,
    ) -> None:
        super().__init__()
        self.user_to_movie = RatingConv((user_channels, movie_channels), out_channels, num_levels, **kwargs)
        self.movie_to_user = RatingConv((movie_channels, user_channels), out_channels, num_levels, **kwargs)
        self.act = activation(act)

    def reset_parameters(self) -> None:
        self.user_to_movie.reset_parameters()
        self.movie_to_user.reset_parameters()

    def adjacency(
        self,
        edge_index: Tensor,
        rating_index: Tensor | None,
        num_users: int,
        num_movies: int,
        rating_weight: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Both directions' sparse matrices for the fused path: ``(user → movie, movie → user)``."""
        return (
            self.user_to_movie.adjacency(edge_index, rating_index, (num_users, num_movies), rating_weight),
            self.movie_to_user.adjacency(edge_index.flip(0), rating_index, (num_movies, num_users), rating_weight),
        )

    def forward(
        self,
        x_user: Tensor,
        x_movie: Tensor,
        edge_index: Tensor | tuple[Tensor, Tensor],
        rating_index: Tensor | None = None,
        rating_weight: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """New ``(user, movie)`` features.

        ``edge_index`` is ``[2, E]`` (user, movie) with ``rating_index`` ``[E]`` (or ``[E, A]`` with
        ``rating_weight``, see :meth:`RatingConv.forward`), or the pair of matrices from :meth:`adjacency`
        (reusable across layers of one kind).
        """
        if isinstance(edge_index, tuple):
            to_movie, to_user = edge_index
            movie = self.user_to_movie((x_user, x_movie), to_movie)
            user = self.movie_to_user((x_movie, x_user), to_user)
        else:
            sizes = (x_user.size(0), x_movie.size(0))
            movie = self.user_to_movie((x_user, x_movie), edge_index, rating_index, sizes, rating_weight)
            user = self.movie_to_user((x_movie, x_user), edge_index.flip(0), rating_index, sizes[::-1], rating_weight)
        return self.act(user), self.act(movie)
