"""Which refit protocol to test after selection, decided on a second validation carve-out (never on test).

    python benchmarks/bench_refit_protocol.py --models gnn bias mf ease --seeds 0 1 2 \\
        --out benchmarks/results/refit_protocol.md

The split's training ratings lose a second validation set (``--holdout-fraction`` of each user's, seeded with
``--holdout-seed``, :meth:`gnnrec.data.RatingSplit.hold_out_train`), which plays the test part; the real test
ratings are dropped before any fit. Per model and seed, as a benchmark cell does: fit with selection on the
first validation set (val1), refit on train ∪ val1 with ``refit_overrides``, and score on val2 each protocol of
:mod:`gnnrec.benchmark.refit_protocols`:

* ``none`` (A): the selection fit; ``refit`` (B): the refit; ``scaled`` (C): a refit with the epoch counts
  scaled by ``|train ∪ val1| / |train|`` (only models whose overrides count epochs; else the same as B);
* ``average`` (D): the mean of the two fits' ratings, ranking scores standardised per user;
  ``average-raw``: the same with raw ranking scores averaged;
* ``warm`` (E): the refit started from what the selection fit learned in a phase selection does not touch
  (``warm_start_from``: GLocal-K's pre-training; the same fit as B for a model that takes nothing), and
  ``warm-average`` (F): the mean of A and E.

Prints val2 RMSE and ndcg@10 per model, seed and protocol, their mean over seeds, and per protocol the
seeds on which it beats B. ``--no-scaled`` skips C (its column shows —).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from typing import Any

from gnnrec.benchmark import harness
from gnnrec.benchmark.refit_protocols import AveragedFits, scaled_epochs
from gnnrec.config import parse_set_options
from gnnrec.data import load_split
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model
from gnnrec.models.registry import get_model_class
from gnnrec.utils import atomic_write_text, seed_everything

COLUMNS = ("none", "refit", "scaled", "average", "average-raw", "warm", "warm-average")
METRICS = ("rmse", "ndcg@10")
LOWER_IS_BETTER = {"rmse": True, "ndcg@10": False}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", default="u1")
    parser.add_argument("--models", nargs="+", default=["gnn", "bias", "mf", "ease"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--val-fraction", type=float, default=0.05, help="first carve-out (val1), as the suites")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the first carve-out, as the suites")
    parser.add_argument("--holdout-fraction", type=float, default=0.05, help="second carve-out (val2) of train")
    parser.add_argument("--holdout-seed", type=int, default=1, help="seed of the second carve-out")
    parser.add_argument("--test-config", action="store_true", help="start from each model's small test config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every model whose config has KEY")  # fmt: skip
    parser.add_argument("--no-scaled", action="store_true", help="skip protocol C (one fit fewer per model and seed)")
    parser.add_argument("--warm-sets", nargs="+", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="more warm refits (E), each with these config overrides on top of the selected "
                             "values, e.g. refit_continue_share=0.2; scored on val2 in their own table")  # fmt: skip
    parser.add_argument("--out", default=None, help="write the report (markdown) to this file")
    harness.add_options(parser, data_dir=True, threads=1)
    return parser.parse_args(argv)


def model_overrides(name: str, seed: int, threads: int | None, extra: dict[str, Any]) -> dict[str, Any]:
    """The seed (as a benchmark cell sets it), the fit's threads and the ``--set`` values this model's config has."""
    fields = {field.name for field in dataclasses.fields(get_model_class(name).config_class)}
    wanted = {"seed": seed, **({"threads": threads} if threads else {}), **extra}
    return {key: value for key, value in wanted.items() if key in fields}


def scores(model: Any, split: Any) -> dict[str, float | None]:
    result = evaluate(model, split, part="test", k=10, relevance_threshold=None, metrics=list(METRICS))
    return {name: result.metrics[name] for name in METRICS}


def fit(
    name: str, overrides: dict[str, Any], split: Any, seed: int, test_config: bool, warm_from: Any = None
) -> tuple[Any, float]:
    """A fit as a benchmark cell makes it; ``warm_from``: the selection fit a refit may start from."""
    seed_everything(seed)  # before construction, as the runner does
    model = create_model(name, overrides, test_config=test_config)
    if warm_from is not None and not model.warm_start_from(warm_from):
        return None, 0.0  # nothing to take over: the warm refit is the plain one
    with harness.timed() as clock:
        model.fit(split)
    return model, clock.seconds


def study_cell(name: str, seed: int, study: Any, args: argparse.Namespace, threads: int | None) -> dict[str, Any]:
    """One model and seed: the selection fit, its refit (and scaled refit), and every protocol's val2 scores."""
    extra = parse_set_options(args.overrides)
    overrides = model_overrides(name, seed, threads, extra)
    selection, selection_seconds = fit(name, overrides, study, seed, args.test_config)
    chosen = selection.refit_overrides()
    merged = study.merge_validation()
    refit, refit_seconds = fit(name, {**overrides, **chosen}, merged, seed, args.test_config)
    factor = len(merged.train) / len(study.train)
    scaled_chosen = scaled_epochs(chosen, factor)
    row: dict[str, Any] = {
        "selected": chosen,
        "scaled": scaled_chosen if scaled_chosen != chosen else None,
        "seconds": {"selection": selection_seconds, "refit": refit_seconds},
        "val1": scores_on_val(selection, study),
        "val2": {"none": scores(selection, study), "refit": scores(refit, merged)},
    }
    if args.no_scaled:
        row["val2"]["scaled"] = dict.fromkeys(METRICS)  # not run: shown as —
    elif scaled_chosen != chosen:
        scaled, row["seconds"]["scaled"] = fit(name, {**overrides, **scaled_chosen}, merged, seed, args.test_config)
        row["val2"]["scaled"] = scores(scaled, merged)
    else:
        row["val2"]["scaled"] = row["val2"]["refit"]  # nothing to scale: the same fit as B
    row["val2"]["average"] = scores(AveragedFits(selection, refit), merged)
    row["val2"]["average-raw"] = scores(AveragedFits(selection, refit, standardise=False), merged)
    warm, warm_seconds = fit(name, {**overrides, **chosen}, merged, seed, args.test_config, warm_from=selection)
    if warm is None:
        row["val2"]["warm"], row["val2"]["warm-average"] = row["val2"]["refit"], row["val2"]["average"]
    else:
        row["seconds"]["warm"] = warm_seconds
        row["val2"]["warm"] = scores(warm, merged)
        row["val2"]["warm-average"] = scores(AveragedFits(selection, warm), merged)
    row["variants"] = {}
    for variant in args.warm_sets:
        changed = model_overrides(name, seed, threads, {**extra, **parse_set_options(variant.split(","))})
        fitted, fitted_seconds = fit(name, {**chosen, **changed}, merged, seed, args.test_config, warm_from=selection)
        row["variants"][variant] = (scores(fitted, merged), fitted_seconds) if fitted is not None else None
    return row


