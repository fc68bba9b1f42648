"""Inductive training for cold start: in each step some users and movies are treated as new.

A "new" node's ID is replaced by the encoder's unknown row and most of its message edges are dropped,
so the network learns to encode a node from its side features and a few ratings (what a fold-in sees).
"""

from __future__ import annotations

import torch
from torch import Tensor


def induction_step(
    keep: Tensor,
    user_ids: Tensor,
    edge_index: Tensor,
    num_users: int,
    num_movies: int,
    share_users: float,
    share_movies: float,
    max_kept: float = 0.2,
) -> tuple[Tensor, Tensor, Tensor]:
    """Pretend a random ``share_users`` / ``share_movies`` of the nodes are new.

    Each new node keeps a random fraction (uniform in ``[0, max_kept)``) of its message edges; the rest
    are removed from ``keep`` (with ``supervision="dropped"`` they become targets). Returns
    ``(keep, user_ids, movie_ids)`` with new users mapped to row ``num_users`` and new movies to
    row ``num_movies`` of the ID tables.
    """
    device = keep.device
    user, movie = edge_index[0], edge_index[1]
    new_user = torch.rand(num_users, device=device) < share_users
    new_movie = torch.rand(num_movies, device=device) < share_movies
    user_ids = torch.where(new_user, num_users, user_ids)
    movie_ids = torch.where(new_movie, num_movies, torch.arange(num_movies, device=device))
    draw = torch.rand(edge_index.size(1), device=device)
    user_fraction = torch.rand(num_users, device=device) * max_kept
    movie_fraction = torch.rand(num_movies, device=device) * max_kept
    keep = (
        keep & (~new_user[user] | (draw < user_fraction[user])) & (~new_movie[movie] | (draw < movie_fraction[movie]))
    )
    return keep, user_ids, movie_ids
