"""Top-K bar on ML-100k u1: tune EASE's λ and LightGCN's knobs on VALIDATION ndcg@10, then test every peer once.

Usage: python benchmarks/bench_topk.py [--data-seed 0] [--seed 0] [--val-fraction 0.05] [--skip-grid]
Prints the validation metric of every grid point, the chosen configs, then the test ndcg@10 / recall@10 /
hit_rate@10 (untied, unclipped ranking; train+val movies excluded; relevant = rating ≥ 4) of popularity,
EASE, LightGCN and the rating baselines (global-mean, bias, mf).
"""

from __future__ import annotations

import argparse

from gnnrec.benchmark import harness
from gnnrec.data import MovieLens100K
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model
from gnnrec.utils import gnnrec_home

METRICS = ["ndcg@10", "recall@10", "hit_rate@10"]
EASE_GRID = (50.0, 100.0, 200.0, 300.0, 500.0, 1000.0)
LIGHTGCN_GRID = [  # (dim, num_layers, lr, reg); epochs by early stopping on validation ndcg@10
    {"dim": 64, "num_layers": 3, "lr": 0.005, "reg": 1e-4},
    {"dim": 64, "num_layers": 3, "lr": 0.02, "reg": 1e-4},
    {"dim": 64, "num_layers": 2, "lr": 0.02, "reg": 1e-3},
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-seed", type=int, default=0)
    harness.add_options(parser, data_dir=True, threads=1, seed=0)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--max-epochs", type=int, default=None, help="override LightGCN's max_epochs")
    parser.add_argument("--skip-grid", action="store_true", help="only test the default configs")
    args = parser.parse_args(argv)
    harness.apply_options(args)
    root = gnnrec_home() / "bench_topk"
    dataset = MovieLens100K(
        root, split="u1", source_dir=args.data_dir, val_fraction=args.val_fraction,
        seed=args.data_seed, log=False,
    )  # fmt: skip
    split = dataset.rating_split()
    print(f"{split.name}: {len(split.train)} train, {len(split.val)} val, {len(split.test)} test ratings")

    def val(model) -> dict[str, float]:
        return evaluate(model, split, part="val", metrics=METRICS, tie_seed=args.seed).metrics

    lgcn_base = {"seed": args.seed} | ({"max_epochs": args.max_epochs} if args.max_epochs else {})
    chosen_lgcn = dict(lgcn_base)
    if not args.skip_grid:
        print("\n# validation grid (selection by val ndcg@10)")
        ease = create_model("ease", {"reg_grid": EASE_GRID}).fit(split)
        for row in ease.history:
            print(f"ease reg={row['reg']:g}: val ndcg@10 {row['val_ndcg@10']:.4f}")
        print(f"ease chose reg={ease.reg:g}")
        best = None
        for knobs in LIGHTGCN_GRID:
            with harness.timed() as fit:
                model = create_model("lightgcn", lgcn_base | knobs).fit(split)
                metrics = val(model)
            print(
                f"lightgcn {knobs}: best epoch {model.best_epoch}, val "
                + " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                + f", fit {fit.seconds:.0f}s"
            )
            if best is None or metrics["ndcg@10"] > best[0]:
                best = (metrics["ndcg@10"], knobs)
        chosen_lgcn |= best[1]
        print(f"lightgcn chose {best[1]}")

    print("\n# test (evaluated once per model)")
    models = {
        "popularity": {"seed": args.seed},
        "ease": {},
        "lightgcn": chosen_lgcn,
        "global-mean": {},
        "bias": {},
        "mf": {"seed": args.seed},
    }
    for name, overrides in models.items():
        with harness.timed() as fit:
            model = create_model(name, overrides).fit(split)
        fit_seconds = fit.seconds
        result = evaluate(model, split, part="test", metrics=METRICS, tie_seed=args.seed)
        print(
            f"{name:12s} test "
            + " ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
            + f"  ({result.num_ranked_users} users, fit {fit_seconds:.0f}s)"
        )


if __name__ == "__main__":
    main()
