"""Cold-start cells of the benchmark runner: one model on one held-out draw, at each support size n.

A cold-start suite's cell is (model, kind, n, draw seed) (:class:`~gnnrec.benchmark.suite.Cell` with ``kind`` and
``n``). The cells of one model on one draw share its fits: :func:`run_coldstart_group` fits the model on the
draw's training split once per distinct setting and folds the held-out nodes in at every n. A model with settings
to choose (a reference's grid, a suite's ``tune``) scores every setting on the draw's *validation* cold nodes
(:func:`gnnrec.coldstart.protocol.validation_draw`) at the same n and keeps the best: RMSE for models that
predict ratings, ndcg@k for ranking-only ones. The test draw's query ratings are read once, by the chosen fit.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy

from gnnrec.benchmark.cell import PeakMemory, empty_result
from gnnrec.benchmark.report import json_safe, rounded_record
from gnnrec.benchmark.suite import Cell, ColdstartSettings, Suite, cell_model_class, create_cell_model
from gnnrec.coldstart.evaluation import (
    COLDSTART_METRICS,
    ColdstartResult,
    best_setting,
    evaluate_coldstart_nodes,
    validation_scores,
)
from gnnrec.coldstart.protocol import ColdstartDraw, ColdstartEpisode, coldstart_draw, validation_draw
from gnnrec.config import config_to_dict
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation import evaluate
from gnnrec.utils import atomic_path, seed_everything

# per-node arrays are stored under the evaluator's per-user names, so the paired bootstrap reads both alike
PER_NODE_NAMES = {"rating_node": "rating_user", "ranked_node": "ranked_user"}


@dataclasses.dataclass
class Scenario:
    """One held-out draw of a suite: the test draw, its validation cold nodes and the episodes per n."""

    draw: ColdstartDraw
    validation: ColdstartDraw
    episodes: dict[int, ColdstartEpisode]


def prepare_scenario(split: RatingSplit, kind: str, seed: int, settings: ColdstartSettings) -> Scenario:
    draw = coldstart_draw(split, kind, share=settings.share.get(kind), seed=seed)
    episodes = {n: draw.episode(n, settings.order) for n in settings.support_sizes}
    return Scenario(draw, validation_draw(draw, settings.share.get(kind)), episodes)


def tuning_metric(model_class: type, suite: Suite) -> str:
    """What a model's settings are chosen by on validation cold nodes."""
    return "rmse" if model_class.predicts_ratings else f"ndcg@{suite.k}"


def empty_record() -> dict[str, Any]:
    """The fields of a cold-start cell's result: a warm cell's, and whether the model can fold in this kind and
    the warm RMSE of the same fit."""
    return {**empty_result(), "applicable": True, "warm_metrics": None}


def _fit_key(setting: dict[str, Any], fold_in_only: Sequence[str]) -> str:
    return json.dumps({k: v for k, v in setting.items() if k not in fold_in_only}, sort_keys=True, default=str)


