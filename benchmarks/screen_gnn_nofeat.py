"""Validation-only screening of ``gnn`` variants without side features (issue 14), ML-100k u1.

    python benchmarks/screen_gnn_nofeat.py LABEL --seed 0 --set use_features=false --set KEY=VALUE ... \
        --jsonl benchmarks/results/gnn_nofeat_screening.jsonl

One fit per call on the split the benchmark runner uses (val_fraction 0.05, data seed 0). Prints and
appends (``--jsonl``) the best validation RMSE of the rating snapshot, its epoch, the epochs run and
the fit seconds. It never scores the test ratings: choices are made on these validation numbers only.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time

import torch

from gnnrec.config import config_to_dict, parse_set_options
from gnnrec.data import MovieLens100K
from gnnrec.models import create_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("label")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="u1")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jsonl", default=None, help="append the result row here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = parse_set_options(args.overrides)
    split = MovieLens100K(split=args.split, log=False).rating_split()
    model = create_model("gnn", {**overrides, "seed": args.seed, "threads": args.threads})
    started = time.perf_counter()
    model.fit(split)
    seconds = time.perf_counter() - started
    rows = [row for row in model.history if "val_rmse" in row]
    best = min(rows, key=lambda row: row["val_rmse"])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "label": args.label,
        "overrides": overrides,
        "seed": args.seed,
        "split": args.split,
        "best_val_rmse": round(best["val_rmse"], 5),
        "val_mae_at_best": round(best["val_mae"], 5),
        "best_epoch": best["epoch"],
        "epochs_run": len(model.history),
        "fit_seconds": round(seconds, 1),
        "threads": args.threads,
        "commit": commit,
        "machine": platform.node(),
        "config": config_to_dict(model.fit_config),
    }
    print(
        f"{args.label}: val_rmse {best['val_rmse']:.4f} at epoch {best['epoch']} / {len(model.history)}, "
        f"fit {seconds:.0f}s",
        flush=True,
    )
    if args.jsonl:
        with open(args.jsonl, "a") as handle:
            handle.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
