"""``gnnrec benchmark``: run a suite (the runner lives in :mod:`gnnrec.benchmark`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnnrec.cli.common import command_line, set_overrides
from gnnrec.threads import available_cores

if TYPE_CHECKING:  # the benchmark package is imported only when the command runs
    from gnnrec.benchmark import Suite


def parse_jobs(value: str) -> int:
    """``--jobs``: a positive count, or ``auto`` (the cores this process may use)."""
    if value == "auto":
        return available_cores()
    try:
        jobs = int(value)
    except ValueError:
        raise ValueError(f"--jobs must be a positive integer or 'auto', got {value!r}") from None
    if jobs < 1:
        raise ValueError(f"--jobs must be a positive integer or 'auto', got {value!r}")
    return jobs


def dataset_setting_values(items: list[str] | None) -> dict[str, Any]:
    """``["num_users=800", "levels=[1, 2]"]`` → ``{"num_users": 800, "levels": [1, 2]}`` (JSON, else text)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--dataset-setting expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value.strip()
    return out


def data_options(suite: Suite, args: argparse.Namespace) -> Suite:
    """``suite`` with the dataset options of the command line (dataset, its settings, validation share, data
    seed) in place of its own; a new dataset starts from no dataset settings."""
    changes: dict[str, Any] = {}
    if args.dataset is not None and args.dataset != suite.dataset:
        changes.update(dataset=args.dataset, dataset_settings={})
    settings = dataset_setting_values(args.dataset_setting)
    if settings:
        changes["dataset_settings"] = {**changes.get("dataset_settings", suite.dataset_settings), **settings}
    if args.val_fraction is not None:
        changes["val_fraction"] = args.val_fraction
    if args.data_seed is not None:
        changes["data_seed"] = args.data_seed
    return dataclasses.replace(suite, **changes) if changes else suite


def cmd_benchmark(args: argparse.Namespace) -> int:
    from gnnrec import distributed
    from gnnrec.benchmark import Suite, load_suite, parse_targeted_overrides, run_benchmark, summary_table
    from gnnrec.benchmark.suite import check_data_parallel_suite
    from gnnrec.tensorboard import tensorboard_command

    distributed.init_distributed()  # under torchrun: every cell's fit is data-parallel; rank 0 alone writes

    if args.resume:
        run_dir = Path(args.resume)
        stored = run_dir / "suite.json"
        if not stored.is_file():
            raise FileNotFoundError(f"{run_dir} is not a benchmark run directory (no suite.json)")
        try:
            suite = Suite.from_dict(json.loads(stored.read_text(encoding="utf-8")))
        except ValueError as error:  # not JSON, not UTF-8, or a bad field
            raise ValueError(f"{stored}: {error}") from None
        if args.suite is not None and args.suite not in (suite.name, str(stored)):
            raise ValueError(f"{run_dir} holds suite {suite.name!r}, not {args.suite!r}")
        if args.out is not None and Path(args.out) != run_dir:
            raise ValueError("give either --resume RUN_DIR or --out DIR, not both")
    elif args.suite is None:
        raise ValueError("name a suite (e.g. quick) or give --resume RUN_DIR")
    else:
        suite = load_suite(args.suite)
        run_dir = Path(args.out) if args.out else None
    if args.models:
        suite = suite.select_models([name for item in args.models for name in item.split(",") if name])
    if args.splits:
        suite = dataclasses.replace(suite, splits=list(args.splits))
    if args.seeds:
        suite = dataclasses.replace(suite, seeds=list(args.seeds))
    if args.test_config:
        suite = dataclasses.replace(suite, test_config=True)
    suite = data_options(suite, args)
    suite = suite.with_overrides(parse_targeted_overrides(set_overrides(args.set))).validate()
    check_data_parallel_suite(suite)
    run = run_benchmark(
        suite,
        run_dir,
        data_dir=args.data_dir,
        tensorboard=not args.no_tensorboard,
        projector=not args.no_projector,
        save_models=args.save_models,
        plots=not args.no_plots,
        command=command_line(args.argv),
        refit=False if args.no_refit else None,
        reuse_stale=args.reuse_stale,
        threads=args.threads,
        jobs=parse_jobs(args.jobs),
    )
    if not distributed.is_main():
        return 0
    print(run.markdown if run.results.get("coldstart") is not None else summary_table(run.results))
    print(f"\nresults: {run.directory / 'results.md'} (also results.json, results.csv, *.png)")
    if not args.no_tensorboard and run.results.get("coldstart") is None:  # cold-start cells log no curves
        print("TensorBoard: " + tensorboard_command(run.tensorboard_dir))
    failed = run.results["run"]["cells_failed"]
    if failed:
        print(
            f"gnnrec benchmark: {failed} of {len(run.cells)} cells failed; see {run.directory / 'results.md'}",
            file=sys.stderr,
        )
        return 1
    return 0
