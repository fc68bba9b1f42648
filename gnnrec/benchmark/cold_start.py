"""The cold-start benchmark: new users and new movies, every model that can fold them in, per support size.

A suite with a ``cold_start`` block (e.g. the shipped ``coldstart.json``) runs here instead of the warm
grid: for each kind (``users``/``movies``) and each suite seed, one held-out draw
(:func:`gnnrec.data.cold_start.cold_start_draw`, the seed is the draw's), every model is fitted on the
draw's training split (model seed = draw seed) and folded in at every support size ``n``. Models that
cannot fold in a kind are listed as "not applicable" and not fitted. The reference baselines of
:mod:`gnnrec.models.cold_start_baselines` (``movie-mean``, ``group-mean``) always run.

Writes ``results.json``, ``results.md`` (one table per scenario and metric: rows = models, columns = n,
mean ± std over seeds, with the number of held-out nodes each n covers) and ``coldstart.png``.
Finished cells are stored under ``cells/`` and reused when the run is repeated into the same directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

from gnnrec.benchmark.suite import Suite, build_cells
from gnnrec.data.cold_start import DEFAULT_SUPPORT_SIZES, cold_start_draw
from gnnrec.evaluation import evaluate
from gnnrec.evaluation.cold_start import evaluate_cold_start
from gnnrec.models import create_model, get_model_class
from gnnrec.models.cold_start_baselines import GroupMean, MovieMean
from gnnrec.provenance import command_line
from gnnrec.utils import atomic_write_text, gnnrec_home

REFERENCE_BASELINES = {"movie-mean": MovieMean, "group-mean": GroupMean}
TABLE_METRICS = ("rmse", "ndcg@10")


def _settings(suite: Suite) -> dict[str, Any]:
    config = dict(suite.cold_start or {})
    unknown = set(config) - {"kinds", "support_sizes", "share", "order"}
    if unknown:
        raise ValueError(
            f"unknown cold_start key(s) {', '.join(sorted(unknown))}; valid: kinds, support_sizes, share, order"
        )
    return {
        "kinds": list(config.get("kinds", ["users", "movies"])),
        "support_sizes": [int(n) for n in config.get("support_sizes", DEFAULT_SUPPORT_SIZES)],
        "share": dict(config.get("share", {})),
        "order": str(config.get("order", "earliest")),
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def run_cold_start(
    suite: Suite, out_dir: str | Path | None = None, *, data_dir: str | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the cold-start protocol of ``suite`` into ``out_dir`` and return the results dict."""
    settings = _settings(suite)
    run_dir = Path(out_dir) if out_dir is not None else gnnrec_home() / "runs" / f"coldstart-{suite.name}"
    (run_dir / "cells").mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "suite.json", json.dumps(suite.to_dict(), indent=2) + "\n")
    records: list[dict[str, Any]] = []
    coverage: dict[str, dict[str, dict[str, int]]] = {}
    for split_name in suite.splits:
        split = suite.load_split(split_name, data_dir)
        cells = build_cells(dataclasses.replace(suite, splits=[split_name]))
        for kind in settings["kinds"]:
            for seed in suite.seeds:
                draw = cold_start_draw(split, kind, share=settings["share"].get(kind), seed=seed)
                episodes = {n: draw.episode(n, settings["order"]) for n in settings["support_sizes"]}
                coverage.setdefault(kind, {})[str(seed)] = {str(n): len(e.nodes) for n, e in episodes.items()}
                entries = [(name, name, cls(), {}) for name, cls in REFERENCE_BASELINES.items()]
                for cell in cells:
                    if cell.seed == seed:
                        entries.append((cell.entry.label, cell.entry.model, None, cell.overrides))
                for label, model_name, model, overrides in entries:
                    path = run_dir / "cells" / f"{split_name}-{kind}-s{seed}-{label}.json"
                    if path.is_file():
                        records.append(json.loads(path.read_text(encoding="utf-8")))
                        continue
                    cls = type(model) if model is not None else get_model_class(model_name)
                    record: dict[str, Any] = {"split": split_name, "kind": kind, "seed": seed, "model": label}
                    if kind not in cls.fold_in_kinds:
                        record["applicable"] = False
                    else:
                        if model is None:
                            model = create_model(model_name, overrides, test_config=suite.test_config)
                        started = time.perf_counter()
                        model.fit(draw.split)
                        record.update(applicable=True, fit_seconds=time.perf_counter() - started, per_n={})
                        if model.predicts_ratings and len(draw.split.test):
                            warm = evaluate(model, draw.split, part="test", metrics=["rmse"])
                            record["warm_rmse"] = warm.metrics["rmse"]
                        for n, episode in episodes.items():
                            if len(episode.nodes):
                                record["per_n"][str(n)] = evaluate_cold_start(
                                    model, draw, episode, k=suite.k, relevance_threshold=suite.relevance_threshold
                                )
                    if progress:
                        print(f"coldstart {split_name} {kind} seed {seed} {label}: done", flush=True)
                    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
                    records.append(record)
    results = {"suite": suite.to_dict(), "settings": settings, "coverage": coverage, "cells": records}
    results["command"] = command_line()
    results["summary"] = summarize(records, settings["support_sizes"])
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=1) + "\n")
    atomic_write_text(run_dir / "results.md", results_markdown(results))
    plot_cold_start(results, run_dir / "coldstart.png")
    return results


