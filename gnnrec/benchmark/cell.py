"""One benchmark cell: fit with selection on validation, refit on train ∪ validation, evaluate once on test.

Also the per-user arrays stored for the paired bootstrap.
"""

from __future__ import annotations

import inspect
import shutil
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy

from gnnrec.benchmark.harness import PeakMemory
from gnnrec.benchmark.refit_protocols import AveragedFits, refit_protocol_of, scaled_epochs
from gnnrec.benchmark.report import OK, json_safe, rounded_record
from gnnrec.benchmark.suite import Cell, Suite
from gnnrec.config import config_to_dict, epochs_hint
from gnnrec.data.split import RatingSplit
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model
from gnnrec.models.base import RatingModel
from gnnrec.tensorboard import ProgressWriter, log_embeddings, log_hparams
from gnnrec.utils import atomic_path, seed_everything


def _supports_per_user() -> bool:
    return "per_user" in inspect.signature(evaluate).parameters


def evaluate_part(model: Any, split: RatingSplit, part: str, suite: Suite, per_user: bool) -> Any:
    kwargs = {"per_user": True} if per_user and _supports_per_user() else {}
    return evaluate(model, split, part=part, k=suite.k, relevance_threshold=suite.relevance_threshold, **kwargs)


def save_per_user(result: Any, path: Path) -> str | None:
    """Write the evaluator's per-user arrays (for the paired bootstrap) to ``path`` (.npz); None without any."""
    arrays = getattr(result, "per_user", None)
    if not arrays:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        numpy.savez_compressed(handle, **{name: value.detach().cpu().numpy() for name, value in arrays.items()})
    return path.name


def _progress_writer(directory: Path, description: str, model: Any, progress: bool) -> ProgressWriter:
    return ProgressWriter(directory, description=description, total=epochs_hint(model.config), progress=progress)


def empty_result() -> dict[str, Any]:
    """The fields of a cell's result, before the cell runs (status ok, nothing measured yet)."""
    return {
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
        "metrics_without_refit": None,
        "refit_protocol": None,
        "fit_config": None,
        "preset_name": None,
        "finished": None,
    }


def run_cell(
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
    What is tested after a refit follows the model's ``refit_protocol``
    (:mod:`~gnnrec.benchmark.refit_protocols`, recorded as ``refit_protocol``): the refit, a refit with scaled
    epochs, the selection fit alone, or the average of the selection fit and the refit. The refit first takes
    over what the selection fit learned where the model allows it (``RatingModel.warm_start_from``, recorded
    as ``refit_fit.warm_start``).
    With a ``select_on`` suite the test part is not evaluated here.
    """
    out = empty_result()
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
        out["history"] = rounded_record(model.history)
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
        tested: Any = model
        if cell.refit(suite) and supports_refit(model):
            protocol = refit_protocol_of(model)
            out["refit_protocol"] = protocol
            if suite.score_without_refit and suite.select_on is None:
                # the same fit a `"refit": false` cell would test, scored here instead of fitted twice
                out["metrics_without_refit"] = evaluate_part(model, split, "test", suite, False).to_dict()["metrics"]
            if protocol != "none":
                final_split = split.merge_validation()
                selected = model.refit_overrides()
                if protocol == "scaled":
                    selected = scaled_epochs(selected, len(final_split.train) / len(split.train))
                overrides = {**cell.overrides, **selected}
                seed_everything(cell.seed)
                final = create_model(cell.entry.model, overrides, test_config=suite.test_config)
                warm_start = final.warm_start_from(model)
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
                    "warm_start": warm_start,
                    "warm_start_note": final.warm_start_note if warm_start else None,
                    "train_ratings": len(final_split.train),
                    "history": rounded_record(final.history),
                }
                out["fit_seconds"] += out["refit_fit"]["fit_seconds"]
                tested = AveragedFits(model, final) if protocol == "average" else final
        out.update(_model_extras(final))  # of the model that is tested
        if suite.select_on is None:
            start = time.perf_counter()
            result = evaluate_part(tested, final_split, "test", suite, per_user)
            out["eval_seconds"] = time.perf_counter() - start
            evaluation = result.to_dict()
            out["metrics"] = evaluation.pop("metrics")
            out["evaluation"] = {
                k: evaluation[k] for k in ("part", "num_ratings", "num_users", "num_ranked_users", "k")
            }
            out["evaluation"]["relevance_threshold"] = evaluation["relevance_threshold"]
            out["per_user"] = save_per_user(result, run_dir / "cells" / f"{cell.id}.npz") if per_user else None
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
            path = run_dir / "models" / f"{cell.id}.safetensors"
            path.parent.mkdir(parents=True, exist_ok=True)
            final.save(path)
            out["checkpoint"] = str(path.relative_to(run_dir))
            if final is not model:
                selection_path = path.with_name(f"{cell.id}.selection.safetensors")
                model.save(selection_path)
                out["selection"]["checkpoint"] = str(selection_path.relative_to(run_dir))
    except Exception as error:  # noqa: BLE001 - one model's failure must not lose the other cells
        out["status"] = f"failed: {type(error).__name__}: {error}"
        out["error"] = f"{type(error).__name__}: {error}"
        out["traceback"] = traceback.format_exc()
        out["history"] = rounded_record(getattr(model, "history", []))
    finally:
        if writer is not None:
            writer.close()
    out["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return out


def supports_refit(model: Any) -> bool:
    """Whether ``model`` says how to refit on train + validation (its class overrides ``refit_overrides``)."""
    return type(model).refit_overrides is not RatingModel.refit_overrides


def _model_extras(model: Any) -> dict[str, Any]:
    """The config a model with dataset presets (GLocal-K, the GNN) fitted with (``fit_config``: its preset
    filled in) and the preset's name; GLocal-K's (paper protocol) per-metric best test epochs; else empty."""
    extras: dict[str, Any] = {}
    fit_config = getattr(model, "fit_config", None)
    if fit_config is not None:
        extras["fit_config"] = json_safe(config_to_dict(fit_config))
        extras["preset_name"] = getattr(model, "preset_name", None)
    paper = getattr(model, "paper_metrics", None)
    if paper:
        extras["paper_metrics"] = {name: {"value": value, "epoch": epoch} for name, (value, epoch) in paper.items()}
    return extras
