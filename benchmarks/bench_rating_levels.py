"""Rating messages on a many-level scale: per-level weights vs bins vs interpolated basis levels, on validation.

    python benchmarks/bench_rating_levels.py --seeds 0 1 2 --out benchmarks/results/rating_levels.md

Data: the synthetic generator (:func:`gnnrec.data.synthetic.generate_ratings`) on a YahooMusic-like scale of
71 integer levels within 1..100 (1, 100 and 69 others drawn with NumPy seed 0), ``--users`` × ``--movies``
with ``--ratings`` ratings; each seed draws its own data (``data_seed``), split (random 10% test, 5% of each
user's training ratings for validation) and initialisation. Each variant is the default GNN config with
``rating_messages`` set (``rating_bins`` bins or basis levels; ``--epochs`` caps the epochs), selected on
validation RMSE as usual. Prints VALIDATION RMSE mean ± std per variant (and the bias baseline's, for reference), then
the TEST RMSE of the variant with the best mean validation RMSE only (its validation-selected fit, no refit).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from gnnrec.benchmark import harness
from gnnrec.benchmark.report import format_mean_std
from gnnrec.data.synthetic import SyntheticDataset
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model
from gnnrec.nn.rating_messages import RATING_MESSAGES
from gnnrec.provenance import code_version
from gnnrec.utils import atomic_write_text, seed_everything


def many_levels(count: int = 71, seed: int = 0) -> list[float]:
    """``count`` integer levels within 1..100: both ends and ``count - 2`` others drawn with ``seed``."""
    inner = np.random.default_rng(seed).choice(np.arange(2, 100), count - 2, replace=False)
    return [float(v) for v in sorted({1, 100, *inner.tolist()})]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(RATING_MESSAGES), choices=RATING_MESSAGES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--users", type=int, default=800)
    parser.add_argument("--movies", type=int, default=400)
    parser.add_argument("--ratings", type=int, default=20_000)
    parser.add_argument("--levels", type=int, default=71, help="number of integer levels within 1..100")
    parser.add_argument("--bins", type=int, default=5, help="rating_bins of the binned and continuous variants")
    parser.add_argument("--epochs", type=int, default=None, help="GNN epoch cap (default: the config's, 1000)")
    harness.add_options(parser, threads=1)
    parser.add_argument("--root", default=None, help="dataset cache (default $GNNREC_HOME/datasets/synthetic)")
    parser.add_argument("--out", default=None, help="write the report (markdown) to this file")
    return parser.parse_args(argv)


def split_for(args: argparse.Namespace, seed: int):
    dataset = SyntheticDataset(
        args.root,
        num_users=args.users,
        num_movies=args.movies,
        num_ratings=args.ratings,
        levels=many_levels(args.levels),
        data_seed=seed,
        seed=seed,
        log=False,
    )
    return dataset.rating_split()


def rmse(model, split, part: str) -> float:
    return float(evaluate(model, split, part=part, relevance_threshold=None, metrics=["rmse"]).metrics["rmse"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    provenance = code_version()  # of the code that runs
    threads = harness.apply_options(args)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    val: dict[str, list[float]] = {v: [] for v in ["bias", *args.variants]}
    seconds: dict[str, list[float]] = {v: [] for v in args.variants}
    kept: dict[str, list[int]] = {v: [] for v in args.variants}
    fitted: dict[tuple[str, int], object] = {}
    splits = {}
    for seed in args.seeds:
        split = splits[seed] = split_for(args, seed)
        seed_everything(seed)
        val["bias"].append(rmse(create_model("bias").fit(split), split, "val"))
        for variant in args.variants:
            seed_everything(seed)
            overrides = {"rating_messages": variant, "rating_bins": args.bins, "seed": seed}
            overrides.update({"max_epochs": args.epochs} if args.epochs else {})
            model = create_model("gnn", {**overrides, "device": "cpu", "threads": threads})
            with harness.timed() as fit:
                model.fit(split)
            seconds[variant].append(fit.seconds)
            val[variant].append(rmse(model, split, "val"))
            kept[variant].append(model.selected_epochs[0]["rating"])
            fitted[variant, seed] = model
            print(
                f"seed {seed} {variant:10s} val RMSE {val[variant][-1]:.4f}  kept epoch {kept[variant][-1]:4d}  "
                f"fit {seconds[variant][-1]:.0f} s",
                flush=True,
            )
    chosen = min(args.variants, key=lambda v: float(np.mean(val[v])))
    test = [rmse(fitted[chosen, seed], splits[seed], "test") for seed in args.seeds]
    first = splits[args.seeds[0]]
    lines = [
        "# Rating messages on a 71-level scale: validation choice",
        "",
        f"`{command}` — git {provenance['commit_short']}" + (" (uncommitted changes)" if provenance["dirty"] else ""),
        "",
        f"Seeds {', '.join(map(str, args.seeds))} (data, split and initialisation). Synthetic data "
        f"(`gnnrec.data.synthetic`): {args.users} users, {args.movies} movies, {args.ratings} ratings on "
        f"{len(first.rating_levels)} integer levels within 1..100 ({len(first.train)} train / {len(first.val)} "
        f"val / {len(first.test)} test ratings for seed {args.seeds[0]}). Default GNN config with "
        f"`rating_messages` set, `rating_bins={args.bins}`, "
        + (f"at most {args.epochs} epochs" if args.epochs else "its 1000 epochs at most")
        + f" (patience 60), {'one torch thread' if threads == 1 else f'{threads} torch threads'}. "
        + "RMSE in rating units (1..100).",
        "",
        "| variant | val RMSE (mean ± std) | kept epoch | fit s |",
        "|---|---:|---:|---:|",
        f"| bias baseline (reference) | {format_mean_std(val['bias'])} | – | – |",
    ]
    for variant in args.variants:
        mark = " (chosen)" if variant == chosen else ""
        lines.append(
            f"| {variant}{mark} | {format_mean_std(val[variant])} | {np.mean(kept[variant]):.0f} | "
            f"{np.mean(seconds[variant]):.0f} |"
        )
    lines += [
        "",
        f"Chosen on validation RMSE: **{chosen}**. Its test RMSE (validation-selected fit, no refit): "
        f"{format_mean_std(test)} (seeds {', '.join(map(str, args.seeds))}).",
        "",
        "Per seed, validation RMSE: "
        + "; ".join(f"{v} {', '.join(f'{x:.4f}' for x in val[v])}" for v in ["bias", *args.variants])
        + ". Best variant per seed: "
        + ", ".join(min(args.variants, key=lambda v, i=i: val[v][i]) for i in range(len(args.seeds)))
        + ".",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.out), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
