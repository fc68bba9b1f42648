"""The benchmark runner: a suite is a grid of (model, split, seed) cells; each cell is tested once
(see :mod:`gnnrec.benchmark.cell`: fit with selection on validation, refit on train ∪ validation).

Suites are data (see :mod:`gnnrec.benchmark.suite`: shipped JSON files, a path to one, or a dict with the keys
of :class:`~gnnrec.benchmark.suite.Suite`); results are written by :mod:`gnnrec.benchmark.report`.
A run directory holds::

    suite.json            the suite as run (after command-line overrides)
    cells/<cell>.json     one result per cell, written atomically as soon as the cell finishes
    results.json          every cell plus the per-model summary, environment and timing
    results.csv           one row per cell
    results.md            named rating/ranking tables (mean ± std [95% CI]), paired bootstrap, versions, provenance
    metrics.png           metric bars with error bars (std over splits × seeds)
    learning_curves.png   per-epoch curves from each model's ``history``
    tensorboard/<cell>/   one TensorBoard sub-run per cell (scalars, hparams, histograms, projector)
    cells/<cell>.npz      per-user test arrays for the paired bootstrap
    models/<cell>.safetensors  checkpoints, with ``save_models=True`` (and <cell>.selection.safetensors: the fit
                          before refit)

Running again into the same directory reuses every finished cell whose model, config, split
fingerprint, seed, evaluation and refit settings, code version (:func:`gnnrec.provenance.version_key`) and
library of the dense CPU products (:func:`gnnrec.nn.blas.cpu_products`) are unchanged, and computes the rest
(failed cells too); ``reuse_stale`` also reuses cells of other code versions and libraries.

Under ``torchrun`` (:mod:`gnnrec.distributed`) every rank runs the same cells in the same order, so each fit is
data-parallel; rank 0 alone writes the run directory (and decides which cells are reused), the other ranks write
into a scratch directory that is deleted afterwards. Only models with a data-parallel loop may be in the suite,
and neither ablation (``select_on``) nor cold-start suites run there yet.

A cold-start suite (a ``coldstart`` block) runs the same way, its cells being (model, kind, n, draw seed)
(:mod:`gnnrec.benchmark.coldstart_cells`); ``results.md`` then holds one table per kind and metric (rows = models,
columns = n) and a paired bootstrap over the held-out nodes at every n, and ``coldstart.png`` the metric
against n.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gnnrec import distributed
from gnnrec.benchmark.cell import empty_result, evaluate_part, run_cell, save_per_user
from gnnrec.benchmark.coldstart_cells import prepare_scenario, run_coldstart_group
from gnnrec.benchmark.harness import PeakMemory, environment
from gnnrec.benchmark.report import OK, coldstart_summary, json_safe, summarize, write_results
from gnnrec.benchmark.significance import leader_comparisons
from gnnrec.benchmark.suite import Cell, Suite, build_cells, check_data_parallel_suite, create_cell_model
from gnnrec.config import config_to_dict
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation import improved
from gnnrec.models import create_model, get_model_class
from gnnrec.models.base import RatingModel
from gnnrec.nn.blas import cpu_products
from gnnrec.provenance import code_version, version_key
from gnnrec.threads import resolve_threads, torch_threads
from gnnrec.utils import atomic_write_text, gnnrec_home, remove_stray_temporaries, seed_everything


# ---------------------------------------------------------------------- the run
@dataclasses.dataclass
class BenchmarkRun:
    """What :func:`run_benchmark` returns: the run directory and the results it wrote."""

    directory: Path
    results: dict[str, Any]
    markdown: str

    @property
    def cells(self) -> list[dict[str, Any]]:
        return self.results["cells"]

    @property
    def tensorboard_dir(self) -> Path:
        return self.directory / "tensorboard"


def default_run_dir(suite: Suite) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return gnnrec_home() / "runs" / f"benchmark-{suite.name}-{stamp}"


# Keys of a cell record that must match for the cell to be reused; CODE_KEY may differ with ``reuse_stale``.
CODE_KEY = "code_version_key"
# What multiplied the dense CPU products (gnnrec.nn.blas): another library rounds differently, as other code would.
# May differ with ``reuse_stale``, as CODE_KEY may.
ARITHMETIC_KEY = "cpu_products"
STALE_IGNORES = (CODE_KEY, ARITHMETIC_KEY)


def path_in_run(run_dir: Path, relative: Any, folder: str = "") -> Path:
    """``run_dir / folder / relative``, refused (``ValueError``) unless it lies inside ``run_dir``.

    Cell records name their checkpoint and per-user arrays relative to the run; a record that points
    elsewhere (an absolute path, ``..``) is not followed.
    """
    if not isinstance(relative, str) or not relative:
        raise ValueError(f"a cell record of {run_dir} names a file by {relative!r}, not a relative path")
    root = run_dir.resolve()
    path = (run_dir / folder / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"a cell record of {run_dir} names {relative!r}, which lies outside the run directory")
    return path


def _files_present(record: Mapping[str, Any], run_dir: Path, needs_checkpoint: bool) -> bool:
    """Whether the files a finished record names (per-user arrays, checkpoints) exist inside the run directory."""
    wanted = [("cells", record.get("per_user"))] if record.get("per_user") is not None else []
    if record.get("checkpoint") is not None or needs_checkpoint:
        wanted.append(("", record.get("checkpoint")))
    selection = record.get("selection")
    if isinstance(selection, Mapping) and selection.get("checkpoint") is not None:
        wanted.append(("", selection.get("checkpoint")))
    try:
        paths = [path_in_run(run_dir, name, folder) for folder, name in wanted]
    except ValueError:
        return False
    # a pickle checkpoint of an older version (models/<cell>.pt) cannot be loaded: the cell is recomputed
    return all(p.is_file() and (p.suffix != ".pt") for p in paths)


def _reusable(
    record: Mapping[str, Any] | None,
    expected: Mapping[str, Any],
    *,
    ignore: tuple[str, ...] = (),
    run_dir: Path | None = None,
    needs_checkpoint: bool = False,
) -> bool:
    """Whether a stored cell record can stand for the cell: finished, same settings, and its files present."""
    return (
        isinstance(record, Mapping)
        and record.get("status") == OK
        and all(record.get(key) == value for key, value in expected.items() if key not in ignore)
        and (run_dir is None or _files_present(record, run_dir, needs_checkpoint))
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def run_benchmark(
    suite: Suite | Mapping[str, Any],
    out_dir: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    tensorboard: bool = True,
    projector: bool = True,
    save_models: bool = False,
    plots: bool = True,
    progress: bool = True,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    refit: bool | None = None,
    reuse_stale: bool = False,
    threads: int | str | None = None,
    per_user: bool = True,
    jobs: int = 1,
) -> BenchmarkRun:
    """Run (or resume) every cell of ``suite`` into ``out_dir`` and write the result files.

    A cell's exception is recorded as its status (``"failed: …"``) and the run goes on.
    ``log`` receives one line per cell (default: stderr through tqdm). ``refit`` (None: the suite's setting)
    replaces the suite's refit default. A finished cell is reused only when it was computed by the same code
    (:func:`gnnrec.provenance.version_key`); ``reuse_stale=True`` reuses cells of other code versions too and
    marks them stale in the tables. ``threads`` (``"auto"`` or a count; None: leave torch's setting) sets
    torch's intra-op threads for the run. ``per_user`` stores per-user test arrays (``cells/<cell>.npz``) for
    the paired bootstrap when the evaluator provides them. ``jobs`` > 1 fits that many cells at once, each in
    its own worker process with ``threads // jobs`` (at least 1) torch threads (:func:`run_cells_in_workers`);
    every cell's result is the same as in one process with that thread count.
    """
    suite = suite if isinstance(suite, Suite) else Suite.from_dict(suite)
    if refit is not None:
        suite = dataclasses.replace(suite, refit=refit)
    check_data_parallel_suite(suite)
    check_jobs(suite, jobs)
    count = resolve_threads(threads) if threads is not None else torch.get_num_threads()
    if jobs > 1:
        count = max(1, count // jobs)
    with torch_threads(count), contextlib.ExitStack() as stack:
        if not distributed.is_main():  # the same fits as rank 0 (DDP joins them), written nowhere that stays
            out_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"gnnrec-rank{distributed.rank()}-"))
            tensorboard = projector = save_models = plots = progress = per_user = False
            log = lambda line: None  # noqa: E731
        return _run(
            suite, out_dir, data_dir=data_dir, tensorboard=tensorboard, projector=projector,
            save_models=save_models, plots=plots, progress=progress, command=command, log=log,
            reuse_stale=reuse_stale, threads={"requested": threads, "torch_threads": count, "jobs": jobs},
            per_user=per_user, jobs=jobs,
        )  # fmt: skip


def check_jobs(suite: Suite, jobs: int) -> None:
    """Refuse a ``jobs`` count that cannot run (a one-line ``ValueError`` saying what to do)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if jobs == 1:
        return
    if distributed.world_size() > 1:
        raise ValueError("--jobs runs cells in worker processes; under torchrun each fit is already data-parallel: "
                         "use --jobs 1")  # fmt: skip
    if suite.coldstart is not None:
        raise ValueError(f"suite {suite.name!r} is a cold-start suite, whose cells share fits in one process: "
                         "use --jobs 1")  # fmt: skip


def _start_run(suite: Suite, out_dir: str | Path | None, command: str | None) -> tuple[Path, dict[str, Any]]:
    """The run directory (created, leftovers of a killed run removed, ``suite.json`` written) and the code's
    provenance, with ``command``."""
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(suite)
    (run_dir / "cells").mkdir(parents=True, exist_ok=True)
    for folder in (run_dir, run_dir / "cells", run_dir / "models"):
        remove_stray_temporaries(folder)  # left by a killed run
    atomic_write_text(run_dir / "suite.json", json.dumps(suite.to_dict(), indent=2) + "\n")
    provenance = code_version()
    if command is not None:
        provenance["command"] = command
    return run_dir, provenance


@dataclasses.dataclass
class _OpenRun:
    """A suite run once started: its cells, directory, code provenance, log, code key, memory and clocks."""

    cells: list[Cell]
    directory: Path
    provenance: dict[str, Any]
    log: Callable[[str], None]
    code_key: str
    memory: PeakMemory
    started: float = dataclasses.field(default_factory=time.perf_counter)
    started_at: str = dataclasses.field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    def results(
        self,
        suite: Suite,
        records: dict[str, dict[str, Any]],
        *,
        command: str | None,
        threads: dict[str, Any],
        reused: int,
        stale: int,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The finished records in cell order, and the results of the run so far."""
        ordered = [records[c.id] for c in self.cells if c.id in records]
        run = {"directory": str(self.directory), "started": self.started_at,
               "wall_seconds": time.perf_counter() - self.started, "command": command, "threads": threads,
               "reused": reused, "stale": stale}  # fmt: skip
        return ordered, _results(suite, self.cells, ordered, run, self.provenance, self.memory)


def _open_run(
    suite: Suite, out_dir: str | Path | None, command: str | None, log: Callable[[str], None] | None
) -> _OpenRun:
    """Start a run of ``suite``: its cells, its directory (:func:`_start_run`) and its clocks."""
    cells = build_cells(suite)  # checks every cell's config before the run directory exists
    run_dir, provenance = _start_run(suite, out_dir, command)
    return _OpenRun(
        cells=cells,
        directory=run_dir,
        provenance=provenance,
        log=log or (lambda line: tqdm.write(line, file=sys.stderr)),
        code_key=version_key(provenance),
        memory=PeakMemory(),
    )


def _results(
    suite: Suite,
    cells: list[Cell],
    ordered: list[dict[str, Any]],
    run: dict[str, Any],
    provenance: dict[str, Any],
    memory: PeakMemory,
) -> dict[str, Any]:
    """The results of a run: the suite, the run's counts (``run`` holds directory, started, wall_seconds,
    command, threads and the reused and stale counts), provenance, environment and the per-model summary."""
    reused, stale = run.pop("reused"), run.pop("stale")
    return {
        "suite": suite.to_dict(),
        "run": {
            **run,
            "processes": distributed.world_size(),  # > 1: data-parallel fits under torchrun
            "cells_total": len(cells),
            "cells_finished": len(ordered),
            "cells_reused": reused,
            "cells_stale": stale,
            "cells_failed": sum(r["status"] != OK for r in ordered),
            "complete": len(ordered) == len(cells),
        },
        "provenance": provenance,
        "environment": environment(),
        "memory_method": memory.method,
        "summary": summarize(ordered, [e.label for e in suite.entries()]),
        "cells": ordered,
    }


def _run(
    suite: Suite,
    out_dir: str | Path | None,
    *,
    data_dir: str | Path | None,
    tensorboard: bool,
    projector: bool,
    save_models: bool,
    plots: bool,
    progress: bool,
    command: str | None,
    log: Callable[[str], None] | None,
    reuse_stale: bool,
    threads: dict[str, Any],
    per_user: bool,
    jobs: int = 1,
) -> BenchmarkRun:
    if suite.coldstart is not None:
        return _run_coldstart(suite, out_dir, data_dir=data_dir, plots=plots, progress=progress, command=command,
                              log=log, reuse_stale=reuse_stale, threads=threads, per_user=per_user)  # fmt: skip
    opened = _open_run(suite, out_dir, command, log)
    cells, run_dir, provenance, log, code_key, memory = (
        opened.cells, opened.directory, opened.provenance, opened.log, opened.code_key, opened.memory
    )  # fmt: skip
    records: dict[str, dict[str, Any]] = {}
    reused = stale = 0
    splits: dict[str, RatingSplit] = {}
    selecting = suite.select_on is not None
    pending: list[PendingCell] = []  # with jobs > 1: the cells to fit in worker processes
    options = CellOptions(tensorboard=tensorboard, projector=projector, save_models=save_models or selecting,
                          per_user=per_user)  # fmt: skip
    bar = tqdm(total=len(cells), desc=f"benchmark {suite.name}", unit="cell", disable=None if progress else True)
    try:
        for position, cell in enumerate(cells, start=1):
            if cell.split not in splits:
                splits.clear()  # one split in memory at a time
                with distributed.main_first():  # rank 0 builds the processed cache, the others read it
                    splits[cell.split] = suite.load_split(cell.split, data_dir, log=False)
            split = splits[cell.split]
            seed_everything(cell.seed)  # before construction, in case a model draws random numbers there
            model = create_model(cell.entry.model, cell.overrides, test_config=suite.test_config)
            config = json_safe(config_to_dict(model.config))
            expected = {
                "model": cell.entry.model,
                "config": config,
                "dataset": suite.dataset,
                "split_fingerprint": split.fingerprint,
                "seed": cell.seed,
                "k": suite.k,
                "relevance_threshold_setting": suite.relevance_threshold,
                "refit": cell.refit(suite),
                "test_evaluated": not selecting,
                CODE_KEY: code_key,
                ARITHMETIC_KEY: cpu_products(),
            }
            cell_path = run_dir / "cells" / f"{cell.id}.json"
            previous = _read_json(cell_path)
            where = f"[{position}/{len(cells)}] {cell.entry.label} {cell.split} seed {cell.seed}"
            files = {"run_dir": run_dir, "needs_checkpoint": selecting}
            fresh = _reusable(previous, expected, **files)
            old_code = not fresh and reuse_stale and _reusable(previous, expected, ignore=STALE_IGNORES, **files)
            fresh, old_code = (bool(flag) for flag in distributed.broadcast_flags([fresh, old_code]))  # rank 0's files
            if (fresh or old_code) and not distributed.is_main():  # rank 0 reuses it: no fit to join
                bar.update()
                continue
            if fresh:
                records[cell.id] = {**previous, "stale": False}
                reused += 1
                log(f"{where}: reused")
                bar.update()
                continue
            if old_code:
                records[cell.id] = {**previous, "stale": True}
                reused += 1
                stale += 1
                log(f"{where}: reused from code version {previous.get(CODE_KEY)} (stale)")
                bar.update()
                continue
            record = {
                "id": cell.id,
                "label": cell.entry.label,
                "overrides": json_safe(cell.overrides),
                "split": cell.split,
                "split_name": split.name,
                **expected,
                "provenance": provenance,
                "stale": False,
            }
            if jobs > 1:
                pending.append(PendingCell(cell, record, where, position))
                continue
            bar.set_postfix_str(f"{cell.entry.label} {cell.split} seed {cell.seed}")
            record.update(run_cell(cell, model, split, run_dir, suite, memory, progress=progress,
                                   **dataclasses.asdict(options)))  # fmt: skip
            finish_cell(record, cell_path, records, selecting, log, where)
            bar.update()
        if pending:
            splits.clear()
            for item, result in run_cells_in_workers(suite, pending, run_dir, data_dir, options, jobs,
                                                     threads["torch_threads"]):  # fmt: skip
                item.record.update(result)
                finish_cell(item.record, run_dir / "cells" / f"{item.cell.id}.json", records, selecting, log,
                            item.where)  # fmt: skip
                bar.update()
        if selecting and suite.test_chosen:
            _test_chosen_variant(suite, cells, records, run_dir, data_dir, per_user, log)
    finally:
        bar.close()
        ordered, results = opened.results(suite, records, command=command, threads=threads, reused=reused, stale=stale)
        if selecting:
            results["selection"] = ablation_choice(suite, ordered)
        else:
            labels = [e.label for e in suite.entries()]
            tests = {"rating": "rmse", "ranking": f"ndcg@{suite.k}"}
            results["significance"] = {
                name: test
                for name, metric in tests.items()
                if (test := leader_comparisons(run_dir, ordered, labels, metric)) is not None
            }
        markdown = write_results(run_dir, results, plots=plots)
    return BenchmarkRun(run_dir, results, markdown)


@dataclasses.dataclass(frozen=True)
class CellOptions:
    """What a cell writes beside its result: TensorBoard logs and projector, checkpoints, per-user arrays."""

    tensorboard: bool
    projector: bool
    save_models: bool
    per_user: bool


@dataclasses.dataclass
class PendingCell:
    """A cell waiting for a worker process: the cell, its record so far, its log prefix and its place in the run."""

    cell: Cell
    record: dict[str, Any]
    where: str
    position: int


def finish_cell(
    record: dict[str, Any],
    cell_path: Path,
    records: dict[str, dict[str, Any]],
    selecting: bool,
    log: Callable[[str], None],
    where: str,
) -> None:
    """Store a computed cell (its file at once, atomically) and log its headline metrics."""
    atomic_write_text(cell_path, json.dumps(record, indent=1) + "\n")
    records[record["id"]] = record
    shown = record["metrics"] if not selecting else (record.get("selection") or {}).get("metrics") or {}
    summary = (
        ", ".join(f"{m} {shown[m]:.4f}" for m in ("rmse", "ndcg@10") if shown.get(m) is not None)
        if record["status"] == OK
        else record["status"]
    )
    log(f"{where}: {summary} (fit {record['fit_seconds'] or 0:.1f} s)")


def compute_cell_in_worker(
    suite: Suite, cell: Cell, run_dir: Path, data_dir: str | Path | None, options: CellOptions, threads: int
) -> dict[str, Any]:
    """One cell in a worker process: its split, its model and :func:`~gnnrec.benchmark.cell.run_cell`, as the
    one-process loop runs it (seeded the same way, with ``threads`` torch threads)."""
    torch.set_num_threads(threads)
    split = suite.load_split(cell.split, data_dir, log=False)
    seed_everything(cell.seed)
    model = create_model(cell.entry.model, cell.overrides, test_config=suite.test_config)
    return run_cell(cell, model, split, run_dir, suite, PeakMemory(), progress=False, **dataclasses.asdict(options))


def cost_rank(cell: Cell) -> float:
    """Rough relative cost of fitting a cell's model (its class's ``fit_cost``), to start the costly cells first."""
    return float(getattr(get_model_class(cell.entry.model), "fit_cost", 1.0))


def run_cells_in_workers(
    suite: Suite,
    pending: list[PendingCell],
    run_dir: Path,
    data_dir: str | Path | None,
    options: CellOptions,
    jobs: int,
    threads: int,
) -> Iterator[tuple[PendingCell, dict[str, Any]]]:
    """Fit ``pending`` cells in ``jobs`` worker processes, the costliest first (longest-first scheduling keeps
    the workers busy to the end); yields each cell with its result as it finishes.

    Workers start with ``forkserver`` (a fork of a process that holds torch's thread pools can hang). A worker
    that dies (e.g. killed for memory) breaks the pool: the cells not finished by then are recorded as failed
    (a rerun into the same directory computes them) and the finished ones are kept.
    """
    order = sorted(pending, key=lambda item: (-cost_rank(item.cell), item.position))
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(order)), mp_context=context) as pool:
        futures = {
            pool.submit(compute_cell_in_worker, suite, item.cell, run_dir, data_dir, options, threads): item
            for item in order
        }
        for future in concurrent.futures.as_completed(futures):
            item = futures[future]
            try:
                result = future.result()
            except Exception as error:  # the worker process died: the cell failed, the others go on
                result = {**empty_result(), "status": f"failed: worker process: {type(error).__name__}: {error}"}
            yield item, result


def _run_coldstart(
    suite: Suite,
    out_dir: str | Path | None,
    *,
    data_dir: str | Path | None,
    plots: bool,
    progress: bool,
    command: str | None,
    log: Callable[[str], None] | None,
    reuse_stale: bool,
    threads: dict[str, Any],
    per_user: bool,
) -> BenchmarkRun:
    """A cold-start suite: its (model, kind, n, draw) cells, grouped by (model, kind, draw) to share fits."""
    settings = suite.coldstart_settings()
    opened = _open_run(suite, out_dir, command, log)
    cells, run_dir, provenance, log, code_key, memory = (
        opened.cells, opened.directory, opened.provenance, opened.log, opened.code_key, opened.memory
    )  # fmt: skip
    records: dict[str, dict[str, Any]] = {}
    reused = stale = 0
    groups: dict[tuple[str, str, str, int], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.split, cell.kind, cell.entry.label, cell.seed), []).append(cell)
    split: RatingSplit | None = None
    loaded = None
    scenarios: dict[tuple[str, int], Any] = {}
    bar = tqdm(total=len(cells), desc=f"coldstart {suite.name}", unit="cell", disable=None if progress else True)
    try:
        for (split_name, kind, label, seed), group in groups.items():
            if loaded != split_name:
                loaded = split_name
                split = suite.load_split(split_name, data_dir, log=False)
                scenarios.clear()
            entry = group[0].entry
            model = create_cell_model(entry.model, group[0].overrides, test_config=suite.test_config, coldstart=True)
            base = {
                "model": entry.model,
                "config": json_safe(config_to_dict(model.config)),
                "dataset": suite.dataset,
                "split_fingerprint": split.fingerprint,
                "seed": seed,
                "kind": kind,
                "protocol": {"share": settings.share.get(kind), "order": settings.order},
                "tuning_grid": json_safe(settings.grid_axes(entry)),
                "k": suite.k,
                "relevance_threshold_setting": suite.relevance_threshold,
                "refit": False,
                "test_evaluated": True,
                CODE_KEY: code_key,
                ARITHMETIC_KEY: cpu_products(),
            }
            todo = []
            for cell in group:
                expected = {**base, "n": cell.n}
                previous = _read_json(run_dir / "cells" / f"{cell.id}.json")
                where = f"{label} {split_name} {kind} n={cell.n} draw {seed}"
                if _reusable(previous, expected, run_dir=run_dir):
                    records[cell.id] = {**previous, "stale": False}
                    reused += 1
                    log(f"{where}: reused")
                elif reuse_stale and _reusable(previous, expected, ignore=STALE_IGNORES, run_dir=run_dir):
                    records[cell.id] = {**previous, "stale": True}
                    reused += 1
                    stale += 1
                    log(f"{where}: reused from code version {previous.get(CODE_KEY)} (stale)")
                else:
                    todo.append((cell, expected))
            if todo:
                if (kind, seed) not in scenarios:
                    scenarios[(kind, seed)] = prepare_scenario(split, kind, seed, settings)
                bar.set_postfix_str(f"{label} {kind} draw {seed}")
                results = run_coldstart_group([cell for cell, _ in todo], scenarios[(kind, seed)], suite, settings,
                                              run_dir, memory, per_user=per_user)  # fmt: skip
                for cell, expected in todo:
                    record = {"id": cell.id, "label": label, "overrides": json_safe(cell.overrides),
                              "split": split_name, "split_name": split.name, **expected, "provenance": provenance,
                              "stale": False, **results[cell.id]}  # fmt: skip
                    atomic_write_text(run_dir / "cells" / f"{cell.id}.json", json.dumps(record, indent=1) + "\n")
                    records[cell.id] = record
                    shown = ", ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items() if v is not None)
                    state = record["status"] if record["status"] != OK else shown or "n/a"
                    log(f"{label} {split_name} {kind} n={cell.n} draw {seed}: {state}")
            bar.update(len(group))
    finally:
        bar.close()
        ordered, results = opened.results(suite, records, command=command, threads=threads, reused=reused, stale=stale)
        labels = [e.label for e in suite.entries()]
        results["coldstart"] = coldstart_summary(run_dir, ordered, labels, settings, suite.k)
        markdown = write_results(run_dir, results, plots=plots)
    return BenchmarkRun(run_dir, results, markdown)


def ablation_choice(suite: Suite, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The variant of a ``select_on="validation"`` suite with the best mean validation ``selection_metric``."""
    metric = suite.selection_metric
    means = {}
    for entry in suite.entries():
        values = [
            r["selection"]["metrics"].get(metric)
            for r in records
            if r["label"] == entry.label and r["status"] == OK and r.get("selection")
        ]
        values = [v for v in values if v is not None]
        if values:
            means[entry.label] = sum(values) / len(values)
    chosen = None
    for label, value in means.items():
        if chosen is None or improved(metric, value, means[chosen]):
            chosen = label
    return {"metric": metric, "validation_means": means, "chosen": chosen}


def _test_chosen_variant(
    suite: Suite,
    cells: list[Cell],
    records: dict[str, dict[str, Any]],
    run_dir: Path,
    data_dir: str | Path | None,
    per_user: bool,
    log: Callable[[str], None],
) -> None:
    """Evaluate on test only the cells of the variant chosen on validation (from their saved checkpoints)."""
    chosen = ablation_choice(suite, list(records.values()))["chosen"]
    for cell in cells:
        record = records.get(cell.id)
        if cell.entry.label != chosen or record is None or record["status"] != OK or record["metrics"]:
            continue
        split = suite.load_split(cell.split, data_dir, log=False)
        model = RatingModel.load(path_in_run(run_dir, record["checkpoint"]), split)
        result = evaluate_part(model, split, "test", suite, per_user)
        record["metrics"] = result.to_dict()["metrics"]
        record["per_user"] = save_per_user(result, run_dir / "cells" / f"{cell.id}.npz")
        atomic_write_text(run_dir / "cells" / f"{cell.id}.json", json.dumps(record, indent=1) + "\n")
        log(f"{cell.id}: chosen on validation {suite.selection_metric}; tested once")
