"""EASE at catalogue scale: one fit, λ search included, on a synthetic catalogue (default 10,000 movies).

    python benchmarks/bench_ease_catalogue.py [--num-movies 10000 --num-users 5000 --num-ratings 500000]
        [--threads default|auto|N] [--inversion] [--out benchmarks/results/ease_catalogue.md]

Loads a seeded ``synthetic`` split (:mod:`gnnrec.data.synthetic`), fits EASE with its default λ grid (one
eigendecomposition of the Gram matrix, then each λ scored on the validation users from the factors) and prints
the fit seconds, the seconds to the first λ scored (Gram matrix and decomposition), the chosen λ and its
validation metric, the peak resident memory of the process and the fit's memory estimate. ``--inversion``
also times one λ the direct way (:func:`gnnrec.models.ease.ease_weights`, one ``movies × movies`` inversion),
the cost that a search by inversion pays per λ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gnnrec.benchmark import harness
from gnnrec.data import load_split
from gnnrec.models import create_model
from gnnrec.models.ease import ease_weights, fit_memory_estimate, gram_of, interaction_matrix
from gnnrec.threads import torch_threads
from gnnrec.utils import atomic_write_text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-movies", type=int, default=10_000)
    parser.add_argument("--num-users", type=int, default=5_000)
    parser.add_argument("--num-ratings", type=int, default=500_000)
    harness.add_options(parser, threads="default")
    parser.add_argument("--inversion", action="store_true", help="also time one λ by direct inversion")
    parser.add_argument("--out", type=Path, default=None, help="write the report (markdown) here")
    args = parser.parse_args(argv)
    threads = harness.apply_options(args)
    info = harness.provenance()
    size = {"num_users": args.num_users, "num_movies": args.num_movies, "num_ratings": args.num_ratings}
    split = load_split("synthetic", **size, log=False)
    lines = [
        "# EASE at catalogue scale (`benchmarks/bench_ease_catalogue.py`)",
        "",
        f"- command: `python benchmarks/bench_ease_catalogue.py --num-movies {args.num_movies} --num-users "
        f"{args.num_users} --num-ratings {args.num_ratings} --threads {args.threads}"
        f"{' --inversion' if args.inversion else ''}`",
        f"- code: git {info['commit_short']} ({'dirty' if info['dirty'] else 'clean'} tree); torch "
        f"{info['torch']}; python {info['python']}",
        f"- machine: {info['platform']}, {info['cpu_count']} CPUs; torch threads {threads} (--threads "
        f"{args.threads}); load average (1/5/15 min) before {info['load_average']}",
        f"- data: synthetic, {split.num_users:,} users × {split.num_movies:,} movies; {len(split.train):,} train / "
        f"{len(split.val):,} val / {len(split.test):,} test ratings",
        "",
    ]
    with torch_threads(threads):
        with harness.timed() as fit:
            model = create_model("ease").fit(split)
        seconds = fit.seconds
        history = model.history
        metric = next(key for key in history[0] if key.startswith("val_"))
        chosen = next(row for row in history if row["reg"] == model.reg)
        peak = harness.peak_rss_gib()
        lines += [
            f"- fit, λ search included: {seconds:.1f} s; {len(history)} λ from {history[0]['reg']:g} to "
            f"{history[-1]['reg']:g}",
            f"- Gram matrix, decomposition and the first λ scored: {history[0]['seconds']:.1f} s; each further λ: "
            f"{(history[-1]['seconds'] - history[0]['seconds']) / max(len(history) - 1, 1):.2f} s on average",
            f"- chosen λ {model.reg:g} ({metric} {chosen[metric]:.4f}; grid edges {history[0]['reg']:g} and "
            f"{history[-1]['reg']:g})",
            f"- peak resident memory of the process {peak:.2f} GiB; the fit's estimate "
            f"{fit_memory_estimate(split.num_movies, split.num_users) / 2**30:.2f} GiB",
        ]
        if args.inversion:
            gram = gram_of(interaction_matrix(split, 0.0))
            with harness.timed() as inversion:
                ease_weights(gram, model.reg)
            lines.append(f"- one λ by direct float64 inversion (ease_weights): {inversion.seconds:.1f} s")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out is not None:
        atomic_write_text(args.out, report)


if __name__ == "__main__":
    main()
