"""Strict readers of delimited rating files and the checks shared by every dataset.

Every problem is reported as a :class:`DataFormatError` naming the file and line.
Plain Python parsing is used instead of ``pandas.read_csv`` because pandas silently
pads short rows with NaN and reports no line for many of the errors we must name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gnnrec.data.errors import DataFormatError

UTF8_BOM = b"\xef\xbb\xbf"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def decode_line(raw: bytes, path: Path, number: int, encoding: str) -> str:
    """One line's text; a UTF-8 byte-order mark opening the file is dropped, an undecodable byte named."""
    if number == 1 and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        byte = raw[error.start]
        raise DataFormatError(
            path, f"byte 0x{byte:02x} at column {error.start + 1} is not valid {encoding} text", number
        ) from None


def raise_for_undecodable(path: Path, encoding: str = "utf-8") -> None:
    """Raise :class:`DataFormatError` naming the first line of ``path`` that ``encoding`` cannot decode.

    For readers whose parser (pandas) reports a decoding error without its line.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            decode_line(raw, path, number, encoding)
    raise DataFormatError(path, f"the file is not valid {encoding} text")


def iter_rows(
    path: str | Path, sep: str, num_columns: int | None, encoding: str = "utf-8"
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for every non-blank line of ``path``.

    Every reader treats text alike: a UTF-8 byte-order mark at the start is ignored, and a byte that is not
    valid in ``encoding`` is an error naming its line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    seen_any = False
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, number, encoding).rstrip("\r\n")
            if not line.strip():
                continue
            seen_any = True
            fields = line.split(sep)
            if num_columns is not None and len(fields) != num_columns:
                raise DataFormatError(
                    path, f"expected {num_columns} {sep!r}-separated columns, found {len(fields)}", number
                )
            yield number, fields
    if not seen_any:
        raise DataFormatError(path, "file is empty")


def parse_int(value: str, path: Path | str, line: int, what: str) -> int:
    """A decimal integer (ASCII digits, optional sign) that fits in 64 bits; anything else names the line."""
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        raise DataFormatError(path, f"{what} must be an integer, got {value!r}", line)
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise DataFormatError(path, f"{what} {text} does not fit in a 64-bit integer", line)
    return number


@dataclass
class RatingTable:
    """Ratings with raw (file) ids; ``line`` keeps each row's line number for later errors."""

    path: Path
    user: np.ndarray
    movie: np.ndarray
    rating: np.ndarray
    time: np.ndarray
    line: np.ndarray

    def __len__(self) -> int:
        return len(self.rating)


def read_ratings(
    path: str | Path, sep: str = "\t", rating_range: tuple[float, float] = (1, 5), encoding: str = "utf-8"
) -> RatingTable:
    """Read ``user sep movie sep rating sep timestamp`` rows (u.data, u1.base, ...)."""
    path = Path(path)
    rows: list[tuple[int, int, int, int, int]] = []
    low, high = rating_range
    for number, (u, m, r, t) in iter_rows(path, sep, 4, encoding):
        rating = parse_int(r, path, number, "rating")
        if not low <= rating <= high:
            raise DataFormatError(path, f"rating {rating} is outside {low:g}..{high:g}", number)
        rows.append(
            (
                parse_int(u, path, number, "user id"),
                parse_int(m, path, number, "movie id"),
                rating,
                parse_int(t, path, number, "timestamp"),
                number,
            )
        )
    table = np.asarray(rows, dtype=np.int64)
    return RatingTable(path, table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4])


def read_names(path: str | Path, sep: str | None = None) -> list[str]:
    """Read u.occupation (one name a line) or u.genre (``name|index``, in index order)."""
    path = Path(path)
    names: list[str] = []
    for number, fields in iter_rows(path, sep or "\n", 2 if sep else None):
        if sep:
            index = parse_int(fields[1], path, number, "genre index")
            if index != len(names):
                raise DataFormatError(path, f"expected index {len(names)}, got {index}", number)
        names.append(fields[0].strip())
    return names


@dataclass
class UserTable:
    path: Path
    raw_id: np.ndarray
    age: np.ndarray
    gender: list[str]
    occupation: list[str]
    zip_code: list[str]


def read_users(path: str | Path, occupations: list[str]) -> UserTable:
    """Read u.user: ``id|age|gender|occupation|zip``."""
    path = Path(path)
    ids, lines, ages, genders, jobs, zips = [], [], [], [], [], []
    for number, (uid, age, gender, job, zip_code) in iter_rows(path, "|", 5):
        ids.append(parse_int(uid, path, number, "user id"))
        lines.append(number)
        ages.append(parse_int(age, path, number, "age"))
        if gender not in ("M", "F"):
            raise DataFormatError(path, f"gender must be 'M' or 'F', got {gender!r}", number)
        if job not in occupations:
            raise DataFormatError(path, f"unknown occupation {job!r}; valid: {', '.join(occupations)}", number)
        genders.append(gender)
        jobs.append(job)
        zips.append(zip_code)
    check_unique(path, ids, lines, "user id")
    return UserTable(path, np.asarray(ids), np.asarray(ages), genders, jobs, zips)


