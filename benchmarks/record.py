"""Run a benchmark script and commit-ready record its output with provenance.

    python benchmarks/record.py benchmarks/results/load_large.md -- python benchmarks/bench_load_large.py

For scripts that print their numbers rather than write a results file: the command runs unchanged (its output
is shown live), and the record holds the exact command, the git commit with the dirty flag, versions, the
machine, the load average before and after (timings on a shared machine are upper bounds), wall time, exit
status and the output verbatim. The record is written atomically, and only when the command succeeded.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from gnnrec.provenance import code_version
from gnnrec.utils import atomic_write_text


def machine() -> str:
    """One line: OS, architecture, CPUs available to this process, memory."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else None
    size = f", {memory:.0f} GiB RAM" if memory else ""
    return f"{platform.platform()}, {platform.machine()}, {cpus} CPUs{size}"


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="markdown record to write")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    version = code_version()
    started, load_before = datetime.now(timezone.utc), load_average()
    tic = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:  # shown live and kept
        sys.stdout.write(line)
        lines.append(line)
    status = process.wait()
    seconds = time.perf_counter() - tic
    if status != 0:
        print(f"record.py: the command exited with status {status}; nothing written to {args.out}", file=sys.stderr)
        return status
    state = "dirty tree" if version["dirty"] else "clean tree"
    text = "\n".join(
        [
            f"# `{shlex.join(command)}`",
            "",
            f"- command: `{shlex.join(command)}` (recorded by `benchmarks/record.py`)",
            f"- code: git {version['commit_short']} ({state}), gnnrec {version['gnnrec_version']}",
            f"- python {platform.python_version()}; machine: {machine()}",
            f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; load average (1/5/15 min) "
            f"before {load_before}, after {load_average()}",
            f"- started {started.isoformat(timespec='seconds')}; wall time {seconds:.1f} s; exit status {status}",
            "",
            "Output:",
            "",
            "```",
            "".join(lines).rstrip("\n"),
            "```",
            "",
        ]
    )
    atomic_write_text(args.out, text)
    print(f"record: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