def _save_per_node(result: ColdstartResult, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {PER_NODE_NAMES.get(name, name): value.cpu().numpy() for name, value in result.per_node.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        numpy.savez_compressed(handle, **arrays)
    return path.name


def run_coldstart_group(
    cells: Sequence[Cell],
    scenario: Scenario,
    suite: Suite,
    settings: ColdstartSettings,
    run_dir: Path,
    memory: PeakMemory,
    *,
    per_user: bool = True,
) -> dict[str, dict[str, Any]]:
    """Results of the cells (one model, one draw, several n) as ``{cell id: record fields}``.

    Exceptions become a ``failed: …`` status of the cells not finished yet; the other cells keep theirs.
    """
    entry, seed = cells[0].entry, cells[0].seed
    out = {cell.id: empty_record() for cell in cells}
    model_class = cell_model_class(entry.model, coldstart=True)
    if scenario.draw.kind not in model_class.fold_in_kinds:
        for cell in cells:
            out[cell.id].update(applicable=False, note=f"{entry.model} cannot fold in new {scenario.draw.kind}")
            out[cell.id]["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return out
    grid = settings.grid(entry)
    metric = tuning_metric(model_class, suite)

    def make(setting: dict[str, Any]) -> Any:
        seed_everything(seed)
        overrides = {**cells[0].overrides, **setting}
        return create_cell_model(entry.model, overrides, test_config=suite.test_config, coldstart=True)

    fitted: dict[str, tuple[Any, float]] = {}
    warm: dict[str, dict[str, Any] | None] = {}
    history_of: dict[str, str] = {}  # fit key -> the cell whose record holds that fit's history (stored once)
    pending = list(cells)
    try:
        scores = None
        if len(grid) > 1:
            started = time.perf_counter()
            sizes = [cell.n for cell in cells]
            scores = validation_scores(
                make, grid, scenario.validation, sizes, metric=metric, k=suite.k,
                relevance_threshold=suite.relevance_threshold,
            )  # fmt: skip
            tuning_seconds = time.perf_counter() - started
        fold_in_only = model_class.fold_in_settings
        while pending:
            cell = pending[0]
            record = out[cell.id]
            episode = scenario.episodes[cell.n]
            chosen = 0
            if scores is not None:
                chosen = best_setting(scores, metric, cell.n if cell.n in scores[0] else None)
                record["selection"] = {
                    "metric": metric,
                    "selected": grid[chosen],
                    "fit_seconds": tuning_seconds,
                    "validation": [
                        {"setting": s, "value": rounded_record(row.get(cell.n))}
                        for s, row in zip(grid, scores, strict=True)
                    ],
                    "validation_nodes": len(scenario.validation.episode(cell.n, settings.order).nodes),
                }
            model = make(grid[chosen])
            key = _fit_key(grid[chosen], fold_in_only)
            if key in fitted:  # the same fit: only settings the fold-in reads differ
                fitted[key][0].config = model.config
                model, fit_seconds = fitted[key]
            else:
                memory.reset()
                started = time.perf_counter()
                model.fit(scenario.draw.split)
                fit_seconds = time.perf_counter() - started
                fitted[key] = (model, fit_seconds)
            record["fit_seconds"] = fit_seconds
            if key in history_of:  # cells of one fit share its history: the first of them holds it
                record["history"], record["history_of"] = [], history_of[key]
            else:
                history_of[key] = cell.id
                record["history"] = rounded_record(model.history)
            record["fitted_config"] = json_safe(config_to_dict(model.config))
            if key not in warm:  # the warm users' test RMSE of this fit
                wanted = scenario.draw.kind == "users" and model.predicts_ratings and len(scenario.draw.split.test)
                result = evaluate(model, scenario.draw.split, part="test", metrics=["rmse"]) if wanted else None
                warm[key] = {"rmse": result.metrics["rmse"]} if result is not None else None
            record["warm_metrics"] = warm[key]
            record["evaluation"] = {
                "kind": scenario.draw.kind,
                "n": cell.n,
                "covered": len(episode.nodes),
                "skipped": episode.skipped,
                "query_ratings": len(episode.query),
                "held_out": len(scenario.draw.held_out),
            }
            if len(episode.nodes):
                started = time.perf_counter()
                result = evaluate_coldstart_nodes(
                    model, scenario.draw, episode, k=suite.k, relevance_threshold=suite.relevance_threshold,
                    metrics=COLDSTART_METRICS,
                )  # fmt: skip
                record["eval_seconds"] = time.perf_counter() - started
                record["metrics"] = result.metrics
                if per_user:
                    record["per_user"] = _save_per_node(result, run_dir / "cells" / f"{cell.id}.npz")
            else:
                record["note"] = f"no held-out {scenario.draw.kind} have {cell.n + 1} or more ratings"
            record["peak_rss_mb"] = memory.peak_rss_mb()
            record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            pending.pop(0)
    except Exception as error:  # noqa: BLE001 - one model's failure must not lose the other cells
        for cell in pending:
            record = out[cell.id]
            record["status"] = f"failed: {type(error).__name__}: {error}"
            record["error"] = f"{type(error).__name__}: {error}"
            record["traceback"] = traceback.format_exc()
            record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return out
