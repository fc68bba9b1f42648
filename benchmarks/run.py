"""Run a benchmark suite: ``python benchmarks/run.py quick [gnnrec benchmark options]``.

The same as ``gnnrec benchmark ...``; suites are the JSON files next to this script in ``suites/``.
"""

from __future__ import annotations

import sys

from gnnrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
