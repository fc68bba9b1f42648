"""A benchmark script's run: its shared options, timing, peak memory, provenance and results record.

Every script in ``benchmarks/`` builds its parser, then::

    parser = argparse.ArgumentParser(...)
    harness.add_options(parser, data_dir=True, threads="default", seed=0)
    args = parser.parse_args(argv)
    threads = harness.apply_options(args)        # torch threads set by the project's policy (gnnrec.threads)
    with harness.timed() as clock:
        ...
    print(f"fit {clock.seconds:.1f} s, peak {harness.peak_rss_mib():.0f} MiB")

Peak memory has one measure, :class:`PeakMemory`: the kernel's resident high-water mark of *this* process
(``VmHWM``), because it is exact (no sampling gaps, no extra dependency) and can be reset so a phase or a cell
is measured alone; a script that runs work in child processes reads it in each child. Where ``/proc`` is
missing it falls back to ``getrusage`` max RSS, the same peak without the reset.

:func:`provenance` is what a results file records about the run (commit and whether the tree is clean,
versions, machine, cores, torch threads, ``OMP_NUM_THREADS``, load average, seeds); :func:`record_command`
runs a printing script and writes its output with that provenance (``benchmarks/record.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy
import torch

import gnnrec
from gnnrec.nn.blas import cpu_products
from gnnrec.provenance import code_version
from gnnrec.threads import available_cores, resolve_threads
from gnnrec.utils import atomic_write_text

THREADS_HELP = (
    "torch intra-op threads: default = min(cores available, 2), the same whatever the load; "
    "auto = free cores now (varies with the load); or N"
)


# ---------------------------------------------------------------------- options
def add_options(
    parser: argparse.ArgumentParser,
    *,
    data_dir: bool = False,
    threads: int | str | None = "default",
    seed: int | None = None,
    device: bool = False,
) -> argparse.ArgumentParser:
    """Add the options every benchmark script shares; returns ``parser``.

    ``data_dir``: ``--data-dir`` (raw files of the dataset; None: ``$GNNREC_ML100K_DIR``). ``threads``: the
    default of ``--threads`` (``"default"``, ``"auto"`` or a count, see :func:`gnnrec.threads.resolve_threads`;
    None: no ``--threads`` option). ``seed``: the default of ``--seed`` (None: no option). ``device``:
    ``--device`` (``cpu``, ``cuda``, ``cuda:1``; default ``cpu``).
    """
    if data_dir:
        parser.add_argument(
            "--data-dir", default=None, help="raw files of the dataset (default $GNNREC_ML100K_DIR, else downloaded)"
        )
    if threads is not None:
        parser.add_argument(
            "--threads", type=threads_value, default=str(threads), metavar="default|auto|N", help=THREADS_HELP
        )
    if seed is not None:
        parser.add_argument("--seed", type=int, default=seed, help=f"seed (default {seed})")
    if device:
        parser.add_argument(
            "--device", type=device_value, default="cpu", help="torch device: cpu, cuda or cuda:N (default cpu)"
        )
    return parser


def threads_value(text: str) -> str:
    """``--threads`` type: ``default``, ``auto`` or a positive integer (anything else is a usage error)."""
    try:
        resolve_threads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def device_value(text: str) -> str:
    """``--device`` type: a torch device this machine has (``cpu``; ``cuda``/``cuda:N`` only with CUDA)."""
    try:
        device = torch.device(text)
    except RuntimeError as error:
        raise argparse.ArgumentTypeError(f"not a torch device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: CUDA is not available on this machine")
    return text


def thread_count(args: argparse.Namespace) -> int | None:
    """The thread count ``--threads`` asks for, by the project's policy (None where the script has no
    ``--threads``); for work that runs in child processes, which set it themselves."""
    requested = getattr(args, "threads", None)
    return None if requested is None else resolve_threads(requested)


def apply_options(args: argparse.Namespace) -> int | None:
    """Act on the shared options: set torch's intra-op threads to :func:`thread_count` and return it."""
    count = thread_count(args)
    if count is not None:
        torch.set_num_threads(count)
    return count


# ---------------------------------------------------------------------- timing
class Clock:
    """Wall seconds (``time.perf_counter``) and CPU seconds of this process (``time.process_time``) of a block;
    both run on inside the block and are fixed after it."""

    def __init__(self) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        self.stopped: tuple[float, float] | None = None

    def stop(self) -> None:
        self.stopped = (time.perf_counter(), time.process_time())

    @property
    def seconds(self) -> float:
        return (self.stopped[0] if self.stopped is not None else time.perf_counter()) - self.started

    @property
    def cpu_seconds(self) -> float:
        return (self.stopped[1] if self.stopped is not None else time.process_time()) - self.cpu_started

    def __str__(self) -> str:
        return f"{self.seconds:.1f} s wall, {self.cpu_seconds:.1f} s CPU"


@contextlib.contextmanager
def timed(sync_cuda: bool = False) -> Iterator[Clock]:
    """Time the block: ``with timed() as clock: ...; clock.seconds``. ``sync_cuda`` waits for queued CUDA work
    at both ends, so GPU time is not left out."""
    if sync_cuda and torch.cuda.is_available():
        torch.cuda.synchronize()
    clock = Clock()
    try:
        yield clock
    finally:
        if sync_cuda and torch.cuda.is_available():
            torch.cuda.synchronize()
        clock.stop()


