"""Compare models with the benchmark runner; a suite is plain data (here a dict).

    python examples/compare_models.py                              # every registered model on u1
    python examples/compare_models.py --models bias mf gnn --seeds 0 1 2
    python examples/compare_models.py --fast --data-dir DIR        # tiny configs: a smoke test

The run directory (printed at the end) holds results.json/.csv/.md, plots and TensorBoard logs;
running again with the same --out reuses the finished cells. `gnnrec benchmark` does the same.
"""

from __future__ import annotations

import argparse

from gnnrec.benchmark import run_benchmark, summary_table
from gnnrec.models import available_models


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit and evaluate several models on the same splits and seeds.")
    parser.add_argument("--data-dir", help="raw MovieLens-100k files (default: $GNNREC_ML100K_DIR, else download)")
    parser.add_argument("--models", nargs="+", default=available_models(), help="registered model names")
    parser.add_argument("--splits", nargs="+", default=["u1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--fast", action="store_true", help="each model's tiny test configuration")
    parser.add_argument("--out", default=None, help="run directory (default: under $GNNREC_HOME/runs)")
    args = parser.parse_args(argv)

    suite = {
        "name": "compare",
        "description": "examples/compare_models.py",
        "splits": args.splits,
        "seeds": args.seeds,
        "models": args.models,
        "test_config": args.fast,
    }
    run = run_benchmark(suite, args.out, data_dir=args.data_dir, projector=False)
    print(summary_table(run.results))

    best = min(
        (row for row in run.results["summary"] if row["metrics"]["rmse"]["mean"] is not None),
        key=lambda row: row["metrics"]["rmse"]["mean"],
    )
    print(f"\nlowest test RMSE: {best['label']} ({best['metrics']['rmse']['mean']:.4f})")
    print(f"results in {run.directory}")


if __name__ == "__main__":
    main()
