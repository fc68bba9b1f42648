"""How should the GNN train for new users? A screen on validation cold users only.

    python benchmarks/bench_gnn_coldstart.py --data-dir ../shared/data/ml-100k --threads 1 \
        --set induction_users=0.1 --set induction_movies=0.1 --set max_epochs=300

Draws the cold-start protocol's held-out users of ML-100k ``--split`` (draw ``--seed``) and, from the remaining
training users, the validation cold users the suite tunes references on (:func:`gnnrec.coldstart.protocol.
validation_draw`). The GNN (default config plus ``--set`` overrides) is fitted on that validation split, and each
validation cold user's earliest ``n`` ratings are folded in; the rest are scored. It prints ndcg@10 and RMSE per
``n``, beside liked-film and demographic popularity (their default settings) on the same users, and the GNN's
warm validation RMSE and ndcg@10 (the validation carve-out of its training users). No held-out test user and
no test rating is read.
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

REFERENCES = ("liked-popularity", "demographic-popularity")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="u1", help="ML-100k split (default u1)")
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
    validation = validation_draw(coldstart_draw(split, "users", seed=args.seed))
    overrides = {key: parse_value(value) for key, value in (item.split("=", 1) for item in args.overrides)}
    seed_everything(args.seed)
    gnn = create_cell_model("gnn", {**overrides, "seed": args.seed}, test_config=False, coldstart=True)
    started = time.perf_counter()
    gnn.fit(validation.split)
    fit_seconds = time.perf_counter() - started
    models = {"gnn": gnn}
    for name in REFERENCES:
        models[name] = create_cell_model(name, {}, test_config=False, coldstart=True).fit(validation.split)
    chosen = json.dumps(overrides, sort_keys=True)
    warm = validation_metrics(gnn, validation.split, ("rmse", "ndcg@10"))
    print(f"split {args.split}, draw seed {args.seed}, {len(validation.held_out)} validation cold users; "
          f"gnn overrides {chosen}; fit {fit_seconds:.1f} s, {threads} thread(s); "
          f"warm validation rmse {warm['rmse']:.4f}, ndcg@10 {warm['ndcg@10']:.4f}")  # fmt: skip
    print("| n | users | " + " | ".join(f"{name} ndcg@10" for name in models) + " | gnn rmse |")
    print("|---:|---:|" + "---:|" * (len(models) + 1))
    for n in DEFAULT_SUPPORT_SIZES:
        episode = validation.episode(n)
        if not len(episode.nodes):
            print(f"| {n} | 0 |" + " — |" * (len(models) + 1))
            continue
        metrics = {
            name: evaluate_coldstart(model, validation, episode, metrics=["ndcg@10", "rmse"])
            for name, model in models.items()
        }
        ndcg = " | ".join(f"{metrics[name]['ndcg@10']:.4f}" for name in models)
        print(f"| {n} | {len(episode.nodes)} | {ndcg} | {metrics['gnn']['rmse']:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
