"""Named tables in results files and the README blocks that copy them (``<!-- table:NAME -->`` markers).

A results file (e.g. ``benchmarks/results/quick/results.md``) names each table it holds::

    <!-- table:rating -->
    | model | RMSE | ... |
    <!-- /table:rating -->

and README.md says where a table goes, by the results file's path (relative to the README's directory) and the
table's name::

    <!-- results: benchmarks/results/quick/results.md#rating -->
    (anything here is replaced)
    <!-- /results -->

A block whose results are not committed yet (a suite that takes long to run) adds ``if-present``::

    <!-- results: benchmarks/results/douban/results.md#rating if-present -->
    <!-- /results -->

While that results file does not exist, the block holds one line saying so (:func:`not_yet_committed`); once
it exists, the block holds its table like any other (a missing table is then an error, as everywhere).

The runner writes named tables with :func:`wrap_table`; ``benchmarks/readme_tables.py`` copies them into the
README (or, with ``--check``, fails when they disagree). Standard library only, so the script can load this
file without importing torch.
"""

from __future__ import annotations

import re
from pathlib import Path

README_START = re.compile(
    r"^\s*<!--\s*results:\s*(?P<path>[^#\s]+)#(?P<table>[\w.@-]+)(?:\s+(?P<optional>if-present))?\s*-->\s*$"
)
README_END = re.compile(r"^\s*<!--\s*/results\s*-->\s*$")
ANY_README_MARKER = re.compile(r"<!--\s*/?results\b")
TABLE_START = re.compile(r"^\s*<!--\s*table:(?P<name>[\w.@-]+)\s*-->\s*$")
TABLE_END = re.compile(r"^\s*<!--\s*/table:(?P<name>[\w.@-]+)\s*-->\s*$")


class ReadmeTableError(ValueError):
    """A marker, results file or table is missing or malformed; the message names the file and line."""


def wrap_table(name: str, table: str) -> str:
    """``table`` between ``<!-- table:name -->`` markers, as ``extract_table`` reads it back."""
    if not re.fullmatch(r"[\w.@-]+", name):
        raise ValueError(f"wrap_table: table name {name!r} may only hold letters, digits, '_', '.', '@', '-'")
    return f"<!-- table:{name} -->\n{table.strip(chr(10))}\n<!-- /table:{name} -->\n"


def not_yet_committed(path: str) -> str:
    """The line an ``if-present`` block holds while its results file ``path`` does not exist."""
    return f"*No committed results yet ({path} does not exist).*"  # no code span: docs tests check those exist


def extract_table(text: str, name: str, source: str) -> str:
    """The lines between ``<!-- table:name -->`` and ``<!-- /table:name -->`` in ``text`` (from file ``source``)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if (m := TABLE_START.match(line)) and m["name"] == name]
    if not starts:
        available = sorted({m["name"] for line in lines if (m := TABLE_START.match(line))})
        raise ReadmeTableError(f"{source}: no table {name!r} (tables there: {', '.join(available) or 'none'})")
    if len(starts) > 1:
        raise ReadmeTableError(f"{source}:{starts[1] + 1}: table {name!r} appears more than once")
    for i in range(starts[0] + 1, len(lines)):
        if (m := TABLE_END.match(lines[i])) and m["name"] == name:
            return "\n".join(lines[starts[0] + 1 : i]).strip("\n")
    raise ReadmeTableError(f"{source}:{starts[0] + 1}: table {name!r} has no closing <!-- /table:{name} -->")


def render(readme_text: str, readme_path: Path) -> str:
    """README text with every results block replaced by its table; paths are relative to the README's folder."""
    lines = readme_text.splitlines(keepends=True)
    out: list[str] = []
    cache: dict[Path, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        start = README_START.match(line)
        if start is None:
            if ANY_README_MARKER.search(line):
                raise ReadmeTableError(
                    f"{readme_path}:{i + 1}: malformed or unmatched results marker {line.strip()!r}; expected "
                    "'<!-- results: path/to/results.md#table -->' ... '<!-- /results -->'"
                )
            out.append(line)
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if ANY_README_MARKER.search(lines[j])), None)
        if end is None or not README_END.match(lines[end]):
            raise ReadmeTableError(f"{readme_path}:{i + 1}: results block is not closed by <!-- /results -->")
        relative = Path(start["path"])
        if relative.is_absolute():
            raise ReadmeTableError(f"{readme_path}:{i + 1}: results path must be relative, got {start['path']}")
        source = readme_path.parent / relative
        if start["optional"] and not source.exists():
            table = not_yet_committed(start["path"])
        else:
            table = _block_table(source, start, cache, f"{readme_path}:{i + 1}")
        out.append(line)
        out.append(table + "\n")
        out.append(lines[end] if lines[end].endswith("\n") else lines[end] + "\n")
        i = end + 1
    return "".join(out)


def _block_table(source: Path, start: re.Match[str], cache: dict[Path, str], where: str) -> str:
    """The table a results block names, read from ``source`` (cached); errors are prefixed with ``where``."""
    if source not in cache:
        try:
            cache[source] = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ReadmeTableError(f"{where}: cannot read {start['path']}: {exc.strerror}") from None
    try:
        return extract_table(cache[source], start["table"], start["path"])
    except ReadmeTableError as exc:
        raise ReadmeTableError(f"{where}: {exc}") from None


def differing_blocks(current: str, expected: str, readme_path: Path) -> list[str]:
    """``README:line: <results ref>`` for every results block whose content differs from its table."""
    cur, exp = current.splitlines(), expected.splitlines()
    cur_starts = [(i, line) for i, line in enumerate(cur) if README_START.match(line)]
    exp_starts = [i for i, line in enumerate(exp) if README_START.match(line)]
    found = []
    for (ci, line), ei in zip(cur_starts, exp_starts, strict=True):
        c_end = next(j for j in range(ci + 1, len(cur)) if README_END.match(cur[j]))
        e_end = next(j for j in range(ei + 1, len(exp)) if README_END.match(exp[j]))
        if cur[ci + 1 : c_end] != exp[ei + 1 : e_end]:
            found.append(f"{readme_path}:{ci + 1}: block {line.strip()} differs from the results file")
    return found