def scores_on_val(model: Any, split: Any) -> dict[str, float | None]:
    result = evaluate(model, split, part="val", k=10, relevance_threshold=None, metrics=list(METRICS))
    return {name: result.metrics[name] for name in METRICS}


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def wins(rows: list[dict[str, Any]], protocol: str, metric: str) -> str:
    """``w/n``: on how many seeds ``protocol`` beats B (strictly) on ``metric``; ``—`` without values."""
    pairs = [(row["val2"][protocol][metric], row["val2"]["refit"][metric]) for row in rows]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not pairs:
        return "—"
    better = sum((a < b) if LOWER_IS_BETTER[metric] else (a > b) for a, b in pairs)
    return f"{better}/{len(pairs)}"


def report(results: dict[str, dict[int, dict[str, Any]]], args: argparse.Namespace, info: dict[str, Any],
           study: Any, clock: harness.Clock) -> str:  # fmt: skip
    lines = [
        f"# Refit protocols on a second validation carve-out: {args.dataset}/{args.split}",
        "",
        f"- command: `{info['command']}`",
        f"- code: git {info['commit_short']} ({'dirty' if info['dirty'] else 'clean'} tree), gnnrec "
        f"{info['gnnrec_version']}; python {info['python']}, torch {info['torch']}",
        f"- machine: {info['machine']}; torch threads {info['torch_threads']}, OMP_NUM_THREADS="
        f"{info['omp_num_threads']}; load average (1/5/15 min) before {info['load_average']}, "
        f"after {harness.load_average()}",
        f"- started {info['started']}; wall time {clock.seconds:.0f} s; seeds {', '.join(map(str, args.seeds))}",
        f"- data: val1 = {args.val_fraction:g} of each user's training ratings (seed {args.data_seed}), as the "
        f"suites; val2 = {args.holdout_fraction:g} of each user's remaining training ratings (seed "
        f"{args.holdout_seed}); {len(study.train)} train / {len(study.val)} val1 / {len(study.test)} val2 "
        "ratings; the test split is never read",
        f"- models: {', '.join(args.models)}"
        + (" (test configs)" if args.test_config else " (default configs)")
        + (f", --set {' '.join(args.overrides)}" if args.overrides else ""),
        "- protocols: none = selection fit (A), refit = refit on train ∪ val1 (B), scaled = refit with epoch "
        "counts × |train ∪ val1|/|train| (C; = B where nothing counts epochs), average = mean of A and B "
        "(ranking scores standardised per user; D), average-raw = D with raw ranking scores, warm = the refit "
        "started from what the selection fit learned (`warm_start_from`: GLocal-K's pre-training, the GNN's "
        "networks; E; = B where the model takes nothing), warm-average = mean of A and E",
        "- scores on val2: RMSE (rating units) and ndcg@10 (relevant: rating ≥ 3/4 of the scale); "
        "`wins vs B` = seeds where the protocol is strictly better than B",
        "",
        "## Mean over seeds",
        "",
        "| model | metric | "
        + " | ".join(COLUMNS)
        + " | wins vs B: "
        + ", ".join(c for c in COLUMNS if c != "refit")
        + " |",
        "|---|---|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for name, per_seed in results.items():
        rows = list(per_seed.values())
        for metric in METRICS:
            means = []
            for protocol in COLUMNS:
                values = [row["val2"][protocol][metric] for row in rows]
                means.append(None if None in values else statistics.fmean(values))
            if all(value is None for value in means):
                continue
            tally = ", ".join(wins(rows, c, metric) for c in COLUMNS if c != "refit")
            lines.append(f"| {name} | {metric} | " + " | ".join(map(number, means)) + f" | {tally} |")
    lines += ["", "## Per seed", "",
              "| model | seed | metric | val1 (selection fit) | " + " | ".join(COLUMNS) + " |",
              "|---|---:|---|---:|" + "---:|" * len(COLUMNS)]  # fmt: skip
    for name, per_seed in results.items():
        for seed, row in per_seed.items():
            for metric in METRICS:
                if row["val2"]["refit"][metric] is None:
                    continue
                values = " | ".join(number(row["val2"][protocol][metric]) for protocol in COLUMNS)
                lines.append(f"| {name} | {seed} | {metric} | {number(row['val1'][metric])} | {values} |")
    lines += ["", "## Selected values and fit seconds", "",
              "| model | seed | refit overrides (B) | scaled (C) | selection s | refit s | scaled s | warm s |",
              "|---|---:|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, per_seed in results.items():
        for seed, row in per_seed.items():
            seconds = row["seconds"]
            scaled = "same as B" if row["scaled"] is None else f"`{row['scaled']}`"
            scaled += " (not run)" if args.no_scaled and row["scaled"] is not None else ""
            lines.append(
                f"| {name} | {seed} | `{row['selected']}` | {scaled} | {seconds['selection']:.0f} | "
                f"{seconds['refit']:.0f} | "
                + (f"{seconds['scaled']:.0f} |" if "scaled" in seconds else "— |")
                + (f" {seconds['warm']:.0f} |" if "warm" in seconds else " — |")
            )
    if args.warm_sets:
        lines += variant_tables(results, args.warm_sets)
    return "\n".join(lines) + "\n"


def variant_tables(results: dict[str, dict[int, dict[str, Any]]], variants: list[str]) -> list[str]:
    """The ``--warm-sets`` refits beside E: val2 scores (mean over seeds, then per seed) and fit seconds."""
    head = "| model | seed | metric | warm (E) | " + " | ".join(f"`{v}`" for v in variants) + " |"
    lines = ["", "## Warm refits with other settings (`--warm-sets`)", "",
             "Each column is E with the named overrides on top (— where the model takes nothing); `mean` rows "
             "average the seeds; the last rows give each fit's seconds.", "",
             head, "|---|---|---|---:|" + "---:|" * len(variants)]  # fmt: skip
    for name, per_seed in results.items():
        rows = list(per_seed.items())
        for metric in METRICS:
            for label, chosen in [("mean", rows), *((str(seed), [(seed, row)]) for seed, row in rows)]:
                cells = [[row["val2"]["warm"][metric] for _, row in chosen]]
                for variant in variants:
                    found = [row["variants"][variant] for _, row in chosen]
                    cells.append([None if got is None else got[0][metric] for got in found])
                if all(None in values for values in cells):
                    continue
                shown = [number(None if None in values else statistics.fmean(values)) for values in cells]
                lines.append(f"| {name} | {label} | {metric} | " + " | ".join(shown) + " |")
        for seed, row in rows:
            seconds = [row["seconds"].get("warm")] + [
                None if row["variants"][v] is None else row["variants"][v][1] for v in variants
            ]
            shown = ["—" if value is None else f"{value:.0f}" for value in seconds]
            lines.append(f"| {name} | {seed} | fit s | " + " | ".join(shown) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = harness.apply_options(args)
    info = harness.provenance(seeds=args.seeds, argv=["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    split = load_split(args.dataset, args.split, source_dir=args.data_dir, val_fraction=args.val_fraction,
                       seed=args.data_seed, log=False)  # fmt: skip
    study = split.hold_out_train(args.holdout_fraction, args.holdout_seed)
    results: dict[str, dict[int, dict[str, Any]]] = {}
    with harness.timed() as clock:
        for name in args.models:
            for seed in args.seeds:
                row = results.setdefault(name, {})[seed] = study_cell(name, seed, study, args, threads)
                shown = "  ".join(
                    f"{protocol} " + "/".join(number(row["val2"][protocol][m]) for m in METRICS) for protocol in COLUMNS
                )
                print(f"{name} seed {seed} val2 rmse/ndcg@10: {shown}", flush=True)
    text = report(results, args, info, study, clock)
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
