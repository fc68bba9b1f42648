"""Summaries and significance tests for benchmark numbers.

* ``mean_std_ci``: mean, sample std and a Student-t confidence interval over runs (seeds/splits).
* ``paired_bootstrap_rmse`` / ``paired_bootstrap_mean``: is model A better than model B on the same test users?
  Users are resampled with replacement (the same resample for both models, hence "paired"), and the metric
  difference ``diff = metric(A) - metric(B)`` is recomputed on every resample.

RMSE is not the mean of per-user RMSEs: it is ``sqrt(sum of squared errors / number of ratings)`` over all
ratings, so the rating bootstrap takes per-user sums of squared errors and rating counts (``per_user_sse``
builds them from per-rating arrays) and recomputes the pooled RMSE of every resample. Ranking metrics
(NDCG@k, recall@k) are means over users, so their bootstrap takes one value per user.

p-value (two-sided, percentile bootstrap): with ``d_b`` the resampled differences,
``p = min(1, 2 * min(share(d_b <= 0), share(d_b >= 0)))``: twice the share of resamples on the far side of 0
from the typical one. Identical models give every ``d_b = 0`` and so ``p = 1``; a model better on every
user gives ``p = 0`` (report it as ``p < 1/num_samples``). The confidence interval is the percentile interval
of ``d_b``; ``better`` says which model the observed difference favours given ``higher_is_better``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

_MAX_ELEMENTS = 2**22  # resampled user indices per vectorised batch (32 MiB of int64)


def mean_std_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
    """Mean, sample std (ddof=1) and Student-t interval of the mean; with n = 1 std and the interval are None."""
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError("mean_std_ci: no values")
    if not 0 < confidence < 1:
        raise ValueError(f"mean_std_ci: confidence must be in (0, 1), got {confidence}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"mean_std_ci: values must be finite, got {array.tolist()}")
    n = int(array.size)
    mean = float(array.mean())
    if n == 1:
        return {"mean": mean, "std": None, "n": 1, "ci_low": None, "ci_high": None}
    std = float(array.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci_low": mean - half, "ci_high": mean + half}


def per_user_sse(
    user_index: np.ndarray, squared_error: np.ndarray, num_users: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user sums of squared errors and rating counts from per-rating arrays (``user_index`` in [0, U))."""
    users = np.asarray(user_index)
    errors = np.asarray(squared_error, dtype=float)
    if users.shape != errors.shape or users.ndim != 1:
        raise ValueError(f"per_user_sse: user_index {users.shape} and squared_error {errors.shape} must be equal 1-D")
    if users.size and (users.min() < 0 or not np.issubdtype(users.dtype, np.integer)):
        raise ValueError("per_user_sse: user_index must hold non-negative integers")
    length = num_users if num_users is not None else (int(users.max()) + 1 if users.size else 0)
    if users.size and users.max() >= length:
        raise ValueError(f"per_user_sse: user index {int(users.max())} >= num_users {length}")
    sse = np.bincount(users, weights=errors, minlength=length)
    counts = np.bincount(users, minlength=length)
    return sse, counts


def _resample_indices(num_users: int, num_samples: int, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = max(1, _MAX_ELEMENTS // num_users)
    done = 0
    while done < num_samples:
        size = min(rows, num_samples - done)
        yield rng.integers(0, num_users, size=(size, num_users))
        done += size


def _summarise(observed: float, diffs: np.ndarray, confidence: float, higher_is_better: bool) -> dict[str, Any]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    p_value = min(1.0, 2 * min(float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))))
    if observed == 0:
        better = None
    else:
        better = "a" if (observed > 0) == higher_is_better else "b"
    return {
        "diff": float(observed),
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": p_value,
        "num_samples": int(diffs.size),
        "confidence": confidence,
        "better": better,
    }


def _check_common(num_samples: int, confidence: float) -> None:
    if num_samples < 1:
        raise ValueError(f"paired bootstrap: num_samples must be >= 1, got {num_samples}")
    if not 0 < confidence < 1:
        raise ValueError(f"paired bootstrap: confidence must be in (0, 1), got {confidence}")


def paired_bootstrap_rmse(
    sse_a: Sequence[float] | np.ndarray,
    sse_b: Sequence[float] | np.ndarray,
    counts: Sequence[int] | np.ndarray,
    *,
    num_samples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired user bootstrap of ``RMSE(A) - RMSE(B)`` from per-user squared-error sums and rating counts.

    Users with zero ratings are dropped. Lower RMSE is better, so a negative ``diff`` favours A.
    Returns ``diff``, ``ci_low``, ``ci_high``, ``p_value``, ``num_samples``, ``confidence``, ``better``.
    """
    _check_common(num_samples, confidence)
    a, b, n = (np.asarray(x, dtype=float).ravel() for x in (sse_a, sse_b, counts))
    if not a.shape == b.shape == n.shape:
        raise ValueError(f"paired_bootstrap_rmse: shapes differ: sse_a {a.shape}, sse_b {b.shape}, counts {n.shape}")
    if np.any(n < 0) or np.any(a < 0) or np.any(b < 0):
        raise ValueError("paired_bootstrap_rmse: sums of squared errors and counts must be non-negative")
    keep = n > 0
    a, b, n = a[keep], b[keep], n[keep]
    if n.size == 0:
        raise ValueError("paired_bootstrap_rmse: no user has a rating")
    observed = math.sqrt(a.sum() / n.sum()) - math.sqrt(b.sum() / n.sum())
    diffs = []
    for idx in _resample_indices(n.size, num_samples, seed):
        total = n[idx].sum(axis=1)
        diffs.append(np.sqrt(a[idx].sum(axis=1) / total) - np.sqrt(b[idx].sum(axis=1) / total))
    return _summarise(observed, np.concatenate(diffs), confidence, higher_is_better=False)


def paired_bootstrap_mean(
    values_a: Sequence[float] | np.ndarray,
    values_b: Sequence[float] | np.ndarray,
    *,
    higher_is_better: bool,
    num_samples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired user bootstrap of ``mean(A) - mean(B)`` for a per-user metric (NDCG@k, recall@k, ...).

    Returns the same fields as ``paired_bootstrap_rmse``.
    """
    _check_common(num_samples, confidence)
    a, b = (np.asarray(x, dtype=float).ravel() for x in (values_a, values_b))
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap_mean: shapes differ: values_a {a.shape}, values_b {b.shape}")
    if a.size == 0:
        raise ValueError("paired_bootstrap_mean: no users")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired_bootstrap_mean: per-user values must be finite")
    delta = a - b
    diffs = np.concatenate([delta[idx].mean(axis=1) for idx in _resample_indices(a.size, num_samples, seed)])
    return _summarise(float(delta.mean()), diffs, confidence, higher_is_better=higher_is_better)
