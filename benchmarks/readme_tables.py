"""Copy result tables from committed results files into README.md, or check that they agree.

The marker syntax (``<!-- table:NAME -->`` blocks in results files, ``<!-- results: PATH#NAME -->`` blocks in
the README) is documented in :mod:`gnnrec.benchmark.markers`, which this script loads by path (no torch import).

``python benchmarks/readme_tables.py`` rewrites every such block with the named table, copied verbatim;
``--check`` changes nothing, prints a diff and exits 1 when README.md and the results files disagree (for CI).
The runner writes named tables with ``wrap_table``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

_MARKERS = Path(__file__).resolve().parents[1] / "gnnrec" / "benchmark" / "markers.py"


def _load_markers():
    """gnnrec/benchmark/markers.py by path: the check runs without importing gnnrec (and torch)."""
    spec = importlib.util.spec_from_file_location("gnnrec_benchmark_markers", _MARKERS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_markers = _load_markers()
ReadmeTableError = _markers.ReadmeTableError
wrap_table = _markers.wrap_table
extract_table = _markers.extract_table
render = _markers.render
differing_blocks = _markers.differing_blocks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parents[1] / "README.md")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if out of date")
    args = parser.parse_args(argv)
    readme: Path = args.readme
    try:
        current = readme.read_text(encoding="utf-8")
        expected = render(current, readme)
    except OSError as exc:
        print(f"error: cannot read {readme}: {exc.strerror}", file=sys.stderr)
        return 2
    except ReadmeTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if current == expected:
        print(f"{readme}: result tables up to date")
        return 0
    if args.check:
        for message in differing_blocks(current, expected, readme):
            print(message)
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                f"{readme} (committed)",
                f"{readme} (from results files)",
            )
        )
        print(f"{readme}: result tables are out of date; run python benchmarks/readme_tables.py")
        return 1
    from gnnrec.utils import atomic_write_text  # imports torch, so only when writing

    atomic_write_text(readme, expected)
    print(f"{readme}: result tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
