"""Which model works at which size on this machine? Peak memory and seconds to load, fit, evaluate, recommend.

For each size (the ``synthetic`` dataset in the shape of MovieLens-1M, -10M or -25M: same numbers of ratings,
users and movies, half-star levels) and each registered model, a fresh spawned process loads the random
split, fits the model with its default config under the budget below, computes RMSE/MAE over every test
rating (rating models), NDCG@10 and recall@10 over the whole catalogue for a seeded sample of test users,
and the top-10 recommendations of 1,000 users; it reports its own peak RSS (VmHWM), which includes the
loaded split. A model that refuses the size up front (``MemoryError`` with its estimate) is reported as
refused, one killed by a signal (the kernel's out-of-memory killer sends SIGKILL) as killed, one still
running after ``--timeout`` seconds as timed out. The dataset caches are built first, each in its own
process, and reused by later runs (``$GNNREC_HOME/datasets/synthetic``).

    python benchmarks/bench_sizes.py [--sizes ml-1m ml-10m ml-25m] [--models bias mf ...] [--threads 2]
        [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import tempfile
from pathlib import Path

import torch

from gnnrec.benchmark import harness
from gnnrec.data import load_split
from gnnrec.data.synthetic import ML25M_SIZE
from gnnrec.evaluation import evaluate
from gnnrec.models import available_models, create_model
from gnnrec.utils import available_memory

SIZES = {
    "ml-1m": {"num_ratings": 1_000_209, "num_users": 6_040, "num_movies": 3_706},
    "ml-10m": {"num_ratings": 10_000_054, "num_users": 69_878, "num_movies": 10_677},
    "ml-25m": dict(ML25M_SIZE),
    "tiny": {"num_ratings": 20_000, "num_users": 400, "num_movies": 300},  # a smoke test of the script
}
DEFAULT_SIZES = ["ml-1m", "ml-10m", "ml-25m"]
# Fit budgets (overrides of the default configs). Small: up to 2M ratings, where the GNN's epoch is one
# full-batch step; large: one epoch over the training ratings. EASE takes u1's chosen λ instead of its
# six-value grid (six inversions and six validations); LightGCN propagates the whole graph at every batch,
# so at scale its batches are larger than its default 8,192.
SMALL = 2_000_000
BUDGETS = {
    "small": {
        "ease": {"reg": 200.0},
        "mf": {"max_epochs": 10},
        "lightgcn": {"max_epochs": 10},
        "gnn": {"max_epochs": 100, "val_every": 10, "use_ids": True, "rank_weight": 0.0},
        "glocal-k": {"pretrain_epochs": 2, "finetune_epochs": 2},
    },
    "large": {
        "ease": {"reg": 200.0},
        "mf": {"max_epochs": 1},
        "lightgcn": {"max_epochs": 1, "batch_size": 131_072},
        "gnn": {"max_epochs": 1, "val_every": 1, "use_ids": True, "rank_weight": 0.0, "rank_selection_metric": "rmse"},
        "glocal-k": {"pretrain_epochs": 2, "finetune_epochs": 2},
    },
}
RANKED_USERS = 2_000
RECOMMEND_USERS = 1_000


def budget(model: str, size: dict) -> dict:
    overrides = BUDGETS["small" if size["num_ratings"] <= SMALL else "large"].get(model, {})
    if model == "gnn":
        overrides = {**overrides, "device": "cpu"}
    return dict(overrides)


def _prepare(size: dict, out: str) -> None:
    with harness.timed() as clock:
        split = load_split("synthetic", **size, log=False)
    counts = {"train": len(split.train), "val": len(split.val), "test": len(split.test)}
    Path(out).write_text(json.dumps({"status": "ok", "seconds": clock.seconds, "counts": counts}))


def _cell(model_name: str, size: dict, threads: int, out: str) -> None:
    torch.set_num_threads(threads)
    result: dict = {"status": "ok"}
    with harness.timed() as clock:
        split = load_split("synthetic", **size, log=False)
    result["load_s"] = clock.seconds
    generator = torch.Generator().manual_seed(0)
    test_users = torch.unique(split.test.user)
    sample = test_users[torch.randperm(len(test_users), generator=generator)[:RANKED_USERS]]
    model = create_model(model_name, budget(model_name, size))
    try:
        with harness.timed() as clock:
            model.fit(split)
    except MemoryError as error:
        result.update(status="refused", message=str(error), peak_gib=harness.peak_rss_gib())
        Path(out).write_text(json.dumps(result))
        return
    result["fit_s"] = clock.seconds
    result["epochs"] = len(model.history)
    if model.predicts_ratings:
        with harness.timed() as clock:
            rating = evaluate(model, split, metrics=["rmse", "mae"]).metrics
        result.update(rmse=rating["rmse"], mae=rating["mae"], rating_eval_s=clock.seconds)
    with harness.timed() as clock:
        ranking = evaluate(model, split, metrics=["ndcg@10", "recall@10"], users=sample)
    result.update(ndcg=ranking.metrics["ndcg@10"], recall=ranking.metrics["recall@10"])
    result.update(ranked_users=ranking.num_ranked_users, ranking_eval_s=clock.seconds)
    with harness.timed() as clock:
        model.recommend(sample[:RECOMMEND_USERS], k=10)
    result["recommend_s"] = clock.seconds
    result["peak_gib"] = harness.peak_rss_gib()
    Path(out).write_text(json.dumps(result))


def run_child(target, args: tuple, timeout: float) -> dict:
    """Run ``target(*args, out_path)`` in a spawned process; its JSON result, or why there is none."""
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "result.json"
        child = context.Process(target=target, args=(*args, str(out)))
        with harness.timed() as clock:
            child.start()
            child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
            return {"status": "timed out", "message": f"still running after {timeout:.0f} s"}
        if out.exists():
            return {**json.loads(out.read_text()), "wall_s": clock.seconds}
        code = child.exitcode
        reason = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return {
            "status": "killed" if code < 0 else "failed",
            "message": reason + (" (SIGKILL: out of memory?)" if code == -9 else ""),
        }


def _number(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, choices=list(SIZES))
    parser.add_argument("--models", nargs="+", default=available_models(), choices=available_models())
    harness.add_options(parser, threads=2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a model's process is killed")
    args = parser.parse_args(argv)
    args.threads = harness.thread_count(args)  # set in each model's process
    print(f"machine: {platform.machine()}, {multiprocessing.cpu_count()} CPUs, "
          f"{available_memory(torch.device('cpu')) / 2**30:.1f} GiB available at start; torch {torch.__version__}; "
          f"{args.threads} threads per model; timeout {args.timeout:.0f} s")  # fmt: skip
    print(f"budgets (default configs plus these overrides; small = up to {SMALL:,} ratings): {BUDGETS}")
    rows = []
    for size_name in args.sizes:
        size = SIZES[size_name]
        prepared = run_child(_prepare, (size,), args.timeout)
        if prepared["status"] != "ok":
            raise RuntimeError(f"{size_name}: generating the data failed: {prepared['message']}")
        counts = prepared["counts"]
        print(f"\n{size_name} shape: {size['num_ratings']:,} ratings, {size['num_users']:,} users, "
              f"{size['num_movies']:,} movies; split {counts['train']:,} / {counts['val']:,} / {counts['test']:,}; "
              f"generate or load the cache {prepared['seconds']:.1f} s", flush=True)  # fmt: skip
        for model_name in args.models:
            result = run_child(_cell, (model_name, size, args.threads), args.timeout)
            print(f"  {model_name}: {json.dumps(result)}", flush=True)
            rows.append((size_name, model_name, result))
    print("\n<!-- table:sizes -->")
    print("| size | model | status | peak RSS GiB | fit s (epochs) | test RMSE | NDCG@10 | recall@10 | "
          "ranking s | recommend 1k s |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for size_name, model_name, r in rows:
        fit = f"{r['fit_s']:.0f} ({r['epochs']})" if "fit_s" in r else "–"
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('message', '')}"
        cells = [_number(r.get("peak_gib"), ".2f"), fit, _number(r.get("rmse"), ".4f"), _number(r.get("ndcg"), ".4f"),
                 _number(r.get("recall"), ".4f"), _number(r.get("ranking_eval_s"), ".0f"),
                 _number(r.get("recommend_s"), ".1f")]  # fmt: skip
        print(f"| {size_name} | {model_name} | {status} | {' | '.join(cells)} |")
    print("<!-- /table:sizes -->")


if __name__ == "__main__":
    main()
