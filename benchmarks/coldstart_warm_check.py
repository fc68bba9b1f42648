"""Does inductive training (issue 12) cost warm accuracy? Validation RMSE of the GNN on ML-100k u1, per seed.

    python benchmarks/coldstart_warm_check.py --induction 0.1 --seeds 0 1 2 --epochs 300

Prints the best validation RMSE (the kept weights) of each seed and their mean; run once with
``--induction 0`` and once with the benchmark's share, and compare. Test ratings are not read.
"""

from __future__ import annotations

import argparse

from gnnrec.benchmark import harness
from gnnrec.data import load_split
from gnnrec.models import create_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--induction", type=float, default=0.1, help="induction_users = induction_movies")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=1000)
    harness.add_options(parser, data_dir=True, threads=1)
    args = parser.parse_args(argv)
    threads = harness.apply_options(args)
    split = load_split("ml-100k", "u1", source_dir=args.data_dir, log=False)
    values = []
    for seed in args.seeds:
        overrides = {"seed": seed, "max_epochs": args.epochs, "threads": threads}
        overrides.update(induction_users=args.induction, induction_movies=args.induction)
        with harness.timed() as fit:
            model = create_model("gnn", overrides).fit(split)
        best = min(row["val_rmse"] for row in model.history if "val_rmse" in row)
        values.append(best)
        print(f"induction={args.induction:g} seed={seed}: val_rmse={best:.4f} ({fit.seconds:.0f}s)")
    print(f"induction={args.induction:g} mean val_rmse over {len(values)} seeds: {sum(values) / len(values):.4f}")


if __name__ == "__main__":
    main()
