"""Copy result tables from committed results files into README.md and docs/*.md, or check that they agree.

The marker syntax (``<!-- table:NAME -->`` blocks in results files, ``<!-- results: PATH#NAME -->`` blocks in
the documentation, PATH relative to the folder of the file that holds the block) is documented in
:mod:`gnnrec.benchmark.markers`, which this script loads by path (no torch import).

``python benchmarks/readme_tables.py`` rewrites every such block in README.md and every Markdown file under
docs/ (or in the FILEs given) with the named table, copied verbatim (markers inside fenced code blocks are
examples and left alone); ``--check`` changes nothing, prints a
diff and exits 1 when a file and the results files disagree (for CI). A missing or malformed marker, results
file or table exits 2 before anything is written. The runner writes named tables with ``wrap_table``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import re
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


FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def mask_code_blocks(text: str) -> tuple[str, dict[str, str]]:
    """``text`` with every line of a fenced code block replaced by a unique placeholder line.

    Markers shown as examples inside a code block are thereby neither filled nor checked; line numbers are kept.
    """
    lines = text.splitlines(keepends=True)
    hidden: dict[str, str] = {}
    fence: str | None = None
    for i, line in enumerate(lines):
        opening = FENCE.match(line)
        inside = fence is not None
        if fence is None and opening:
            fence = opening[1]
        elif fence is not None and opening and opening[1].startswith(fence[0]) and len(opening[1]) >= len(fence):
            fence = None
        if inside or fence is not None:
            key = f"\x00code-line-{i}\x00"
            hidden[key] = line
            lines[i] = key + ("\n" if line.endswith("\n") else "")
    return "".join(lines), hidden


def unmask_code_blocks(text: str, hidden: dict[str, str]) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(hidden.get(line.rstrip("\n"), line) for line in lines)


def render_outside_code(text: str, path: Path) -> str:
    """:func:`render` on the text outside fenced code blocks."""
    masked, hidden = mask_code_blocks(text)
    return unmask_code_blocks(render(masked, path), hidden)


def count_blocks(text: str) -> int:
    return sum(1 for line in mask_code_blocks(text)[0].splitlines() if README_START.match(line))


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
            rendered.append((path, current, render_outside_code(current, path)))
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
            for message in differing_blocks(mask_code_blocks(current)[0], mask_code_blocks(expected)[0], path):
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
