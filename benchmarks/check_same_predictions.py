"""Do two checkouts of gnnrec predict the same ML-100k ratings, as fast? (Are committed results still the code's?)

    python benchmarks/check_same_predictions.py OLD_CHECKOUT NEW_CHECKOUT [--models gnn glocal-k ...]
        [--repeats 3] [--no-warmup] --out benchmarks/results/same_predictions.md

Each checkout's ``gnnrec`` is imported in its own subprocess (``PYTHONPATH`` = the checkout), fits short
default-config runs of the chosen models (few epochs, seed 0, one thread) on u1 and predicts the test
ratings (ranking-only models: scores every user × movie); the script reports whether the two outputs are
bit-identical, their largest and root-mean-square differences, each side's test RMSE, and the fit seconds (of
the second of two identical fits in the process, the first paying one-time imports and allocations, or of the
only fit with ``--no-warmup``, for runs long enough that those costs do not count; the fastest of ``--repeats``
processes per side, the sides alternating so that a busy spell hits both; and the process's CPU seconds in that
fit, which a machine shared with other jobs inflates less). It also gives the epochs each fit ran (its history
rows) and the ratio of seconds per epoch, since fits that stop early may stop at different epochs.
``glocal-k/full`` and ``gnn/full`` are one default (full-length) fit each. The children time and thread
themselves in code that older checkouts run too (so not with :mod:`gnnrec.benchmark.harness`). Equal predictions after
the same seeded steps mean the later commits left the ML-100k code path alone, so results produced at the
older commit (e.g. ``benchmarks/results/paper``) still describe the newer code. Needs the ML-100k files
(``--data-dir``, else ``$GNNREC_ML100K_DIR``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from gnnrec.benchmark import harness
from gnnrec.utils import atomic_write_text

# short runs: the first epochs exercise every part of the fit (encoder, decoder, losses, EMA, validation);
# a run named "<model>/<variant>" fits <model>. The GNN's epoch budget keeps the spelling "epochs", which older
# checkouts know too (newer ones warn and read it as max_epochs).
RUNS = {
    "gnn": {"epochs": 15, "val_every": 5, "threads": 1},
    "gnn/mini-batch": {"epochs": 15, "val_every": 5, "threads": 1, "batch_size": 30000},  # 3 steps per epoch
    "gnn/full": {"threads": 1},  # one default fit, to its early stop
    "glocal-k": {"pretrain_epochs": 3, "finetune_epochs": 2},
    "glocal-k/full": {},
    "global-mean": {},
    "bias": {},
    "mf": {"max_epochs": 5},
    "popularity": {},
    "ease": {},
    "lightgcn": {"max_epochs": 5},
}
DEFAULT_MODELS = ["gnn", "glocal-k"]

CHILD = """
import sys, time, torch
torch.set_num_threads(1)
import gnnrec
from gnnrec.data.registry import load_split
from gnnrec.models.registry import create_model
from gnnrec.provenance import code_version
runs = {runs!r}
warmup = {warmup!r}
split = load_split("ml-100k", "u1")
out = {{"version": code_version(), "file": gnnrec.__file__}}
for name, overrides in runs.items():
    model_name = name.split("/")[0]
    if warmup:  # the first fit pays one-time imports and allocations
        torch.manual_seed(0)
        create_model(model_name, overrides).fit(split)
    torch.manual_seed(0)
    start, cpu_start = time.perf_counter(), time.process_time()
    model = create_model(model_name, overrides).fit(split)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if getattr(model, "predicts_ratings", True):
        output = model.predict(split.test.user, split.test.movie)
        rmse = float((output.clamp(1, 5) - split.test.rating).pow(2).mean().sqrt())
    else:
        output, rmse = model.score_matrix(clip=False), None
    epochs = len(getattr(model, "history", None) or [])  # rows of its training history (0: none kept)
    out[name] = {{"output": output, "seconds": seconds, "cpu_seconds": cpu_seconds, "rmse": rmse, "epochs": epochs}}