def main_cold_start(suite: Suite, out_dir: str | Path | None, *, data_dir: str | None = None) -> int:
    """``gnnrec benchmark coldstart``: run, print the tables, name the files."""
    run_dir = Path(out_dir) if out_dir is not None else gnnrec_home() / "runs" / f"coldstart-{suite.name}"
    results = run_cold_start(suite, run_dir, data_dir=data_dir)
    print(results_markdown(results))
    print(f"results: {run_dir / 'results.md'} (also results.json, coldstart.png)")
    return 0


def summarize(records: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """``{kind: {model: {"applicable", "warm_rmse", metric: {n: [mean, std, seeds]}}}}`` over seeds."""
    out: dict[str, Any] = {}
    for record in records:
        entry = out.setdefault(record["kind"], {}).setdefault(record["model"], {"applicable": record["applicable"]})
        if not record["applicable"]:
            continue
        if record.get("warm_rmse") is not None:
            entry.setdefault("_warm", []).append(record["warm_rmse"])
        for n, values in record["per_n"].items():
            for metric, value in (values or {}).items():
                if value is not None:
                    entry.setdefault(metric, {}).setdefault(n, []).append(value)
    for models in out.values():
        for entry in models.values():
            warm = entry.pop("_warm", None)
            if warm:
                entry["warm_rmse"] = list(_mean_std(warm))
            for metric, per_n in list(entry.items()):
                if isinstance(per_n, dict):
                    entry[metric] = {n: [*_mean_std(v), len(v)] for n, v in per_n.items()}
    return out


def results_markdown(results: dict[str, Any]) -> str:
    """One table per scenario and metric: rows = models, columns = support size n (mean ± std over seeds)."""
    sizes = results["settings"]["support_sizes"]
    lines = [f"# Cold-start benchmark: {results['suite']['name']}", ""]
    lines.append(
        f"Dataset {results['suite']['dataset']}, splits {', '.join(results['suite']['splits'])}, "
        f"draw seeds {', '.join(map(str, results['suite']['seeds']))}; support = each held-out node's "
        f"{results['settings']['order']} n ratings, query = the rest. Mean ± std over seeds; n/a: the model "
        "cannot fold in this kind without retraining."
    )
    if results.get("command"):
        lines += ["", f"Command: `{results['command']}`"]
    for kind, models in results["summary"].items():
        counts = results["coverage"].get(kind, {})
        first = next(iter(counts.values()), {})
        for metric in TABLE_METRICS:
            better = "lower" if metric in ("rmse", "mae") else "higher"
            name = f"{kind}-{metric}"
            lines += ["", f"## New {kind}: {metric} ({better} is better)", "", f"<!-- table:{name} -->"]
            lines.append("| model | " + " | ".join(f"n={n}" for n in sizes) + " |")
            lines.append("|---|" + "---|" * len(sizes))
            lines.append("| held-out covered | " + " | ".join(str(first.get(str(n), 0)) for n in sizes) + " |")
            for model, entry in models.items():
                if not entry["applicable"]:
                    lines.append(f"| {model} | " + " | ".join("n/a" for _ in sizes) + " |")
                    continue
                cells = []
                for n in sizes:
                    value = entry.get(metric, {}).get(str(n))
                    cells.append("—" if value is None else f"{value[0]:.4f} ± {value[1]:.4f}")
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
            lines.append(f"<!-- /table:{name} -->")
        if kind == "users":
            lines += ["", "Warm-user test RMSE of the same fits (users not held out):", ""]
            for model, entry in models.items():
                if "warm_rmse" in entry:
                    lines.append(f"- {model}: {entry['warm_rmse'][0]:.4f} ± {entry['warm_rmse'][1]:.4f}")
    return "\n".join(lines) + "\n"


def plot_cold_start(results: dict[str, Any], path: Path) -> Path | None:
    """Metric vs n, one line per model, error bars over seeds; one panel per (kind, metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gnnrec.utils import atomic_path

    panels = [(kind, metric) for kind in results["summary"] for metric in TABLE_METRICS]
    if not panels:
        return None
    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for axis, (kind, metric) in zip(axes[0], panels, strict=True):
        for model, entry in results["summary"][kind].items():
            per_n = entry.get(metric) if entry["applicable"] else None
            if not per_n:
                continue
            sizes = sorted(int(n) for n in per_n)
            axis.errorbar(
                sizes, [per_n[str(n)][0] for n in sizes], yerr=[per_n[str(n)][1] for n in sizes], label=model, capsize=3
            )
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlabel("revealed ratings n")
        axis.set_title(f"new {kind}: {metric}")
        axis.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return path
