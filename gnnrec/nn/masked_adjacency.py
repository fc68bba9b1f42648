"""The fused-path matrices of a rating convolution for any subset of one fixed edge set, without rebuilding them."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnrec.nn.conv import BipartiteRatingConv
from gnnrec.nn.sparse import ConstantSparse, csr_tensor, row_pointer


class MaskedAdjacency:
    r"""The matrices of ``conv.adjacency(edge_index[:, keep], rating_index[keep], U, M)`` for a new ``keep`` each step.

    :meth:`BipartiteRatingConv.adjacency <gnnrec.nn.BipartiteRatingConv.adjacency>` sorts the kept edges at
    every training step (edge dropout changes the graph), and the backward pass of a sparse product
    transposes its matrix again; on tens of millions of edges that costs more than the products. Here the
    sparsity pattern of every edge, and of its transpose, is sorted once; a call only recomputes the values:
    :math:`1/\sqrt{|\mathcal{N}(u)|\,|\mathcal{N}(m)|}` with the degrees of the kept graph on kept edges, and
    an explicit 0 on dropped ones. The products equal those of ``conv.adjacency``'s matrices (a dropped edge
    adds exact zeros), and each matrix comes as a :class:`~gnnrec.nn.sparse.ConstantSparse` with its
    transpose (one shared pattern where the transpose of one direction is the other direction, as with
    ``accumulate="stack"``).

    Args:
        conv: the convolution whose :meth:`adjacency` layout is built (every layer of an encoder shares it).
        edge_index: ``[2, E]`` (user, movie) edges.
        rating_index: ``[E]`` 0-based rating levels.
        num_users: number of users :math:`U`.
        num_movies: number of movies :math:`M`.
    """

    def __init__(
        self, conv: BipartiteRatingConv, edge_index: Tensor, rating_index: Tensor, num_users: int, num_movies: int
    ) -> None:
        self.edge_index = edge_index
        self.num_users, self.num_movies = num_users, num_movies
        patterns: list[tuple[Tensor, Tensor, tuple[int, int], tuple[Tensor, Tensor, Tensor]]] = []

        def pattern(rows: Tensor, cols: Tensor, shape: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
            for rows_, cols_, shape_, found in patterns:
                if shape_ == shape and torch.equal(rows_, rows) and torch.equal(cols_, cols):
                    return found
            order = torch.sort(rows, stable=True).indices  # the order conv.adjacency gives the kept edges
            # int32 indices where they fit: 12 bytes per edge and pattern instead of 24
            small = torch.int32 if max(len(order), *shape) < 2**31 else torch.long
            found = (order.to(small), row_pointer(rows[order], shape[0]).to(small), cols[order].to(small))
            patterns.append((rows, cols, shape, found))
            return found

        self.matrices = []
        for direction, pair, size in (
            (conv.user_to_movie, edge_index, (num_users, num_movies)),
            (conv.movie_to_user, edge_index.flip(0), (num_movies, num_users)),
        ):
            # (source column, target row) of every edge, in edge order (one level per edge); the norms come later
            virtual, _ = direction.virtual_edges(pair, rating_index, torch.ones(pair.size(1), device=pair.device))
            shape = (size[1] * direction.targets_per_node, size[0] * direction.sources_per_node)
            self.matrices.append(
                (shape, pattern(virtual[1], virtual[0], shape), pattern(virtual[0], virtual[1], shape[::-1]))
            )

    def __call__(self, keep: Tensor) -> tuple[ConstantSparse, ConstantSparse]:
        """``(user → movie, movie → user)`` matrices of the edges where ``keep`` is True."""
        user, movie = self.edge_index
        weight = keep.to(torch.get_default_dtype())
        degree_user = torch.bincount(user, weight, minlength=self.num_users).clamp_(min=1)
        degree_movie = torch.bincount(movie, weight, minlength=self.num_movies).clamp_(min=1)
        values = (degree_user.index_select(0, user) * degree_movie.index_select(0, movie)).rsqrt_().mul_(weight)
        built: dict[int, Tensor] = {}

        def matrix(shape: tuple[int, int], found: tuple[Tensor, Tensor, Tensor]) -> Tensor:
            order, crow, col = found
            if id(found) not in built:
                built[id(found)] = csr_tensor(crow, col, values.index_select(0, order), shape)
            return built[id(found)]

        to_movie, to_user = (
            ConstantSparse(matrix(shape, forward), matrix(shape[::-1], backward))
            for shape, forward, backward in self.matrices
        )
        return to_movie, to_user
