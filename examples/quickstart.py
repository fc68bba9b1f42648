"""Quickstart: load MovieLens-100k, train gnnrec's GNN, evaluate it once on the test ratings, recommend.

python examples/quickstart.py                      # $GNNREC_ML100K_DIR, else downloads the data
python examples/quickstart.py --data-dir /path/to/ml-100k --set max_epochs=200
python examples/quickstart.py --fast               # tiny configuration: a smoke test, not a result
"""

from __future__ import annotations

import argparse

from gnnrec.config import parse_set_options
from gnnrec.data import MovieLens100K
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train and evaluate the GNN on one MovieLens-100k split.")
    parser.add_argument("--data-dir", help="raw MovieLens-100k files (default: $GNNREC_ML100K_DIR, else download)")
    parser.add_argument("--split", default="u1", help="u1..u5, ua, ub or random")
    parser.add_argument("--fast", action="store_true", help="the model's tiny test configuration")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="GNN config override")
    args = parser.parse_args(argv)

    # 1. Data: a PyG HeteroData rating graph; message edges are the training ratings only.
    split = MovieLens100K(split=args.split, source_dir=args.data_dir).rating_split()
    print(split)

    # 2. Model by registry name: its dataclass config, overridable field by field.
    model = create_model("gnn", parse_set_options(args.set), test_config=args.fast)
    model.fit(split)  # early stopping on split.val; the test ratings are not read
    best = min(model.history, key=lambda row: row.get("val_rmse", float("inf")))
    print(f"trained {len(model.history)} epochs; best validation RMSE {best.get('val_rmse', float('nan')):.4f}")

    # 3. Evaluation: once, on the test ratings.
    result = evaluate(model, split, part="test")
    for name, value in result.metrics.items():
        print(f"  test {name:<13} {value:.4f}")

    # 4. Recommendations for the first user (movies they rated are excluded).
    movies, scores = model.recommend([0], k=5)
    titles = split.graph["movie"].title
    print(f"top 5 for user {int(split.graph['user'].raw_id[0])}:")
    for movie, score in zip(movies[0].tolist(), scores[0].tolist(), strict=True):
        print(f"  {score:.2f}  {titles[movie]}")


if __name__ == "__main__":
    main()
