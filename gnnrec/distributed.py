"""Data-parallel training with PyTorch's standard engine (``torch.distributed`` + DistributedDataParallel).

Started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``),
:func:`init_distributed` joins the process group: NCCL when CUDA is available (one GPU per local rank),
gloo on CPU. Without those variables everything here is a no-op for a single process, so the same
training loop runs alone or data-parallel:

* every rank draws the same global batch order from the run seed, and :func:`shard` gives each rank
  its part of each global batch; a loss summed over the shard and divided by the global batch size
  (times :func:`world_size`, since DDP averages gradients) makes N processes equal one process;
* rank 0 alone writes checkpoints, logs and TensorBoard (:func:`is_main`), computes validation
  metrics and decides early stopping; :func:`broadcast_flags` hands its decision to every rank;
* :func:`rank_seed` derives a distinct, reproducible seed per rank from the run seed (for sampling
  that must differ between ranks, e.g. negatives).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
DATA_PARALLEL_MODELS = ("mf", "gnn")  # models whose training loop shards batches across ranks


def check_data_parallel(model_name: str) -> None:
    """Refuse to train a model without a data-parallel loop in several processes (each would train it alone)."""
    if is_distributed() and model_name not in DATA_PARALLEL_MODELS:
        raise ValueError(
            f"model {model_name!r} has no data-parallel training yet; under torchrun use one of "
            f"{', '.join(DATA_PARALLEL_MODELS)} (or run a single process)"
        )


def launched_by_torchrun() -> bool:
    """Whether the process environment asks for more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Join the process group described by torchrun's environment variables; True when distributed.

    ``backend`` defaults to ``nccl`` when CUDA is available (and selects ``cuda:LOCAL_RANK``), else
    ``gloo``. Does nothing (returns False) for a single process; safe to call twice.
    """
    if dist.is_available() and dist.is_initialized():
        return True
    if not launched_by_torchrun():
        return False
    missing = [name for name in ENV_VARS if name not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE > 1 but {', '.join(missing)} not set; launch with torchrun")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return True


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 alone)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 alone)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this process writes outputs (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op alone)."""
    if is_distributed():
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds a dataset cache), then the other ranks (which reuse it)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def cleanup() -> None:
    """Leave the process group (no-op alone)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank_: int | None = None) -> int:
    """A reproducible 32-bit seed for ``rank_`` (default: this rank) derived from the run ``seed``."""
    rank_ = rank() if rank_ is None else int(rank_)
    return int(np.random.SeedSequence([int(seed), rank_]).generate_state(1)[0])


def shard(batch: Tensor, rank_: int | None = None, world: int | None = None) -> Tensor:
    """This rank's contiguous part of a global batch (sizes differ by at most one; may be empty)."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    return batch.tensor_split(world)[rank_]


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_flags(flags: Sequence[bool | float]) -> list[float]:
    """Rank 0's values of ``flags`` on every rank (e.g. "improved", "stop"); unchanged alone."""
    if not is_distributed():
        return [float(flag) for flag in flags]
    values = torch.tensor([float(flag) for flag in flags], dtype=torch.float64, device=_collective_device())
    dist.broadcast(values, src=0)
    return values.cpu().tolist()


def all_reduce_sum(value: float) -> float:
    """Sum of ``value`` over ranks (``value`` alone)."""
    if not is_distributed():
        return float(value)
    total = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(total)
    return float(total.item())


def wrap(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` in DistributedDataParallel when distributed (parameters broadcast from rank 0), else itself."""
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    device = next(module.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)
