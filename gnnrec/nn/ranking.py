r"""A ranking head on the encoder's outputs and its losses: "will this person rate this film, and like it"."""

from __future__ import annotations

import math
from typing import Any

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
    masked = block_pairs(rows, num_users, masked_user, masked_movie)
    row, movie, weight = block_pairs(rows, num_users, target_user, target_movie, weight)
    if loss == "multinomial":  # the masked scores set to -inf where they lie, without a users x movies mask
        log_p = scores.index_put(masked, scores.new_tensor(float("-inf"))).log_softmax(-1)
        return -(log_p[row, movie] * weight).sum() / max(len(rows), 1)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[masked] = True
    negative = torch.randint(scores.size(1), (len(row),), device=scores.device)
    valid = ~mask[row, negative]
    margin = scores[row, movie] - scores[row, negative]
    return -(F.logsigmoid(margin) * weight * valid).sum() / max(len(rows), 1)


def block_pairs(rows: Tensor, num_users: int, user: Tensor, *columns: Tensor) -> tuple[Tensor, ...]:
    """The pairs of the block's users ``rows``: ``(row in the block, *columns)`` of each pair whose ``user`` is
    one of ``rows`` (all pairs, without a filtering pass, when the block holds every user)."""
    row_of = torch.full((num_users,), -1, dtype=torch.long, device=rows.device)
    row_of[rows] = torch.arange(len(rows), device=rows.device)
    if len(rows) == num_users:
        return (row_of[user], *columns)
    keep = row_of[user] >= 0
    return (row_of[user[keep]], *(column[keep] for column in columns))


def multinomial_loss(
    head: RankingHead,
    z_block: Tensor,
    z_movie: Tensor,
    rows: Tensor,
    num_users: int,
    target_user: Tensor,
    target_movie: Tensor,
    weight: Tensor,
    masked_user: Tensor,
    masked_movie: Tensor,
    negatives: Tensor | None = None,
) -> Tensor:
    r"""The ``multinomial`` loss of :func:`ranking_loss` from the head's inputs: exact, or with its softmax
    normaliser estimated from the sampled movies ``negatives``.

    Exact (``negatives=None``): the scores, their masked softmax and its gradient
    :math:`\partial \mathcal{L} / \partial s_{um} = (c_u\, p_{um} - \sum_{e: (u_e, m_e) = (u, m)} w_e) / B` (with
    :math:`c_u = \sum_{e: u_e = u} w_e`) take two ``[B, M]`` buffers: the masked scores, then their softmax, which
    the backward pass turns into the gradient in place; the composed operators (masked copy, log-softmax, gather and
    their backward passes) allocate and traverse several.

    Sampled (``negatives``: :math:`K` distinct movies drawn uniformly from the :math:`M`, shared by the block):

    .. math::
        Z_u = \sum_{t \in T_u} e^{s_{ut}} + \frac{M}{K} \sum_{j \in S \setminus N_u} e^{s_{uj}}, \qquad
        \mathcal{L} = -\frac{1}{B} \sum_e w_e \left(s_{u_e m_e} - \log Z_{u_e}\right)

    where :math:`T_u` are the user's target movies (scored exactly), :math:`S` the negatives and :math:`N_u`
    every movie of the user's edges (targets and masked ones, never negatives). The second term is an unbiased
    estimate of the exact softmax's sum over the user's other movies, at a cost of :math:`B \times K` scores
    instead of :math:`B \times M`.

    Args:
        head: the ranking head.
        z_block: representations of the block's users ``rows`` (row :math:`b` is user ``rows[b]``).
        z_movie: every movie's representation.
        rows, num_users, target_user, target_movie, weight, masked_user, masked_movie: as in :func:`ranking_loss`.
        negatives: ``[K]`` distinct movie ids, or ``None`` for the whole catalogue.

    Shapes:
        - **input:** ``z_block`` :math:`(B, d)`, ``z_movie`` :math:`(M, d)`, pairs :math:`(E)`, ``negatives``
          :math:`(K)`
        - **output:** a scalar
    """
    masked = block_pairs(rows, num_users, masked_user, masked_movie)
    row, movie, weight = block_pairs(rows, num_users, target_user, target_movie, weight)
    if negatives is not None:
        return sampled_normaliser_loss(head, z_block, z_movie, masked, row, movie, weight, negatives)
    return _MultinomialLoss.apply(head.user(z_block), head.movie(z_movie), head.bias, masked, row, movie, weight)


# scores in one block of rows of the exact multinomial loss (2 MiB of float32): a block that stays in the CPU's cache
# makes each pass over it (softmax, gradient) cheap, where a large users x movies matrix streams through memory; up
# to LOSS_WHOLE_CELLS scores (16 MiB) the matrix is one block, as splitting it only adds work
LOSS_BLOCK_CELLS = 2**19
LOSS_WHOLE_CELLS = 2**22


