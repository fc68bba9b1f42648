"""The validation carve-out: same selection as the lexsort reference, per-user quotas."""

from __future__ import annotations

import numpy as np
import pytest

from gnnrec.data.partition import carve_validation


def _reference(users: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The original lexsort implementation (caches and fingerprints depend on its selection)."""
    mask = np.zeros(len(users), dtype=bool)
    if fraction == 0.0 or len(users) == 0:
        return mask
    keys = np.random.default_rng(seed).random(len(users))
    order = np.lexsort((keys, users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    quota = np.minimum(np.rint(counts * fraction).astype(np.int64), counts - 1)
    mask[order] = rank < np.repeat(quota, counts)
    return mask


@pytest.mark.parametrize("seed", range(6))
def test_carve_validation_equals_the_lexsort_reference(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(0, 3000))
    users = rng.integers(0, int(rng.integers(1, 400)), n).astype(rng.choice([np.int32, np.int64]))
    for fraction in (0.0, 0.05, 0.3, 0.9):
        np.testing.assert_array_equal(carve_validation(users, fraction, seed), _reference(users, fraction, seed))


def test_carve_validation_quota_and_errors():
    users = np.repeat(np.arange(5), [1, 2, 10, 20, 3])
    mask = carve_validation(users, 0.3, seed=4)
    counts = np.bincount(users[mask], minlength=5)
    assert counts.tolist() == [0, 1, 3, 6, 1]
    with pytest.raises(ValueError, match="val_fraction"):
        carve_validation(users, 1.0, seed=0)
