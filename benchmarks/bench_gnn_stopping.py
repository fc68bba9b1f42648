"""When should a default GNN fit stop? One long fit per dataset, its validation history replayed under stopping rules.

    python benchmarks/bench_gnn_stopping.py --dataset ml-100k --split u1 --budget 3000 --threads 1
    python benchmarks/bench_gnn_stopping.py --dataset douban --data-dir ../shared/data/douban --budget 3000

The GNN is fitted once with its default config except ``max_epochs=--budget`` and a patience as long as the
budget, so it validates every ``val_every`` epochs and never stops early. Early stopping only truncates a fit (the
weights up to the stopping epoch do not depend on the rule), so each rule's outcome is read exactly from that
history: the epoch it stops at (or that it used the whole budget), and the validation RMSE and ndcg@10 of the
two snapshots it would keep. Validation metrics only; no test rating is read. ``--history-out`` keeps the
history as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from typing import Any

from gnnrec.benchmark import harness
from gnnrec.data.registry import load_split
from gnnrec.evaluation.validation import improved
from gnnrec.models import create_model
from gnnrec.models.gnn.training import plateau_gain

RATING, RANKING = "val_rmse", "val_ndcg@10"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--split", default=None, help="the dataset's split (default: its default split)")
    parser.add_argument("--budget", type=int, default=3000, help="epochs of the long fit")
    parser.add_argument("--budgets", type=int, nargs="+", default=[1000, 2000, 3000], help="budgets replayed")
    parser.add_argument("--patiences", type=int, nargs="+", default=[60, 100], help="patiences replayed")
    parser.add_argument("--tolerances", type=float, nargs="+", default=[0.0, 2e-4, 5e-4, 1e-3, 2e-3],
                        help="plateau tolerances replayed (shares of the last counted gain)")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--history-out", default=None, help="also write the validation history here (JSON)")
    harness.add_options(parser, data_dir=True, seed=0)
    return parser.parse_args(argv)


def replay(history: Sequence[dict[str, Any]], budget: int, patience: int, tolerance: float) -> dict[str, Any]:
    """What the trainer's stopping rule does on ``history`` (validation rows): stop epoch, how it ended, the kept
    snapshots (epoch and value of the best validation RMSE and ndcg@10 up to the stop)."""
    best: dict[str, tuple[float | None, int]] = {RATING: (None, 0), RANKING: (None, 0)}
    gain: dict[str, tuple[float | None, int]] = dict(best)
    for row in history:
        epoch = row["epoch"]
        if epoch > budget:
            break
        for key in best:
            metric = key.removeprefix("val_")
            if improved(metric, row[key], best[key][0]):
                best[key] = (row[key], epoch)
            if plateau_gain(metric, row[key], gain[key][0], tolerance):
                gain[key] = (row[key], epoch)
        if epoch - max(epoch_ for _, epoch_ in gain.values()) >= patience:
            return {"end": epoch, "ended": "plateau", "best": best}
    last = min(budget, history[-1]["epoch"])
    still = last - max(epoch_ for _, epoch_ in gain.values()) < patience
    return {"end": last, "ended": "budget, still improving" if still else "budget", "best": best}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    threads = harness.apply_options(args)
    settings = {"source_dir": args.data_dir} if args.data_dir else {}
    split = load_split(args.dataset, args.split, log=False, **settings)
    overrides: dict[str, Any] = dict(item.split("=", 1) for item in args.overrides)
    overrides.update(max_epochs=args.budget, patience=args.budget, seed=args.seed)
    if threads is not None:
        overrides["threads"] = threads
    model = create_model("gnn", overrides)
    with harness.timed() as clock:
        model.fit(split)
    history = [row for row in model.history if RATING in row and RANKING in row]
    if args.history_out:
        with open(args.history_out, "w", encoding="utf-8") as handle:
            json.dump(history, handle)
    print(f"# GNN stopping rules replayed on one long fit: {split.name}\n")
    print(f"- long fit: {args.budget} epochs in {clock.seconds:.1f} s; preset {model.preset_name}; seed {args.seed}; "
          f"torch threads {threads}; overrides {json.dumps(overrides)}")  # fmt: skip
    print("- validation metrics only (the validation carve-out of train); no test rating is read\n")
    print("| epoch | val RMSE | val ndcg@10 |\n|---:|---:|---:|")
    marks = sorted({args.budget, *range(200, args.budget + 1, 200)})
    for row in history:
        if row["epoch"] in marks:
            print(f"| {row['epoch']} | {row[RATING]:.4f} | {row[RANKING]:.4f} |")
    print("\n| max_epochs | patience | plateau_tolerance | stops at | ended by | val RMSE (at) | val ndcg@10 (at) |")
    print("|---:|---:|---:|---:|---|---|---|")
    for budget, patience, tolerance in itertools.product(args.budgets, args.patiences, args.tolerances):
        if budget > args.budget:
            continue
        out = replay(history, budget, patience, tolerance)
        (rmse, rmse_at), (ndcg, ndcg_at) = out["best"][RATING], out["best"][RANKING]
        print(f"| {budget} | {patience} | {tolerance:g} | {out['end']} | {out['ended']} | {rmse:.4f} ({rmse_at}) | "
              f"{ndcg:.4f} ({ndcg_at}) |")  # fmt: skip


if __name__ == "__main__":
    main()
