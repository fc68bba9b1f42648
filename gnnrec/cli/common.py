"""What the subcommands share: data options and the split they name, checkpoints, overrides, run names,
the metrics table, and fitting with TensorBoard logging and a progress bar."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gnnrec.data import DATASETS, dataset_settings, load_split

# loader settings the data options (or the loading itself) decide, never copied from a checkpoint
SPLIT_OPTIONS = frozenset(
    {"source_dir", "val_fraction", "seed", "log", "transform", "pre_transform", "force_reload", "download"}
)


def split_help() -> str:
    return "; ".join(f"{name}: {', '.join(cls.splits)}" for name, cls in sorted(DATASETS.items()))


def add_data_options(parser: argparse.ArgumentParser, *, from_checkpoint: bool = False) -> None:
    """Dataset options; for ``evaluate``/``recommend`` unset ones mean "as the checkpoint was trained"."""
    checkpoint_note = " (default: the checkpoint's)" if from_checkpoint else ""
    parser.add_argument(
        "--dataset",
        default=None if from_checkpoint else "ml-100k",
        choices=sorted(DATASETS),
        help="dataset name" + checkpoint_note,
    )
    parser.add_argument(
        "--split",
        default=None,
        help=f"split name ({split_help()}); default: "
        + ("the checkpoint's, else " if from_checkpoint else "")
        + "the dataset's first (u1 for ml-100k)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="directory with the raw files (else the dataset's environment variable, e.g. "
        "$GNNREC_ML100K_DIR, else download)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=None if from_checkpoint else 0.05,
        help="share of each user's training ratings for validation" + checkpoint_note,
    )
    parser.add_argument(
        "--data-seed",
        type=int,
        default=None if from_checkpoint else 0,
        help="seed of the validation carve-out and random split" + checkpoint_note,
    )


def split_from_args(args: argparse.Namespace, recorded: dict[str, Any] | None = None):
    """The split named by the data options; options left unset fall back to ``recorded`` (a checkpoint's split).

    ``recorded`` holds ``dataset`` plus the split's settings (``split``, ``val_fraction``, ``seed``, ...).
    """
    recorded = recorded or {}
    check_seed("--data-seed", getattr(args, "data_seed", None))

    def pick(option: str, key: str, default: Any) -> Any:
        value = getattr(args, option, None)
        return value if value is not None else recorded.get(key, default)

    name = pick("dataset", "dataset", "ml-100k")
    options = {}
    if recorded.get("dataset") == name:
        # the checkpoint's own loader settings (a synthetic size, a CSV's columns, a random split's test share)
        options = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in recorded.items()
            if key in dataset_settings(name) and key not in SPLIT_OPTIONS and value is not None
        }
    return load_split(
        name,
        pick("split", "split", None),
        source_dir=args.data_dir,
        val_fraction=pick("val_fraction", "val_fraction", 0.05),
        seed=pick("data_seed", "seed", 0),
        log=False,
        **options,
    )


def checkpoint_path(path: str) -> Path:
    """A checkpoint file, or a run directory holding ``model.safetensors`` (an old ``model.pt`` is named too)."""
    from gnnrec.models.checkpoint import CHECKPOINT_FILE, LEGACY_FILE

    candidate = Path(path).expanduser()
    if candidate.is_dir():
        legacy = candidate / LEGACY_FILE
        candidate = candidate / CHECKPOINT_FILE
        if not candidate.is_file() and legacy.is_file():
            candidate = legacy  # loading refuses it, saying how to convert it
    if not candidate.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {candidate} (give a {CHECKPOINT_FILE} file or a `gnnrec train` run directory)"
        )
    return candidate


def check_top_k(k: int) -> int:
    """Refuse a top-K cutoff below 1 (before any data is loaded or model fitted)."""
    if k < 1:
        raise ValueError(f"-k/--k must be a positive integer (the top-K cutoff), got {k}")
    return k


def writable_directory(path: Path) -> Path:
    """Create ``path`` if needed and check that files can be written there (an ``OSError`` naming it if not)."""
    import tempfile

    from gnnrec.utils import remove_stray_temporaries

    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass
    remove_stray_temporaries(path)
    return path


def load_checkpoint(path: str, args: argparse.Namespace):
    """Load a checkpoint and the split to use it on (the one it was trained on unless the options say otherwise)."""
    from gnnrec.models import RatingModel

    checkpoint = checkpoint_path(path)
    info = RatingModel.load(checkpoint).info
    if not info.dataset and args.dataset is None:
        raise ValueError(f"{checkpoint} does not record its dataset (an older checkpoint); give --dataset")
    split = split_from_args(args, {"dataset": info.dataset or None, **info.settings})
    return RatingModel.load(checkpoint, split), split  # refuses a split the model was not trained on


def set_overrides(items: list[str] | None) -> dict[str, str]:
    from gnnrec.config import parse_set_options

    return parse_set_options(items or [])


def slug(name: str) -> str:
    return name.replace("/", "-")


def timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def command_line(argv: list[str] | None) -> str:
    return "gnnrec " + shlex.join(sys.argv[1:] if argv is None else argv)


def format_metrics_table(results: list[Any]) -> str:
    """Evaluation results side by side: one row per metric, one column per evaluated part; "–" where a metric is
    not defined (rating metrics of a ranking-only model)."""

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    names = list(dict.fromkeys(name for result in results for name in result.metrics))
    header = ["metric"] + [f"{r.model} {r.split} {r.part}" for r in results]
    rows = [[name] + [cell(r.metrics.get(name, float("nan"))) for r in results] for name in names]
    rows.append(["ratings"] + [str(r.num_ratings) for r in results])
    rows.append(["users"] + [str(r.num_users) for r in results])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def check_seed(option: str, seed: int | None) -> None:
    """Refuse a seed that does not fit in 64 bits (torch cannot take it)."""
    if seed is not None and not -(2**63) <= seed < 2**63:
        raise ValueError(f"{option} must be a 64-bit integer, got {seed}")


def model_with_seed(model_name: str, overrides: dict[str, Any], seed: int | None, *, test_config: bool):
    from gnnrec.models import create_model, get_model_class

    check_seed("--seed", seed)
    fields = {f.name for f in dataclasses.fields(get_model_class(model_name).config_class)}
    if seed is not None and "seed" in fields:
        if "seed" in overrides:
            raise ValueError("give the seed once: either --seed or --set seed=...")
        overrides = {**overrides, "seed": seed}
    return create_model(model_name, overrides, test_config=test_config)


def fit_with_progress(model: Any, split: Any, log_dir: Path, description: str) -> tuple[Any, float]:
    """Fit ``model`` with TensorBoard logging under ``log_dir`` (emptied first) and a progress bar.

    Returns the open writer (for final hparams/embeddings) and the fit seconds.
    """
    from gnnrec.config import epochs_hint
    from gnnrec.tensorboard import ProgressWriter

    shutil.rmtree(log_dir, ignore_errors=True)  # a rerun into the same directory replaces, not mixes, the curves
    writer = ProgressWriter(log_dir, description=description, total=epochs_hint(model.config))
    start = time.perf_counter()
    try:
        model.fit(split, logger=writer)
    except BaseException:
        writer.close()
        raise
    return writer, time.perf_counter() - start
