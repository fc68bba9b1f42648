"""Fold-in of new users or movies without retraining: the :class:`FoldIn` result every model returns (with the
:class:`Reason` each folded-in score can give), :class:`FoldInNotSupported` for models that cannot, the checks of
a new person's ratings and raw movie ids, the leave-one-out support that explains a fold-in, and the
closed-form ridge fold-in of factor and bias models (the other side held fixed).

A person's demographics are encoded by the dataset's layout: ``split.user_layout.encode(...)``
(:mod:`gnnrec.data.user_features`)."""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

FOLD_IN_KINDS = ("users", "movies")
REASON_LIMIT = 2  # support items named in one reason


class FoldInNotSupported(TypeError):
    """The model cannot add new users or movies without retraining (cold-start tables: "not applicable")."""


def _describe_ids(valid: list[int]) -> str:
    if not valid:
        return "none"
    if valid == list(range(valid[0], valid[-1] + 1)):
        return f"{valid[0]}..{valid[-1]}"
    shown = ", ".join(map(str, valid[:10]))
    return f"{shown}, ... ({len(valid)} ids)" if len(valid) > 10 else shown


def movie_indices_from_raw_ids(raw_ids: Iterable[Any], movie_raw_ids: Sequence[int] | Tensor) -> list[int]:
    """Map raw MovieLens movie ids (as in ``u.item``) to 0-based movie indices.

    ``movie_raw_ids`` is ``graph["movie"].raw_id`` (the raw id of each index).
    Raises ``ValueError`` naming every unknown id and the valid ones.
    """
    known = [int(v) for v in (movie_raw_ids.tolist() if isinstance(movie_raw_ids, Tensor) else movie_raw_ids)]
    lookup = {raw: index for index, raw in enumerate(known)}
    indices, unknown = [], []
    for value in raw_ids:
        try:
            raw = int(value)
            if isinstance(value, float) and value != raw:
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"movie ids must be integers, got {value!r}") from None
        if raw in lookup:
            indices.append(lookup[raw])
        else:
            unknown.append(raw)
    if unknown:
        raise ValueError(
            f"unknown movie id(s) {', '.join(map(str, unknown))}; valid movie ids are {_describe_ids(sorted(known))}"
        )
    return indices


def check_new_ratings(
    ratings: Iterable[tuple[Any, Any]], num_movies: int, rating_levels: Tensor
) -> tuple[Tensor, Tensor]:
    """Validate ``(movie index, rating)`` pairs; return movie indices and ratings as tensors.

    Movie indices must lie in ``0..num_movies-1`` and be distinct; ratings must be
    one of ``rating_levels``.
    """
    movies: list[int] = []
    values: list[float] = []
    levels = [float(v) for v in rating_levels.tolist()]
    level_text = ", ".join(f"{v:g}" for v in levels)
    for position, pair in enumerate(ratings):
        try:
            movie, rating = pair
        except (TypeError, ValueError):
            raise ValueError(f"ratings[{position}] must be a (movie index, rating) pair, got {pair!r}") from None
        try:
            if isinstance(movie, bool):
                raise TypeError
            movie = operator.index(movie)
        except TypeError:
            raise ValueError(f"ratings[{position}]: movie index must be an integer, got {movie!r}") from None
        if not 0 <= movie < num_movies:
            raise ValueError(f"ratings[{position}]: unknown movie index {movie}; valid indices are 0..{num_movies - 1}")
        try:
            value = float(rating)
        except (TypeError, ValueError):
            raise ValueError(f"ratings[{position}]: rating must be a number, got {rating!r}") from None
        if not any(abs(value - level) < 1e-6 for level in levels):
            raise ValueError(f"ratings[{position}]: rating {rating!r} is not on the rating scale ({level_text})")
        if movie in movies:
            raise ValueError(f"ratings[{position}]: movie index {movie} is rated twice")
        movies.append(movie)
        values.append(value)
    return torch.tensor(movies, dtype=torch.long), torch.tensor(values, dtype=torch.float32)


@dataclasses.dataclass(frozen=True)
class Reason:
    """One support item behind a folded-in score: its ``other`` index, the ``rating`` it was given, and its
    ``contribution`` (how much the score drops when it is left out of the support)."""

    other: int
    rating: float
    contribution: float


def leave_one_out_support(support: Tensor, rating: Tensor, num_new: int) -> tuple[Tensor, Tensor, Tensor]:
    """The support of ``num_new + S`` pseudo-nodes that explains a fold-in of ``S`` support pairs.

    Pseudo-node ``r < num_new`` has new row ``r``'s whole support; pseudo-node ``num_new + s`` has the support
    of the row of pair ``s`` without pair ``s``. Returns ``(support [2, S'], rating [S'], owner [num_new + S])``
    where ``owner`` is the new row each pseudo-node stands for.
    """
    row = support[0].long()
    pair = torch.arange(row.numel())
    same_row = row.unsqueeze(0) == row.unsqueeze(1)  # [S, S]: pair t belongs to the row of pair s
    left_out, kept = (same_row & (pair.unsqueeze(0) != pair.unsqueeze(1))).nonzero(as_tuple=True)
    pseudo = torch.cat([row, num_new + left_out])
    members = torch.cat([pair, kept])
    owner = torch.cat([torch.arange(num_new), row])
    return torch.stack([pseudo, support[1][members]]), rating[members], owner


