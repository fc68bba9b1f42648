r"""A ranking head on the encoder's outputs and its losses: "will this person rate this film, and like it"."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
from torch import Tensor, nn

RANK_LOSSES = ("multinomial", "bpr")


class RankingHead(nn.Module):
    r"""Low-rank bilinear scores with a per-movie bias and, with ``neighbours``, an item–item term, read as logits
    of "the user rates this movie next".

    .. math::
        s(u, m) = (\mathbf{W}_u \mathbf{z}_u)^\top (\mathbf{W}_m \mathbf{z}_m) + b_m
        + c \sum_{j \in H_u} [m \in \mathcal{N}_j]\, a_{jm}

    where :math:`H_u` are the movies of the user's history (the edges the encoder read), :math:`\mathcal{N}_j` the
    ``neighbours`` movies most often rated together with movie :math:`j` in training (:meth:`set_neighbours`),
    :math:`a_{jm}` a learned weight per (movie, neighbour) pair and :math:`c` the history's scale (the inverse
    share of edges kept while training, 1 when serving). The item–item term is what the low-rank product cannot
    hold: "people who rated this film rate that one", pair by pair, at a cost of ``neighbours`` per history edge.

    Args:
        channels: size :math:`d` of the encoder's user and movie representations.
        num_movies: number of movies (one bias each).
        rank_dim: size of the projections :math:`\mathbf{W}_u, \mathbf{W}_m`.
        neighbours: movies per movie in the item–item term (0: no item–item term).

    Shapes:
        - **input:** ``z_user`` :math:`(U, d)`, ``z_movie`` :math:`(M, d)`, optional ``history`` pairs
          (row in ``z_user`` :math:`(H)`, movie :math:`(H)`) and their scale
        - **output:** scores :math:`(U, M)`
    """

    def __init__(self, channels: int, num_movies: int, rank_dim: int = 75, neighbours: int = 0) -> None:
        super().__init__()
        self.user = nn.Linear(channels, rank_dim)
        self.movie = nn.Linear(channels, rank_dim)
        self.bias = nn.Parameter(torch.zeros(num_movies))
        self.neighbour_weight: nn.Parameter | None = None
        self.register_buffer("neighbour_index", None)
        if neighbours:  # registered only when used: checkpoints of heads without the term keep their keys
            self.neighbour_weight = nn.Parameter(torch.zeros(num_movies, neighbours))
            self.register_buffer("neighbour_index", torch.zeros(num_movies, neighbours, dtype=torch.long))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.user.reset_parameters()
        self.movie.reset_parameters()
        nn.init.zeros_(self.bias)
        if self.neighbour_weight is not None:
            nn.init.zeros_(self.neighbour_weight)

    def set_neighbours(self, user: Tensor, movie: Tensor, num_users: int) -> None:
        """Each movie's neighbours from the training pairs ``(user[e], movie[e])``: :func:`co_rated_neighbours`."""
        if self.neighbour_index is not None:
            index = co_rated_neighbours(user, movie, num_users, len(self.bias), self.neighbour_index.size(1))
            self.neighbour_index.copy_(index)

    def item_item(self, row: Tensor, movie: Tensor, scale: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
        """The item–item term's ``(row, movie, value)`` contributions of the history pairs ``(row[h], movie[h])``."""
        assert self.neighbour_weight is not None and self.neighbour_index is not None
        k = self.neighbour_index.size(1)
        value = self.neighbour_weight[movie] * scale
        return row.repeat_interleave(k), self.neighbour_index[movie].reshape(-1), value.reshape(-1)

    def forward(self, z_user: Tensor, z_movie: Tensor, history: tuple[Tensor, Tensor, float] | None = None) -> Tensor:
        scores = torch.addmm(self.bias, self.user(z_user), self.movie(z_movie).t())
        if history is not None and self.neighbour_weight is not None:
            row, movie, value = self.item_item(*history)
            scores = scores.view(-1).index_add(0, row * scores.size(1) + movie, value).view_as(scores)
        return scores


def co_rated_neighbours(user: Tensor, movie: Tensor, num_users: int, num_movies: int, k: int) -> Tensor:
    """``[num_movies, k]``: for each movie the ``k`` others rated by the most of its users (ties: lower index first;
    a movie with fewer co-rated movies is completed by unrelated ones, whose weights the loss keeps small).

    Counts come from the sparse ``XᵀX`` a block of movies at a time (SciPy), so memory follows ``block × movies``.
    """
    if k >= num_movies:
        raise ValueError(f"{k} neighbours per movie need more than {k} movies, the data have {num_movies}")
    pairs = scipy.sparse.csr_matrix(
        (np.ones(len(user)), (user.cpu().numpy(), movie.cpu().numpy())), shape=(num_users, num_movies)
    )
    pairs.sum_duplicates()
    pairs.data[:] = 1.0
    by_movie = pairs.T.tocsr()
    # integer counts plus a tie-break below 1 that prefers lower movie indices
    tie_break = 1.0 - (np.arange(num_movies) + 1.0) / (num_movies + 1.0)
    block = max(1, NEIGHBOUR_BLOCK_CELLS // num_movies)
    parts = []
    for start in range(0, num_movies, block):
        stop = min(start + block, num_movies)
        counts = (by_movie[start:stop] @ pairs).toarray() + tie_break
        counts[np.arange(stop - start), np.arange(start, stop)] = -1.0  # never its own neighbour
        top = np.argpartition(-counts, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(counts, top, 1), axis=1)
        parts.append(np.take_along_axis(top, order, 1))
    return torch.from_numpy(np.concatenate(parts)).long().to(movie.device)


NEIGHBOUR_BLOCK_CELLS = 2**24  # co-rating counts per block of movies in co_rated_neighbours (128 MiB of float64)


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
    history_scale: float = 1.0,
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
        history_scale: the scale :math:`c` of the head's item–item term, whose history is the masked pairs (exact
            loss only). With the term the loss is that of the low-rank scores plus that of the full scores with the
            low-rank scores held constant: the encoder and the low-rank head are trained as without the term.

    Shapes:
        - **input:** ``z_block`` :math:`(B, d)`, ``z_movie`` :math:`(M, d)`, pairs :math:`(E)`, ``negatives``
          :math:`(K)`
        - **output:** a scalar
    """
    masked = block_pairs(rows, num_users, masked_user, masked_movie)
    row, movie, weight = block_pairs(rows, num_users, target_user, target_movie, weight)
    if negatives is not None:
        if head.neighbour_weight is not None:
            raise ValueError("the ranking head's item-item term needs the exact multinomial loss (negatives=None)")
        return sampled_normaliser_loss(head, z_block, z_movie, masked, row, movie, weight, negatives)
    return _MultinomialLoss.apply(
        head.user(z_block), head.movie(z_movie), head.bias, head.neighbour_weight, masked, row, movie, weight,
        head.neighbour_index, history_scale,
    )  # fmt: skip


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

    With ``neighbour_weight`` (the head's item–item term; the block's masked pairs are its history) the loss is that
    of the low-rank scores plus that of the full scores, where the second treats the low-rank scores as constants:
    the encoder and the low-rank head get the gradient they get without the term, and the term learns what the
    low-rank scores leave.
    """

    @staticmethod
    def forward(
        ctx: Any,
        user: Tensor,
        movie: Tensor,
        bias: Tensor,
        neighbour_weight: Tensor | None,
        masked: tuple[Tensor, Tensor],
        row: Tensor,
        target: Tensor,
        weight: Tensor,
        neighbour_index: Tensor | None,
        history_scale: float,
    ) -> Tensor:
        num_rows, num_movies = user.size(0), movie.size(0)
        whole = num_rows * num_movies <= LOSS_WHOLE_CELLS
        size = max(1, num_rows if whole else LOSS_BLOCK_CELLS // max(num_movies, 1))
        need_user, need_movie, need_bias, need_neighbour = ctx.needs_input_grad[:4]
        weight = weight.to(user.dtype)
        per_row = torch.zeros(num_rows, dtype=user.dtype, device=user.device).index_add_(0, row, weight)
        grad_user = torch.empty_like(user) if need_user else None
        grad_movie = torch.zeros_like(movie) if need_movie else None
        grad_bias = torch.zeros_like(bias) if need_bias else None
        grad_neighbour = torch.zeros_like(neighbour_weight) if need_neighbour else None
        k = 0 if neighbour_weight is None or neighbour_index is None else neighbour_index.size(1)
        masked_row, masked_movie = masked
        targets = _pairs_by_block(row, size, num_rows, target, weight)
        masks = _pairs_by_block(masked_row, size, num_rows, masked_movie)
        total = user.new_zeros(())
        movie_t = movie.t()
        need_scores = need_user or need_movie or need_bias
        for index, start in enumerate(range(0, num_rows, size)):
            stop = min(start + size, num_rows)
            t_row, t_movie, t_weight = targets[index]
            m_row, m_movie = masks[index]
            t_row, m_row = t_row - start, m_row - start
            block = (t_row, t_movie, t_weight, m_row, m_movie, per_row[start:stop])
            scores = torch.addmm(bias, user[start:stop], movie_t)
            if k:  # the block's history (its masked pairs) through the item-item term, by flat index: one index_add
                flat = (m_row * num_movies).unsqueeze(1).add(neighbour_index[m_movie]).view(-1)
                full = (
                    scores.clone().view(-1).index_add_(0, flat, neighbour_weight[m_movie].view(-1), alpha=history_scale)
                )
                loss, gradient = _block_softmax_loss(full.view_as(scores), *block, need_neighbour)
                total = total + loss
                if gradient is not None:
                    contribution = gradient.view(-1).take(flat).view(-1, k)
                    grad_neighbour.index_add_(0, m_movie, contribution, alpha=history_scale)
                del full, gradient
            loss, gradient = _block_softmax_loss(scores, *block, need_scores)
            total = total + loss
            if gradient is None:
                continue
            if grad_user is not None:
                torch.mm(gradient, movie, out=grad_user[start:stop])
            if grad_movie is not None:
                grad_movie.addmm_(gradient.t(), user[start:stop])
            if grad_bias is not None:
                grad_bias.add_(gradient.sum(0))
        ctx.rows = max(num_rows, 1)
        ctx.grads = (grad_user, grad_movie, grad_bias, grad_neighbour)
        return total / ctx.rows

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        scale = grad / ctx.rows
        grads = tuple(None if g is None else g * scale.to(g.dtype) for g in ctx.grads)
        ctx.grads = (None, None, None, None)  # a second backward would need the forward again
        return (*grads, None, None, None, None, None, None)


def _block_softmax_loss(
    scores: Tensor,
    t_row: Tensor,
    t_movie: Tensor,
    t_weight: Tensor,
    m_row: Tensor,
    m_movie: Tensor,
    per_row: Tensor,
    need_gradient: bool,
) -> tuple[Tensor, Tensor | None]:
    r"""The summed loss of one block's ``scores`` (overwritten) and, if ``need_gradient``, its gradient
    :math:`\partial \mathcal{L} / \partial s` in the same buffer."""
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
    loss = -((picked - log_z[t_row]) * t_weight).sum()
    if not need_gradient:
        return loss, None
    # dL/ds of the block's summed loss, in place: c_u p_um minus the weights of the (u, m) targets
    gradient = probability.mul_(per_row.unsqueeze(1))
    gradient.index_put_((t_row, t_movie), -t_weight, accumulate=True)
    return loss, gradient


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
