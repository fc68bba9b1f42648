"""TensorBoard output of a run: hparams, embedding histograms and the embedding projector with metadata.

Layout: one log directory per run, one sub-run (a :class:`ProgressWriter`) per model × split × seed.
Models log their own scalars and weight histograms through the ``logger`` passed to ``fit``;
:func:`log_hparams` adds the config → final metrics row of the hparams plugin and
:func:`log_embeddings` adds histograms and projector views of ``model.embeddings()``.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from gnnrec.data.display import movie_columns, user_columns


class ProgressWriter(SummaryWriter):
    """A ``SummaryWriter`` that also drives a tqdm bar from the steps of the scalars a model logs.

    ``total`` is the expected number of steps (e.g. the config's ``epochs``) or ``None``.
    The bar shows the latest validation RMSE (any scalar tag containing both ``rmse`` and ``val``).
    """

    def __init__(
        self,
        log_dir: str | Path,
        *,
        description: str = "",
        total: int | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__(log_dir=str(log_dir))
        self.bar = tqdm(total=total, desc=description, unit="step", leave=False, disable=None if progress else True)

    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None, *args: Any, **kwargs: Any):
        super().add_scalar(tag, scalar_value, global_step, *args, **kwargs)
        if global_step is not None and global_step > self.bar.n:
            self.bar.update(int(global_step) - self.bar.n)
        if "rmse" in tag and "val" in tag:
            self.bar.set_postfix_str(f"{tag} {float(scalar_value):.4f}", refresh=False)

    def close(self) -> None:
        self.bar.close()
        super().close()


def tensorboard_command(log_dir: str | Path) -> str:
    """The shell command that opens ``log_dir`` in TensorBoard."""
    return f"tensorboard --logdir {shlex.quote(str(log_dir))}"


def _hparam_value(value: Any) -> bool | int | float | str:
    """The hparams plugin takes bool, int, float and str; anything else is shown as JSON text."""
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None:
        return "none"
    return json.dumps(value, default=str)


def flatten_hparams(values: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Flatten nested mappings to ``{"a.b": value}`` with values the hparams plugin accepts."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_hparams(value, f"{name}."))
        else:
            out[name] = _hparam_value(value)
    return out


def log_hparams(
    writer: SummaryWriter, hparams: Mapping[str, Any], metrics: Mapping[str, float | None], *, prefix: str = "hparam/"
) -> dict[str, float]:
    """Write one hparams-plugin row (``hparams`` → final ``metrics``) into ``writer``'s own run.

    Metrics are also logged as scalars ``{prefix}{name}`` (the plugin reads their values from
    there); missing or non-finite metrics are left out. Returns the logged metric dict.
    """
    metric_dict = {
        f"{prefix}{name}": float(value)
        for name, value in metrics.items()
        if value is not None and math.isfinite(float(value))
    }
    experiment, session_start, session_end = hparams_summary(flatten_hparams(hparams), metric_dict)
    file_writer = writer._get_file_writer()
    for summary in (experiment, session_start, session_end):
        file_writer.add_summary(summary)
    for tag, value in metric_dict.items():
        writer.add_scalar(tag, value)
    return metric_dict


def _cell(value: Any) -> str:
    """One TSV cell: the projector's metadata file breaks on tabs and newlines."""
    return " ".join(str(value).split())


def _rows(columns: dict[str, list[Any]]) -> list[list[str]]:
    def cell(value: Any) -> str:
        if value is None or value == []:
            return "unknown"
        return _cell("|".join(value) if isinstance(value, list) else value)

    return [[cell(value) for value in row] for row in zip(*columns.values(), strict=True)]


def movie_metadata(graph: HeteroData) -> tuple[list[str], list[list[str]]]:
    """Projector metadata of every movie (title, year, genres, raw id): header and one row per movie."""
    columns = movie_columns(graph)
    return list(columns), _rows(columns)


def user_metadata(graph: HeteroData) -> tuple[list[str], list[list[str]]]:
    """Projector metadata of every user (raw id, age, gender, occupation): header and one row per user."""
    columns = user_columns(graph)
    return list(columns), _rows(columns)


NODE_METADATA = {"movie": movie_metadata, "user": user_metadata}


def log_embeddings(
    writer: SummaryWriter, model: Any, graph: HeteroData, *, step: int = 0, projector: bool = True
) -> list[str]:
    """Histograms and projector views of ``model.embeddings()`` (when the model has that method).

    Each embedding matrix must have one row per node of its type; the projector gets the
    node metadata of :func:`movie_metadata` / :func:`user_metadata`. Returns the node types logged.
    """
    get_embeddings = getattr(model, "embeddings", None)
    if not callable(get_embeddings):
        return []
    logged = []
    for node_type, matrix in get_embeddings().items():
        if node_type not in NODE_METADATA or not isinstance(matrix, Tensor):
            continue
        matrix = matrix.detach().float().cpu()
        header, rows = NODE_METADATA[node_type](graph)
        if matrix.dim() != 2 or matrix.size(0) != len(rows):
            raise ValueError(
                f"{getattr(model, 'name', type(model).__name__)}.embeddings()[{node_type!r}] has shape "
                f"{tuple(matrix.shape)}, expected one row per {node_type} ({len(rows)})"
            )
        writer.add_histogram(f"embeddings/{node_type}", matrix, step)
        writer.add_scalar(f"embeddings/{node_type}_norm_mean", float(matrix.norm(dim=1).mean()), step)
        if projector:
            writer.add_embedding(matrix, metadata=rows, metadata_header=header, tag=node_type, global_step=step)
        logged.append(node_type)
    return logged


def read_projector_metadata(log_dir: str | Path, tag: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the projector metadata written for ``tag`` under ``log_dir`` (for checks and tests)."""
    paths = sorted(Path(log_dir).glob(f"*/{tag}/metadata.tsv"))
    if not paths:
        raise FileNotFoundError(f"no projector metadata for {tag!r} under {log_dir}")
    lines = paths[-1].read_text(encoding="utf-8").rstrip("\n").split("\n")
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def read_projector_tensor(log_dir: str | Path, tag: str) -> torch.Tensor:
    """The embedding matrix written for ``tag`` under ``log_dir``."""
    paths = sorted(Path(log_dir).glob(f"*/{tag}/tensors.tsv"))
    if not paths:
        raise FileNotFoundError(f"no projector tensors for {tag!r} under {log_dir}")
    lines = paths[-1].read_text(encoding="utf-8").rstrip("\n").split("\n")
    return torch.tensor([[float(v) for v in line.split("\t")] for line in lines])
