"""The benchmark runner: a suite is a grid of (model, split, seed) cells; each cell fits once and is evaluated once.

Suites are data (JSON files in ``benchmarks/suites/``, or any dict with the keys of :class:`Suite`).
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

import csv
import dataclasses
import io
import itertools
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import gnnrec
from gnnrec.config import config_to_dict
from gnnrec.data import get_dataset
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation import METRICS, evaluate
from gnnrec.models import available_models, create_model, get_model_class
from gnnrec.tensorboard import ProgressWriter, log_embeddings, log_hparams
from gnnrec.utils import atomic_path, atomic_write_text, gnnrec_home, seed_everything

SUITES_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "suites"
ALL_MODELS = "all"
ANY_MODEL = "*"
OK = "ok"


# ---------------------------------------------------------------------- suites
@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One column of a suite: a registered ``model`` under a ``label``, with config ``overrides``."""

    label: str
    model: str
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, entry: str | Mapping[str, Any]) -> ModelEntry:
        """``"mf"`` or ``{"model": "glocal-k", "label": "glocal-k[paper]", "overrides": {"protocol": "paper"}}``."""
        if isinstance(entry, str):
            return cls(entry, entry, {})
        if not isinstance(entry, Mapping) or "model" not in entry:
            raise ValueError(f"a suite model entry is a model name or a dict with a 'model' key, got {entry!r}")
        unknown = set(entry) - {"model", "label", "overrides"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))} in suite model entry {entry!r}")
        overrides = dict(entry.get("overrides") or {})
        return cls(str(entry.get("label") or entry["model"]), str(entry["model"]), overrides)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "model": self.model, "overrides": dict(self.overrides)}


@dataclasses.dataclass
class Suite:
    """A benchmark grid: every model entry × split × seed.

    ``models=None`` means every registered model (``"all"`` in JSON). ``overrides`` maps a model
    name, a label or ``"*"`` (every model whose config has the key) to config overrides; they are
    applied after an entry's own overrides. ``test_config`` starts each model from its
    ``test_config()`` (tiny settings for smoke tests) instead of its default config.
    ``relevance_threshold=None`` lets the evaluator use 3/4 of the rating scale.
    """

    name: str
    splits: list[str]
    seeds: list[int]
    models: list[ModelEntry] | None = None
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    dataset: str = "ml-100k"
    description: str = ""
    k: int = 10
    relevance_threshold: float | None = None
    val_fraction: float = 0.05
    data_seed: int = 0
    test_config: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suite:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown suite key(s) {', '.join(sorted(unknown))}; valid keys: {', '.join(fields)}")
        missing = {"name", "splits", "seeds"} - set(data)
        if missing:
            raise ValueError(f"suite is missing {', '.join(sorted(missing))}")
        values = dict(data)
        models = values.get("models", ALL_MODELS)
        if models is None or models == ALL_MODELS:
            values["models"] = None
        elif isinstance(models, list) and models:
            values["models"] = [ModelEntry.parse(entry) for entry in models]
        else:
            raise ValueError(f"suite 'models' must be {ALL_MODELS!r} or a non-empty list, got {models!r}")
        for key in ("splits", "seeds"):
            if not isinstance(values[key], list) or not values[key]:
                raise ValueError(f"suite {key!r} must be a non-empty list, got {values[key]!r}")
        values["splits"] = [str(s) for s in values["splits"]]
        values["seeds"] = [int(s) for s in values["seeds"]]
        overrides = values.get("overrides") or {}
        if not isinstance(overrides, Mapping) or not all(isinstance(v, Mapping) for v in overrides.values()):
            raise ValueError("suite 'overrides' must map a model name, label or '*' to a dict of config values")
        values["overrides"] = {str(target): dict(v) for target, v in overrides.items()}
        suite = cls(**values)
        labels = [entry.label for entry in suite.entries()] if suite.models is not None else []
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        if duplicated:
            raise ValueError(f"suite {suite.name!r} has duplicate model label(s) {', '.join(duplicated)}")
        return suite

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["models"] = ALL_MODELS if self.models is None else [entry.to_dict() for entry in self.models]
        return out

    def entries(self) -> list[ModelEntry]:
        """The model entries, with ``models=None`` expanded to every registered model."""
        if self.models is None:
            return [ModelEntry(name, name, {}) for name in available_models()]
        return list(self.models)

    def select_models(self, names: Sequence[str]) -> Suite:
        """A copy restricted to the entries whose label or model name is in ``names`` (in suite order).

        Overrides that target only the dropped entries are dropped with them.
        """
        entries = self.entries()
        known = {e.label for e in entries} | {e.model for e in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"suite {self.name!r} has no model {', '.join(map(repr, unknown))}; "
                f"its models: {', '.join(e.label for e in entries)}"
            )
        chosen = [e for e in entries if e.label in names or e.model in names]
        kept = {e.label for e in chosen} | {e.model for e in chosen} | {ANY_MODEL}
        overrides = {target: values for target, values in self.overrides.items() if target in kept}
        return dataclasses.replace(self, models=chosen, overrides=overrides)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Suite:
        """A copy with further ``{target: {key: value}}`` overrides merged in (later values win)."""
        merged = {target: dict(values) for target, values in self.overrides.items()}
        for target, values in overrides.items():
            merged.setdefault(target, {}).update(values)
        return dataclasses.replace(self, overrides=merged)


