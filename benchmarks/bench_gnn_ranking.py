"""Choose the GNN's ranking objective on VALIDATION metrics (ML-100k u1); test only the chosen config, once.

    python benchmarks/bench_gnn_ranking.py --variants default lam0 bpr --seeds 0
    python benchmarks/bench_gnn_ranking.py --variants default --seeds 0 1 2 --test

Each variant is a set of GNN config overrides (``VARIANTS``, or ``--set key=value`` on top of all).
Per fit it prints the best validation RMSE (rating snapshot) and validation ndcg@10 / recall@10 of the
ranking snapshot, the epochs at which both were kept, the epochs run and the fit seconds, and the
validation ndcg@10 / recall@10 of ranking by P(rates) x P(rating >= 4 | rates) from the same fit. With
``--test`` it also prints the test metrics of every fit (use it only for the chosen variant).
"""

from __future__ import annotations

import argparse
import json

import torch

from gnnrec.benchmark import harness
from gnnrec.benchmark.report import format_mean_std
from gnnrec.config import parse_set_options
from gnnrec.data import load_split
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model

VARIANTS: dict[str, dict] = {
    "default": {},
    "lam0": {"rank_weight": 0.0},  # rank by the rating head's expected rating
    "bpr": {"rank_loss": "bpr"},
    "lam0.2": {"rank_weight": 0.2},
    "lam1": {"rank_weight": 1.0},
    "gs0.3": {"rank_grad_scale": 0.3},
    "gs1": {"rank_grad_scale": 1.0},
    "like0": {"rank_like_weight": 0.0},
    "like3": {"rank_like_weight": 3.0},
    "lr0.02": {"lr": 0.02},
    # the multinomial's normaliser from sampled movies (a multiple of the mean training ratings per user)
    "neg2": {"rank_negatives": 2.0},
    "neg4": {"rank_negatives": 4.0},
    "neg8": {"rank_negatives": 8.0},
}
METRICS = ["rmse", "ndcg@10", "recall@10"]


class RatesTimesLikes:
    """The combination P(rates) x P(rating >= 4 | rates) of a fitted GNN's ranking snapshot, as a ranker:
    log-score = ranking logit + log P(like) from the same network's bilinear rating decoder."""

    name = "gnn[rates x likes]"

    def __init__(self, model) -> None:
        self.model, self.info, self.predicts_ratings = model, model.info, False

    def score_matrix(self, users: torch.Tensor, clip: bool = False) -> torch.Tensor:
        model = self.model
        net = model.rank_members[0]
        (z_user, z_movie), values = model._ranking_embeddings()[0], net.rating_values
        low, high = float(values.min()), float(values.max())
        liked = (values >= low + 0.75 * (high - low)).float()
        with torch.no_grad():
            p_like = net.decoder.score_all(z_user[users], z_movie, values=liked)
            return net.rank_all(z_user[users], z_movie) + p_like.clamp_min(1e-6).log()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--split", default="u1")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--test", action="store_true", help="also evaluate every fit on the test part (once)")
    harness.add_options(parser, data_dir=True, threads=1)
    args = parser.parse_args(argv)
    threads = harness.apply_options(args)
    split = load_split("ml-100k", args.split, source_dir=args.data_dir)
    common = parse_set_options(args.overrides)
    summary: dict[str, list[dict]] = {}
    for name in args.variants:
        for seed in args.seeds:
            model = create_model("gnn", {**VARIANTS[name], **common, "seed": seed, "threads": threads})
            with harness.timed() as fit:
                model.fit(split)
            seconds = fit.seconds
            val = evaluate(model, split, part="val", metrics=METRICS, tie_seed=seed).metrics
            row = {"variant": name, "seed": seed, "fit_s": round(seconds, 1), "epochs": len(model.history)}
            row |= {"kept": model.selected_epochs[0]} | {f"val_{k}": round(v, 4) for k, v in val.items()}
            if model.rank_members and model.config.decoder == "bilinear":
                combined = evaluate(RatesTimesLikes(model), split, part="val", metrics=METRICS[1:], tie_seed=seed)
                row |= {f"val_{k}[x like]": round(v, 4) for k, v in combined.metrics.items()}
            if args.test:
                test = evaluate(model, split, part="test", metrics=METRICS, tie_seed=seed).metrics
                row |= {f"test_{k}": round(v, 4) for k, v in test.items()}
            summary.setdefault(name, []).append(row)
            print(json.dumps(row), flush=True)
    print()
    for name, rows in summary.items():
        keys = [k for k in rows[0] if k.startswith(("val_", "test_")) or k == "fit_s"]
        print(f"{name:10s} " + "  ".join(f"{k} {format_mean_std([r[k] for r in rows])}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