@dataclass
class MovieTable:
    path: Path
    raw_id: np.ndarray
    title: list[str]
    release_date: list[str]
    year: np.ndarray  # 0 where the release date is missing
    genres: np.ndarray  # [num_movies, num_genres] 0/1


def read_movies(path: str | Path, genres: list[str]) -> MovieTable:
    """Read u.item (latin-1): ``id|title|release|video release|url|<one flag per genre>``."""
    path = Path(path)
    ids, lines, titles, dates, years, flags = [], [], [], [], [], []
    for number, fields in iter_rows(path, "|", 5 + len(genres), encoding="latin-1"):
        ids.append(parse_int(fields[0], path, number, "movie id"))
        lines.append(number)
        titles.append(fields[1])
        date = fields[2].strip()
        dates.append(date)
        if date:
            year_text = date.rsplit("-", 1)[-1]
            years.append(parse_int(year_text, path, number, "release year"))
        else:
            years.append(0)
        row = []
        for name, flag in zip(genres, fields[5:], strict=True):
            value = parse_int(flag, path, number, f"genre flag {name!r}")
            if value not in (0, 1):
                raise DataFormatError(path, f"genre flag {name!r} must be 0 or 1, got {value}", number)
            row.append(value)
        flags.append(row)
    check_unique(path, ids, lines, "movie id")
    return MovieTable(path, np.asarray(ids), titles, dates, np.asarray(years), np.asarray(flags, dtype=np.int64))


def check_unique(path: Path, ids: list[int], lines: list[int], what: str) -> None:
    """Refuse an id listed twice, naming the line of the repeat and of the first listing."""
    first: dict[int, int] = {}
    for value, line in zip(ids, lines, strict=True):
        if value in first:
            raise DataFormatError(path, f"duplicate {what} {value} (first on line {first[value]})", line)
        first[value] = line


def check_no_repeated_ratings(table: RatingTable, seen: dict[int, str], num_movies: int, users, movies) -> None:
    """Refuse a (user, movie) pair that is rated twice, naming the line of the repeat.

    ``seen`` maps pair keys to where they were first rated; pass the same dict for
    several files (e.g. a base and a test file) to refuse pairs repeated across them.
    """
    for row, key in enumerate((users * num_movies + movies).tolist()):
        if key in seen:
            raise DataFormatError(
                table.path,
                f"user {table.user[row]} rates movie {table.movie[row]} again (already in {seen[key]})",
                int(table.line[row]),
            )
        seen[key] = f"{table.path.name} line {table.line[row]}"


def check_listed(table: RatingTable, ids: np.ndarray, listed: np.ndarray, what: str, listing: str) -> None:
    """Raise, naming the line, for the first rating whose ``ids`` entry is not in ``listed``."""
    bad = np.flatnonzero(~np.isin(ids, listed))
    if len(bad):
        row = int(bad[0])
        raise DataFormatError(table.path, f"{what} id {int(ids[row])} is not in {listing}", int(table.line[row]))


def map_ids(table: RatingTable, user_ids: np.ndarray, movie_ids: np.ndarray, users_file: str, movies_file: str):
    """Map raw ids to 0-based indices; an id absent from u.user / u.item names its line."""
    user_index = {int(v): i for i, v in enumerate(user_ids)}
    movie_index = {int(v): i for i, v in enumerate(movie_ids)}
    users = np.empty(len(table), dtype=np.int64)
    movies = np.empty(len(table), dtype=np.int64)
    for row, (u, m) in enumerate(zip(table.user.tolist(), table.movie.tolist(), strict=True)):
        try:
            users[row] = user_index[u]
        except KeyError:
            raise DataFormatError(table.path, f"user id {u} is not in {users_file}", int(table.line[row])) from None
        try:
            movies[row] = movie_index[m]
        except KeyError:
            raise DataFormatError(table.path, f"movie id {m} is not in {movies_file}", int(table.line[row])) from None
    return users, movies


