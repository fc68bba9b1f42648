"""Run a benchmark suite: ``python benchmarks/run.py quick [gnnrec benchmark options]``.

The same as ``gnnrec benchmark ...`` (or ``python -m gnnrec benchmark ...``); the shipped suites are the JSON
files in ``gnnrec/benchmark/suites/``, and a path to any other suite ``.json`` works too.
"""

from __future__ import annotations

import sys

from gnnrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
