"""Train the ``gnn`` model on MovieLens-25M-sized data: peak memory, seconds per epoch, test RMSE against ``bias``.

Generates the ``synthetic`` dataset (:mod:`gnnrec.data.synthetic`, default ML-25M's shape: 25,000,095
ratings, 162,541 users, 59,047 movies, half-star levels) in a child process (its cache under
``$GNNREC_HOME/datasets/synthetic`` is reused by later runs), loads its random split here, fits the ``bias``
baseline and then the GNN with its default config for ``--epochs`` epochs (``batch_size="auto"``: mini-batches
of 2^18 training edges above 2M training ratings), validating only after the last one (RMSE: the ranking
snapshot is selected on RMSE too here, since ranking metrics over every user x movie would cost more than the
training). Prints the peak RSS (VmHWM) of this process, the training seconds per epoch (without validation),
and the test RMSE of both models on the same split. Targets on a 2-core machine at ML-25M size: peak RSS
<= 12 GB, one epoch <= 10 min, RMSE clearly below the bias baseline's.

    python benchmarks/bench_gnn_large.py [--num-ratings N --num-users U --num-movies M] [--epochs 1]
        [--threads 2] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import multiprocessing

from gnnrec.benchmark import harness
from gnnrec.config import parse_set_options
from gnnrec.data import load_split
from gnnrec.data.synthetic import ML25M_SIZE
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model


def _settings(args: argparse.Namespace) -> dict:
    return {"num_users": args.num_users, "num_movies": args.num_movies, "num_ratings": args.num_ratings, "log": False}


def _prepare(settings: dict, queue) -> None:
    with harness.timed() as clock:
        split = load_split("synthetic", **settings)
    queue.put((clock.seconds, harness.peak_rss_gib(), len(split.train), len(split.val), len(split.test)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-ratings", type=int, default=ML25M_SIZE["num_ratings"])
    parser.add_argument("--num-users", type=int, default=ML25M_SIZE["num_users"])
    parser.add_argument("--num-movies", type=int, default=ML25M_SIZE["num_movies"])
    parser.add_argument("--epochs", type=int, default=1)
    harness.add_options(parser, threads=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="GNN config overrides")
    args = parser.parse_args(argv)
    settings = _settings(args)

    # the dataset cache is built in a child process, so that this process's peak RSS is the training's
    context = multiprocessing.get_context("spawn")
    queue = context.SimpleQueue()
    child = context.Process(target=_prepare, args=(settings, queue))
    child.start()
    seconds, child_peak, train, val, test = queue.get()
    child.join()
    print(f"data: synthetic {args.num_ratings:,} ratings, {args.num_users:,} users, {args.num_movies:,} movies; "
          f"split {train:,} train / {val:,} val / {test:,} test; generate or load the cache: {seconds:.1f} s "
          f"(peak RSS of that process {child_peak:.2f} GiB)", flush=True)  # fmt: skip

    with harness.timed() as clock:
        split = load_split("synthetic", **settings)
    print(f"load the split: {clock.seconds:.1f} s; peak RSS {harness.peak_rss_gib():.2f} GiB", flush=True)

    threads = harness.apply_options(args)
    with harness.timed() as clock:
        bias = create_model("bias").fit(split)
        bias_rmse = evaluate(bias, split, part="test", metrics=["rmse"]).metrics["rmse"]
    print(f"bias: fit + test {clock.seconds:.1f} s, test RMSE {bias_rmse:.4f}", flush=True)
    del bias

    overrides = {
        "max_epochs": args.epochs, "val_every": args.epochs, "patience": args.epochs, "rank_selection_metric": "rmse",
        "threads": threads, "device": "cpu", **parse_set_options(args.set),
    }  # fmt: skip
    model = create_model("gnn", overrides)
    config = model.config
    levels = len(split.rating_levels)
    hidden = max(levels, config.hidden_dim - config.hidden_dim % levels) if config.accumulate == "stack" else None
    per_node = hidden if hidden is not None else config.hidden_dim * levels  # first-layer weights per node
    onehot = (args.num_users + args.num_movies + 2) * per_node * 4 / 2**30
    print(f"gnn: onehot first layer {onehot:.2f} GiB of parameters ({per_node} weights per node); "
          f"with its gradient, Adam's two moments and the averaged copy {5 * onehot:.2f} GiB", flush=True)  # fmt: skip
    with harness.timed() as clock:
        model.fit(split)
    fit_seconds = clock.seconds
    epochs = model.history
    per_epoch = [row.get("train_seconds", row["seconds"]) for row in epochs]
    steps = epochs[-1].get("steps", len(epochs))
    print(f"gnn: fit {fit_seconds:.1f} s for {len(epochs)} epoch(s), {steps} optimizer steps "
          f"({sum(per_epoch) / max(steps, 1):.2f} s per step); training seconds per epoch: "
          f"{', '.join(f'{s:.1f}' for s in per_epoch)}", flush=True)  # fmt: skip
    fitted = model.fit_config
    print(f"gnn: preset {model.preset_name} (dropout {fitted.dropout}, node_dropout {fitted.node_dropout}); "
          f"overrides {overrides}; validation RMSE in model units (the scale mapped onto 1..5):")  # fmt: skip
    for row in epochs:
        if "val_rmse" in row:
            print(f"  epoch {row['epoch']:3d}  train RMSE {row.get('train_rmse', float('nan')):.4f}  "
                  f"val RMSE {row['val_rmse']:.4f}")  # fmt: skip
    print(f"gnn: kept the weights of epoch {model.selected_epochs[0]['rating']}")
    with harness.timed() as clock:
        gnn_rmse = evaluate(model, split, part="test", metrics=["rmse"]).metrics["rmse"]
    print(f"gnn: test {clock.seconds:.1f} s, test RMSE {gnn_rmse:.4f} (bias {bias_rmse:.4f})")
    print(f"peak RSS of the whole run (VmHWM, this process): {harness.peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
