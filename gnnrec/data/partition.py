"""Seeded, deterministic ways to split a list of ratings."""

from __future__ import annotations

import numpy as np


def random_split(num_ratings: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle rating positions with ``seed``; the first ``test_fraction`` become test."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(num_ratings)
    num_test = int(round(num_ratings * test_fraction))
    return np.sort(order[num_test:]), np.sort(order[:num_test])


def carve_validation(users: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask choosing ``round(fraction * n_u)`` of each user's ratings for validation.

    Every user keeps at least one training rating; the choice depends only on
    ``users`` (in order) and ``seed``, so it is the same on every run.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {fraction}")
    mask = np.zeros(len(users), dtype=bool)
    if fraction == 0.0 or len(users) == 0:
        return mask
    n = len(users)
    keys = np.random.default_rng(seed).random(n)
    # Grouped by user, random order inside each group: the order of np.lexsort((keys, users)), found
    # with one float sort (the keys' ranks, ties by position) and one sort of a unique int64 key, which is faster.
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(keys, kind="stable")] = np.arange(n, dtype=np.int64)
    order = np.argsort(np.asarray(users, dtype=np.int64) * n + rank)
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    quota = np.minimum(np.rint(counts * fraction).astype(np.int64), counts - 1)
    mask[order] = rank < np.repeat(quota, counts)
    return mask
