"""Benchmark plots: metric bars with error bars and learning curves from each model's ``history``.

matplotlib is imported only when a figure is drawn, through its object API (no pyplot, no global backend state).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gnnrec.benchmark.report import higher_is_better, metric_names
from gnnrec.utils import atomic_path


def _figure(num_panels: int, columns: int, panel_size: tuple[float, float]):
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    columns = max(1, min(columns, num_panels))
    rows = math.ceil(num_panels / columns)
    figure = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis in axes[num_panels:]:
        axis.set_visible(False)
    return figure, axes[:num_panels]


def _save_figure(figure: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


def plot_metric_bars(results: Mapping[str, Any], path: str | Path) -> Path:
    """One bar panel per metric (plus fit seconds): mean per model with std error bars."""
    rows = [row for row in results["summary"] if row["ok"]]
    names = metric_names(results["cells"])
    panels = [(n, [row["metrics"][n] for row in rows]) for n in names]
    panels.append(("fit seconds", [row["fit_seconds"] for row in rows]))
    figure, axes = _figure(len(panels), 4, (3.6, 3.0))
    labels = [row["label"] for row in rows]
    colors = [f"C{i % 10}" for i in range(len(labels))]
    for axis, (name, stats) in zip(axes, panels, strict=True):
        means = [s["mean"] if s["mean"] is not None else math.nan for s in stats]
        errors = [s["std"] or 0.0 for s in stats]
        axis.bar(range(len(labels)), means, yerr=errors, capsize=3, color=colors)
        finite = [(m, e) for m, e in zip(means, errors, strict=True) if math.isfinite(m)]
        if finite and name != "fit seconds":
            # zoom on the differences: rating errors of all models lie close together
            low = min(m - e for m, e in finite)
            high = max(m + e for m, e in finite)
            margin = max(high - low, 1e-3) * 0.25
            axis.set_ylim(max(0.0, low - margin), high + margin)
        for x, mean in enumerate(means):
            if math.isfinite(mean):
                axis.annotate(f"{mean:.3g}", (x, mean), ha="center", va="bottom", fontsize=7)
        direction = {True: " (higher is better)", False: " (lower is better)", None: ""}[higher_is_better(name)]
        axis.set_title(name + direction, fontsize=9)
        axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        axis.tick_params(axis="y", labelsize=8)
    suite = results["suite"]
    figure.suptitle(
        f"{suite['name']}: test metrics, mean ± std over "
        f"{len(suite['splits'])} split(s) × {len(suite['seeds'])} seed(s)"
    )
    return _save_figure(figure, Path(path))


def _curves(history: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """``{key: (x, y)}`` of the numeric history keys; x is the epoch while it increases, else the entry number."""
    epochs = [row.get("epoch") for row in history]
    increasing = all(isinstance(e, (int, float)) for e in epochs) and all(a < b for a, b in itertools.pairwise(epochs))
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for position, row in enumerate(history, start=1):
        x = row["epoch"] if increasing else position
        for key, value in row.items():
            if key in ("epoch", "seconds", "member", "lr") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                xs, ys = curves.setdefault(key, ([], []))
                xs.append(x)
                ys.append(value)
    return curves


def plot_learning_curves(cells: Sequence[Mapping[str, Any]], path: str | Path) -> Path | None:
    """One panel per model: the RMSE curves of its ``history`` (all numeric keys when it logs no RMSE)."""
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    for cell in cells:
        if cell.get("history"):
            by_label.setdefault(cell["label"], []).append(cell)
    if not by_label:
        return None
    figure, axes = _figure(len(by_label), 3, (4.2, 3.2))
    for axis, (label, mine) in zip(axes, by_label.items(), strict=True):
        keys_seen: set[str] = set()
        for cell in mine:
            curves = _curves(cell["history"])
            wanted = [k for k in curves if "rmse" in k] or list(curves)
            for index, key in enumerate(sorted(wanted)):
                xs, ys = curves[key]
                style = "--" if key.startswith("train") else "-"
                axis.plot(
                    xs,
                    ys,
                    style,
                    color=f"C{index % 10}",
                    alpha=0.8,
                    linewidth=1.2,
                    marker="o" if len(xs) < 12 else None,
                    markersize=3,
                    label=key if key not in keys_seen else None,
                )
                keys_seen.add(key)
        axis.set_title(f"{label} ({len(mine)} run{'s' if len(mine) > 1 else ''})", fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=8)
        if keys_seen:
            axis.legend(fontsize=7)
    figure.suptitle("learning curves (from each model's history; train dashed)")
    return _save_figure(figure, Path(path))


def plot_coldstart(results: Mapping[str, Any], path: str | Path) -> Path | None:
    """One panel per (kind, metric) of a cold-start run: each model's metric against the support size n, with
    std error bars over draws."""
    summary = results["coldstart"]
    k = results["suite"]["k"]
    panels = [(kind, metric) for kind in summary["kinds"] for metric in ("rmse", f"ndcg@{k}")]
    if not panels:
        return None
    figure, axes = _figure(len(panels), len(panels), (4.5, 3.8))
    labels = [row["label"] for row in results["summary"]]
    for axis, (kind, metric) in zip(axes, panels, strict=True):
        scenarios = summary["scenarios"][kind]
        for index, label in enumerate(labels):  # one colour and style per model in every panel
            stats = {n: ((s["rows"].get(label) or {}).get("metrics") or {}).get(metric) for n, s in scenarios.items()}
            points = [(int(n), s["mean"], s["std"] or 0.0) for n, s in stats.items() if s and s["mean"] is not None]
            if points:
                xs, ys, errors = zip(*points, strict=True)
                style = ("-", "--", ":")[index // 10 % 3]  # ten colours, then the next line style
                axis.errorbar(xs, ys, yerr=errors, label=label, capsize=3, color=f"C{index % 10}", linestyle=style)
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlabel("revealed ratings n", fontsize=8)
        axis.set_title(f"new {kind}: {metric}", fontsize=9)
        axis.tick_params(labelsize=8)
        axis.legend(fontsize=6)
    figure.suptitle(f"{results['suite']['name']}: cold start, mean ± std over draws")
    return _save_figure(figure, Path(path))
