"""Fold-in of new users or movies without retraining: the :class:`FoldIn` result every model returns, the
refusal of models that cannot, and the closed-form ridge fold-in of factor and bias models (the other side held
fixed)."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

FOLD_IN_KINDS = ("users", "movies")


@dataclasses.dataclass(frozen=True)
class FoldIn:
    """Scores of new users (or movies) folded into a fitted model, without changing its weights.

    ``scores`` is ``[num_new, num_other]`` raw (unclipped) scores: of every movie for a new user, or of
    every user for a new movie; ``support`` is ``[2, S]`` (new row, other index) of the revealed ratings.
    ``ranking`` holds the scores that order top-K lists when the model ranks by something other than its
    predicted rating (the GNN's ranking head); ``None`` means ``scores``.
    """

    kind: str
    scores: Tensor
    support: Tensor
    predicts_ratings: bool
    rating_min: float
    rating_max: float
    ranking: Tensor | None = None

    @property
    def rank_scores(self) -> Tensor:
        """``[num_new, num_other]`` scores that order top-K lists."""
        return self.scores if self.ranking is None else self.ranking

    def predict(self, row: Tensor, other: Tensor) -> Tensor:
        """Predicted ratings (clipped to the scale) of the pairs ``(new row, other index)``."""
        if not self.predicts_ratings:
            raise TypeError("this fold-in comes from a ranking-only model: it has scores, not ratings")
        return self.scores[row, other].clamp(self.rating_min, self.rating_max)

    def top_k(self, k: int = 10) -> Tensor:
        """``[num_new, k]`` best other indices per new row, support items excluded (ties: lower index)."""
        ranked = self.rank_scores.clone()
        ranked[self.support[0], self.support[1]] = float("-inf")
        return torch.sort(ranked, dim=1, descending=True, stable=True).indices[:, :k]


def ridge_fold_in(
    other_factor: Tensor,
    other_bias: Tensor,
    mean: float,
    support: Tensor,
    rating: Tensor,
    num_new: int,
    reg_factor: float,
    reg_bias: float,
) -> tuple[Tensor, Tensor]:
    r"""Factors and bias of each new node from its support ratings, by ridge regression.

    For each new row :math:`u` with support :math:`S_u` solves

    .. math::
        \min_{\mathbf{p}, b}\; \sum_{j \in S_u} (r_{uj} - \mu - b_j - \mathbf{q}_j^\top \mathbf{p} - b)^2
            + \lambda_f \lVert \mathbf{p} \rVert^2 + \lambda_b b^2

    exactly (normal equations, one small solve per row; batched). ``other_factor`` ``[N_other, d]`` may have
    ``d = 0`` (bias-only model). Returns ``(factors [num_new, d], bias [num_new])`` in float64; a row with
    no support gets zeros.
    """
    if reg_factor <= 0 or reg_bias <= 0:
        raise ValueError(f"fold-in regularisation must be positive, got {reg_factor}, {reg_bias}")
    row, other = support[0].long(), support[1].long()
    d = other_factor.size(1)
    design = torch.cat([other_factor[other].double(), torch.ones(len(other), 1, dtype=torch.float64)], 1)
    target = rating.double() - mean - other_bias[other].double()
    gram = torch.zeros(num_new, d + 1, d + 1, dtype=torch.float64)
    gram.index_add_(0, row, design.unsqueeze(2) * design.unsqueeze(1))
    gram += torch.diag(torch.tensor([float(reg_factor)] * d + [float(reg_bias)], dtype=torch.float64))
    rhs = torch.zeros(num_new, d + 1, dtype=torch.float64)
    rhs.index_add_(0, row, design * target.unsqueeze(1))
    solution = torch.linalg.solve(gram, rhs)
    return solution[:, :d], solution[:, d]
