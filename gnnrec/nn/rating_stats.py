"""Per-node statistics of the rating graph's message edges: an input for nodes without side features."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def rating_stats_width(num_levels: int) -> int:
    """Width of a :func:`rating_statistics` row: log-degree, scaled mean rating and one share per level."""
    return 2 + num_levels


def rating_statistics(
    edge_index: Tensor, rating_index: Tensor, rating_values: Tensor, num_users: int, num_movies: int
) -> tuple[Tensor, Tensor]:
    r"""Rating statistics of every user and movie, read from the message edges only.

    For a node :math:`i` with :math:`d_i` message edges, :math:`n_{ir}` of them at level :math:`r`
    (value :math:`v_r`), and :math:`N'` nodes of the other type:

    .. math::
        \mathbf{s}_i = \Big[\frac{\log(1 + d_i)}{\log(1 + N')},\;
            \frac{\bar r_i - v_{\min}}{v_{\max} - v_{\min}},\; p_{i1}, \dots, p_{iR}\Big],\qquad
        p_{ir} = \frac{n_{ir}}{\max(d_i, 1)},\quad \bar r_i = \sum_r p_{ir} v_r

    (a node without edges gets zeros after its degree term). Only the edges passed in count: in
    training these are the step's message edges, so a target rating dropped from message passing
    never enters its own user's or movie's statistics; at prediction time the training ratings.

    Args:
        edge_index: ``[2, E]`` (user, movie) message edges.
        rating_index: ``[E]`` 0-based rating level of each edge.
        rating_values: ``[R]`` value of each level.
        num_users: number of user rows :math:`U`.
        num_movies: number of movie rows :math:`M`.

    Returns:
        ``(user stats [U, R + 2], movie stats [M, R + 2])``.
    """
    values = rating_values.float().to(edge_index.device)
    levels = len(values)
    low, high = float(values.min()), float(values.max())
    span = high - low if high > low else 1.0
    out = []
    for side, num_nodes, num_other in ((0, num_users, num_movies), (1, num_movies, num_users)):
        node = edge_index[side]
        counts = torch.bincount(node * levels + rating_index, minlength=num_nodes * levels)
        counts = counts[: num_nodes * levels].view(num_nodes, levels).float()
        degree = counts.sum(1, keepdim=True)
        shares = counts / degree.clamp(min=1.0)
        mean = ((shares @ values).unsqueeze(1) - low) / span * (degree > 0)
        log_degree = torch.log1p(degree) / math.log1p(max(num_other, 1))
        out.append(torch.cat([log_degree, mean, shares], dim=1))
    return out[0], out[1]