@dataclasses.dataclass(frozen=True)
class FoldIn:
    """Scores of new users (or movies) folded into a fitted model, without changing its weights.

    ``scores`` is ``[num_new, num_other]`` raw (unclipped) scores: of every movie for a new user, or of
    every user for a new movie; ``support`` is ``[2, S]`` (new row, other index) of the revealed ratings.
    ``ranking`` holds the scores that order top-K lists when the model ranks by something other than its
    predicted rating (the GNN's ranking head); ``None`` means ``scores``. ``rating`` ``[S]`` holds the support
    ratings; ``contributions`` ``[S, num_other]`` (from ``fold_in(..., explain=True)``) how much each support
    pair raises the ranking score of every other index of its row (see :meth:`reasons`). ``features_left_out``
    (from ``explain=True`` with features given) computes the ranking scores of the same fold-in without the side
    features, for :attr:`uses_features`.
    """

    kind: str
    scores: Tensor
    support: Tensor
    predicts_ratings: bool
    rating_min: float
    rating_max: float
    ranking: Tensor | None = None
    rating: Tensor | None = None
    contributions: Tensor | None = None
    features_left_out: Callable[[], Tensor] | None = dataclasses.field(default=None, repr=False, compare=False)

    @functools.cached_property
    def uses_features(self) -> Tensor | None:
        """``[num_new]`` bool: whether each row's ranking scores change when its side features are left out, i.e.
        whether what the new node told about itself shaped its list; None without ``features_left_out``. Computed
        on first use (one more fold-in), which only a sentence without a named film needs."""
        if self.features_left_out is None:
            return None
        return ~torch.isclose(self.rank_scores, self.features_left_out(), rtol=1e-5, atol=1e-6).all(dim=1)

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

    def undecided(self) -> Tensor:
        """``[num_new]`` bool: rows whose ranking scores are equal for every other index not in their support, so
        that :meth:`top_k` could only list them in index order (e.g. EASE for a new person with no liked film)."""
        ranked = self.rank_scores
        rated = torch.zeros_like(ranked, dtype=torch.bool)
        rated[self.support[0], self.support[1]] = True
        low = ranked.masked_fill(rated, float("inf")).amin(dim=1)
        high = ranked.masked_fill(rated, float("-inf")).amax(dim=1)
        return low == high

    def reasons(self, row: int, others: Tensor | list[int], limit: int = REASON_LIMIT) -> list[list[Reason]]:
        """For each of ``others`` (e.g. a top-K list of new row ``row``), the support items of that row that
        raise its ranking score most, strongest first: at most ``limit``, only those with a positive
        contribution, so every reason names an item the new node rated.

        A contribution is the drop of the score when the item is left out of the support (leave-one-out);
        it needs ``fold_in(..., explain=True)``.
        """
        if self.contributions is None:
            raise ValueError("this fold-in has no contributions; call fold_in(..., explain=True)")
        own = (self.support[0] == row).nonzero().view(-1)
        others = torch.as_tensor(others, dtype=torch.long).view(-1)
        found: list[list[Reason]] = []
        for other in others.tolist():
            drops = self.contributions[own, other]
            order = torch.sort(drops, descending=True, stable=True).indices[:limit]
            found.append(
                [
                    Reason(int(self.support[1, own[i]]), float(self.rating[own[i]]), float(drops[i]))
                    for i in order.tolist()
                    if drops[i] > 0
                ]
            )
        return found

    def explain(self, row: int, others: Tensor | list[int], labels: Sequence[str]) -> list[str]:
        """:meth:`reasons` as one short sentence per other index: ``"because you liked Star Wars (1977) and
        disliked Speed (1994)"`` (``labels[i]`` names other index ``i``; a rating above the middle of the scale
        is liked, below it disliked, at it rated). Where no rated item raises the score, the sentence says where
        the list came from instead: the row's profile if its features changed its scores (``uses_features``),
        else what most people like."""
        middle = (self.rating_min + self.rating_max) / 2
        own_count = int((self.support[0] == row).sum())
        texts = []
        for reasons in self.reasons(row, others):
            if not reasons:
                profiled = self.uses_features is not None and bool(self.uses_features[row])
                if own_count and profiled:
                    texts.append("from your profile: none of the films you rated raises it")
                elif own_count:
                    texts.append("high for most people: none of the films you rated raises it")
                else:
                    texts.append(
                        "from your profile alone: no rated films yet"
                        if profiled
                        else "popular with most people: no rated films yet"
                    )
                continue
            verbs = ["liked" if r.rating > middle else "disliked" if r.rating < middle else "rated" for r in reasons]
            parts = [
                f"{verb} {labels[r.other]}" if i == 0 or verb != verbs[i - 1] else labels[r.other]
                for i, (verb, r) in enumerate(zip(verbs, reasons, strict=True))
            ]
            texts.append("because you " + " and ".join(parts))
        return texts


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