# ---------------------------------------------------------------------- peak memory
class PeakMemory:
    """Peak resident memory (RSS) of this process, resettable so a phase (a cell, a fit) is measured alone.

    On Linux: the kernel's high-water mark ``VmHWM``, reset by :meth:`reset` (``/proc/self/clear_refs``); the
    peak includes the memory the process already holds (Python, torch, loaded data). Elsewhere: ``getrusage``
    max RSS, the peak since the process started (:meth:`reset` cannot lower it). With CUDA the peak of
    ``torch.cuda.max_memory_allocated`` is reported too.
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
        """Peak RSS in MiB since the last reset (or since the process started)."""
        return peak_rss_mib()

    def peak_cuda_mb(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def peak_rss_mib() -> float:
    """Peak RSS of this process in MiB: ``VmHWM`` (since the last :meth:`PeakMemory.reset`, else since the
    process started), or ``getrusage`` max RSS where ``/proc`` is missing."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def peak_rss_gib() -> float:
    """:func:`peak_rss_mib` in GiB."""
    return peak_rss_mib() / 1024


PEAK_LINE = "gnnrec-harness peak RSS MiB: "  # what run_python_module's child prints last on stderr


def run_python_module(
    module: str, args: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[float, float | None]:
    """Run ``python -m module *args`` in a fresh interpreter (``check=True``); its wall seconds and its own peak
    RSS in MiB (:func:`peak_rss_mib` in the child as it exits; None if it printed none).

    Not ``getrusage(RUSAGE_CHILDREN)``: Linux counts the pages a child had mapped before ``exec`` (the
    parent's, when it is forked or vforked from a large process) into the child's maximum RSS.
    """
    code = (
        "import atexit, runpy, sys\n"
        "from gnnrec.benchmark.harness import PEAK_LINE, peak_rss_mib\n"
        "atexit.register(lambda: print(PEAK_LINE + format(peak_rss_mib(), '.1f'), file=sys.stderr))\n"
        f"sys.argv = [{module!r}, *sys.argv[1:]]\n"
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    )
    with timed() as clock:
        done = subprocess.run([sys.executable, "-c", code, *args], env=env, stderr=subprocess.PIPE, text=True)
    peak = None
    for line in done.stderr.splitlines():
        if line.startswith(PEAK_LINE):
            peak = float(line[len(PEAK_LINE) :])
        else:
            print(line, file=sys.stderr)
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, [sys.executable, "-m", module, *args])
    return clock.seconds, peak


# ---------------------------------------------------------------------- provenance
def machine() -> str:
    """One line: OS, architecture, CPUs available to this process, memory."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else None
    size = f", {memory:.0f} GiB RAM" if memory else ""
    return f"{platform.platform()}, {platform.machine()}, {cpus} CPUs{size}"


def load_average() -> str:
    """The 1/5/15-minute load averages, ``"a / b / c"`` (``"n/a"`` where the OS has none)."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def environment() -> dict[str, Any]:
    """Versions and machine, recorded with every run."""
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
        "cpu_products": cpu_products(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
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


def provenance(seeds: Sequence[int] | None = None, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """What a results file records about this run: :func:`gnnrec.provenance.code_version` (commit, dirty,
    command), :func:`environment`, the machine line, cores available, ``OMP_NUM_THREADS``, the load average
    now, the UTC time and ``seeds``."""
    return {
        **code_version(argv=argv),
        **environment(),
        "machine": machine(),
        "cores_available": available_cores(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load_average": load_average(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seeds": list(seeds) if seeds is not None else None,
    }


# ---------------------------------------------------------------------- record
def record_command(out: Path, command: Sequence[str], recorder: str = "benchmarks/record.py") -> int:
    """Run ``command`` (its output shown live) and, when it succeeds, write ``out``: the exact command, the git
    commit with the dirty flag, versions, the machine, the load average before and after (timings on a shared
    machine are upper bounds), wall time, exit status and the output verbatim, atomically. Returns the exit
    status; nothing is written when it is not 0."""
    info = provenance(argv=command)
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    with timed() as clock:
        for line in process.stdout:  # shown live and kept
            sys.stdout.write(line)
            lines.append(line)
        status = process.wait()
    if status != 0:
        print(f"record.py: the command exited with status {status}; nothing written to {out}", file=sys.stderr)
        return status
    state = "dirty tree" if info["dirty"] else "clean tree"
    text = "\n".join(
        [
            f"# `{shlex.join(command)}`",
            "",
            f"- command: `{shlex.join(command)}` (recorded by `{recorder}`)",
            f"- code: git {info['commit_short']} ({state}), gnnrec {info['gnnrec_version']}",
            f"- python {info['python']}; machine: {info['machine']}",
            f"- OMP_NUM_THREADS={info['omp_num_threads']}; load average (1/5/15 min) "
            f"before {info['load_average']}, after {load_average()}",
            f"- started {info['started']}; wall time {clock.seconds:.1f} s; exit status {status}",
            "",
            "Output:",
            "",
            "```",
            "".join(lines).rstrip("\n"),
            "```",
            "",
        ]
    )
    atomic_write_text(out, text)
    print(f"record: {out}")
    return 0