def available_suites(directory: Path = SUITES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []


def load_suite(name_or_path: str | Path, directory: Path = SUITES_DIR) -> Suite:
    """A suite by name (a JSON file in ``benchmarks/suites/``) or from a path to a JSON file."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = directory / f"{name_or_path}.json"
    if not path.is_file():
        choices = ", ".join(available_suites(directory)) or f"none found in {directory}"
        raise ValueError(f"unknown suite {str(name_or_path)!r}; available suites: {choices} (or a path to a .json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"suite file {path} is not valid JSON: {error}") from None
    return Suite.from_dict(data)


def parse_targeted_overrides(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"epochs": 3, "gnn.lr": 0.1}`` → ``{"*": {"epochs": 3}, "gnn": {"lr": 0.1}}`` (``--set`` of the runner)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        target, _, name = key.rpartition(".")
        out.setdefault(target or ANY_MODEL, {})[name] = value
    return out


# ---------------------------------------------------------------------- cells
@dataclasses.dataclass(frozen=True)
class Cell:
    entry: ModelEntry
    split: str
    seed: int
    overrides: dict[str, Any]

    @property
    def id(self) -> str:
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", self.entry.label).strip("-")
        return f"{label}__{self.split}__seed{self.seed}"


def _config_fields(model: str) -> set[str]:
    return {f.name for f in dataclasses.fields(get_model_class(model).config_class)}


def build_cells(suite: Suite) -> list[Cell]:
    """Every (split, seed, model entry) cell with its resolved overrides; bad names and keys raise here."""
    entries = suite.entries()
    if not entries:
        raise ValueError("no models are registered")
    fields = {e.label: _config_fields(e.model) for e in entries}
    targets = {e.label for e in entries} | {e.model for e in entries} | {ANY_MODEL}
    for target, values in suite.overrides.items():
        if target not in targets:
            raise ValueError(
                f"override target {target!r} is not a model of suite {suite.name!r}; "
                f"its models: {', '.join(e.label for e in entries)}"
            )
        if target == ANY_MODEL:
            orphan = [key for key in values if not any(key in f for f in fields.values())]
            if orphan:
                raise ValueError(f"no model of suite {suite.name!r} has config key(s) {', '.join(orphan)}")
    cells = []
    for split in suite.splits:
        for seed in suite.seeds:
            for entry in entries:
                overrides = dict(entry.overrides)
                overrides.update(
                    {k: v for k, v in suite.overrides.get(ANY_MODEL, {}).items() if k in fields[entry.label]}
                )
                overrides.update(suite.overrides.get(entry.model, {}))
                if entry.label != entry.model:
                    overrides.update(suite.overrides.get(entry.label, {}))
                if "seed" in fields[entry.label]:
                    overrides["seed"] = seed
                cells.append(Cell(entry, split, seed, overrides))
    for cell in cells[: len(entries)]:
        create_model(cell.entry.model, cell.overrides, test_config=suite.test_config)  # refuse bad keys/values now
    return cells


def _json_safe(value: Any) -> Any:
    """Plain JSON types; non-finite floats become ``None`` and tensors lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _json_safe(value.tolist())
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


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


def epochs_hint(config: Any) -> int | None:
    """Expected number of logged steps for a progress bar: the sum of the config's ``*epochs`` fields."""
    total = sum(
        value
        for key, value in vars(config).items()
        if (key == "epochs" or key.endswith("_epochs")) and isinstance(value, int) and not isinstance(value, bool)
    )
    return total or None


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
                dataset = get_dataset(suite.dataset)(
                    split=cell.split,
                    source_dir=data_dir,
                    val_fraction=suite.val_fraction,
                    seed=suite.data_seed,
                    log=False,
                )
                splits[cell.split] = dataset.rating_split()
            split = splits[cell.split]
            seed_everything(cell.seed)  # before construction, in case a model draws random numbers there
            model = create_model(cell.entry.model, cell.overrides, test_config=suite.test_config)
            config = _json_safe(config_to_dict(model.config))
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
                "overrides": _json_safe(cell.overrides),
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
        out["history"] = _json_safe(model.history)
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
        out["history"] = _json_safe(getattr(model, "history", []))
    finally:
        if writer is not None:
            writer.close()
    out["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return out


# ---------------------------------------------------------------------- summaries and files
def _mean_std(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def _metric_base(name: str) -> str:
    return re.sub(r"@\d+$", "@k", name)


def metric_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric keys found in ``records``, in the evaluator's registry order (unregistered ones last)."""
    found = {name for r in records for name in (r.get("metrics") or {})}
    order = {name: position for position, name in enumerate(METRICS)}
    return sorted(found, key=lambda name: (order.get(_metric_base(name), len(order)), name))


def higher_is_better(name: str) -> bool | None:
    metric = METRICS.get(_metric_base(name))
    return metric.higher_is_better if metric is not None else None


def summarize(records: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and std over splits × seeds of every metric, per model label (only cells with status ok)."""
    names = metric_names(records)
    rows = []
    for label in labels:
        mine = [r for r in records if r["label"] == label]
        if not mine:
            continue
        ok = [r for r in mine if r["status"] == OK]
        rows.append(
            {
                "label": label,
                "model": mine[0]["model"],
                "cells": len(mine),
                "ok": len(ok),
                "failed": [f"{r['split']} seed {r['seed']}: {r['status']}" for r in mine if r["status"] != OK],
                "metrics": {
                    n: _mean_std([r["metrics"][n] for r in ok if r["metrics"].get(n) is not None]) for n in names
                },
                "fit_seconds": _mean_std([r["fit_seconds"] for r in ok]),
                "eval_seconds": _mean_std([r["eval_seconds"] for r in ok]),
                "peak_rss_mb": max((r["peak_rss_mb"] for r in ok), default=None),
                "config": mine[0]["config"],
            }
        )
    return rows


def _format(stat: Mapping[str, Any], digits: int = 4) -> str:
    if stat["mean"] is None:
        return "–"
    text = f"{stat['mean']:.{digits}f}"
    return text + (f" ± {stat['std']:.{digits}f}" if stat["std"] is not None else "")


def summary_table(results: Mapping[str, Any]) -> str:
    """The per-model markdown table: mean ± std of each metric, fit/eval seconds and peak memory."""
    names = metric_names(results["cells"])
    arrows = {True: " ↑", False: " ↓", None: ""}
    header = ["model", "cells ok"] + [f"{n}{arrows[higher_is_better(n)]}" for n in names]
    header += ["fit s", "eval s", "peak RSS MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for row in results["summary"]:
        cells = [row["label"], f"{row['ok']}/{row['cells']}"]
        cells += [_format(row["metrics"][n]) for n in names]
        cells += [_format(row["fit_seconds"], 1), _format(row["eval_seconds"], 1)]
        cells.append(f"{row['peak_rss_mb']:.0f}" if row["peak_rss_mb"] is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_markdown(results: Mapping[str, Any]) -> str:
    suite, run, env = results["suite"], results["run"], results["environment"]
    seeds = ", ".join(map(str, suite["seeds"]))
    lines = [
        f"# Benchmark `{suite['name']}`",
        "",
        suite["description"] or "",
        "",
        f"- dataset {suite['dataset']}, splits {', '.join(suite['splits'])}, seeds {seeds}; "
        f"validation share {suite['val_fraction']} (data seed {suite['data_seed']})",
        f"- metrics on the test part, evaluated once per cell; top-K with k={suite['k']}; "
        f"mean ± sample std over {len(suite['splits'])} split(s) × {len(suite['seeds'])} seed(s)",
        f"- wall time of this invocation: {run['wall_seconds']:.1f} s "
        f"({run['cells_finished']}/{run['cells_total']} cells finished, {run['cells_reused']} reused from an "
        f"earlier invocation, {run['cells_failed']} failed)",
        f"- peak memory: {results['memory_method']}",
        f"- versions: python {env['python']}, torch {env['torch']}, torch_geometric {env['torch_geometric']}, "
        f"numpy {env['numpy']}, gnnrec {env['gnnrec']}" + (f" (git {env['git_commit']})" if env["git_commit"] else ""),
        f"- machine: {env['platform']}, {env['processor']}, {env['cpu_count']} CPUs, {env['torch_threads']} torch "
        f"threads" + (f", GPU {env['cuda']}" if env["cuda"] else ""),
        f"- started {run['started']}" + (f"; command: `{run['command']}`" if run["command"] else ""),
        "",
        summary_table(results),
        "",
    ]
    failed = [(row["label"], f) for row in results["summary"] for f in row["failed"]]
    if failed:
        lines += ["## Failed cells", ""] + [f"- {label} {text}" for label, text in failed] + [""]
    warnings = [(r["id"], w) for r in results["cells"] for w in r.get("warnings") or []]
    if warnings:
        lines += ["## Warnings", ""] + [f"- {cell}: {text}" for cell, text in warnings] + [""]
    lines += ["## Configs", ""]
    for row in results["summary"]:
        config = ", ".join(f"{k}={json.dumps(v)}" for k, v in row["config"].items() if k != "seed")
        notes = sorted({r["note"] for r in results["cells"] if r["label"] == row["label"] and r.get("note")})
        lines.append(f"- `{row['label']}` ({row['model']}): {config or 'no hyperparameters'}")
        lines += [f"  - note: {note}" for note in notes]
    return "\n".join(lines) + "\n"


def results_csv(results: Mapping[str, Any]) -> str:
    names = metric_names(results["cells"])
    columns = ["id", "label", "model", "dataset", "split", "seed", "status"] + names
    columns += ["fit_seconds", "eval_seconds", "peak_rss_mb", "overrides", "config"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in results["cells"]:
        row = []
        for column in columns:
            if column in names:
                value = (record.get("metrics") or {}).get(column)
            elif column in ("overrides", "config"):
                value = json.dumps(record.get(column), sort_keys=True)
            else:
                value = record.get(column)
            row.append("" if value is None else value)
        writer.writerow(row)
    return buffer.getvalue()


def write_results(run_dir: Path, results: Mapping[str, Any], *, plots: bool = True) -> str:
    """Write ``results.json``, ``results.csv``, ``results.md`` and (optionally) the plots; return the markdown."""
    atomic_write_text(run_dir / "results.json", json.dumps(_json_safe(results), indent=1) + "\n")
    atomic_write_text(run_dir / "results.csv", results_csv(results))
    markdown = results_markdown(results)
    atomic_write_text(run_dir / "results.md", markdown)
    if plots and results["cells"]:
        plot_metric_bars(results, run_dir / "metrics.png")
        plot_learning_curves(results["cells"], run_dir / "learning_curves.png")
    return markdown


# ---------------------------------------------------------------------- plots
def _figure(num_panels: int, columns: int, panel_size: tuple[float, float]):
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    columns = max(1, min(columns, num_panels))
    rows = math.ceil(num_panels / columns)
    figure = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis in axes[num_panels:]:
        axis.set_visible(False)
    return figure, axes[:num_panels]


def _save_figure(figure: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


def plot_metric_bars(results: Mapping[str, Any], path: str | Path) -> Path:
    """One bar panel per metric (plus fit seconds): mean per model with std error bars."""
    rows = [row for row in results["summary"] if row["ok"]]
    names = metric_names(results["cells"])
    panels = [(n, [row["metrics"][n] for row in rows]) for n in names]
    panels.append(("fit seconds", [row["fit_seconds"] for row in rows]))
    figure, axes = _figure(len(panels), 4, (3.6, 3.0))
    labels = [row["label"] for row in rows]
    colors = [f"C{i % 10}" for i in range(len(labels))]
    for axis, (name, stats) in zip(axes, panels, strict=True):
        means = [s["mean"] if s["mean"] is not None else math.nan for s in stats]
        errors = [s["std"] or 0.0 for s in stats]
        axis.bar(range(len(labels)), means, yerr=errors, capsize=3, color=colors)
        finite = [(m, e) for m, e in zip(means, errors, strict=True) if math.isfinite(m)]
        if finite and name != "fit seconds":
            # zoom on the differences: rating errors of all models lie close together
            low = min(m - e for m, e in finite)
            high = max(m + e for m, e in finite)
            margin = max(high - low, 1e-3) * 0.25
            axis.set_ylim(max(0.0, low - margin), high + margin)
        for x, mean in enumerate(means):
            if math.isfinite(mean):
                axis.annotate(f"{mean:.3g}", (x, mean), ha="center", va="bottom", fontsize=7)
        direction = {True: " (higher is better)", False: " (lower is better)", None: ""}[higher_is_better(name)]
        axis.set_title(name + direction, fontsize=9)
        axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        axis.tick_params(axis="y", labelsize=8)
    suite = results["suite"]
    figure.suptitle(
        f"{suite['name']}: test metrics, mean ± std over "
        f"{len(suite['splits'])} split(s) × {len(suite['seeds'])} seed(s)"
    )
    return _save_figure(figure, Path(path))


def _curves(history: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """``{key: (x, y)}`` of the numeric history keys; x is the epoch while it increases, else the entry number."""
    epochs = [row.get("epoch") for row in history]
    increasing = all(isinstance(e, (int, float)) for e in epochs) and all(a < b for a, b in itertools.pairwise(epochs))
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for position, row in enumerate(history, start=1):
        x = row["epoch"] if increasing else position
        for key, value in row.items():
            if key in ("epoch", "seconds", "member", "lr") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                xs, ys = curves.setdefault(key, ([], []))
                xs.append(x)
                ys.append(value)
    return curves


def plot_learning_curves(cells: Sequence[Mapping[str, Any]], path: str | Path) -> Path | None:
    """One panel per model: the RMSE curves of its ``history`` (all numeric keys when it logs no RMSE)."""
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    for cell in cells:
        if cell.get("history"):
            by_label.setdefault(cell["label"], []).append(cell)
    if not by_label:
        return None
    figure, axes = _figure(len(by_label), 3, (4.2, 3.2))
    for axis, (label, mine) in zip(axes, by_label.items(), strict=True):
        keys_seen: set[str] = set()
        for cell in mine:
            curves = _curves(cell["history"])
            wanted = [k for k in curves if "rmse" in k] or list(curves)
            for index, key in enumerate(sorted(wanted)):
                xs, ys = curves[key]
                style = "--" if key.startswith("train") else "-"
                axis.plot(
                    xs,
                    ys,
                    style,
                    color=f"C{index % 10}",
                    alpha=0.8,
                    linewidth=1.2,
                    marker="o" if len(xs) < 12 else None,
                    markersize=3,
                    label=key if key not in keys_seen else None,
                )
                keys_seen.add(key)
        axis.set_title(f"{label} ({len(mine)} run{'s' if len(mine) > 1 else ''})", fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=8)
        if keys_seen:
            axis.legend(fontsize=7)
    figure.suptitle("learning curves (from each model's history; train dashed)")
    return _save_figure(figure, Path(path))
