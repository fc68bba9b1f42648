"""Implicit signal of the ``synthetic`` data by ``taste_exposure``, next to ML-100k's: validation top-K only.

Which movies a user rated tells a top-K model about the user's taste only when exposure depends on taste.
EASE reads that signal, popularity does not, so the ratio of their validation ndcg@10 measures it. The script
fits both on ML-100k u1 and on ML-100k-sized ``synthetic`` data (943 users, 1,682 movies, 100,000 ratings,
random split) for each ``--strengths`` value, with the same validation carve-out (``--val-fraction``,
``--data-seed``), and prints validation ndcg@10 / recall@10 (relevant = rating >= 4; train movies excluded;
EASE's λ chosen on validation ndcg@10, as in its default config) and the ratio EASE / popularity. No test
rating is scored.

    python benchmarks/bench_taste_exposure.py [--strengths 0 1 2 ...] [--num-users U --num-movies M
        --num-ratings N] [--data-dir DIR] [--threads 1]
"""

from __future__ import annotations

import argparse

from gnnrec.benchmark import harness
from gnnrec.data import load_split
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model

METRICS = ["ndcg@10", "recall@10"]
MODELS = ("popularity", "ease")


def validation_row(name: str, split: RatingSplit) -> str:
    """One table row: the validation metrics of popularity and EASE on ``split`` and their ndcg@10 ratio."""
    scores = {}
    for model_name in MODELS:
        model = create_model(model_name).fit(split)
        scores[model_name] = evaluate(model, split, part="val", metrics=METRICS).metrics
    cells = [f"{scores[m][metric]:.4f}" for m in MODELS for metric in METRICS]
    ratio = scores["ease"]["ndcg@10"] / scores["popularity"]["ndcg@10"]
    return f"| {name} | {len(split.train):,} | {len(split.val):,} | {' | '.join(cells)} | {ratio:.2f} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--num-users", type=int, default=943)
    parser.add_argument("--num-movies", type=int, default=1682)
    parser.add_argument("--num-ratings", type=int, default=100_000)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--data-seed", type=int, default=0)
    harness.add_options(parser, data_dir=True, threads=1)
    args = parser.parse_args(argv)
    harness.apply_options(args)
    carve = {"val_fraction": args.val_fraction, "seed": args.data_seed, "log": False}
    size = {"num_users": args.num_users, "num_movies": args.num_movies, "num_ratings": args.num_ratings}

    head = " | ".join(f"{m} val {metric}" for m in MODELS for metric in METRICS)
    print(f"| data | train | val | {head} | EASE / popularity ndcg@10 |")
    print("|" + "---|" * (4 + len(MODELS) * len(METRICS)))
    print(validation_row("ml-100k u1", load_split("ml-100k", "u1", source_dir=args.data_dir, **carve)), flush=True)
    for strength in args.strengths:
        split = load_split("synthetic", "random", taste_exposure=strength, **size, **carve)
        print(validation_row(f"synthetic taste_exposure={strength:g}", split), flush=True)


if __name__ == "__main__":
    main()
