r"""Rating decoders: turn user and movie representations into predicted ratings.

Every decoder has ``forward(z_user, z_movie, user, movie) -> (level logits or None, rating)`` for the
pairs ``(user[e], movie[e])`` and ``score_all(z_user, z_movie) -> [U, M]`` for every pair of a block
of users (the same numbers as ``forward`` on all pairs, computed without listing the pairs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnrec.nn.sparse import PairPattern


class _LevelBiases(nn.Module):
    """Affine per-output biases :math:`\\beta(\\mathbf{z}_u) + \\beta'(\\mathbf{z}_m)`, initialised to zero."""

    def __init__(self, channels: int, outputs: int) -> None:
        super().__init__()
        self.user_bias = nn.Linear(channels, outputs)
        self.movie_bias = nn.Linear(channels, outputs)

    def reset_parameters(self) -> None:
        for linear in (self.user_bias, self.movie_bias):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)


class BilinearDecoder(_LevelBiases):
    r"""GC-MC's ordinal mixture of bilinear forms over rating levels.

    .. math::
        \ell_r = \sum_{b=1}^{B} a_{rb}\, \mathbf{z}_u^\top \mathbf{P}_b \mathbf{z}_m
            + \beta_r(\mathbf{z}_u) + \beta'_r(\mathbf{z}_m), \qquad
        \hat r = \sum_r \operatorname{softmax}(\boldsymbol\ell)_r\, v_r

    with :math:`B` basis matrices :math:`\mathbf{P}_b` shared by the levels, affine per-level biases
    :math:`\beta, \beta'` and the rating values :math:`v_r`.

    Args:
        channels: size :math:`d` of the user and movie representations.
        rating_values: the rating value :math:`v_r` of each level, ``[R]``.
        num_bases: number :math:`B` of basis matrices.

    Shapes:
        - **input:** ``z_user`` :math:`(U, d)`, ``z_movie`` :math:`(M, d)`, ``user``/``movie`` :math:`(E)`
        - **output:** logits :math:`(E, R)` and expected ratings :math:`(E)`; ``score_all`` :math:`(U, M)`
    """

    def __init__(self, channels: int, rating_values: Tensor, num_bases: int = 2) -> None:
        super().__init__(channels, len(rating_values))
        self.register_buffer("rating_values", rating_values.float().clone())
        self.bases = nn.Parameter(torch.empty(num_bases, channels, channels))
        self.mixture = nn.Parameter(torch.empty(len(rating_values), num_bases))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        nn.init.orthogonal_(self.bases.view(-1, self.bases.size(-1)))
        nn.init.xavier_uniform_(self.mixture)

    def forward(self, z_user: Tensor, z_movie: Tensor, user: Tensor, movie: Tensor) -> tuple[Tensor, Tensor]:
        # the (few) user rows are projected by each basis, then each basis's pair products are one sampled
        # sparse-dense product over the pairs (gathering [E, d] copies costs several times more to differentiate)
        pairs = PairPattern(user, movie, z_user.size(0), z_movie.size(0))
        scores = [pairs.dot(z_user @ basis, z_movie) for basis in self.bases]
        # levels first ([R, E]): a softmax over a short last dimension is many times slower on CPU
        logits = self.mixture @ torch.stack(scores)
        logits = logits + self.user_bias(z_user).t().index_select(1, user)
        logits = logits + self.movie_bias(z_movie).t().index_select(1, movie)
        return logits.t(), self.rating_values @ logits.softmax(0)

    def score_all(
        self, z_user: Tensor, z_movie: Tensor, chunk_pairs: int = 2**22, values: Tensor | None = None
    ) -> Tensor:
        """Expected ratings of every pair, ``[U, M]`` (``values``: the expectation of these per-level values
        instead, e.g. ``(rating_values >= 4).float()`` for the probability of a rating of 4 or more)."""
        values = self.rating_values if values is None else values.to(self.rating_values)
        num_movies = z_movie.size(0)
        movie_bias = self.movie_bias(z_movie)
        per_pair = len(self.rating_values) + self.bases.size(0)
        rows = []
        for part in z_user.split(max(1, chunk_pairs // max(num_movies * per_pair, 1))):
            projected = torch.einsum("ud,bdk->ubk", part, self.bases)
            logits = torch.einsum("ubk,mk->umb", projected, z_movie) @ self.mixture.t()
            logits = logits + self.user_bias(part).unsqueeze(1) + movie_bias.unsqueeze(0)
            rows.append(logits.softmax(-1) @ values)
        return torch.cat(rows) if rows else z_user.new_empty(0, num_movies)


class MLPDecoder(_LevelBiases):
    r"""Level logits from an MLP of both representations and their product.

    .. math::
        \boldsymbol\ell = \mathrm{MLP}([\mathbf{z}_u \Vert \mathbf{z}_m \Vert \mathbf{z}_u \odot \mathbf{z}_m])
            + \boldsymbol\beta(\mathbf{z}_u) + \boldsymbol\beta'(\mathbf{z}_m), \qquad
        \hat r = \sum_r \operatorname{softmax}(\boldsymbol\ell)_r\, v_r

    with one hidden ReLU layer of size :math:`d` (and dropout).

    Args:
        channels: size :math:`d` of the user and movie representations.
        rating_values: the rating value :math:`v_r` of each level, ``[R]``.
        dropout: dropout after the hidden layer.

    Shapes:
        - **input:** ``z_user`` :math:`(U, d)`, ``z_movie`` :math:`(M, d)`, ``user``/``movie`` :math:`(E)`
        - **output:** logits :math:`(E, R)` and expected ratings :math:`(E)`; ``score_all`` :math:`(U, M)`
    """

    def __init__(self, channels: int, rating_values: Tensor, dropout: float = 0.0) -> None:
        super().__init__(channels, len(rating_values))
        self.register_buffer("rating_values", rating_values.float().clone())
        self.mlp = nn.Sequential(
            nn.Linear(3 * channels, channels), nn.ReLU(), nn.Dropout(dropout), nn.Linear(channels, len(rating_values))
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def _logits(self, zu: Tensor, zm: Tensor) -> Tensor:
        return self.mlp(torch.cat([zu, zm, zu * zm], dim=-1))

    def forward(self, z_user: Tensor, z_movie: Tensor, user: Tensor, movie: Tensor) -> tuple[Tensor, Tensor]:
        logits = self._logits(z_user.index_select(0, user), z_movie.index_select(0, movie))
        logits = logits + self.user_bias(z_user).index_select(0, user) + self.movie_bias(z_movie).index_select(0, movie)
        return logits, logits.softmax(-1) @ self.rating_values

    def score_all(self, z_user: Tensor, z_movie: Tensor, chunk_pairs: int = 2**22) -> Tensor:
        num_movies = z_movie.size(0)
        movie_bias = self.movie_bias(z_movie)
        per_pair = len(self.rating_values) + 3 * z_movie.size(1)
        rows = []
        for part in z_user.split(max(1, chunk_pairs // max(num_movies * per_pair, 1))):
            u = part.unsqueeze(1).expand(-1, num_movies, -1)
            m = z_movie.unsqueeze(0).expand(part.size(0), -1, -1)
            logits = self._logits(u, m) + self.user_bias(part).unsqueeze(1) + movie_bias.unsqueeze(0)
            rows.append(logits.softmax(-1) @ self.rating_values)
        return torch.cat(rows) if rows else z_user.new_empty(0, num_movies)


class DotDecoder(_LevelBiases):
    r"""Dot product with affine biases and the global mean (a regression head, no level logits).

    .. math::
        \hat r = \mathbf{z}_u^\top \mathbf{z}_m + b(\mathbf{z}_u) + b'(\mathbf{z}_m) + \mu

    Args:
        channels: size :math:`d` of the user and movie representations.
        global_mean: :math:`\mu`, the mean training rating.

    Shapes:
        - **input:** ``z_user`` :math:`(U, d)`, ``z_movie`` :math:`(M, d)`, ``user``/``movie`` :math:`(E)`
        - **output:** ``None`` and predicted ratings :math:`(E)`; ``score_all`` :math:`(U, M)`
    """

    def __init__(self, channels: int, global_mean: float = 0.0) -> None:
        super().__init__(channels, 1)
        self.global_mean = float(global_mean)
        self.reset_parameters()

    def forward(self, z_user: Tensor, z_movie: Tensor, user: Tensor, movie: Tensor) -> tuple[None, Tensor]:
        dot = (z_user.index_select(0, user) * z_movie.index_select(0, movie)).sum(-1)
        bias = self.user_bias(z_user).index_select(0, user) + self.movie_bias(z_movie).index_select(0, movie)
        return None, dot + bias[:, 0] + self.global_mean

    def score_all(self, z_user: Tensor, z_movie: Tensor, chunk_pairs: int = 2**22) -> Tensor:
        num_movies = z_movie.size(0)
        movie_bias = self.movie_bias(z_movie)[:, 0] + self.global_mean
        rows = [
            part @ z_movie.t() + self.user_bias(part) + movie_bias
            for part in z_user.split(max(1, chunk_pairs // max(num_movies, 1)))
        ]
        return torch.cat(rows) if rows else z_user.new_empty(0, num_movies)
