"""Fit the three baselines on MovieLens-100k and evaluate each once on the test ratings.

    python benchmarks/bench_baselines.py --seed 0 --threads 1

Prints RMSE, MAE, GLocal-K NDCG and the top-K metrics with fit and evaluation seconds.
Hyperparameters are the models' defaults (chosen on validation ratings only).
"""

from __future__ import annotations

import argparse
import json

import torch

from gnnrec.benchmark import harness
from gnnrec.data import MovieLens100K
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model
from gnnrec.utils import atomic_write_text, seed_everything

BASELINES = ("global-mean", "bias", "mf")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_options(parser, data_dir=True, seed=0)
    parser.add_argument("--split", default="u1")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", default=None, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.apply_options(args)
    split = MovieLens100K(split=args.split, source_dir=args.data_dir, log=False).rating_split()
    rows = []
    for name in BASELINES:
        seed_everything(args.seed)
        model = create_model(name, {"seed": args.seed} if name == "mf" else {})
        with harness.timed() as fit:
            model.fit(split)
        result = evaluate(model, split, k=args.k)
        row = {"model": name, "fit_seconds": fit.seconds, "epochs": len(model.history), **result.to_dict()}
        rows.append(row)

    metric_names = list(rows[0]["metrics"])
    header = f"{'model':<12}" + "".join(f"{m:>13}" for m in metric_names) + f"{'epochs':>8}{'fit s':>8}{'eval s':>8}"
    print(
        f"{split.name} test ({rows[0]['num_ratings']} ratings), seed {args.seed}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(header)
    for row in rows:
        values = "".join(f"{row['metrics'][m]:>13.4f}" for m in metric_names)
        print(f"{row['model']:<12}{values}{row['epochs']:>8}{row['fit_seconds']:>8.2f}{row['seconds']:>8.3f}")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
