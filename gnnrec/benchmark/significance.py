"""Paired user bootstrap of the leading model against every other model of a benchmark run.

Each finished cell stores the evaluator's per-user test arrays in ``cells/<cell>.npz`` (``rating_user``, ``sse``,
``count``; ``ranked_user`` and one array per per-user ranking metric, e.g. ``ndcg@10``). The unit of resampling is
a (split, user) pair: a model's value for it is averaged over seeds (RMSE: the seeds' squared-error sums are
averaged, the user's rating count is the same for every model). Only units every compared model has are used, so
the comparison is paired. The leader is the model with the best mean of the metric over its cells;
:func:`gnnrec.stats.paired_bootstrap_rmse` / :func:`~gnnrec.stats.paired_bootstrap_mean` give the difference
``leader - other``, its percentile interval and the two-sided p-value (seeded).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gnnrec.evaluation import improved
from gnnrec.stats import paired_bootstrap_mean, paired_bootstrap_rmse

ALPHA = 0.05
OK = "ok"


def _load(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return None


def _units(
    run_dir: Path, records: Sequence[Mapping[str, Any]], metric: str, unit: Sequence[str] = ("split",)
) -> dict[tuple, Any] | None:
    """``{(split, user): value}`` averaged over the seeds (RMSE: ``(mean sse, count)``); None without data.
    ``unit`` names the record fields that, with the user, make a unit (cold start: split and draw seed)."""
    sums: dict[tuple[str, int], list] = {}
    for record in records:
        arrays = _load(run_dir / "cells" / str(record["per_user"])) if record.get("per_user") else None
        if arrays is None:
            return None
        if metric == "rmse":
            if "sse" not in arrays:
                return None
            users, values, counts = arrays["rating_user"], arrays["sse"], arrays["count"]
            for user, sse, count in zip(users.tolist(), values.tolist(), counts.tolist(), strict=True):
                sums.setdefault((*(record[key] for key in unit), user), []).append((sse, count))
        else:
            if metric not in arrays:
                return None
            for user, value in zip(arrays["ranked_user"].tolist(), arrays[metric].tolist(), strict=True):
                sums.setdefault((*(record[key] for key in unit), user), []).append(value)
    if metric == "rmse":
        return {key: (statistics.fmean(s for s, _ in v), v[0][1]) for key, v in sums.items()}
    return {key: statistics.fmean(v) for key, v in sums.items()}


def leader_comparisons(
    run_dir: Path,
    records: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    metric: str,
    *,
    num_samples: int = 10000,
    seed: int = 0,
    unit: Sequence[str] = ("split",),
) -> dict[str, Any] | None:
    """The leading model on ``metric`` and its paired bootstrap against every other model (None without data).

    ``unit``: the record fields that, with the user, identify a resampled unit. A cold-start run passes
    ``("split", "seed")``: each draw holds out other nodes, so a node is paired only within its draw.
    """
    means, units = {}, {}
    for label in labels:
        mine = [r for r in records if r["label"] == label and r["status"] == OK]
        values = [r["metrics"].get(metric) for r in mine]
        if not mine or any(v is None for v in values):
            continue
        per_user = _units(run_dir, mine, metric, unit)
        if per_user is None:
            continue
        means[label], units[label] = statistics.fmean(values), per_user
    if len(means) < 2:
        return None
    leader = None
    for label, value in means.items():
        if leader is None or improved(metric, value, means[leader]):
            leader = label
    higher = improved(metric, 1.0, 0.0)
    rows = []
    for label in means:
        if label == leader:
            continue
        common = sorted(set(units[leader]) & set(units[label]))
        if not common:
            continue
        if metric == "rmse":
            test = paired_bootstrap_rmse(
                [units[leader][u][0] for u in common],
                [units[label][u][0] for u in common],
                [units[leader][u][1] for u in common],
                num_samples=num_samples,
                seed=seed,
            )
        else:
            test = paired_bootstrap_mean(
                [units[leader][u] for u in common],
                [units[label][u] for u in common],
                higher_is_better=higher,
                num_samples=num_samples,
                seed=seed,
            )
        rows.append({"label": label, "units": len(common), **test, "significant": test["p_value"] < ALPHA})
    return {"metric": metric, "leader": leader, "num_samples": num_samples, "seed": seed, "rows": rows}
