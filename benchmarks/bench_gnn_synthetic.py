"""The ``gnn`` model against the ``bias`` baseline on the ``synthetic`` dataset: validation RMSE, test once.

Loads a seeded ``synthetic`` split (:mod:`gnnrec.data.synthetic`; default 1M ratings, 6,500 users, 2,400
movies, half stars; ratings = biases + a rank-8 interaction + noise, so only a model that learns the
interaction beats ``bias``), fits ``bias`` and the GNN (its config from the split's preset, ``synthetic``,
plus ``--set`` overrides) and prints the GNN's validation learning curve, then the validation RMSE of
both models in rating units. With ``--test`` (run it once, for the chosen config) it also prints their test
RMSE. Design choices are made on the validation numbers only.

    python benchmarks/bench_gnn_synthetic.py [--num-ratings N --num-users U --num-movies M]
        [--taste-exposure B] [--epochs E] [--threads 1] [--test] [--set key=value ...]
"""

from __future__ import annotations

import argparse

from gnnrec.benchmark import harness
from gnnrec.config import parse_set_options
from gnnrec.data import load_split
from gnnrec.data.synthetic import DEFAULT_TASTE_EXPOSURE
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model


def rmse(model, split, part: str) -> float:
    """RMSE of ``model`` on ``part`` of ``split``, in rating units."""
    return evaluate(model, split, part=part, metrics=["rmse"]).metrics["rmse"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-ratings", type=int, default=1_000_000)
    parser.add_argument("--num-users", type=int, default=6_500)
    parser.add_argument("--num-movies", type=int, default=2_400)
    parser.add_argument("--taste-exposure", type=float, default=DEFAULT_TASTE_EXPOSURE, help="of the data")
    parser.add_argument("--epochs", type=int, default=1000, help="the GNN's epochs (early stopping on validation)")
    harness.add_options(parser, threads=1)
    parser.add_argument("--test", action="store_true", help="also print the test RMSE (once, for the chosen config)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="GNN config overrides")
    args = parser.parse_args(argv)
    threads = harness.apply_options(args)

    size = {"num_users": args.num_users, "num_movies": args.num_movies, "num_ratings": args.num_ratings}
    split = load_split("synthetic", **size, taste_exposure=args.taste_exposure, log=False)
    parts = f"{len(split.train):,} train / {len(split.val):,} val / {len(split.test):,} test"
    print(f"data: synthetic {args.num_ratings:,} ratings, {args.num_users:,} users, {args.num_movies:,} movies, "
          f"taste_exposure {args.taste_exposure:g}; split {parts}", flush=True)  # fmt: skip

    with harness.timed() as clock:
        bias = create_model("bias").fit(split)
        bias_val = rmse(bias, split, "val")
    print(f"bias: fit {clock.seconds:.1f} s, val RMSE {bias_val:.4f}", flush=True)

    overrides = {"max_epochs": args.epochs, "threads": threads, "device": "cpu", **parse_set_options(args.set)}
    model = create_model("gnn", overrides)
    with harness.timed() as clock:
        model.fit(split)
    seconds = clock.seconds
    config = model.fit_config
    print(f"gnn: preset {model.preset_name}; dropout {config.dropout}, node_dropout {config.node_dropout}, "
          f"patience {config.patience}, lr {config.lr}; overrides {overrides}")  # fmt: skip
    print("gnn learning curve (validation RMSE in model units, the scale mapped onto 1..5):")
    for row in model.history:
        if "val_rmse" in row:
            print(f"  epoch {row['epoch']:5d}  train RMSE {row['train_rmse']:.4f}  val RMSE {row['val_rmse']:.4f}")
    kept = model.selected_epochs[0]["rating"]
    print(f"gnn: fit {seconds:.1f} s, {len(model.history)} epochs, kept the weights of epoch {kept}")
    gnn_val = rmse(model, split, "val")
    print(f"val RMSE (rating units): gnn {gnn_val:.4f}, bias {bias_val:.4f} ({gnn_val / bias_val - 1:+.1%})")
    if args.test:
        gnn_test, bias_test = rmse(model, split, "test"), rmse(bias, split, "test")
        print(f"test RMSE (rating units): gnn {gnn_test:.4f}, bias {bias_test:.4f} ({gnn_test / bias_test - 1:+.1%})")


if __name__ == "__main__":
    main()