class _MultinomialLoss(torch.autograd.Function):
    """:func:`multinomial_loss` from the projected users and movies and the movie bias.

    The forward pass works through blocks of users (:data:`LOSS_BLOCK_CELLS` scores each; one block up to
    :data:`LOSS_WHOLE_CELLS`): the block's scores, their masked softmax, its loss and already its contribution to
    the gradients, so no ``[B, M]`` matrix outlives its block; the backward pass scales the gradients by the
    incoming one.
    """

    @staticmethod
    def forward(
        ctx: Any,
        user: Tensor,
        movie: Tensor,
        bias: Tensor,
        masked: tuple[Tensor, Tensor],
        row: Tensor,
        target: Tensor,
        weight: Tensor,
    ) -> Tensor:
        num_rows, num_movies = user.size(0), movie.size(0)
        whole = num_rows * num_movies <= LOSS_WHOLE_CELLS
        size = max(1, num_rows if whole else LOSS_BLOCK_CELLS // max(num_movies, 1))
        need_user, need_movie, need_bias = ctx.needs_input_grad[:3]
        weight = weight.to(user.dtype)
        per_row = torch.zeros(num_rows, dtype=user.dtype, device=user.device).index_add_(0, row, weight)
        grad_user = torch.empty_like(user) if need_user else None
        grad_movie = torch.zeros_like(movie) if need_movie else None
        grad_bias = torch.zeros_like(bias) if need_bias else None
        masked_row, masked_movie = masked
        targets = _pairs_by_block(row, size, num_rows, target, weight)
        masks = _pairs_by_block(masked_row, size, num_rows, masked_movie)
        total = user.new_zeros(())
        movie_t = movie.t()
        for index, start in enumerate(range(0, num_rows, size)):
            stop = min(start + size, num_rows)
            t_row, t_movie, t_weight = targets[index]
            m_row, m_movie = masks[index]
            t_row, m_row = t_row - start, m_row - start
            scores = torch.addmm(bias, user[start:stop], movie_t)
            picked = scores[t_row, t_movie]
            scores.index_put_((m_row, m_movie), scores.new_tensor(-math.inf))
            top = scores.amax(-1)
            # one softmax pass: on CPU logsumexp and exp_ each cost more than the whole softmax (a slower exp kernel)
            probability = scores.softmax(-1)  # 0 at the masked movies
            del scores
            # the largest probability is exp(0) / sum_m exp(s_m - top): log Z = top - log p_max
            log_z = top - probability.amax(-1).log()
            free = torch.isfinite(top)
            if not bool(free.all()):  # a row without a free movie has no probabilities (softmax gave NaN); no target
                probability[~free] = 0.0
            total = total - ((picked - log_z[t_row]) * t_weight).sum()
            if not (need_user or need_movie or need_bias):
                continue
            # dL/ds of the block's summed loss, in place: c_u p_um minus the weights of the (u, m) targets
            gradient = probability.mul_(per_row[start:stop].unsqueeze(1))
            gradient.index_put_((t_row, t_movie), -t_weight, accumulate=True)
            if grad_user is not None:
                torch.mm(gradient, movie, out=grad_user[start:stop])
            if grad_movie is not None:
                grad_movie.addmm_(gradient.t(), user[start:stop])
            if grad_bias is not None:
                grad_bias.add_(gradient.sum(0))
        ctx.rows = max(num_rows, 1)
        ctx.grads = (grad_user, grad_movie, grad_bias)
        return total / ctx.rows

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        scale = grad / ctx.rows
        grads = tuple(None if g is None else g * scale.to(g.dtype) for g in ctx.grads)
        ctx.grads = (None, None, None)  # a second backward would need the forward again
        return (*grads, None, None, None, None)


def _pairs_by_block(row: Tensor, size: int, num_rows: int, *columns: Tensor) -> list[tuple[Tensor, ...]]:
    """``(row, *columns)`` of the pairs whose row falls in each block of ``size`` rows of ``num_rows``, in order."""
    num_blocks = max(1, -(-num_rows // size))
    if num_blocks == 1:
        return [(row, *columns)]
    block = torch.div(row, size, rounding_mode="floor")
    order = torch.argsort(block, stable=True)
    counts = torch.bincount(block, minlength=num_blocks).tolist()
    parts = [tensor[order].split(counts) for tensor in (row, *columns)]
    return list(zip(*parts, strict=True))


def sampled_normaliser_loss(
    head: RankingHead,
    z_block: Tensor,
    z_movie: Tensor,
    masked: tuple[Tensor, Tensor],
    row: Tensor,
    movie: Tensor,
    weight: Tensor,
    negatives: Tensor,
) -> Tensor:
    """:func:`multinomial_loss` with sampled ``negatives``, on the block's pairs (``masked``: rows and movies;
    targets ``row``, ``movie``, ``weight``)."""
    num_movies, num_rows = z_movie.size(0), z_block.size(0)
    other_row, other_movie = masked
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
    top = torch.full((num_rows,), -math.inf, device=target.device).scatter_reduce(
        0, row, target.detach(), reduce="amax"
    )
    top = torch.maximum(top, sampled.detach().amax(-1))
    top = torch.where(torch.isfinite(top), top, 0.0)  # a row with nothing to score: keeps its exp terms finite
    exp_targets = torch.zeros(num_rows, device=target.device).index_add(0, row, (target - top[row]).exp())
    exp_sampled = (sampled - top.unsqueeze(1)).exp().sum(-1)
    log_z = top + (exp_targets + exp_sampled).log()
    return -((target - log_z[row]) * weight).sum() / max(num_rows, 1)