torch.save(out, sys.argv[1])
"""


def predictions(checkout: Path, target: Path, runs: dict, data_dir: str | None = None, warmup: bool = True) -> dict:
    """Run the short fits with ``checkout``'s gnnrec in a subprocess (after a warm-up fit each); its outputs."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    if data_dir is not None:
        env["GNNREC_ML100K_DIR"] = str(Path(data_dir).resolve())
    code = CHILD.format(runs=runs, warmup=warmup)
    subprocess.run([sys.executable, "-c", code, str(target)], env=env, check=True, cwd=checkout)
    result = torch.load(target, weights_only=True)
    if not Path(result["file"]).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"{checkout}: imported gnnrec from {result['file']}, not from the checkout")
    return result


def describe(version: dict) -> str:
    """``git <commit>`` and whether the tree was dirty."""
    return f"git {version['commit_short']} ({'dirty' if version['dirty'] else 'clean'} tree)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path, help="checkout (a clean clone) of the older commit")
    parser.add_argument("new", type=Path, help="checkout (a clean clone) of the newer commit")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(RUNS))
    parser.add_argument("--repeats", type=int, default=1, help="fits per side; the fastest fit time is reported")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="time the only fit per process")
    parser.add_argument("--out", type=Path, default=None, help="write the report (markdown) here")
    harness.add_options(parser, data_dir=True, threads=None)
    args = parser.parse_args(argv)
    runs = {name: RUNS[name] for name in args.models}
    olds, news = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            olds.append(predictions(args.old, Path(scratch) / f"old{repeat}.pt", runs, args.data_dir, args.warmup))
            news.append(predictions(args.new, Path(scratch) / f"new{repeat}.pt", runs, args.data_dir, args.warmup))
    old, new = olds[0], news[0]
    timed = "a second, warm fit in each process" if args.warmup else "the only fit in each process (no warm-up)"
    lines = [
        "# Same ML-100k predictions at two commits (`benchmarks/check_same_predictions.py`)",
        "",
        f"Command: `python benchmarks/check_same_predictions.py OLD NEW --models {' '.join(args.models)} --repeats"
        f" {args.repeats}{'' if args.warmup else ' --no-warmup'}` with OLD = {describe(old['version'])},"
        f" NEW = {describe(new['version'])}; u1, seed 0, one thread. Fit seconds: {timed}; the fastest of"
        f" {args.repeats} processes per side,"
        " sides alternating. Ranking-only models"
        " compare their scores for every user × movie (no RMSE).",
        "",
        "| model | run (overrides) | outputs bit-identical | max abs difference | rms difference | test RMSE old"
        " | test RMSE new | fit s old | fit s new | new / old | fit CPU s old | fit CPU s new | CPU new / old"
        " | epochs old | epochs new | per epoch new / old |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, overrides in runs.items():
        a, b = old[name]["output"], new[name]["output"]
        same = a.shape == b.shape and torch.equal(a, b)
        gap = float((a - b).abs().max()) if a.shape == b.shape else float("nan")
        rms = float((a.double() - b.double()).pow(2).mean().sqrt()) if a.shape == b.shape else float("nan")
        old_s = min(run[name]["seconds"] for run in olds)
        new_s = min(run[name]["seconds"] for run in news)
        old_cpu = min(run[name]["cpu_seconds"] for run in olds)
        new_cpu = min(run[name]["cpu_seconds"] for run in news)
        rmse = [("–" if side[name]["rmse"] is None else f"{side[name]['rmse']:.4f}") for side in (old, new)]
        # runs that stop early may stop at other epochs: the time per history row compares their steps
        epochs = [side[name].get("epochs", 0) for side in (old, new)]
        per_epoch = f"{(new_s / epochs[1]) / (old_s / epochs[0]):.2f}" if all(epochs) else "–"
        lines.append(
            f"| {name} | `{overrides}` | {'yes' if same else 'no'} | {gap:.3g} | {rms:.3g} | {rmse[0]} | {rmse[1]}"
            f" | {old_s:.2f} | {new_s:.2f} | {new_s / old_s:.2f}"
            f" | {old_cpu:.2f} | {new_cpu:.2f} | {new_cpu / old_cpu:.2f}"
            f" | {epochs[0] or '–'} | {epochs[1] or '–'} | {per_epoch} |"
        )
    for versions in (olds, news):
        if len({describe(run["version"]) for run in versions}) != 1:
            raise RuntimeError("a checkout changed between repeats")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out is not None:
        atomic_write_text(args.out, report)


if __name__ == "__main__":
    main()
