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
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def end_to_end(args: argparse.Namespace, out: Path) -> float:
    command = [sys.executable, "-m", "gnnrec", "export", str(args.checkpoint), "--out", str(out), "-k", str(args.k)]
    command += ["--quiet", "--threads", str(args.threads)] + (["--data-dir", args.data_dir] if args.data_dir else [])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    tic = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - tic


def fit_synthetic(size: str, path: Path) -> Path:
    """Fit the GNN on synthetic data of ``size`` (``bench_sizes.py``'s shape and budget) and save it to ``path``."""
    import gc

    from bench_sizes import SIZES, budget

    from gnnrec.data import load_split
    from gnnrec.models import create_model

    tic = time.perf_counter()
    split = load_split("synthetic", **SIZES[size], log=False)
    print(f"synthetic {size}: {split.num_users} users, {split.num_movies} movies, {len(split.train)} training "
          f"ratings; loaded in {time.perf_counter() - tic:.1f} s")  # fmt: skip
    config = budget("gnn", SIZES[size])
    tic = time.perf_counter()
    model = create_model("gnn", config).fit(split)
    model.save(path)
    print(f"gnn fit with {config} and saved in {time.perf_counter() - tic:.1f} s")
    del model, split
    gc.collect()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="checkpoint or run directory (not with --synthetic)")
    parser.add_argument(
        "--synthetic",
        choices=["tiny", "ml-1m", "ml-10m", "ml-25m"],
        default=None,
        help="fit a GNN on synthetic data of this shape (bench_sizes.py's budget) and export it",
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("-k", "--k", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the issue's 2 cores)")
    args = parser.parse_args()
    if (args.checkpoint is None) == (args.synthetic is None):
        parser.error("give a CHECKPOINT or --synthetic SIZE (one of them)")
    import torch

    torch.set_num_threads(args.threads)
    from gnnrec.cli.common import checkpoint_path, load_checkpoint, split_from_args
    from gnnrec.models import RatingModel
    from gnnrec.serving import Catalogue, MovieSimilarity, embedding_frames, similar_frames, top_k_frames, write_table

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.synthetic:
            args.checkpoint = fit_synthetic(args.synthetic, scratch / "model.safetensors")
        runs = [end_to_end(args, scratch / "e2e.parquet") for _ in range(args.repeats)]
        print(f"end to end (python -m gnnrec export --out top.parquet -k {args.k} --threads {args.threads}), "
              f"{args.repeats} runs: median {statistics.median(runs):.2f} s "
              f"({', '.join(f'{r:.2f}' for r in runs)})")  # fmt: skip
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(f"peak resident memory of the export processes: {children:.2f} GiB")
        if args.synthetic:
            return 0

        data = Namespace(dataset=None, split=None, data_dir=args.data_dir, val_fraction=None, data_seed=None)
        tic = time.perf_counter()
        info = RatingModel.load(checkpoint_path(args.checkpoint))
        split = split_from_args(data, {"dataset": info.info.dataset, **info.info.settings})
        split_seconds = time.perf_counter() - tic
        tic = time.perf_counter()
        model, split = load_checkpoint(args.checkpoint, data)
        load_seconds = time.perf_counter() - tic
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
            tic = time.perf_counter()
            try:
                rows = write_table(scratch / file, frames())
            except ValueError as error:  # a model without embeddings
                print(f"  {name}: not available ({error})")
                continue
            seconds = time.perf_counter() - tic
            size = (scratch / file).stat().st_size / 2**20
            print(f"  {name}: {seconds:.2f} s, {rows} rows, {size:.1f} MiB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak resident memory of this process: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
