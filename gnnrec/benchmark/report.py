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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from gnnrec.benchmark.markers import wrap_table
from gnnrec.evaluation import METRICS
from gnnrec.stats import mean_std_ci
from gnnrec.utils import atomic_write_text

OK = "ok"


# significant digits of the bulky series of a cell record (a fit's per-epoch history, the validation score of every
# tuning candidate): their metrics come from float32 arithmetic, and full reprs made them most of a results.json
RECORD_DIGITS = 7


def json_safe(value: Any, digits: int | None = None) -> Any:
    """Plain JSON types; non-finite floats become ``None`` and tensors lists; floats rounded to ``digits``
    significant digits when given."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if digits is None else float(f"{value:.{digits}g}")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, digits) for v in value]
    if isinstance(value, torch.Tensor):
        return json_safe(value.tolist(), digits)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def rounded_record(history: Any) -> Any:
    """A cell record's series (history, validation scores): :func:`json_safe` with :data:`RECORD_DIGITS`."""
    return json_safe(history, RECORD_DIGITS)


def mean_std(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"mean", "std", "n", "ci_low", "ci_high"}`` of ``values``: sample std and 95% Student-t interval of the
    mean (:func:`gnnrec.stats.mean_std_ci`); std and interval are None for fewer than two values."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return {"mean": None, "std": None, "n": 0, "ci_low": None, "ci_high": None}
    if len(values) > 1 and len(set(values)) == 1:  # no spread: the interval is the point
        return {"mean": values[0], "std": 0.0, "n": len(values), "ci_low": values[0], "ci_high": values[0]}
    return mean_std_ci(values)


def _metric_base(name: str) -> str:
    return re.sub(r"@\d+$", "@k", name)


def metric_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric keys found in ``records``, in the evaluator's registry order (unregistered ones last)."""
    found = {name for r in records for name in (r.get("metrics") or {})}
    order = {name: position for position, name in enumerate(METRICS)}
    return sorted(found, key=lambda name: (order.get(_metric_base(name), len(order)), name))


