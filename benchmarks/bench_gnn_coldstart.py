"""How should the GNN train for new users (or films)? A screen on validation cold nodes only.

    python benchmarks/bench_gnn_coldstart.py --data-dir ../shared/data/ml-100k --threads 1 \
        --set induction_users=0.1 --set induction_movies=0.1 --set max_epochs=300

Draws the cold-start protocol's held-out users (``--kind movies``: films) of ML-100k ``--split`` (draw ``--seed``)
and, from the remaining training nodes, the validation cold nodes the suite tunes references on
(:func:`gnnrec.coldstart.protocol.validation_draw`). The GNN (default config plus ``--set`` overrides) is fitted
on that validation split, and each validation cold node's earliest ``n`` ratings are folded in; the rest are
scored. It prints ndcg@10 and RMSE per ``n``, beside references with their default settings on the same nodes
(users: liked-film and demographic popularity; films: the movie and genre-group means), and the GNN's warm
validation RMSE and ndcg@10 (the validation carve-out of its training users). No held-out test node and no test
rating is read.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gnnrec.benchmark import harness
from gnnrec.benchmark.suite import create_cell_model
from gnnrec.coldstart.evaluation import evaluate_coldstart
from gnnrec.coldstart.protocol import DEFAULT_SUPPORT_SIZES, coldstart_draw, validation_draw
from gnnrec.data.registry import load_split
from gnnrec.evaluation.validation import validation_metrics
from gnnrec.utils import seed_everything

REFERENCES = {"users": ("liked-popularity", "demographic-popularity"), "movies": ("movie-mean", "group-mean")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="u1", help="ML-100k split (default u1)")
    parser.add_argument("--kind", choices=tuple(REFERENCES), default="users", help="new users or new films")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="GNN config override (VALUE read as JSON, else as text); repeatable")  # fmt: skip
    harness.add_options(parser, data_dir=True, threads=1, seed=0)
    return parser.parse_args(argv)


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = harness.apply_options(args)
    split = load_split("ml-100k", args.split, source_dir=args.data_dir, log=False)
    validation = validation_draw(coldstart_draw(split, args.kind, seed=args.seed))
    overrides = {key: parse_value(value) for key, value in (item.split("=", 1) for item in args.overrides)}
    seed_everything(args.seed)
    gnn = create_cell_model("gnn", {**overrides, "seed": args.seed}, test_config=False, coldstart=True)
    started = time.perf_counter()
    gnn.fit(validation.split)
    fit_seconds = time.perf_counter() - started
    models = {"gnn": gnn}
    for name in REFERENCES[args.kind]:
        models[name] = create_cell_model(name, {}, test_config=False, coldstart=True).fit(validation.split)
    rated = ["gnn", *(name for name in REFERENCES[args.kind] if args.kind == "movies")]  # the columns with an RMSE
    chosen = json.dumps(overrides, sort_keys=True)
    warm = validation_metrics(gnn, validation.split, ("rmse", "ndcg@10"))
    print(f"split {args.split}, draw seed {args.seed}, {len(validation.held_out)} validation cold {args.kind}; "
          f"gnn overrides {chosen}; fit {fit_seconds:.1f} s, {threads} thread(s); "
          f"warm validation rmse {warm['rmse']:.4f}, ndcg@10 {warm['ndcg@10']:.4f}")  # fmt: skip
    print(f"| n | {args.kind} | " + " | ".join(f"{name} ndcg@10" for name in models) + " | "
          + " | ".join(f"{name} rmse" for name in rated) + " |")  # fmt: skip
    print("|---:|---:|" + "---:|" * (len(models) + len(rated)))
    for n in DEFAULT_SUPPORT_SIZES:
        episode = validation.episode(n)
        if not len(episode.nodes):
            print(f"| {n} | 0 |" + " — |" * (len(models) + len(rated)))
            continue
        metrics = {
            name: evaluate_coldstart(model, validation, episode, metrics=["ndcg@10", "rmse"])
            for name, model in models.items()
        }
        ndcg = " | ".join(f"{metrics[name]['ndcg@10']:.4f}" for name in models)
        rmse = " | ".join(f"{metrics[name]['rmse']:.4f}" for name in rated)
        print(f"| {n} | {len(episode.nodes)} | {ndcg} | {rmse} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
