"""Small shared helpers: writable locations, atomic writes, seeding, devices."""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

HOME_ENV = "GNNREC_HOME"


def gnnrec_home() -> Path:
    """Writable root for caches, checkpoints and runs (``$GNNREC_HOME``, else ``~/.cache/gnnrec``)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "gnnrec").expanduser()


# ``.NAME.PID.RANDOM.tmp``: the temporary of atomic_path, named with the writing process's id
_TEMPORARY = re.compile(r"\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp")
_UNTAGGED_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")
UNTAGGED_TEMPORARY_AGE_S = 3600


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary is ``.NAME.PID.RANDOM.tmp``; one left by a killed process is removed by
    :func:`remove_stray_temporaries`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process (or unknowable): leave its file alone
    return True


def remove_stray_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporaries of :func:`atomic_path` in ``directory`` whose writer is gone; returns them.

    A temporary names its process; it is removed when no such process runs (one without a process id,
    from an older gnnrec, when it is over an hour old). Files of running processes are never touched.
    """
    directory = Path(directory)
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        tagged = _TEMPORARY.fullmatch(entry.name)
        if tagged:
            stray = not _process_alive(int(tagged.group(1)))
        elif _UNTAGGED_TEMPORARY.fullmatch(entry.name):
            try:
                stray = now - entry.stat().st_mtime > UNTAGGED_TEMPORARY_AGE_S
            except OSError:
                continue
        else:
            continue
        if stray and entry.is_file():
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:
                pass
    return removed


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that a run repeats."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def all_finite(values: torch.Tensor) -> bool:
    """Whether a floating-point tensor holds no NaN or infinity, in one ``aminmax`` pass.

    ``isfinite(x).all()`` writes a boolean tensor as large as ``x`` first, several times slower on CPU;
    a NaN reaches both extremes and an infinity one of them.
    """
    if not values.numel():
        return True
    low, high = torch.aminmax(values.detach())
    return math.isfinite(float(low)) and math.isfinite(float(high))


@contextlib.contextmanager
def subnormals_flushed() -> Iterator[bool]:
    """Treat subnormal floats as zero in this thread for a block (``torch.set_flush_denormal``: x86 FTZ and DAZ).

    CPUs compute with subnormal numbers (magnitudes below 1.2e-38 in float32) many times slower than with normal
    ones, and a softmax over a long, peaked row yields many: the probabilities a trained model gives the films
    it ranks last. Flushing them to zero changes only what is already below float32's normal range (TensorFlow
    flushes them in its CPU threads by default). Torch's intra-op worker threads keep their own setting. Yields
    whether the CPU supports it; on exit the default (no flushing) is restored.
    """
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA when available, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def available_memory(device: torch.device) -> int:
    """Free bytes for the fit: CUDA free memory on a GPU, else the machine's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil  # not Linux: PyG's dependency psutil knows

    return int(psutil.virtual_memory().available)


# Bytes a chunk of full-catalogue scores costs per (user, movie) cell: float32 scores, the permuted
# copy and the sort's values and int64 indices, and the bool seen mask.
BYTES_PER_SCORE = 4 + 4 + 4 + 8 + 1
SCORE_MEMORY_BUDGET = 512 * 2**20


def user_chunk_size(num_movies: int, memory_budget: int = SCORE_MEMORY_BUDGET) -> int:
    """Users per chunk so that one chunk's ``[users, num_movies]`` scoring stays within ``memory_budget`` bytes."""
    return max(1, int(memory_budget) // (max(1, num_movies) * BYTES_PER_SCORE))