def validation_metric_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns of the validation table: the test metrics' names, or where no cell was tested (a
    validation-only screen) the names of the validation metrics."""
    return metric_names(records) or metric_names(
        [{"metrics": (r.get("selection") or {}).get("metrics")} for r in records]
    )


def higher_is_better(name: str) -> bool | None:
    metric = METRICS.get(_metric_base(name))
    return metric.higher_is_better if metric is not None else None


def summarize(records: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and std over splits × seeds of every metric, per model label (only cells with status ok)."""
    names = metric_names(records)
    val_names = validation_metric_names(records)
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
                "val_metrics": {
                    n: mean_std(
                        [v for r in ok if (v := ((r.get("selection") or {}).get("metrics") or {}).get(n)) is not None]
                    )
                    for n in val_names
                },
                "metrics_without_refit": {
                    n: mean_std([v for r in ok if (v := (r.get("metrics_without_refit") or {}).get(n)) is not None])
                    for n in names
                },
                "stale": sum(bool(r.get("stale")) for r in ok),
                "refit": sum(r.get("refit_fit") is not None for r in ok),
                "refit_protocols": sorted({r["refit_protocol"] for r in ok if r.get("refit_protocol")}),
                "warm_starts": sum(bool((r.get("refit_fit") or {}).get("warm_start")) for r in ok),
                "warm_start_notes": sorted(
                    {note for r in ok if (note := (r.get("refit_fit") or {}).get("warm_start_note"))}
                ),
                "selected": [(r.get("selection") or {}).get("selected") for r in ok],
                "fit_seconds": mean_std([r["fit_seconds"] for r in ok]),
                "eval_seconds": mean_std([r["eval_seconds"] for r in ok]),
                "peak_rss_mb": max((r["peak_rss_mb"] for r in ok if r["peak_rss_mb"] is not None), default=None),
                "config": (ok or mine)[0].get("fit_config") or mine[0]["config"],  # GLocal-K: preset filled in
                "preset_name": (ok or mine)[0].get("preset_name"),
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
    """The per-model markdown table: mean ± std of each test metric (of each validation metric where no cell
    was tested: a screen), fit/eval seconds and peak memory."""
    names = metric_names(results["cells"])
    key, prefix = ("metrics", "") if names else ("val_metrics", "val ")
    names = names or validation_metric_names(results["cells"])
    arrows = {True: " ↑", False: " ↓", None: ""}
    header = ["model", "cells ok"] + [f"{prefix}{n}{arrows[higher_is_better(n)]}" for n in names]
    header += ["fit s", "eval s", "peak RSS MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for row in results["summary"]:
        cells = [row["label"], f"{row['ok']}/{row['cells']}"]
        cells += [format_mean_std(row[key][n]) for n in names]
        cells += [format_mean_std(row["fit_seconds"], 1), format_mean_std(row["eval_seconds"], 1)]
        cells.append(f"{row['peak_rss_mb']:.0f}" if row["peak_rss_mb"] is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


RATING_METRICS = ("rmse", "mae", "ndcg")
NOT_APPLICABLE = "—"  # a rating metric of a ranking-only model
STALE_MARK = " †"


def format_estimate(stat: Mapping[str, Any], digits: int = 4) -> str:
    """``"0.9123 ± 0.0040 [0.9024, 0.9222]"``: mean ± sample std and the 95% interval of the mean."""
    text = format_mean_std(stat, digits)
    if stat.get("ci_low") is not None:
        text += f" [{stat['ci_low']:.{digits}f}, {stat['ci_high']:.{digits}f}]"
    return text


def _label(row: Mapping[str, Any]) -> str:
    return row["label"] + (STALE_MARK if row.get("stale") else "")


def _rows_with(results: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [row for row in results["summary"] if any(s["mean"] is not None for s in row[key].values())]


def metric_table(results: Mapping[str, Any], names: Sequence[str], *, key: str = "metrics") -> str:
    """Per model: cells ok and ``mean ± std [95% CI]`` of each metric in ``names`` (``key``: test or
    ``val_metrics``); a rating metric a model does not predict shows ``—``."""
    arrows = {True: " ↑", False: " ↓", None: ""}
    header = ["model", "cells ok"] + [f"{n}{arrows[higher_is_better(n)]}" for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(names)) + "|"]
    for row in _rows_with(results, key):
        cells = [_label(row), f"{row['ok']}/{row['cells']}"]
        for n in names:
            stat = row[key].get(n) or {"mean": None}
            cells.append(format_estimate(stat) if stat["mean"] is not None else NOT_APPLICABLE)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


REFIT_TABLE_METRICS = ("rmse", "mae", "ndcg", "ndcg@10")


def refit_effect_table(results: Mapping[str, Any], names: Sequence[str]) -> str:
    """Per model that refits: each metric without refit, with refit, and the mean difference."""
    header = ["model"] + [f"{n} {part}" for n in names for part in ("no refit", "refit", "Δ")]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in results["summary"]:
        if not any(s["mean"] is not None for s in row["metrics_without_refit"].values()):
            continue
        cells = [_label(row)]
        for n in names:
            before = row["metrics_without_refit"].get(n) or {"mean": None}
            after = row["metrics"].get(n) or {"mean": None}
            cells += [format_mean_std(before), format_mean_std(after)]
            both = before["mean"] is not None and after["mean"] is not None
            cells.append(f"{after['mean'] - before['mean']:+.4f}" if both else NOT_APPLICABLE)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def significance_table(test: Mapping[str, Any]) -> str:
    """The leader against each other model: difference, its 95% percentile interval, p-value, verdict."""
    metric, leader = test["metric"], test["leader"]
    lines = [
        f"| {leader} vs | Δ{metric} (leader − model) | 95% CI | p | users | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in test["rows"]:
        lines.append(f"| {row['label']} | {comparison_cells(row, test['num_samples'])} |")
    return "\n".join(lines)


def comparison_cells(row: Mapping[str, Any], num_samples: int) -> str:
    """``Δ | [CI] | p | units | verdict`` of one paired bootstrap comparison (p below ``1 / num_samples`` shown
    as a bound)."""
    floor = 1 / num_samples
    p = f"< {floor:.0e}" if row["p_value"] == 0 else f"{row['p_value']:.4f}"
    verdict = "significant" if row["significant"] else "not significant"
    return f"{row['diff']:+.4f} | [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] | {p} | {row['units']} | {verdict}"


def _tables(results: Mapping[str, Any]) -> list[str]:
    names = metric_names(results["cells"])
    rating = [n for n in names if n in RATING_METRICS]
    ranking = [n for n in names if n not in RATING_METRICS]
    out: list[str] = []
    selection = results.get("selection")
    screen = not results["suite"].get("test_chosen", True)
    if selection:
        chosen, metric = selection["chosen"], selection["metric"]
        tested = (
            "No test rating was scored (a validation-only screen)."
            if screen
            else "Test metrics are reported for the chosen variant only."
        )
        out += [
            "## Validation (every variant)",
            "",
            f"The variant with the best mean validation `{metric}` is chosen: **{chosen}**. {tested}",
            "",
            wrap_table(
                "validation", metric_table(results, validation_metric_names(results["cells"]), key="val_metrics")
            ),
        ]
    if screen:
        return out
    out += ["## Rating metrics (test)", "", wrap_table("rating", metric_table(results, rating))]
    out += ["## Ranking metrics (test)", "", wrap_table("ranking", metric_table(results, ranking))]
    if any(r.get("metrics_without_refit") for r in results["cells"]):
        out += [
            "## Refit on / off (test)",
            "",
            "The selection fit (train minus validation) and its refit on train ∪ validation with what was selected, "
            "both scored on test in the same cell. Δ = refit − no refit.",
            "",
            wrap_table("refit-effect", refit_effect_table(results, [n for n in names if n in REFIT_TABLE_METRICS])),
        ]
    for name, test in (results.get("significance") or {}).items():
        out += [
            f"## Paired bootstrap over users: {test['metric']}",
            "",
            f"Leader by mean test {test['metric']}: **{test['leader']}**. Users (per split) resampled "
            f'{test["num_samples"]} times, seed {test["seed"]}; "not significant" where p ≥ 0.05.',
            "",
            wrap_table(f"significance-{name}", significance_table(test)),
        ]
    paper = [(r["id"], r["paper_metrics"]) for r in results["cells"] if r.get("paper_metrics")]
    if paper:
        lines = ["| cell | " + " | ".join(paper[0][1]) + " |", "|---|" + "---:|" * len(paper[0][1])]
        for cell, values in paper:
            lines.append(
                f"| {cell} | " + " | ".join(f"{v['value']:.4f} @ epoch {v['epoch']}" for v in values.values()) + " |"
            )
        out += [
            "## GLocal-K paper protocol: per-metric best TEST epochs (optimistic, not a held-out result)",
            "",
            wrap_table("paper-protocol", "\n".join(lines)),
        ]
    return out


def _header(results: Mapping[str, Any], evaluated: str) -> list[str]:
    """The title and provenance lines of a results file; ``evaluated`` says what the metrics are."""
    suite, run, env = results["suite"], results["run"], results["environment"]
    seeds = ", ".join(map(str, suite["seeds"]))
    settings = suite.get("dataset_settings") or {}
    dataset = suite["dataset"] + (f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else "")
    return [
        f"# Benchmark `{suite['name']}`",
        "",
        suite["description"] or "",
        "",
        f"- dataset {dataset}, splits {', '.join(suite['splits'])}, seeds {seeds}; "
        f"validation share {suite['val_fraction']} (data seed {suite['data_seed']})",
        evaluated,
        "- "
        + (
            _refit_line(results)
            if suite.get("test_chosen", True)
            else "no refit, no test: the variants are compared on their fits to the training part"
        ),
        f"- wall time of this invocation: {run['wall_seconds']:.1f} s "
        f"({run['cells_finished']}/{run['cells_total']} cells finished, {run['cells_reused']} reused from an "
        f"earlier invocation, {run['cells_failed']} failed)",
        f"- peak memory: {results['memory_method']}",
        f"- versions: python {env['python']}, torch {env['torch']}, torch_geometric {env['torch_geometric']}, "
        f"numpy {env['numpy']}, gnnrec {env['gnnrec']}" + (f" (git {env['git_commit']})" if env["git_commit"] else ""),
        f"- machine: {env['platform']}, {env['processor']}, {env['cpu_count']} CPUs, {env['torch_threads']} torch "
        f"threads"
        # older results do not say what multiplied their dense CPU products
        + (f" (dense one-thread products: {env['cpu_products']})" if env.get("cpu_products") else "")
        + (f", GPU {env['cuda']}" if env["cuda"] else "")
        # older results have no "processes": they ran in one
        + (f"; {run['processes']} data-parallel processes" if run.get("processes", 1) > 1 else ""),
        f"- started {run['started']}" + (f"; command: `{run['command']}`" if run["command"] else ""),
        "- code: " + _code_line(results.get("provenance")),
    ]


def epoch_budget_table(results: Mapping[str, Any]) -> str:
    """One row per cell whose model stops early within an epoch budget (``max_epochs``): the budget, the epochs
    its selection fit ran and whether it stopped early or used the whole budget ("" when no cell has a budget)."""
    rows = []
    for cell in results["cells"]:
        budget = (cell.get("config") or {}).get("max_epochs")  # the selection fit's (a refit's may be another)
        epochs = [row["epoch"] for row in cell.get("history") or [] if isinstance(row.get("epoch"), int)]
        if not isinstance(budget, int) or not epochs:
            continue
        still = any("still improving" in str(text) for text in cell.get("warnings") or [])
        ended = "budget, still improving" if still else "budget" if max(epochs) >= budget else "early stop"
        rows.append(f"| {cell['label']} | {cell['split']} | {cell['seed']} | {budget} | {max(epochs)} | {ended} |")
    if not rows:
        return ""
    header = ["| model | split | seed | max_epochs | epochs run | ended by |", "|---|---|---:|---:|---:|---|"]
    return "\n".join([*header, *rows])


def results_markdown(results: Mapping[str, Any]) -> str:
    if results.get("coldstart") is not None:
        return coldstart_markdown(results)
    suite = results["suite"]
    evaluated = (
        (
            "- validation metrics only (a screen: no test rating scored)"
            if not suite.get("test_chosen", True)
            else "- metrics on the test part, evaluated once per cell"
        )
        + f"; top-K with k={suite['k']}; "
        f"mean ± sample std [95% Student-t interval of the mean] over {len(suite['splits'])} split(s) × "
        f"{len(suite['seeds'])} seed(s)"
    )
    lines = [
        *_header(results, evaluated),
        "",
        *_tables(results),
        "",
        "## All metrics and costs",
        "",
        summary_table(results),
        "",
    ]
    if any(row.get("stale") for row in results["summary"]):
        lines += [
            f"{STALE_MARK.strip()} some cells of this model were reused from another code version (`--reuse-stale`); "
            "see `code_version_key` in results.json.",
            "",
        ]
    failed = [(row["label"], f) for row in results["summary"] for f in row["failed"]]
    if failed:
        lines += ["## Failed cells", ""] + [f"- {label} {text}" for label, text in failed] + [""]
    budgets = epoch_budget_table(results)
    if budgets:
        lines += ["## Epoch budgets of the selection fits", "", wrap_table("budgets", budgets), ""]
    warnings = [(r["id"], w) for r in results["cells"] for w in r.get("warnings") or []]
    if warnings:
        lines += ["## Warnings", ""] + [f"- {cell}: {text}" for cell, text in warnings] + [""]
    lines += ["## Configs", ""]
    for row in results["summary"]:
        config = ", ".join(f"{k}={json.dumps(v)}" for k, v in row["config"].items() if k != "seed")
        notes = sorted({r["note"] for r in results["cells"] if r["label"] == row["label"] and r.get("note")})
        preset = f" (preset {row['preset_name']})" if row.get("preset_name") else ""
        lines.append(f"- `{row['label']}` ({row['model']}){preset}: {config or 'no hyperparameters'}")
        lines += [f"  - note: {note}" for note in notes]
        chosen = sorted({json.dumps(s, sort_keys=True) for s in row.get("selected") or [] if s})
        lines += [f"  - selected on validation: {s}" for s in chosen]
    return "\n".join(lines) + "\n"


def _refit_line(results: Mapping[str, Any]) -> str:
    refit = {row["label"]: row.get("refit", 0) for row in results["summary"]}
    protocols = {row["label"]: row.get("refit_protocols") or [] for row in results["summary"]}
    done = [label for label, n in refit.items() if n]
    if not done:
        return "no refit: every model is tested as fitted on the training part (validation used for selection)"
    named = [
        label + (f" ({', '.join(protocols[label])})" if protocols[label] not in ([], ["refit"]) else "")
        for label in done
    ]
    line = (
        "refit: after selection on validation, "
        + ", ".join(named)
        + " were fitted again on train ∪ validation with what was selected (`refit_overrides`) and tested once"
    )
    if named != done:
        line += (
            "; in brackets the model's `refit_protocol` where it is not the plain refit (scaled: epoch counts × "
            "|train ∪ val| / |train|; average: the mean of the selection fit and the refit)"
        )
    warm = [
        f"{row['label']}: {'; '.join(row.get('warm_start_notes') or ['the refit started from the selection fit'])}"
        for row in results["summary"]
        if row.get("warm_starts")
    ]
    if warm:
        line += f"; started from what the selection fit learned (`warm_start_from`): {', '.join(warm)}"
    return line


def _code_line(provenance: Mapping[str, Any] | None) -> str:
    if not provenance:
        return "unknown"
    if provenance.get("commit") is None:
        return f"gnnrec {provenance.get('gnnrec_version')} (no git: {provenance.get('reason')})"
    dirty = f", uncommitted changes (diff sha256 {provenance['diff_sha256'][:12]})" if provenance["dirty"] else ""
    return f"git {provenance['commit_short']}{dirty}, gnnrec {provenance.get('gnnrec_version')}"


def results_csv(results: Mapping[str, Any]) -> str:
    names = metric_names(results["cells"])
    scenario = ["kind", "n"] if any("kind" in record for record in results["cells"]) else []
    columns = ["id", "label", "model", "dataset", "split", "seed", *scenario, "status"] + names
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
    # compact: per-epoch histories make an indented file several MB; results.md is the readable view
    atomic_write_text(run_dir / "results.json", json.dumps(json_safe(results), separators=(",", ":")) + "\n")
    atomic_write_text(run_dir / "results.csv", results_csv(results))
    markdown = results_markdown(results)
    atomic_write_text(run_dir / "results.md", markdown)
    if plots and results["cells"] and results.get("coldstart") is not None:
        from gnnrec.benchmark.plots import plot_coldstart  # plots import this module

        plot_coldstart(results, run_dir / "coldstart.png")
    elif plots and results["cells"]:
        from gnnrec.benchmark.plots import plot_learning_curves, plot_metric_bars  # plots import this module

        plot_metric_bars(results, run_dir / "metrics.png")
        plot_learning_curves(results["cells"], run_dir / "learning_curves.png")
    return markdown


# ---------------------------------------------------------------------- cold-start results
COLDSTART_TABLE_METRICS = ("rmse", "ndcg@k")


def _coldstart_metrics(k: int) -> list[str]:
    return [name.replace("@k", f"@{k}") for name in COLDSTART_TABLE_METRICS]


def coldstart_summary(
    run_dir: Path, records: Sequence[Mapping[str, Any]], labels: Sequence[str], settings: Any, k: int
) -> dict[str, Any]:
    """Per kind and support size n: every model's mean ± std over draws, the nodes each draw covers, the
    settings chosen on validation, and the paired bootstrap of the leader against the others (units: held-out
    nodes within a draw). Also the warm test RMSE of the fits that fold in new users."""
    from gnnrec.benchmark.significance import leader_comparisons  # significance reads the records this writes

    scenarios: dict[str, dict[str, Any]] = {}
    for kind in settings.kinds:
        for n in settings.support_sizes:
            mine = [r for r in records if r.get("kind") == kind and r.get("n") == n]
            rows = {}
            for label in labels:
                cells = [r for r in mine if r["label"] == label]
                if not cells:
                    continue
                ok = [r for r in cells if r["status"] == OK]
                rows[label] = {
                    "applicable": any(r.get("applicable", True) for r in cells),
                    "metrics": {
                        name: mean_std([r["metrics"].get(name) for r in ok if r["metrics"].get(name) is not None])
                        for name in _coldstart_metrics(k) + ["mae"]
                    },
                    "stale": sum(bool(r.get("stale")) for r in ok),
                    "converted": sum(bool(r.get("converted_from")) for r in ok),
                    "failed": [f"draw {r['seed']}: {r['status']}" for r in cells if r["status"] != OK],
                    "selected": [(r.get("selection") or {}).get("selected") for r in ok if r.get("selection")],
                }
            covered = {str(r["seed"]): (r.get("evaluation") or {}).get("covered") for r in mine if r.get("evaluation")}
            significance = {
                name: test
                for name in _coldstart_metrics(k)
                if (test := leader_comparisons(run_dir, mine, labels, name, unit=("split", "seed"))) is not None
            }
            scenarios.setdefault(kind, {})[str(n)] = {"rows": rows, "covered": covered, "significance": significance}
    warm = {}
    for label in labels:
        first = min(settings.support_sizes)
        values = [
            (r.get("warm_metrics") or {}).get("rmse")
            for r in records
            if r["label"] == label and r.get("kind") == "users" and r.get("n") == first and r["status"] == OK
        ]
        if any(v is not None for v in values):
            warm[label] = mean_std([v for v in values if v is not None])
    return {"kinds": list(settings.kinds), "support_sizes": list(settings.support_sizes), "order": settings.order,
            "scenarios": scenarios, "warm_rmse": warm}  # fmt: skip


def coldstart_table(summary: Mapping[str, Any], kind: str, metric: str, labels: Sequence[str]) -> str:
    """Rows = models, columns = support size n: ``mean ± std`` over draws (n/a: the model cannot fold in this
    kind; —: no value, e.g. a ranking-only model's RMSE; † stale or converted cells)."""
    sizes = [str(n) for n in summary["support_sizes"]]
    scenario = summary["scenarios"][kind]
    lines = ["| model | " + " | ".join(f"n={n}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    covered = ["/".join(str(c) for c in scenario[n]["covered"].values()) or "–" for n in sizes]
    lines.append("| held-out covered (per draw) | " + " | ".join(covered) + " |")
    for label in labels:
        rows = [scenario[n]["rows"].get(label) for n in sizes]
        if all(row is None for row in rows):
            continue
        if not any(row and row["applicable"] for row in rows):
            lines.append(f"| {label} | " + " | ".join("n/a" for _ in sizes) + " |")
            continue
        marked = any(row and (row["stale"] or row["converted"]) for row in rows)
        cells = []
        for row in rows:
            stat = (row or {}).get("metrics", {}).get(metric) or {"mean": None}
            failed = " (failed)" if row and row["failed"] else ""
            cells.append((format_mean_std(stat) if stat["mean"] is not None else NOT_APPLICABLE) + failed)
        lines.append(f"| {label}{STALE_MARK if marked else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def coldstart_significance_table(summary: Mapping[str, Any], kind: str, metric: str) -> str:
    """Per n: the leader, the runner-up (best mean among the others) and their paired bootstrap."""
    lines = [
        f"| n | leader | runner-up | Δ{metric} (leader − runner-up) | 95% CI | p | nodes | |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for n, scenario in summary["scenarios"][kind].items():
        test = scenario["significance"].get(metric)
        if not test or not test["rows"]:
            continue
        means = {label: row["metrics"][metric]["mean"] for label, row in scenario["rows"].items()}
        higher = higher_is_better(metric)
        row = sorted(test["rows"], key=lambda r: means[r["label"]], reverse=bool(higher))[0]
        lines.append(f"| {n} | {test['leader']} | {row['label']} | {comparison_cells(row, test['num_samples'])} |")
    return "\n".join(lines)


def _selected_lines(summary: Mapping[str, Any], labels: Sequence[str]) -> list[str]:
    lines = []
    for label in labels:
        for kind, scenarios in summary["scenarios"].items():
            parts = []
            for n, scenario in scenarios.items():
                chosen = (scenario["rows"].get(label) or {}).get("selected") or []
                if chosen:
                    parts.append(f"n={n}: " + " / ".join(json.dumps(s, sort_keys=True) for s in chosen))
            if parts:
                lines.append(f"- `{label}`, new {kind} (per draw): " + "; ".join(parts))
    return lines


def coldstart_markdown(results: Mapping[str, Any]) -> str:
    """A cold-start run: per kind and metric a named table (``<kind>-<metric>``, rows = models, columns = n),
    the paired bootstrap per n, the warm RMSE of the same fits, the chosen settings and the configs."""
    suite, summary = results["suite"], results["coldstart"]
    labels = [row["label"] for row in results["summary"]]
    evaluated = (
        f"- cold start: per draw seed, a share of the {' and '.join(summary['kinds'])} is held out of training "
        f"entirely; each held-out node's {summary['order']} n ratings are revealed (support) and the rest scored "
        f"(query); top-K with k={suite['k']}; mean ± sample std over {len(suite['seeds'])} draw(s); settings "
        "chosen on validation cold nodes (held out of the draw's training nodes), never on the query ratings"
    )
    lines = [*_header(results, evaluated)]
    notes = {n for r in results["cells"] if (n := r.get("converted_from"))}
    for kind in summary["kinds"]:
        for metric in _coldstart_metrics(suite["k"]):
            better = "higher" if higher_is_better(metric) else "lower"
            lines += ["", f"## New {kind}: {metric} ({better} is better)", ""]
            lines.append(wrap_table(f"{kind}-{metric}", coldstart_table(summary, kind, metric, labels)).rstrip("\n"))
            lines += [
                "",
                f"Paired bootstrap over the held-out {kind} (within each draw) of the leader at each n against the "
                'runner-up; "not significant" where p ≥ 0.05:',
                "",
                wrap_table(f"{kind}-{metric}-significance", coldstart_significance_table(summary, kind, metric)).rstrip(
                    "\n"
                ),
            ]
        if kind == "users" and summary["warm_rmse"]:
            lines += ["", "Warm-user test RMSE of the same fits (users not held out):", ""]
            lines += [f"- {label}: {format_mean_std(stat)}" for label, stat in summary["warm_rmse"].items()]
    if any(row.get("stale") for row in results["summary"]) or notes:
        lines += ["", f"{STALE_MARK.strip()} some cells of this model come from another code version: "
                  + ("; ".join(sorted(notes)) if notes else "reused with `--reuse-stale`")
                  + " (see `code_version_key` and `converted_from` in results.json); they have no per-node "
                  "arrays when converted, so they are left out of the paired bootstrap."]  # fmt: skip
    failed = [(row["label"], f) for row in results["summary"] for f in row["failed"]]
    if failed:
        lines += ["", "## Failed cells", ""] + [f"- {label} {text}" for label, text in failed]
    selected = _selected_lines(summary, labels)
    if selected:
        lines += ["", "## Settings chosen on validation cold nodes", ""] + selected
    lines += ["", "## Configs", ""]
    for row in results["summary"]:
        config = ", ".join(f"{k}={json.dumps(v)}" for k, v in row["config"].items() if k != "seed")
        lines.append(f"- `{row['label']}` ({row['model']}): {config or 'no hyperparameters'}")
    return "\n".join(lines) + "\n"
