"""Time one full evaluation (20,000 test ratings + full-catalogue top-K) of a model on MovieLens-100k.

    python benchmarks/bench_evaluator.py --model bias --repeats 7 --threads 1

Fits the model on the split (the cheap user+item-bias baseline by default), then times
``gnnrec.evaluation.evaluate`` ``--repeats`` times and prints the median and the spread.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from gnnrec.benchmark import harness
from gnnrec.data import MovieLens100K
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bias", help="registered model name")
    parser.add_argument("--split", default="u1")
    parser.add_argument("--part", default="test", choices=("val", "test"))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    harness.add_options(parser, data_dir=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    harness.apply_options(args)
    split = MovieLens100K(split=args.split, source_dir=args.data_dir, log=False).rating_split()
    with harness.timed() as fit:
        model = create_model(args.model).fit(split)
    evaluate(model, split, part=args.part, k=args.k)  # warm-up: first-call allocations and lazy imports
    wall, reported = [], []
    for _ in range(args.repeats):
        with harness.timed() as clock:
            result = evaluate(model, split, part=args.part, k=args.k)
        wall.append(clock.seconds)
        reported.append(result.seconds)
    print(
        f"{split.name} {args.part}: {result.num_ratings} ratings, {result.num_users} users, "
        f"top-{args.k} over {split.num_movies} movies for {result.num_ranked_users} users"
    )
    print(f"model {args.model} (fit {fit.seconds:.2f} s), torch threads {torch.get_num_threads()}")
    print(
        f"evaluate: median {statistics.median(wall):.4f} s, min {min(wall):.4f} s, max {max(wall):.4f} s "
        f"over {args.repeats} runs (result.seconds median {statistics.median(reported):.4f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
