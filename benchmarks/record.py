"""Run a benchmark script and commit-ready record its output with provenance.

    python benchmarks/record.py benchmarks/results/load_large.md -- python benchmarks/bench_load_large.py

For scripts that print their numbers rather than write a results file: the command runs unchanged (its output
is shown live), and the record holds the exact command, the git commit with the dirty flag, versions, the
machine, the load average before and after (timings on a shared machine are upper bounds), wall time, exit
status and the output verbatim. The record is written atomically, and only when the command succeeded
(:func:`gnnrec.benchmark.harness.record_command`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gnnrec.benchmark.harness import record_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="markdown record to write")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    return record_command(args.out, command)


if __name__ == "__main__":
    sys.exit(main())
