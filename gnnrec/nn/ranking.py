r"""A ranking head on the encoder's outputs and its losses: "will this person rate this film, and like it"."""

from __future__ import annotations

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
        return self.user(z_user) @ self.movie(z_movie).t() + self.bias


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
    row_of = torch.full((num_users,), -1, dtype=torch.long, device=scores.device)
    row_of[rows] = torch.arange(len(rows), device=scores.device)
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
