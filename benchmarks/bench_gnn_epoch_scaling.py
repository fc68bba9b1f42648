"""Seconds per training epoch of the default ``gnn`` as the data grow: a table and a log–log plot.

For each size (a number of ratings) the ``synthetic`` dataset is generated with as many users and movies as a
MovieLens release of that size has (interpolated on log scales between ML-100k, ML-1M, ML-10M and ML-25M, and
extended beyond them along the nearest pair), split without a validation part, and the default GNN (the
``synthetic`` preset) is trained for ``--epochs`` epochs. The table gives the median training seconds per
epoch after the first (which pays one-time allocations), the optimizer steps per epoch, users × movies (what
a full-batch step's ranking head scores; mini-batch steps rank a sample of users), and the log–log slope of
the seconds per epoch against the training ratings from the size before: 1 means the cost grows linearly in
the ratings. No validation or test rating is scored.

    python benchmarks/bench_gnn_epoch_scaling.py [--sizes 100000 300000 1000000 3000000 10000000]
        [--epochs 3] [--threads 1] [--out benchmarks/results/gnn_epoch_scaling.md]
        [--plot benchmarks/results/gnn_epoch_scaling.png]
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import numpy as np

from gnnrec.benchmark import harness
from gnnrec.data import load_split
from gnnrec.models import create_model
from gnnrec.utils import atomic_path, atomic_write_text

# (ratings, users, movies) of ML-100k, ML-1M, ML-10M and ML-25M
MOVIELENS_SHAPES = [
    (100_000, 943, 1_682),
    (1_000_209, 6_040, 3_706),
    (10_000_054, 69_878, 10_677),
    (25_000_095, 162_541, 59_047),
]


def movielens_shape(num_ratings: int) -> tuple[int, int]:
    """Users and movies of a MovieLens-like dataset with ``num_ratings`` ratings (log–log interpolation)."""
    ratings, users, movies = (np.log(np.array(column, dtype=float)) for column in zip(*MOVIELENS_SHAPES, strict=True))
    x = math.log(num_ratings)
    index = int(np.clip(np.searchsorted(ratings, x) - 1, 0, len(ratings) - 2))  # the pair of anchors to use

    def along(column: np.ndarray) -> int:
        slope = (column[index + 1] - column[index]) / (ratings[index + 1] - ratings[index])
        return max(10, round(math.exp(column[index] + slope * (x - ratings[index]))))

    return along(users), along(movies)


def measure(num_ratings: int, epochs: int, threads: int | None) -> dict:
    """Generate one size, train the default GNN for ``epochs`` epochs; its timings and shape."""
    num_users, num_movies = movielens_shape(num_ratings)
    size = {"num_users": num_users, "num_movies": num_movies, "num_ratings": num_ratings}
    split = load_split("synthetic", **size, val_fraction=0.0, log=False)
    overrides = {"max_epochs": epochs, "device": "cpu", **({"threads": threads} if threads else {})}
    model = create_model("gnn", overrides).fit(split)
    seconds = [row["train_seconds"] for row in model.history]
    steps = model.history[-1]["steps"] - model.history[-2]["steps"]  # the history counts the steps so far
    return {
        "ratings": num_ratings,
        "train": len(split.train),
        "users": split.num_users,
        "movies": split.num_movies,
        "steps": steps,
        "first": seconds[0],
        "per_epoch": statistics.median(seconds[1:] or seconds),
    }


def report(rows: list[dict], threads: int | None) -> str:
    """The markdown table with provenance."""
    info = harness.provenance()
    lines = [
        "# Seconds per epoch of the default GNN as the data grow (`benchmarks/bench_gnn_epoch_scaling.py`)",
        "",
        f"- command: `{info['command']}`",
        f"- machine: {info['machine']}; torch threads {threads}; load average (1/5/15 min) {info['load_average']}",
        f"- code: git {info['commit_short']} ({'dirty' if info['dirty'] else 'clean'} tree), gnnrec "
        f"{info['gnnrec_version']}; torch {info['torch']}",
        "- data: `synthetic` (seed 0), users and movies as a MovieLens release of that many ratings; "
        "random split, no validation part",
        "- seconds per epoch: median training seconds of the epochs after the first; slope: "
        "log(seconds per epoch ratio) / log(ratings ratio) from the row above (1 = linear in the ratings)",
        "",
        "| ratings | train ratings | users | movies | users × movies | steps per epoch | first epoch s | "
        "s per epoch | slope |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for before, row in zip([None, *rows[:-1]], rows, strict=True):
        slope = "–"
        if before is not None:
            slope = f"{math.log(row['per_epoch'] / before['per_epoch']) / math.log(row['train'] / before['train']):.2f}"
        lines.append(
            f"| {row['ratings']:,} | {row['train']:,} | {row['users']:,} | {row['movies']:,} | "
            f"{row['users'] * row['movies']:,} | {row['steps']} | {row['first']:.2f} | {row['per_epoch']:.3f} | "
            f"{slope} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Log–log plot of seconds per epoch against training ratings, with a line of slope 1 through the first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = np.array([row["train"] for row in rows], dtype=float)
    seconds = np.array([row["per_epoch"] for row in rows])
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.loglog(train, seconds, "o-", label="default gnn")
    axes.loglog(train, seconds[0] * train / train[0], "--", color="grey", label="linear in the ratings")
    axes.set_xlabel("training ratings")
    axes.set_ylabel("seconds per epoch")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 300_000, 1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per size (the first is not counted)")
    parser.add_argument("--out", type=Path, default=None, help="write the table (markdown) here")
    parser.add_argument("--plot", type=Path, default=None, help="write the log–log plot (PNG) here")
    harness.add_options(parser, threads=1)
    args = parser.parse_args(argv)
    if args.epochs < 2 or any(size < 100 for size in args.sizes):
        parser.error("give --epochs of at least 2 and sizes of at least 100 ratings")
    threads = harness.apply_options(args)
    rows = []
    for size in sorted(args.sizes):
        rows.append(measure(size, args.epochs, threads))
        row = rows[-1]
        print(f"{size:,} ratings: {row['per_epoch']:.3f} s per epoch ({row['steps']} steps)", flush=True)
    text = report(rows, threads)
    print(text)
    if args.out is not None:
        atomic_write_text(args.out, text)
    if args.plot is not None:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
