"""Choosing torch's intra-op thread count for a fit, and setting it for a block of code.

The default (``resolve_threads(None)`` or ``"default"``, what every ``gnnrec`` command uses unless told
otherwise) is fixed for a given machine allotment, whatever else is running:

    threads = min(cores available to this process, DEFAULT_MAX_THREADS)   # DEFAULT_MAX_THREADS = 2

so that the same command on the same machine runs the same arithmetic (results differ slightly with the thread
count: reductions split differently) and records the same count. Two threads because the models' products on
ML-100k-sized data gain little past two, and a shared machine's other jobs then keep their cores.

* cores available: ``os.sched_getaffinity`` (taskset, container cpusets), else ``os.cpu_count()``, further capped
  by a cgroup v2 CPU quota (``/sys/fs/cgroup/cpu.max``, e.g. ``docker --cpus``): the allotment, not the load.

``"auto"`` is the opt-in load-aware choice (results may then differ from run to run with the machine's load):

    threads = max(1, min(cores available - cores busy with other work, ceil(work_size / GRAIN_SIZE)))

* cores busy: the 1-minute load average minus one for this process itself, rounded to the nearest integer
  (``os.getloadavg``; 0 where it is unavailable);
* problem size: torch splits an element-wise kernel over threads only in chunks of at least 32768 elements
  (ATen's ``GRAIN_SIZE``), so a problem whose largest per-step tensor (``work_size`` elements, e.g.
  ratings x embedding size, or the number of parameters) is below that gains nothing from a second thread and pays
  the synchronisation: it gets 1 thread. ``work_size=None`` means "large".
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch

GRAIN_SIZE = 32768
DEFAULT_MAX_THREADS = 2
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _cgroup_cpu_limit(path: Path = CGROUP_CPU_MAX) -> int | None:
    """Whole cores allowed by a cgroup v2 quota (``"<quota> <period>"``), None without a limit."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def available_cores() -> int:
    """Cores this process may run on: CPU affinity (else ``os.cpu_count()``), capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return max(1, min(cores, limit) if limit is not None else cores)


def busy_cores() -> int:
    """Cores kept busy by other work: the 1-minute load average minus this process, rounded; 0 if unknown."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0
    return max(0, round(load - 1.0))


def default_threads() -> int:
    """The reproducible default: ``min(available_cores(), DEFAULT_MAX_THREADS)``, independent of the load."""
    return min(available_cores(), DEFAULT_MAX_THREADS)


def resolve_threads(requested: int | str | None = None, work_size: int | None = None) -> int:
    """Thread count for ``requested``: a positive int (or its string) as given; None or ``"default"``:
    :func:`default_threads`; ``"auto"``: the load-aware heuristic of the module docstring (``work_size`` caps it)."""
    if requested is None or requested == "default":
        return default_threads()
    if requested == "auto":
        free = max(1, available_cores() - busy_cores())
        if work_size is not None:
            if work_size < 0:
                raise ValueError(f"resolve_threads: work_size must be >= 0, got {work_size}")
            free = min(free, max(1, math.ceil(work_size / GRAIN_SIZE)))
        return free
    if isinstance(requested, str):
        try:
            requested = int(requested)
        except ValueError:
            raise ValueError(f"threads must be 'default', 'auto' or a positive integer, got {requested!r}") from None
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ValueError(f"threads must be 'default', 'auto' or a positive integer, got {requested!r}")
    return requested


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(n)`` and restore the previous count afterwards (also on error)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"torch_threads: n must be a positive integer, got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)
