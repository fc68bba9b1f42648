"""Copy result tables from committed results files into README.md and docs/*.md, or check that they agree.

The marker syntax (``<!-- table:NAME -->`` blocks in results files, ``<!-- results: PATH#NAME -->`` blocks in
the documentation, PATH relative to the folder of the file that holds the block) is documented in
:mod:`gnnrec.benchmark.markers`, which this script loads by path (no torch import).

``python benchmarks/readme_tables.py`` rewrites every such block in README.md and every Markdown file under
docs/ (or in the FILEs given) with the named table, copied verbatim; ``--check`` changes nothing, prints a
diff and exits 1 when a file and the results files disagree (for CI). A missing or malformed marker, results
file or table exits 2 before anything is written. The runner writes named tables with ``wrap_table``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MARKERS = ROOT / "gnnrec" / "benchmark" / "markers.py"


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
README_START = _markers.README_START


def documentation_files(root: Path) -> list[Path]:
    """README.md (when present) and every Markdown file under docs/, in a stable order."""
    readme = root / "README.md"
    docs = sorted((root / "docs").rglob("*.md")) if (root / "docs").is_dir() else []
    return ([readme] if readme.is_file() else []) + docs


def count_blocks(text: str) -> int:
    return sum(1 for line in text.splitlines() if README_START.match(line))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "files", nargs="*", type=Path, help="Markdown files to fill (default: README.md and docs/**/*.md under --root)"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root for the default files")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if out of date")
    args = parser.parse_args(argv)
    files: list[Path] = args.files or documentation_files(args.root)
    if not files:
        print(f"error: no README.md or docs/*.md under {args.root}", file=sys.stderr)
        return 2
    rendered: list[tuple[Path, str, str]] = []
    for path in files:
        try:
            current = path.read_text(encoding="utf-8")
            rendered.append((path, current, render(current, path)))
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        except ReadmeTableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    stale = [(path, current, expected) for path, current, expected in rendered if current != expected]
    blocks = sum(count_blocks(current) for _, current, _ in rendered)
    if not stale:
        print(f"{len(files)} file(s), {blocks} result block(s): up to date")
        return 0
    if args.check:
        for path, current, expected in stale:
            for message in differing_blocks(current, expected, path):
                print(message)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    f"{path} (committed)",
                    f"{path} (from results files)",
                )
            )
            print(f"{path}: result tables are out of date; run python benchmarks/readme_tables.py")
        return 1
    from gnnrec.utils import atomic_write_text  # imports torch, so only when writing

    for path, _, expected in stale:
        atomic_write_text(path, expected)
        print(f"{path}: result tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