@dataclass
class CSVTable:
    """A delimited file read as strings: ``columns`` (header names or ``"0"``, ``"1"``, ...) and ``line`` per row."""

    path: Path
    columns: list[str]
    rows: np.ndarray  # [num_rows, num_columns] object array of str
    line: np.ndarray  # 1-based file line of each row

    def column(self, name: str, what: str = "column") -> np.ndarray:
        """The values of column ``name``; a missing column or an empty value is an error naming file (and line)."""
        if name not in self.columns:
            raise DataFormatError(self.path, f"no {what} {name!r}; columns found: {', '.join(self.columns)}", 1)
        values = self.rows[:, self.columns.index(name)]
        empty = np.flatnonzero(values == "")
        if len(empty):
            raise DataFormatError(self.path, f"missing value in {what} {name!r}", int(self.line[empty[0]]))
        return values


def read_csv_table(path: str | Path, sep: str = ",", header: bool = True) -> CSVTable:
    """Read a delimited file with pandas' C reader, keeping every row's line number for errors.

    Values are kept as stripped strings; blank lines are skipped. Quoted fields that span
    lines are not supported (line numbers would drift).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        frame = pd.read_csv(
            path, sep=sep, header=None, dtype=str, na_filter=False, skip_blank_lines=False, engine="c",
            encoding="utf-8-sig",
        )  # fmt: skip
    except UnicodeDecodeError:
        raise_for_undecodable(path)
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, "file is empty") from None
    except pd.errors.ParserError as error:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if found is None:
            raise DataFormatError(path, f"malformed file: {error}") from None
        expected, line, saw = (int(g) for g in found.groups())
        raise DataFormatError(path, f"expected {expected} {sep!r}-separated columns, found {saw}", line) from None
    rows = np.char.strip(frame.to_numpy(dtype=str)).astype(object)
    line = np.arange(1, len(rows) + 1)
    keep = (rows != "").any(axis=1)
    rows, line = rows[keep], line[keep]
    if header:
        if not len(rows):
            raise DataFormatError(path, "file is empty")
        columns = [str(name) for name in rows[0]]
        rows, line = rows[1:], line[1:]
    else:
        columns = [str(i) for i in range(rows.shape[1])]
    if not len(rows):
        raise DataFormatError(path, "file has no data rows")
    return CSVTable(path, columns, rows, line)


def parse_floats(table: CSVTable, values: np.ndarray, what: str, *, stored: type = np.float32) -> np.ndarray:
    """``values`` as float64, checked to be finite also as ``stored`` (the dtype the graph keeps them in).

    The first non-numeric value, or one that overflows ``stored`` (``1e308`` as float32), is an error
    naming its line.
    """
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        row = int(bad[0])
        raise DataFormatError(table.path, f"{what} must be a number, got {values[row]!r}", int(table.line[row]))
    with np.errstate(over="ignore"):
        overflow = np.flatnonzero(~np.isfinite(numbers.astype(stored)))
    if len(overflow):
        row = int(overflow[0])
        raise DataFormatError(
            table.path,
            f"{what} {values[row]} is out of range: it does not fit in {np.dtype(stored).name}",
            int(table.line[row]),
        )
    return numbers


def parse_integers(table: CSVTable, values: np.ndarray, what: str) -> np.ndarray:
    """``values`` as int64: whole numbers (``12``, ``12.0``, ``1.2e1``) within 64 bits; others name their line."""
    numbers = parse_floats(table, values, what, stored=np.float64)
    for bad, reason in (
        (numbers != np.rint(numbers), "{what} must be an integer, got {value!r}"),
        (np.abs(numbers) >= 2.0**63, "{what} {value} does not fit in a 64-bit integer"),
    ):
        rows = np.flatnonzero(bad)
        if len(rows):
            row = int(rows[0])
            raise DataFormatError(table.path, reason.format(what=what, value=values[row]), int(table.line[row]))
    return numbers.astype(np.int64)


def index_ids(table: CSVTable, values: np.ndarray, index: dict[str, int], what: str, listing: str) -> np.ndarray:
    """Map string ids to node indices; the first id absent from ``index`` is an error naming its line."""
    out = pd.Series(values).map(index)
    missing = np.flatnonzero(out.isna().to_numpy())
    if len(missing):
        row = int(missing[0])
        raise DataFormatError(table.path, f"{what} {values[row]!r} is not in {listing}", int(table.line[row]))
    return out.to_numpy(dtype=np.int64)


def check_unique_rows(table: CSVTable, keys: np.ndarray, describe) -> None:
    """Refuse a repeated key, naming the line of the repeat and of the first occurrence."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    repeat = np.flatnonzero(first[inverse.reshape(-1)] != np.arange(len(keys)))
    if len(repeat):
        row = int(repeat[0])
        original = int(table.line[first[inverse.reshape(-1)[row]]])
        raise DataFormatError(table.path, f"{describe(row)} repeated (first on line {original})", int(table.line[row]))
