r"""A ranking head on the encoder's outputs and its losses: "will this person rate this film, and like it"."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RANK_LOSSES = ("multinomial", "bpr")


class RankingHead(nn.Module):
    r"""Low-rank bilinear scores with a per-movie bias, read as logits of "the user rates this movie next".

    .. math::
        s(u, m) = (\mathbf{W}_u \mathbf{z}_u)^\top (\mathbf{W}_m \mathbf{z}_m) + b_m

    Args:
        channels: size :math:`d` of the encoder's user and movie representations.
        num_movies: number of movies (one bias each).
        rank_dim: size of the projections :math:`\mathbf{W}_u, \mathbf{W}_m`.

    Shapes:
        - **input:** ``z_user`` :math:`(U, d)`, ``z_movie`` :math:`(M, d)`
        - **output:** scores :math:`(U, M)`
    """

    def __init__(self, channels: int, num_movies: int, rank_dim: int = 75) -> None:
        super().__init__()
        self.user = nn.Linear(channels, rank_dim)
        self.movie = nn.Linear(channels, rank_dim)
        self.bias = nn.Parameter(torch.zeros(num_movies))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.user.reset_parameters()
        self.movie.reset_parameters()
        nn.init.zeros_(self.bias)

    def forward(self, z_user: Tensor, z_movie: Tensor) -> Tensor:
        return torch.addmm(self.bias, self.user(z_user), self.movie(z_movie).t())


def scale_gradient(x: Tensor, scale: float) -> Tensor:
    """``x`` in the forward pass; its gradient multiplied by ``scale`` in the backward pass."""
    if scale == 1.0:
        return x
    return x.detach() * (1.0 - scale) + x * scale


def ranking_loss(
    scores: Tensor,
    rows: Tensor,
    num_users: int,
    target_user: Tensor,
    target_movie: Tensor,
    weight: Tensor,
    masked_user: Tensor,
    masked_movie: Tensor,
    loss: str = "multinomial",
) -> Tensor:
    r"""Ranking loss of a block of users, summed over their targets and divided by the number of rows.

    ``scores`` :math:`(B, M)` are the head's scores of the users ``rows`` (row :math:`b` is user
    ``rows[b]`` of ``num_users``; a mini-batch passes its own users, full-batch training every user). Targets are the
    pairs ``(target_user[e], target_movie[e])`` with weights ``weight[e]`` (users outside ``rows`` are
    ignored); ``(masked_user, masked_movie)`` pairs (the edges the encoder read) are never negatives.

    * ``multinomial``: :math:`-\sum_e w_e \log \operatorname{softmax}_m(s_{u_e,\cdot})_{m_e}` over the
      catalogue minus the masked movies (Mult-VAE's likelihood);
    * ``bpr``: :math:`-\sum_e w_e \log\sigma(s_{u_e m_e} - s_{u_e j_e})` with one uniformly drawn
      unmasked negative :math:`j_e` per target.
    """
    if loss not in RANK_LOSSES:
        raise ValueError(f"unknown ranking loss {loss!r}; choose one of {', '.join(RANK_LOSSES)}")
    row_of = block_rows(rows, num_users)
    keep = row_of[masked_user] >= 0
    masked = (row_of[masked_user[keep]], masked_movie[keep])
    keep = row_of[target_user] >= 0
    row, movie, weight = row_of[target_user[keep]], target_movie[keep], weight[keep]
    if loss == "multinomial":  # the masked scores set to -inf where they lie, without a users x movies mask
        log_p = scores.index_put(masked, scores.new_tensor(float("-inf"))).log_softmax(-1)
        return -(log_p[row, movie] * weight).sum() / max(len(rows), 1)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[masked] = True
    negative = torch.randint(scores.size(1), (len(row),), device=scores.device)
    valid = ~mask[row, negative]
    margin = scores[row, movie] - scores[row, negative]
    return -(F.logsigmoid(margin) * weight * valid).sum() / max(len(rows), 1)


def block_rows(rows: Tensor, num_users: int) -> Tensor:
    """``[num_users]``: each user's row in the block ``rows``, -1 for users outside it."""
    row_of = torch.full((num_users,), -1, dtype=torch.long, device=rows.device)
    row_of[rows] = torch.arange(len(rows), device=rows.device)
    return row_of


def sampled_multinomial_loss(
    head: RankingHead,
    z_block: Tensor,
    z_movie: Tensor,
    rows: Tensor,
    num_users: int,
    target_user: Tensor,
    target_movie: Tensor,
    weight: Tensor,
    other_user: Tensor,
    other_movie: Tensor,
    negatives: Tensor,
) -> Tensor:
    r"""The ``multinomial`` loss of :func:`ranking_loss` with its softmax normaliser estimated from sampled movies.

    .. math::
        Z_u = \sum_{t \in T_u} e^{s_{ut}} + \frac{M}{K} \sum_{j \in S \setminus N_u} e^{s_{uj}}, \qquad
        \mathcal{L} = -\frac{1}{B} \sum_e w_e \left(s_{u_e m_e} - \log Z_{u_e}\right)

    where :math:`T_u` are the user's target movies (scored exactly), :math:`S` the ``negatives`` (:math:`K`
    movies drawn uniformly without replacement from the :math:`M`, shared by the block) and :math:`N_u` every
    movie of the user's edges (targets and the ``other`` edges, never negatives). The second term is an unbiased
    estimate of the exact softmax's sum over the user's unrated movies, so the loss follows the full multinomial
    while costing :math:`B \times K` scores instead of :math:`B \times M`.

    Args:
        head: the ranking head scoring the pairs.
        z_block: representations of the block's users ``rows`` (row :math:`b` is user ``rows[b]``).
        z_movie: every movie's representation, ``[M, d]``.
        rows, num_users, target_user, target_movie, weight: as in :func:`ranking_loss`.
        other_user, other_movie: the block users' other edges (read by the encoder).
        negatives: ``[K]`` distinct movie ids.

    Shapes:
        - **input:** ``z_block`` :math:`(B, d)`, ``z_movie`` :math:`(M, d)`, pairs :math:`(E)`, ``negatives``
          :math:`(K)`
        - **output:** a scalar
    """
    num_movies = z_movie.size(0)
    row_of = block_rows(rows, num_users)
    keep = row_of[target_user] >= 0
    row, movie, weight = row_of[target_user[keep]], target_movie[keep], weight[keep]
    keep = row_of[other_user] >= 0
    other_row, other_movie = row_of[other_user[keep]], other_movie[keep]
    column_of = torch.full((num_movies,), -1, dtype=torch.long, device=z_movie.device)
    column_of[negatives] = torch.arange(len(negatives), device=z_movie.device)
    user, movie_all = head.user(z_block), head.movie(z_movie)  # projected once, gathered per pair
    sampled = torch.addmm(head.bias.index_select(0, negatives), user, movie_all.index_select(0, negatives).t())
    sampled = sampled + math.log(num_movies / len(negatives))
    # a sampled movie the user has an edge with is no negative
    excluded_row, excluded_movie = torch.cat([row, other_row]), torch.cat([movie, other_movie])
    hit = column_of[excluded_movie] >= 0
    sampled = sampled.index_put((excluded_row[hit], column_of[excluded_movie[hit]]), sampled.new_tensor(-math.inf))
    target = (user.index_select(0, row) * movie_all.index_select(0, movie)).sum(-1) + head.bias.index_select(0, movie)
    # log Z per row: the sampled part by rows, the targets' part by segments (a detached max keeps exp finite)
    top = torch.full((len(rows),), -math.inf, device=target.device).scatter_reduce(
        0, row, target.detach(), reduce="amax"
    )
    top = torch.maximum(top, sampled.detach().amax(-1))
    top = torch.where(torch.isfinite(top), top, 0.0)  # a row with nothing to score: keeps its exp terms finite
    exp_targets = torch.zeros(len(rows), device=target.device).index_add(0, row, (target - top[row]).exp())
    exp_sampled = (sampled - top.unsqueeze(1)).exp().sum(-1)
    log_z = top + (exp_targets + exp_sampled).log()
    return -((target - log_z[row]) * weight).sum() / max(len(rows), 1)
