"""Time ``gnnrec export`` of a checkpoint: every user's top-K to Parquet, end to end and by phase.

    python benchmarks/bench_export.py CHECKPOINT --data-dir ../shared/data/ml-100k -k 50
    python benchmarks/bench_export.py --synthetic ml-25m -k 50 --repeats 1

End to end: ``python -m gnnrec export CHECKPOINT --out FILE -k K`` in a fresh interpreter (start-up and
imports included), median of ``--repeats`` runs, with the peak resident memory of those export processes.
By phase, in this process: loading the split, loading the checkpoint, and writing the top-K table (Parquet,
CSV), the similar films and the node embeddings. Prints the seconds, rows and the peak resident memory.

``--synthetic SIZE`` first fits a GNN on the ``synthetic`` dataset in the shape of MovieLens-1M/-10M/-25M
(``bench_sizes.py``'s sizes and fit budget, so the export's memory compares with that table's) and exports
it; the by-phase part is skipped there (it would repeat the export in this process).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gnnrec.benchmark import harness  # noqa: E402


def end_to_end(args: argparse.Namespace, out: Path) -> tuple[float, float | None]:
    """One ``python -m gnnrec export``: its wall seconds and its own peak RSS (MiB)."""
    command = ["export", str(args.checkpoint), "--out", str(out), "-k", str(args.k), "--quiet"]
    command += ["--threads", str(args.threads)] + (["--data-dir", args.data_dir] if args.data_dir else [])
    return harness.run_python_module("gnnrec", command, env={**os.environ, "PYTHONPATH": str(REPO)})


def fit_synthetic(size: str, path: Path) -> Path:
    """Fit the GNN on synthetic data of ``size`` (``bench_sizes.py``'s shape and budget) and save it to ``path``."""
    import gc

    from bench_sizes import SIZES, budget

    from gnnrec.data import load_split
    from gnnrec.models import create_model

    with harness.timed() as loading:
        split = load_split("synthetic", **SIZES[size], log=False)
    print(f"synthetic {size}: {split.num_users} users, {split.num_movies} movies, {len(split.train)} training "
          f"ratings; loaded in {loading.seconds:.1f} s")  # fmt: skip
    config = budget("gnn", SIZES[size])
    with harness.timed() as fitting:
        create_model("gnn", config).fit(split).save(path)
    print(f"gnn fit with {config} and saved in {fitting.seconds:.1f} s")
    del split
    gc.collect()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="checkpoint or run directory (not with --synthetic)")
    parser.add_argument(
        "--synthetic",
        choices=["tiny", "ml-1m", "ml-10m", "ml-25m"],
        default=None,
        help="fit a GNN on synthetic data of this shape (bench_sizes.py's budget) and export it",
    )
    harness.add_options(parser, data_dir=True, threads=2)
    parser.add_argument("-k", "--k", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (args.synthetic is None):
        parser.error("give a CHECKPOINT or --synthetic SIZE (one of them)")
    harness.apply_options(args)
    from gnnrec.cli.common import checkpoint_path, load_checkpoint, split_from_args
    from gnnrec.models import RatingModel
    from gnnrec.serving import Catalogue, MovieSimilarity, embedding_frames, similar_frames, top_k_frames, write_table

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.synthetic:
            args.checkpoint = fit_synthetic(args.synthetic, scratch / "model.safetensors")
        runs, peaks = zip(*(end_to_end(args, scratch / "e2e.parquet") for _ in range(args.repeats)), strict=True)
        print(f"end to end (python -m gnnrec export --out top.parquet -k {args.k} --threads {args.threads}), "
              f"{args.repeats} runs: median {statistics.median(runs):.2f} s "
              f"({', '.join(f'{r:.2f}' for r in runs)})")  # fmt: skip
        known = [peak for peak in peaks if peak is not None]
        print("peak resident memory of an export process (its VmHWM at exit): "
              + (f"{max(known) / 1024:.2f} GiB" if known else "not reported"))  # fmt: skip
        if args.synthetic:
            return 0

        data = Namespace(dataset=None, split=None, data_dir=args.data_dir, val_fraction=None, data_seed=None)
        with harness.timed() as split_clock:
            info = RatingModel.load(checkpoint_path(args.checkpoint))
            split = split_from_args(data, {"dataset": info.info.dataset, **info.info.settings})
        with harness.timed() as load_clock:
            model, split = load_checkpoint(args.checkpoint, data)
        split_seconds, load_seconds = split_clock.seconds, load_clock.seconds
        print(f"in process: split {split_seconds:.2f} s, checkpoint and split again {load_seconds:.2f} s "
              f"({model.name} on {split.name}: {split.num_users} users, {split.num_movies} movies)")  # fmt: skip
        catalogue = Catalogue(split)
        phases = [
            (f"top-{args.k} -> parquet", "top.parquet", lambda: top_k_frames(model, catalogue, args.k)),
            (f"top-{args.k} -> csv", "top.csv", lambda: top_k_frames(model, catalogue, args.k)),
            ("10 similar films -> parquet", "similar.parquet",
             lambda: similar_frames(MovieSimilarity.of(model), catalogue, 10)),
            ("node embeddings -> parquet", "embeddings.parquet", lambda: embedding_frames(model, catalogue)),
        ]  # fmt: skip
        for name, file, frames in phases:
            with harness.timed() as phase:
                try:
                    rows = write_table(scratch / file, frames())
                except ValueError as error:  # a model without embeddings
                    rows = None
                    print(f"  {name}: not available ({error})")
            if rows is None:
                continue
            seconds = phase.seconds
            size = (scratch / file).stat().st_size / 2**20
            print(f"  {name}: {seconds:.2f} s, {rows} rows, {size:.1f} MiB")
    peak = harness.peak_rss_mib()
    print(f"peak resident memory of this process: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
