"""The fused-path matrices of a rating convolution for a fixed edge set plus a few new edges, without sorting again."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from gnnrec.nn.conv import BipartiteRatingConv, RatingConv, edge_norm
from gnnrec.nn.rating_messages import RatingMessageMap
from gnnrec.nn.sparse import csr_tensor, row_pointer

# up to this many distinct insertion points a merge concatenates runs; beyond, one masked scatter is faster
PIECEWISE_MERGE_POINTS = 64


@dataclasses.dataclass(frozen=True)
class _SortedDirection:
    """One direction's matrix of the fixed edges: its CSR arrays and where each virtual edge sits in them."""

    conv: RatingConv
    crow: Tensor  # [rows + 1]
    col: Tensor  # [V] column of each stored entry
    values: Tensor  # [V] value of each stored entry
    position: Tensor  # [V] stored position of each virtual edge (in the order virtual_edges lists them)


class GrownAdjacency:
    r"""The matrices of ``conv.adjacency(cat(edge_index, new), cat(rating_index, new_levels), U', M')`` for any ``new``.

    Folding new nodes into a fitted graph adds a few edges to a graph that does not change;
    :meth:`BipartiteRatingConv.adjacency <gnnrec.nn.BipartiteRatingConv.adjacency>` would sort all of them
    again. Here the fixed edges are laid out once per direction (stably sorted by row, as ``adjacency`` does,
    with their normalised values and degrees); a call sorts only the new edges and merges them in after the
    fixed entries of their rows, which is where a stable sort of the concatenation puts them. Only the values
    of fixed edges at a node the new edges touch change (its degree grows); they are recomputed with the same
    operations, so the matrices are identical to ``adjacency``'s: same row pointers, columns and values.

    ``one_way=True`` (fold-in): every new edge joins a new node (past the fixed graph) to a fixed one and carries
    messages into the new node only, normalised by the new node's degree and the fixed node's degree plus one, as
    if that new node had joined alone; the fixed graph's entries stay as they are. So the fixed nodes'
    representations do not change and each new node's depends on its own edges only, however many join at once.

    Args:
        conv: the convolution whose :meth:`adjacency` layout is built (every layer of an encoder shares it).
        edge_index: ``[2, E]`` (user, movie) fixed edges.
        rating_index: ``[E]`` 0-based rating levels.
        num_users: number of users :math:`U` of the fixed graph.
        num_movies: number of movies :math:`M` of the fixed graph.
        rating_map: maps levels to message channels and weights (as the encoder does), or ``None``.
    """

    def __init__(
        self,
        conv: BipartiteRatingConv,
        edge_index: Tensor,
        rating_index: Tensor,
        num_users: int,
        num_movies: int,
        rating_map: RatingMessageMap | None = None,
    ) -> None:
        self.rating_map = rating_map
        self.edge_index = edge_index
        self.num_users, self.num_movies = num_users, num_movies
        self.channel, self.weight = self._channels(rating_index)
        user, movie = edge_index
        # int32 positions and edge ids where they fit: half the memory of the lookup tables
        self.index_dtype = torch.int32 if max(self.channel.numel(), num_users, num_movies) < 2**31 else torch.long
        self.degree_user = torch.bincount(user, minlength=num_users)
        self.degree_movie = torch.bincount(movie, minlength=num_movies)
        # fixed edges of each node: (pointer [N + 1], edge ids grouped by node)
        self.user_edges = self._edges_by_node(user, num_users)
        self.movie_edges = self._edges_by_node(movie, num_movies)
        norm = edge_norm(edge_index, (num_users, num_movies))
        self.directions = []
        for direction, pair, size in (
            (conv.user_to_movie, edge_index, (num_users, num_movies)),
            (conv.movie_to_user, edge_index.flip(0), (num_movies, num_users)),
        ):
            virtual, values = direction.virtual_edges(pair, self.channel, norm, self.weight)
            order = torch.sort(virtual[1], stable=True).indices  # the order adjacency gives the entries
            position = torch.empty_like(order, dtype=self.index_dtype)
            position[order] = torch.arange(order.numel(), device=order.device, dtype=self.index_dtype)
            crow = row_pointer(virtual[1][order], size[1] * direction.targets_per_node)
            self.directions.append(_SortedDirection(direction, crow, virtual[0][order], values[order], position))

    def __call__(
        self, new_edge_index: Tensor, new_rating_index: Tensor, num_users: int, num_movies: int, one_way: bool = False
    ) -> tuple[Tensor, Tensor]:
        """``(user → movie, movie → user)`` matrices of the fixed edges followed by ``new_edge_index`` ``[2, S]``
        (levels ``new_rating_index`` ``[S]``) on a graph of ``num_users`` users and ``num_movies`` movies
        (``one_way``: see the class docstring)."""
        if num_users < self.num_users or num_movies < self.num_movies:
            raise ValueError(
                f"the grown graph ({num_users} users, {num_movies} movies) is smaller than the fixed one "
                f"({self.num_users} users, {self.num_movies} movies)"
            )
        channel, weight = self._channels(new_rating_index)
        user, movie = new_edge_index
        new_user, new_movie = user >= self.num_users, movie >= self.num_movies
        if one_way and bool((new_user == new_movie).any()):
            raise ValueError("one_way: every new edge must join a new node to a node of the fixed graph")
        degree_user = self._degrees(self.degree_user, user, num_users, one_way)
        degree_movie = self._degrees(self.degree_movie, movie, num_movies, one_way)
        new_norm = (degree_user[user] * degree_movie[movie]).rsqrt()
        if one_way:  # the fixed edges keep their values
            touched = torch.zeros(0, dtype=torch.long, device=user.device)
        else:  # fixed edges whose user or movie gained edges: their normalisation changes
            touched = torch.cat([
                self._incident(self.user_edges, user[~new_user]),
                self._incident(self.movie_edges, movie[~new_movie]),
            ])  # fmt: skip
        fixed = self.edge_index[:, touched]
        touched_norm = (degree_user[fixed[0]] * degree_movie[fixed[1]]).rsqrt()
        touched_channel = self.channel[touched]
        touched_weight = None if self.weight is None else self.weight[touched]
        matrices = []
        for layout, pair, fixed_pair, size, into_new in (
            (self.directions[0], new_edge_index, fixed, (num_users, num_movies), new_movie),
            (self.directions[1], new_edge_index.flip(0), fixed.flip(0), (num_movies, num_users), new_user),
        ):
            direction = layout.conv
            _, changed = direction.virtual_edges(fixed_pair, touched_channel, touched_norm, touched_weight)
            per_edge = changed.numel() // max(touched.numel(), 1)  # virtual edges per edge (channels)
            virtual_ids = (touched.unsqueeze(1) * per_edge + torch.arange(per_edge, device=touched.device)).reshape(-1)
            values = layout.values
            if touched.numel():
                values = values.clone()
                values[layout.position[virtual_ids]] = changed
            keep = into_new if one_way else slice(None)
            kept_weight = None if weight is None else weight[keep]
            virtual, new_values = direction.virtual_edges(pair[:, keep], channel[keep], new_norm[keep], kept_weight)
            order = torch.sort(virtual[1], stable=True).indices
            rows, cols, new_values = virtual[1][order], virtual[0][order], new_values[order]
            num_rows = size[1] * direction.targets_per_node
            crow = self._grown(layout.crow, num_rows + 1, fill=layout.crow[-1])
            insert = crow[rows + 1]  # after the fixed entries of the new entry's row and of every row before it
            crow = crow + row_pointer(rows, num_rows)
            shape = (num_rows, size[0] * direction.sources_per_node)
            merged = self._merged(layout.col, cols, insert), self._merged(values, new_values, insert)
            matrices.append(csr_tensor(crow, *merged, shape))
        return matrices[0], matrices[1]

    def _degrees(self, fixed: Tensor, node: Tensor, size: int, one_way: bool) -> Tensor:
        """Degrees of the grown graph's ``size`` nodes of one side, given the new edges' ends ``node`` on that side
        (``one_way``: a fixed node counts one new edge, a new node its own)."""
        grown = self._grown(fixed, size)
        added = torch.bincount(node, minlength=size)
        if one_way:
            is_fixed = torch.arange(size, device=node.device) < fixed.numel()
            grown = torch.where(is_fixed, grown + 1, added)
        else:
            grown = grown + added
        return grown.clamp_(min=1).to(torch.get_default_dtype())

    def _channels(self, rating_index: Tensor) -> tuple[Tensor, Tensor | None]:
        return (rating_index, None) if self.rating_map is None else self.rating_map(rating_index)

    def _edges_by_node(self, node: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        order = torch.sort(node, stable=True).indices
        return row_pointer(node[order], num_nodes), order.to(self.index_dtype)

    @staticmethod
    def _incident(grouped: tuple[Tensor, Tensor], nodes: Tensor) -> Tensor:
        """Ids of the fixed edges at ``nodes`` (each node once)."""
        pointer, edges = grouped
        nodes = torch.unique(nodes)
        start, count = pointer[nodes], pointer[nodes + 1] - pointer[nodes]
        first = torch.repeat_interleave(start - (count.cumsum(0) - count), count)
        return edges[first + torch.arange(first.numel(), device=first.device)].long()

    @staticmethod
    def _grown(x: Tensor, size: int, fill: int | Tensor = 0) -> Tensor:
        """``x`` padded with ``fill`` to ``size`` entries."""
        return torch.cat([x, x.new_full((size - x.numel(),), int(fill))]) if size > x.numel() else x

    @staticmethod
    def _merged(fixed: Tensor, new: Tensor, insert: Tensor) -> Tensor:
        """``fixed`` with ``new[i]`` inserted before ``fixed[insert[i]]`` (``insert`` ascending; ties in order)."""
        if not new.numel():
            return fixed
        points, counts = torch.unique_consecutive(insert, return_counts=True)
        if points.numel() <= PIECEWISE_MERGE_POINTS:  # a few runs of fixed entries: concatenate them
            pieces = fixed.tensor_split(points.cpu())
            merged: list[Tensor] = [pieces[0]]
            for items, piece in zip(new.split(counts.tolist()), pieces[1:], strict=True):
                merged += [items, piece]
            return torch.cat(merged)
        position = insert + torch.arange(new.numel(), device=insert.device)
        is_new = torch.zeros(fixed.numel() + new.numel(), dtype=torch.bool, device=fixed.device)
        is_new[position] = True
        out = fixed.new_empty(is_new.numel())
        out[position] = new
        return out.masked_scatter_(~is_new, fixed)
