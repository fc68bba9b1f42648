"""What each component of the "gnn" model buys: one config switch per variant, several seeds each.

    python benchmarks/ablations_gnn.py --seeds 0 1 2 --threads 1
    python benchmarks/ablations_gnn.py --variants full no-side-features --seeds 0

Every variant is the default config with a few keys changed (listed in the table), fitted
with the honest protocol (validation-selected, test scored once per fit) on ML-100k ``u1``.
Prints mean ± std of test RMSE, MAE and GLocal-K NDCG per variant, with fit seconds.
Most variants fit in under 60 s on one CPU thread; the MLP decoder and 2 layers take longer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gnnrec.config import parse_set_options
from gnnrec.data import MovieLens100K
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model

VARIANTS: dict[str, dict[str, object]] = {
    "full": {},
    "no side features": {"use_features": False},
    "rating-blind messages": {"message": "plain", "accumulate": "sum"},
    "FiLM rating messages": {"message": "film"},
    "no ordinal sharing": {"ordinal": False},
    "summed levels (not stacked)": {"accumulate": "sum"},
    "no graph (0 layers, ID emb.)": {"num_layers": 0, "use_ids": True},
    "2 layers": {"num_layers": 2},
    "ID-embedding input": {"input": "embedding", "use_ids": True},
    "dot decoder": {"decoder": "dot"},
    "MLP decoder": {"decoder": "mlp"},
    "cross-entropy loss only": {"mse_weight": 0.0},
    "squared-error loss only": {"ce_weight": 0.0},
    "no weight averaging (EMA)": {"ema_decay": 0.0},
    "targets also message edges": {"supervision": "all", "edge_dropout": 0.0},
}
METRICS = ("rmse", "mae", "ndcg")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME")
    parser.add_argument("--split", default="u1")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change the base config of every variant")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--data-dir", default=None, help="raw MovieLens-100k files (default $GNNREC_ML100K_DIR)")
    parser.add_argument("--json", default=None, help="also write every run's results here")
    return parser.parse_args(argv)


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {spread:.4f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = parse_set_options(args.overrides)
    split = MovieLens100K(split=args.split, source_dir=args.data_dir, log=False).rating_split()
    runs = []
    for name in args.variants:
        for seed in args.seeds:
            overrides = {**base, **VARIANTS[name], "seed": seed}
            model = create_model("gnn", overrides)
            started = time.perf_counter()
            model.fit(split)
            seconds = time.perf_counter() - started
            result = evaluate(model, split)
            runs.append({"variant": name, "seed": seed, "fit_seconds": seconds, "overrides": overrides,
                         "epochs": len(model.history), **result.to_dict()})  # fmt: skip
            scores = "  ".join(f"{m} {result.metrics[m]:.4f}" for m in METRICS)
            print(f"{name:<30} seed {seed}: {scores}  fit {seconds:.1f}s", flush=True)

    print(f"\n{split.name} test, seeds {' '.join(map(str, args.seeds))}, torch threads {torch.get_num_threads()}")
    header = f"{'variant':<30}" + "".join(f"{m.upper():>18}" for m in METRICS) + f"{'fit s':>10}  changed keys"
    print(header)
    for name in args.variants:
        rows = [r for r in runs if r["variant"] == name]
        cells = "".join(f"{mean_std([r['metrics'][m] for r in rows]):>18}" for m in METRICS)
        seconds = statistics.fmean(r["fit_seconds"] for r in rows)
        changed = ", ".join(f"{k}={v}" for k, v in VARIANTS[name].items()) or "(default config)"
        print(f"{name:<30}{cells}{seconds:>10.1f}  {changed}")
    if args.json:
        from gnnrec.utils import atomic_write_text

        atomic_write_text(args.json, json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
