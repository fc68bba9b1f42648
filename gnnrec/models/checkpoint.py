"""The checkpoint file of a fitted model: one safetensors file, no pickle.

A checkpoint (``model.safetensors``) is a :mod:`gnnrec.tensor_files` file of kind ``gnnrec-checkpoint``:
the weights and every other tensor of the model's state as safetensors entries, and as JSON the format
number, model name, config, split info (fingerprint, sizes, rating scale, settings), the history, the
non-tensor state and the versions that wrote it, with a SHA-256 over both checked on loading.

Checkpoints of older gnnrec versions were pickles (``torch.save``); they are refused, since unpickling
runs whatever code the file names. :func:`convert_pickle_checkpoint` (``gnnrec convert --trust``)
rewrites one the user trusts, reading it with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

import gnnrec
from gnnrec.tensor_files import PickleFileError, TensorFileError, read_tensor_file, sniff, write_tensor_file
from gnnrec.utils import atomic_path

CHECKPOINT_KIND = "gnnrec-checkpoint"
CHECKPOINT_FORMAT = 2  # 1: the pickle checkpoints of older versions
PICKLE_FORMAT = 1
CHECKPOINT_FILE = "model.safetensors"  # the checkpoint's name in a `gnnrec train` run directory
LEGACY_FILE = "model.pt"  # its name in run directories of older versions (a pickle)
SUFFIX = ".safetensors"
REQUIRED = {"format": int, "model": str, "config": dict, "split": dict, "seen": torch.Tensor, "history": list,
            "state": dict}  # fmt: skip


class CheckpointError(ValueError):
    """A file is not a usable gnnrec checkpoint (a pickle, damaged, changed, or not matching its model)."""


def convert_hint(path: Path) -> str:
    new = path.with_suffix(SUFFIX) if path.suffix != SUFFIX else path.with_name(path.stem + "-converted" + SUFFIX)
    return (
        f"{path} is a pickle checkpoint (written by an older gnnrec, or not by gnnrec); gnnrec no longer loads "
        f"pickles because unpickling can run code. If you trust where it came from, convert it once: "
        f"gnnrec convert --trust {path} {new}"
    )


def versions() -> dict[str, str]:
    import safetensors

    return {
        "gnnrec": gnnrec.__version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


def write_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (see :data:`REQUIRED`) to ``path`` atomically, with the format number and versions."""
    path = Path(path)
    payload = {**payload, "format": CHECKPOINT_FORMAT, "versions": versions()}
    with atomic_path(path) as tmp:
        write_tensor_file(tmp, payload, CHECKPOINT_KIND, {"model": str(payload["model"])})
    return path


def check_payload(path: Path, payload: Any, expected_format: int = CHECKPOINT_FORMAT) -> dict[str, Any]:
    """Refuse a payload without the keys and types of a checkpoint (as :class:`CheckpointError`)."""
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} is not a gnnrec checkpoint (it holds a {type(payload).__name__})")
    if payload.get("format") != expected_format:
        raise CheckpointError(f"{path} is not a gnnrec checkpoint of format {expected_format}")
    for key, kind in REQUIRED.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{path}: checkpoint field {key!r} is missing or not a {kind.__name__}")
    seen = payload["seen"]
    if seen.dim() != 2 or seen.size(0) != 2 or seen.dtype != torch.long:
        raise CheckpointError(f"{path}: checkpoint field 'seen' must be a [2, E] int64 tensor")
    return payload


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checked payload of the checkpoint at ``path``; pickles are refused with how to convert them."""
    path = Path(path)
    try:
        payload, _ = read_tensor_file(path, CHECKPOINT_KIND)
    except PickleFileError:
        raise CheckpointError(convert_hint(path)) from None
    except TensorFileError as error:
        raise CheckpointError(f"{error} (not a usable gnnrec checkpoint)") from None
    return check_payload(path, payload)


def convert_pickle_checkpoint(old: str | Path, new: str | Path) -> Path:
    """Rewrite a pickle checkpoint of an older gnnrec as a safetensors checkpoint at ``new``.

    The pickle is read with ``torch.load(weights_only=True)``: PyTorch's restricted unpickler, which builds
    only tensors and plain containers. Only call this for files you trust.
    """
    old, new = Path(old), Path(new)
    if not old.is_file():
        raise FileNotFoundError(f"no checkpoint at {old}")
    if sniff(old) != "pickle":
        raise CheckpointError(f"{old} is not a pickle checkpoint; nothing to convert")
    if new.exists() and new.resolve() == old.resolve():
        raise CheckpointError("give the converted checkpoint a new path; the old file is kept")
    try:
        payload = torch.load(old, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same to the user
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{old} cannot be read as a gnnrec pickle checkpoint: {message}") from None
    payload = check_payload(old, payload, PICKLE_FORMAT)
    return write_checkpoint(new, {key: payload[key] for key in REQUIRED})
