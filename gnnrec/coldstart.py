"""Checks for recommending to a person who is not in the data (cold start).

A person's demographics are encoded by the dataset's layout: ``split.user_layout.encode(...)``
(:mod:`gnnrec.data.user_features`).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor


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
