"""Where do the GNN's and GLocal-K's fit seconds go on ML-100k u1? A short, bounded profile of each.

    python benchmarks/profile_fits.py [--models gnn glocal-k] [--threads 1] [--out benchmarks/results/profile.md]

Each model is fitted three times with a short run (bounded epochs, seed 0): once untimed (imports, first
allocations), once under ``cProfile`` (which Python functions hold the time: encoder, decoder, ranking loss,
validation, EMA copies, L-BFGS-B) and once under ``torch.profiler`` (which tensor operators, with their input
shapes: dense products, sparse products, copies). The report lists the fit seconds of each run, the Python
functions of gnnrec (and the few library entry points that matter: autograd's backward, L-BFGS-B's Fortran
step, deep copies) by cumulative time, and the operators by self time. Shares are of the profiled fit, whose
own overhead inflates many small calls; read them as proportions. Needs the ML-100k files
(``$GNNREC_ML100K_DIR``).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from gnnrec.benchmark import harness
from gnnrec.data.registry import load_split
from gnnrec.models.registry import create_model
from gnnrec.utils import atomic_write_text

# short runs that go through every part of a fit (for the GNN: training steps, EMA, validation, snapshots)
RUNS: dict[str, dict[str, Any]] = {
    "gnn": {"epochs": 40, "val_every": 5},
    "glocal-k": {"pretrain_epochs": 2, "finetune_epochs": 2},
}
# library functions worth a row beside gnnrec's own (the rest of torch/scipy is summed into these)
LIBRARY_ROWS = {"run_backward", "setulb", "deepcopy", "step", "_single_tensor_adam", "_update_fun", "lerp_"}


def python_rows(stats: pstats.Stats, total: float, limit: int) -> list[str]:
    """Markdown rows of gnnrec's functions (and :data:`LIBRARY_ROWS`) by cumulative seconds."""
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():
        ours = f"{os.sep}gnnrec{os.sep}" in filename
        if not ours and not LIBRARY_ROWS & set(re.findall(r"\w+", name)):
            continue
        where = filename.split(f"{os.sep}gnnrec{os.sep}")[-1] if ours else Path(filename).name or filename
        rows.append(
            (
                cumulative,
                f"| `{name}` | {where}:{line} | {calls} | {own:.2f} | {cumulative:.2f} | "
                f"{100 * cumulative / total:.0f}% |",
            )
        )
    rows.sort(key=lambda row: -row[0])
    return [text for _, text in rows[:limit]]


def operator_rows(prof: Any, total: float, limit: int) -> list[str]:
    """Markdown rows of torch operators (grouped by input shapes) by self CPU seconds."""
    averages = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    rows = []
    for event in averages[:limit]:
        seconds = event.self_cpu_time_total / 1e6
        shapes = str(event.input_shapes).replace("|", "/")
        rows.append(f"| `{event.key}` | `{shapes}` | {event.count} | {seconds:.2f} | {100 * seconds / total:.0f}% |")
    return rows


def profile_model(name: str, overrides: dict[str, Any], split: Any, limit: int) -> list[str]:
    """The report section of one model."""

    def fit() -> tuple[Any, float]:
        torch.manual_seed(0)
        with harness.timed() as clock:
            model = create_model(name, overrides).fit(split)
        return model, clock.seconds

    fit()  # warm-up
    model, plain = fit()
    python = cProfile.Profile()
    python.enable()
    _, under_cprofile = fit()
    python.disable()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        _, under_torch = fit()
    epochs = len(model.history)
    lines = [
        f"## {name} (`{overrides}`)",
        "",
        f"Fit: {plain:.2f} s unprofiled ({epochs} history rows, {plain / max(epochs, 1):.3f} s each); "
        f"{under_cprofile:.2f} s under cProfile; {under_torch:.2f} s under torch.profiler.",
        "",
        "Python functions by cumulative time (cProfile):",
        "",
        "| function | where | calls | own s | cumulative s | share of fit |",
        "|---|---|---:|---:|---:|---:|",
        *python_rows(pstats.Stats(python), under_cprofile, limit),
        "",
        "Operators by self time (torch.profiler, grouped by input shapes):",
        "",
        "| operator | input shapes | calls | self s | share of fit |",
        "|---|---|---:|---:|---:|",
        *operator_rows(prof, under_torch, limit),
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(RUNS), choices=list(RUNS))
    harness.add_options(parser, data_dir=True, threads=1)
    parser.add_argument("--rows", type=int, default=25, help="rows per table")
    parser.add_argument("--out", type=Path, default=None, help="write the report (markdown) here")
    args = parser.parse_args(argv)
    harness.apply_options(args)
    split = load_split("ml-100k", "u1", source_dir=args.data_dir)
    info = harness.provenance()
    lines = [
        "# Profile of short GNN and GLocal-K fits on ML-100k u1 (`benchmarks/profile_fits.py`)",
        "",
        f"- command: `python benchmarks/profile_fits.py --models {' '.join(args.models)} --threads {args.threads}`",
        f"- code: git {info['commit_short']} ({'dirty' if info['dirty'] else 'clean'} tree); torch "
        f"{info['torch']}; python {info['python']}",
        f"- machine: {info['platform']}, {info['processor']}, {info['cores_available']} CPUs; torch threads "
        f"{info['torch_threads']}; OMP_NUM_THREADS={info['omp_num_threads']}; load average "
        f"(1/5/15 min) at start {info['load_average']}",
        "",
    ]
    for name in args.models:
        lines += profile_model(name, RUNS[name], split, args.rows)
    report = "\n".join(lines)
    print(report)
    if args.out is not None:
        atomic_write_text(args.out, report)


if __name__ == "__main__":
    main()
