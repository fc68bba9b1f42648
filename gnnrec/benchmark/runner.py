"""The benchmark runner: a suite is a grid of (model, split, seed) cells; each cell fits once and is evaluated once.

Suites are data (see :mod:`gnnrec.benchmark.suite`: shipped JSON files, a path to one, or a dict with the keys
of :class:`~gnnrec.benchmark.suite.Suite`); results are written by :mod:`gnnrec.benchmark.report`.
A run directory holds::

    suite.json            the suite as run (after command-line overrides)
    cells/<cell>.json     one result per cell, written atomically as soon as the cell finishes
    results.json          every cell plus the per-model summary, environment and timing
    results.csv           one row per cell
    results.md            mean ± std per model and metric, with versions, machine and wall time
    metrics.png           metric bars with error bars (std over splits × seeds)
    learning_curves.png   per-epoch curves from each model's ``history``
    tensorboard/<cell>/   one TensorBoard sub-run per cell (scalars, hparams, histograms, projector)
    models/<cell>.pt      checkpoints, with ``save_models=True``

Running again into the same directory reuses every finished cell whose model, config, split
fingerprint, seed and evaluation settings are unchanged, and computes the rest (failed cells too).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import platform
import resource
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy
import torch
from tqdm.auto import tqdm

import gnnrec
from gnnrec.benchmark.report import OK, json_safe, summarize, write_results
from gnnrec.benchmark.significance import leader_comparisons
from gnnrec.benchmark.suite import Cell, Suite, build_cells
from gnnrec.config import config_to_dict, epochs_hint
from gnnrec.data import load_split
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation import evaluate, improved
from gnnrec.models import create_model
from gnnrec.models.base import RatingModel
from gnnrec.provenance import code_version, version_key
from gnnrec.tensorboard import ProgressWriter, log_embeddings, log_hparams
from gnnrec.threads import resolve_threads, torch_threads
from gnnrec.utils import atomic_path, atomic_write_text, gnnrec_home, seed_everything


# ---------------------------------------------------------------------- measurements
class PeakMemory:
    """Peak resident memory (RSS) of this process during a cell.

    On Linux the kernel's high-water mark ``VmHWM`` is reset before each cell (``/proc/self/clear_refs``),
    so each cell reports its own peak, including the memory already held by the process (Python, torch,
    the loaded split). Elsewhere it falls back to ``getrusage`` max RSS: the process peak so far.
    With CUDA the peak of ``torch.cuda.max_memory_allocated`` is reported too.
    """

    def __init__(self) -> None:
        self.per_cell = self._reset_hwm()
        if self.per_cell:
            self.method = "VmHWM: peak RSS of the process during the cell (Linux high-water mark, reset per cell)"
        else:
            self.method = "ru_maxrss: peak RSS of the process since it started (not reset per cell)"

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.per_cell:
            self._reset_hwm()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def peak_rss_mb(self) -> float:
        if self.per_cell:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024

    def peak_cuda_mb(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def environment() -> dict[str, Any]:
    """Versions and machine, recorded with every run."""
    import numpy
    import torch_geometric

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "numpy": numpy.__version__,
        "gnnrec": gnnrec.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import subprocess

        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        env["git_commit"] = commit.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = None
    return env


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


def _reusable(record: Mapping[str, Any] | None, expected: Mapping[str, Any], *, ignore: tuple[str, ...] = ()) -> bool:
    return (
        record is not None
        and record.get("status") == OK
        and all(record.get(key) == value for key, value in expected.items() if key not in ignore)
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _supports_per_user() -> bool:
    return "per_user" in inspect.signature(evaluate).parameters


def _evaluate(model: Any, split: RatingSplit, part: str, suite: Suite, per_user: bool) -> Any:
    kwargs = {"per_user": True} if per_user and _supports_per_user() else {}
    return evaluate(model, split, part=part, k=suite.k, relevance_threshold=suite.relevance_threshold, **kwargs)


def _save_per_user(result: Any, path: Path) -> str | None:
    """Write the evaluator's per-user arrays (for the paired bootstrap) to ``path`` (.npz); None without any."""
    arrays = getattr(result, "per_user", None)
    if not arrays:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        numpy.savez_compressed(handle, **{name: value.detach().cpu().numpy() for name, value in arrays.items()})
    return path.name


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
) -> BenchmarkRun:
    """Run (or resume) every cell of ``suite`` into ``out_dir`` and write the result files.

    A cell's exception is recorded as its status (``"failed: …"``) and the run goes on.
    ``log`` receives one line per cell (default: stderr through tqdm). ``refit`` (None: the suite's setting)
    replaces the suite's refit default. A finished cell is reused only when it was computed by the same code
    (:func:`gnnrec.provenance.version_key`); ``reuse_stale=True`` reuses cells of other code versions too and
    marks them stale in the tables. ``threads`` (``"auto"`` or a count; None: leave torch's setting) sets
    torch's intra-op threads for the run. ``per_user`` stores per-user test arrays (``cells/<cell>.npz``) for
    the paired bootstrap when the evaluator provides them.
    """
    suite = suite if isinstance(suite, Suite) else Suite.from_dict(suite)
    if refit is not None:
        suite = dataclasses.replace(suite, refit=refit)
    count = resolve_threads(threads) if threads is not None else torch.get_num_threads()
    with torch_threads(count):
        return _run(
            suite, out_dir, data_dir=data_dir, tensorboard=tensorboard, projector=projector,
            save_models=save_models, plots=plots, progress=progress, command=command, log=log,
            reuse_stale=reuse_stale, threads={"requested": threads, "torch_threads": count}, per_user=per_user,
        )  # fmt: skip


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
) -> BenchmarkRun:
    cells = build_cells(suite)
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(suite)
    (run_dir / "cells").mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "suite.json", json.dumps(suite.to_dict(), indent=2) + "\n")
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    provenance = code_version()
    if command is not None:
        provenance["command"] = command
    code_key = version_key(provenance)
    memory = PeakMemory()
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    records: dict[str, dict[str, Any]] = {}
    reused = stale = 0
    splits: dict[str, RatingSplit] = {}
    selecting = suite.select_on is not None
    bar = tqdm(total=len(cells), desc=f"benchmark {suite.name}", unit="cell", disable=None if progress else True)
    try:
        for position, cell in enumerate(cells, start=1):
            if cell.split not in splits:
                splits.clear()  # one split in memory at a time
                splits[cell.split] = load_split(
                    suite.dataset,
                    cell.split,
                    source_dir=data_dir,
                    val_fraction=suite.val_fraction,
                    seed=suite.data_seed,
                    log=False,
                )
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
            }
            cell_path = run_dir / "cells" / f"{cell.id}.json"
            previous = _read_json(cell_path)
            where = f"[{position}/{len(cells)}] {cell.entry.label} {cell.split} seed {cell.seed}"
            if _reusable(previous, expected):
                records[cell.id] = {**previous, "stale": False}
                reused += 1
                log(f"{where}: reused")
                bar.update()
                continue
            if reuse_stale and _reusable(previous, expected, ignore=(CODE_KEY,)):
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
            bar.set_postfix_str(f"{cell.entry.label} {cell.split} seed {cell.seed}")
            record.update(
                _run_cell(
                    cell,
                    model,
                    split,
                    run_dir,
                    suite,
                    memory,
                    tensorboard=tensorboard,
                    projector=projector,
                    save_models=save_models or selecting,
                    progress=progress,
                    per_user=per_user,
                )
            )
            atomic_write_text(cell_path, json.dumps(record, indent=1) + "\n")
            records[cell.id] = record
            shown = record["metrics"] if not selecting else (record.get("selection") or {}).get("metrics") or {}
            summary = (
                ", ".join(f"{m} {shown[m]:.4f}" for m in ("rmse", "ndcg@10") if shown.get(m) is not None)
                if record["status"] == OK
                else record["status"]
            )
            log(f"{where}: {summary} (fit {record['fit_seconds'] or 0:.1f} s)")
            bar.update()
        if selecting:
            _test_chosen_variant(suite, cells, records, run_dir, data_dir, per_user, log)
    finally:
        bar.close()
        wall = time.perf_counter() - started
        ordered = [records[c.id] for c in cells if c.id in records]
        results = {
            "suite": suite.to_dict(),
            "run": {
                "directory": str(run_dir),
                "started": started_at,
                "wall_seconds": wall,
                "command": command,
                "threads": threads,
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
        split = load_split(
            suite.dataset, cell.split, source_dir=data_dir, val_fraction=suite.val_fraction, seed=suite.data_seed,
            log=False,
        )  # fmt: skip
        model = RatingModel.load(run_dir / record["checkpoint"], split)
        result = _evaluate(model, split, "test", suite, per_user)
        record["metrics"] = result.to_dict()["metrics"]
        record["per_user"] = _save_per_user(result, run_dir / "cells" / f"{cell.id}.npz")
        atomic_write_text(run_dir / "cells" / f"{cell.id}.json", json.dumps(record, indent=1) + "\n")
        log(f"{cell.id}: chosen on validation {suite.selection_metric}; tested once")


def _progress_writer(directory: Path, description: str, model: Any, progress: bool) -> ProgressWriter:
    return ProgressWriter(directory, description=description, total=epochs_hint(model.config), progress=progress)


def _run_cell(
    cell: Cell,
    model: Any,
    split: RatingSplit,
    run_dir: Path,
    suite: Suite,
    memory: PeakMemory,
    *,
    tensorboard: bool,
    projector: bool,
    save_models: bool,
    progress: bool,
    per_user: bool = True,
) -> dict[str, Any]:
    """Fit (select on validation), refit on train + validation if asked, evaluate once on test.

    Exceptions become a ``failed: …`` status. ``selection`` holds the validation fit: its validation metrics,
    the values it selected (``refit_overrides``) and its history; ``refit_fit`` the refit on train ∪ val.
    With a ``select_on`` suite the test part is not evaluated here.
    """
    out: dict[str, Any] = {
        "status": OK,
        "metrics": {},
        "evaluation": None,
        "selection": None,
        "refit_fit": None,
        "fit_seconds": None,
        "eval_seconds": None,
        "peak_rss_mb": None,
        "peak_cuda_mb": None,
        "history": [],
        "warnings": [],
        "error": None,
        "traceback": None,
        "tensorboard": None,
        "checkpoint": None,
        "per_user": None,
        "note": None,
        "paper_metrics": None,
        "fit_config": None,
        "preset_name": None,
        "finished": None,
    }
    tb_dir = run_dir / "tensorboard" / cell.id
    shutil.rmtree(tb_dir, ignore_errors=True)  # a rerun replaces the sub-run of an unfinished attempt
    writer = None
    description = f"{cell.entry.label} {cell.split} seed {cell.seed}"
    try:
        if tensorboard:
            writer = _progress_writer(tb_dir, description, model, progress)
            out["tensorboard"] = str(tb_dir.relative_to(run_dir))
        memory.reset()
        start = time.perf_counter()
        model.fit(split, logger=writer)
        out["fit_seconds"] = time.perf_counter() - start
        out["history"] = json_safe(model.history)
        out["note"] = getattr(model, "protocol_note", None)
        selection: dict[str, Any] = {
            "fit_seconds": out["fit_seconds"],
            "selected": json_safe(model.refit_overrides()),
            "metrics": {},
        }
        if len(split.val):
            selection["metrics"] = evaluate(
                model, split, part="val", k=suite.k, relevance_threshold=suite.relevance_threshold
            ).to_dict()["metrics"]
        out["selection"] = selection
        final, final_split = model, split
        if cell.refit(suite) and supports_refit(model):
            overrides = {**cell.overrides, **model.refit_overrides()}
            seed_everything(cell.seed)
            final = create_model(cell.entry.model, overrides, test_config=suite.test_config)
            final_split = split.merge_validation()
            refit_writer = (
                _progress_writer(tb_dir / "refit", f"{description} refit", final, progress) if tensorboard else None
            )
            start = time.perf_counter()
            try:
                final.fit(final_split, logger=refit_writer)
            finally:
                if refit_writer is not None:
                    refit_writer.close()
            out["refit_fit"] = {
                "overrides": json_safe(overrides),
                "config": json_safe(config_to_dict(final.config)),
                "fit_seconds": time.perf_counter() - start,
                "train_ratings": len(final_split.train),
                "history": json_safe(final.history),
            }
            out["fit_seconds"] += out["refit_fit"]["fit_seconds"]
        out.update(_glocal_k_extras(final))  # of the model that is tested
        if suite.select_on is None:
            start = time.perf_counter()
            result = _evaluate(final, final_split, "test", suite, per_user)
            out["eval_seconds"] = time.perf_counter() - start
            evaluation = result.to_dict()
            out["metrics"] = evaluation.pop("metrics")
            out["evaluation"] = {
                k: evaluation[k] for k in ("part", "num_ratings", "num_users", "num_ranked_users", "k")
            }
            out["evaluation"]["relevance_threshold"] = evaluation["relevance_threshold"]
            out["per_user"] = _save_per_user(result, run_dir / "cells" / f"{cell.id}.npz") if per_user else None
        out["peak_rss_mb"] = memory.peak_rss_mb()
        out["peak_cuda_mb"] = memory.peak_cuda_mb()
        if writer is not None:
            try:
                hparams = {"model": cell.entry.label, "split": cell.split, **config_to_dict(model.config)}
                log_hparams(writer, hparams, out["metrics"] or selection["metrics"])
                log_embeddings(writer, final, final_split.graph, step=len(final.history), projector=projector)
            except Exception as error:  # noqa: BLE001 - TensorBoard extras must not discard a finished result
                out["warnings"].append(f"tensorboard: {type(error).__name__}: {error}")
        if save_models:
            path = run_dir / "models" / f"{cell.id}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            final.save(path)
            out["checkpoint"] = str(path.relative_to(run_dir))
            if final is not model:
                model.save(path.with_suffix(".selection.pt"))
                out["selection"]["checkpoint"] = str(path.with_suffix(".selection.pt").relative_to(run_dir))
    except Exception as error:  # noqa: BLE001 - one model's failure must not lose the other cells
        out["status"] = f"failed: {type(error).__name__}: {error}"
        out["error"] = f"{type(error).__name__}: {error}"
        out["traceback"] = traceback.format_exc()
        out["history"] = json_safe(getattr(model, "history", []))
    finally:
        if writer is not None:
            writer.close()
    out["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return out


def supports_refit(model: Any) -> bool:
    """Whether ``model`` says how to refit on train + validation (its class overrides ``refit_overrides``)."""
    return type(model).refit_overrides is not RatingModel.refit_overrides


def _glocal_k_extras(model: Any) -> dict[str, Any]:
    """GLocal-K's resolved config, preset and (paper protocol) per-metric best test epochs; empty for others."""
    extras: dict[str, Any] = {}
    fit_config = getattr(model, "fit_config", None)
    if fit_config is not None:
        extras["fit_config"] = json_safe(config_to_dict(fit_config))
        extras["preset_name"] = getattr(model, "preset_name", None)
    paper = getattr(model, "paper_metrics", None)
    if paper:
        extras["paper_metrics"] = {name: {"value": value, "epoch": epoch} for name, (value, epoch) in paper.items()}
    return extras
