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

import torch
from tqdm.auto import tqdm

import gnnrec
from gnnrec.benchmark.report import OK, json_safe, summarize, write_results
from gnnrec.benchmark.suite import Cell, Suite, build_cells
from gnnrec.config import config_to_dict, epochs_hint
from gnnrec.data import load_split
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model
from gnnrec.tensorboard import ProgressWriter, log_embeddings, log_hparams
from gnnrec.utils import atomic_write_text, gnnrec_home, seed_everything


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


def _reusable(record: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> bool:
    return (
        record is not None
        and record.get("status") == OK
        and all(record.get(key) == value for key, value in expected.items())
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


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
) -> BenchmarkRun:
    """Run (or resume) every cell of ``suite`` into ``out_dir`` and write the result files.

    A cell's exception is recorded as its status (``"failed: …"``) and the run goes on.
    ``log`` receives one line per cell (default: stderr through tqdm).
    """
    suite = suite if isinstance(suite, Suite) else Suite.from_dict(suite)
    cells = build_cells(suite)
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(suite)
    (run_dir / "cells").mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "suite.json", json.dumps(suite.to_dict(), indent=2) + "\n")
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    memory = PeakMemory()
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    records: dict[str, dict[str, Any]] = {}
    reused = 0
    splits: dict[str, RatingSplit] = {}
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
            }
            cell_path = run_dir / "cells" / f"{cell.id}.json"
            previous = _read_json(cell_path)
            if _reusable(previous, expected):
                records[cell.id] = previous
                reused += 1
                log(f"[{position}/{len(cells)}] {cell.entry.label} {cell.split} seed {cell.seed}: reused")
                bar.update()
                continue
            record = {
                "id": cell.id,
                "label": cell.entry.label,
                "overrides": json_safe(cell.overrides),
                "split": cell.split,
                "split_name": split.name,
                **expected,
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
                    save_models=save_models,
                    progress=progress,
                )
            )
            atomic_write_text(cell_path, json.dumps(record, indent=1) + "\n")
            records[cell.id] = record
            summary = (
                ", ".join(f"{m} {record['metrics'][m]:.4f}" for m in ("rmse", "ndcg@10") if record["metrics"].get(m))
                if record["status"] == OK
                else record["status"]
            )
            log(
                f"[{position}/{len(cells)}] {cell.entry.label} {cell.split} seed {cell.seed}: {summary} "
                f"(fit {record['fit_seconds'] or 0:.1f} s)"
            )
            bar.update()
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
                "cells_total": len(cells),
                "cells_finished": len(ordered),
                "cells_reused": reused,
                "cells_failed": sum(r["status"] != OK for r in ordered),
                "complete": len(ordered) == len(cells),
            },
            "environment": environment(),
            "memory_method": memory.method,
            "summary": summarize(ordered, [e.label for e in suite.entries()]),
            "cells": ordered,
        }
        markdown = write_results(run_dir, results, plots=plots)
    return BenchmarkRun(run_dir, results, markdown)


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
) -> dict[str, Any]:
    """Fit and evaluate one cell; exceptions become a ``failed: …`` status."""
    out: dict[str, Any] = {
        "status": OK,
        "metrics": {},
        "evaluation": None,
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
        "note": None,
        "finished": None,
    }
    tb_dir = run_dir / "tensorboard" / cell.id
    shutil.rmtree(tb_dir, ignore_errors=True)  # a rerun replaces the sub-run of an unfinished attempt
    writer = None
    try:
        if tensorboard:
            writer = ProgressWriter(
                tb_dir,
                description=f"{cell.entry.label} {cell.split} seed {cell.seed}",
                total=epochs_hint(model.config),
                progress=progress,
            )
            out["tensorboard"] = str(tb_dir.relative_to(run_dir))
        memory.reset()
        start = time.perf_counter()
        model.fit(split, logger=writer)
        out["fit_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate(model, split, part="test", k=suite.k, relevance_threshold=suite.relevance_threshold)
        out["eval_seconds"] = time.perf_counter() - start
        out["peak_rss_mb"] = memory.peak_rss_mb()
        out["peak_cuda_mb"] = memory.peak_cuda_mb()
        evaluation = result.to_dict()
        out["metrics"] = evaluation.pop("metrics")
        out["evaluation"] = {k: evaluation[k] for k in ("part", "num_ratings", "num_users", "num_ranked_users", "k")}
        out["evaluation"]["relevance_threshold"] = evaluation["relevance_threshold"]
        out["history"] = json_safe(model.history)
        out["note"] = getattr(model, "protocol_note", None)
        if writer is not None:
            try:
                hparams = {"model": cell.entry.label, "split": cell.split, **config_to_dict(model.config)}
                log_hparams(writer, hparams, result.metrics)
                log_embeddings(writer, model, split.graph, step=len(model.history), projector=projector)
            except Exception as error:  # noqa: BLE001 - TensorBoard extras must not discard a finished result
                out["warnings"].append(f"tensorboard: {type(error).__name__}: {error}")
        if save_models:
            path = run_dir / "models" / f"{cell.id}.pt"
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(path)
            out["checkpoint"] = str(path.relative_to(run_dir))
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
