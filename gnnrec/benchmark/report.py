"""Benchmark results as tables and files: per-model summaries, markdown, CSV and JSON.

:func:`format_mean_std` is the one "mean ± std" formatter of the project; the scripts under
``benchmarks/`` use it too.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from gnnrec.evaluation import METRICS
from gnnrec.utils import atomic_write_text

OK = "ok"


def json_safe(value: Any) -> Any:
    """Plain JSON types; non-finite floats become ``None`` and tensors lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return json_safe(value.tolist())
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def mean_std(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"mean", "std", "n"}`` of ``values``; the sample std is None for fewer than two values."""
    values = list(values)
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def _metric_base(name: str) -> str:
    return re.sub(r"@\d+$", "@k", name)


def metric_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric keys found in ``records``, in the evaluator's registry order (unregistered ones last)."""
    found = {name for r in records for name in (r.get("metrics") or {})}
    order = {name: position for position, name in enumerate(METRICS)}
    return sorted(found, key=lambda name: (order.get(_metric_base(name), len(order)), name))


def higher_is_better(name: str) -> bool | None:
    metric = METRICS.get(_metric_base(name))
    return metric.higher_is_better if metric is not None else None


def summarize(records: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and std over splits × seeds of every metric, per model label (only cells with status ok)."""
    names = metric_names(records)
    rows = []
    for label in labels:
        mine = [r for r in records if r["label"] == label]
        if not mine:
            continue
        ok = [r for r in mine if r["status"] == OK]
        rows.append(
            {
                "label": label,
                "model": mine[0]["model"],
                "cells": len(mine),
                "ok": len(ok),
                "failed": [f"{r['split']} seed {r['seed']}: {r['status']}" for r in mine if r["status"] != OK],
                "metrics": {
                    n: mean_std([r["metrics"][n] for r in ok if r["metrics"].get(n) is not None]) for n in names
                },
                "fit_seconds": mean_std([r["fit_seconds"] for r in ok]),
                "eval_seconds": mean_std([r["eval_seconds"] for r in ok]),
                "peak_rss_mb": max((r["peak_rss_mb"] for r in ok), default=None),
                "config": mine[0]["config"],
            }
        )
    return rows


def format_mean_std(values: Mapping[str, Any] | Sequence[float], digits: int = 4) -> str:
    """``"0.9123 ± 0.0040"``: the mean and sample std of ``values`` (a list, or a :func:`mean_std` dict).

    One value prints its mean alone (no spread to report); no values print ``"–"``.
    """
    stat = values if isinstance(values, Mapping) else mean_std(values)
    if stat["mean"] is None:
        return "–"
    text = f"{stat['mean']:.{digits}f}"
    return text + (f" ± {stat['std']:.{digits}f}" if stat["std"] is not None else "")


def summary_table(results: Mapping[str, Any]) -> str:
    """The per-model markdown table: mean ± std of each metric, fit/eval seconds and peak memory."""
    names = metric_names(results["cells"])
    arrows = {True: " ↑", False: " ↓", None: ""}
    header = ["model", "cells ok"] + [f"{n}{arrows[higher_is_better(n)]}" for n in names]
    header += ["fit s", "eval s", "peak RSS MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for row in results["summary"]:
        cells = [row["label"], f"{row['ok']}/{row['cells']}"]
        cells += [format_mean_std(row["metrics"][n]) for n in names]
        cells += [format_mean_std(row["fit_seconds"], 1), format_mean_std(row["eval_seconds"], 1)]
        cells.append(f"{row['peak_rss_mb']:.0f}" if row["peak_rss_mb"] is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_markdown(results: Mapping[str, Any]) -> str:
    suite, run, env = results["suite"], results["run"], results["environment"]
    seeds = ", ".join(map(str, suite["seeds"]))
    lines = [
        f"# Benchmark `{suite['name']}`",
        "",
        suite["description"] or "",
        "",
        f"- dataset {suite['dataset']}, splits {', '.join(suite['splits'])}, seeds {seeds}; "
        f"validation share {suite['val_fraction']} (data seed {suite['data_seed']})",
        f"- metrics on the test part, evaluated once per cell; top-K with k={suite['k']}; "
        f"mean ± sample std over {len(suite['splits'])} split(s) × {len(suite['seeds'])} seed(s)",
        f"- wall time of this invocation: {run['wall_seconds']:.1f} s "
        f"({run['cells_finished']}/{run['cells_total']} cells finished, {run['cells_reused']} reused from an "
        f"earlier invocation, {run['cells_failed']} failed)",
        f"- peak memory: {results['memory_method']}",
        f"- versions: python {env['python']}, torch {env['torch']}, torch_geometric {env['torch_geometric']}, "
        f"numpy {env['numpy']}, gnnrec {env['gnnrec']}" + (f" (git {env['git_commit']})" if env["git_commit"] else ""),
        f"- machine: {env['platform']}, {env['processor']}, {env['cpu_count']} CPUs, {env['torch_threads']} torch "
        f"threads" + (f", GPU {env['cuda']}" if env["cuda"] else ""),
        f"- started {run['started']}" + (f"; command: `{run['command']}`" if run["command"] else ""),
        "",
        summary_table(results),
        "",
    ]
    failed = [(row["label"], f) for row in results["summary"] for f in row["failed"]]
    if failed:
        lines += ["## Failed cells", ""] + [f"- {label} {text}" for label, text in failed] + [""]
    warnings = [(r["id"], w) for r in results["cells"] for w in r.get("warnings") or []]
    if warnings:
        lines += ["## Warnings", ""] + [f"- {cell}: {text}" for cell, text in warnings] + [""]
    lines += ["## Configs", ""]
    for row in results["summary"]:
        config = ", ".join(f"{k}={json.dumps(v)}" for k, v in row["config"].items() if k != "seed")
        notes = sorted({r["note"] for r in results["cells"] if r["label"] == row["label"] and r.get("note")})
        lines.append(f"- `{row['label']}` ({row['model']}): {config or 'no hyperparameters'}")
        lines += [f"  - note: {note}" for note in notes]
    return "\n".join(lines) + "\n"


def results_csv(results: Mapping[str, Any]) -> str:
    names = metric_names(results["cells"])
    columns = ["id", "label", "model", "dataset", "split", "seed", "status"] + names
    columns += ["fit_seconds", "eval_seconds", "peak_rss_mb", "overrides", "config"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in results["cells"]:
        row = []
        for column in columns:
            if column in names:
                value = (record.get("metrics") or {}).get(column)
            elif column in ("overrides", "config"):
                value = json.dumps(record.get(column), sort_keys=True)
            else:
                value = record.get(column)
            row.append("" if value is None else value)
        writer.writerow(row)
    return buffer.getvalue()


def write_results(run_dir: Path, results: Mapping[str, Any], *, plots: bool = True) -> str:
    """Write ``results.json``, ``results.csv``, ``results.md`` and (optionally) the plots; return the markdown."""
    atomic_write_text(run_dir / "results.json", json.dumps(json_safe(results), indent=1) + "\n")
    atomic_write_text(run_dir / "results.csv", results_csv(results))
    markdown = results_markdown(results)
    atomic_write_text(run_dir / "results.md", markdown)
    if plots and results["cells"]:
        from gnnrec.benchmark.plots import plot_learning_curves, plot_metric_bars  # plots import this module

        plot_metric_bars(results, run_dir / "metrics.png")
        plot_learning_curves(results["cells"], run_dir / "learning_curves.png")
    return markdown
