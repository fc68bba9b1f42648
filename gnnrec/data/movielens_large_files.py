"""Vectorised readers of the MovieLens-10M/20M/25M files (``ratings.dat``/``movies.dat`` and the CSVs).

Ratings files have 10–25 million lines, so they are read with pandas' C parser into typed columns; a bad
line is found after parsing (a parse failure, a NaN or an out-of-range value) and reported with its file
and 1-based line number, as the small loaders do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gnnrec.data.errors import DataFormatError
from gnnrec.data.parsing import INT64_MAX, INT64_MIN, iter_rows, parse_int, raise_for_undecodable

HALF_STARS = [x / 2 for x in range(1, 11)]  # 0.5, 1.0, ..., 5.0
NO_GENRES = "(no genres listed)"
_YEAR = r"\((\d{4})\)\s*$"
_PANDAS_LINE = re.compile(r"line (\d+)")
_INTEGER = re.compile(r"[+-]?[0-9]+")
INTEGER_COLUMNS = ("userId", "movieId", "timestamp", "user", "movie", "time")


@dataclass
class Ratings:
    """Parsed ratings with raw ids; row ``i`` sits on line ``i + first_line`` of ``path``."""

    path: Path
    user: np.ndarray  # int64 raw ids
    movie: np.ndarray  # int64 raw ids
    rating: np.ndarray  # float32
    time: np.ndarray  # int64 seconds
    first_line: int

    def __len__(self) -> int:
        return len(self.rating)

    def line(self, row: int) -> int:
        return int(row) + self.first_line


@dataclass
class Movies:
    path: Path
    raw_id: np.ndarray
    title: list[str]
    year: np.ndarray  # 0 where the title carries no "(yyyy)"
    genres: np.ndarray  # [num_movies, len(genre_names)] 0/1
    genre_names: list[str]


def _read_table(path: Path, read: Callable[..., pd.DataFrame], **kwargs) -> pd.DataFrame:
    """Run a pandas reader, turning its tokenising errors into :class:`DataFormatError` with the line."""
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        return read(path, encoding="utf-8-sig", **kwargs)
    except UnicodeDecodeError:
        raise_for_undecodable(path)
    except pd.errors.ParserError as error:
        match = _PANDAS_LINE.search(str(error))
        raise DataFormatError(path, f"malformed line ({error})", int(match.group(1)) if match else None) from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, "file is empty") from None


def _first_bad(
    frame: pd.DataFrame, columns: list[str], path: Path, first_line: int, integers: tuple[str, ...] = ()
) -> None:
    """Raise for the first row (blank lines included) with a missing or non-numeric field among ``columns``.

    The ``integers`` columns must also be decimal integers within 64 bits (a 23-digit id is refused).
    """
    first, reason = len(frame), ""
    for name in columns:
        text = frame[name]
        not_number = pd.to_numeric(text, errors="coerce").isna().to_numpy()
        bad = not_number
        if name in integers:
            bad = bad | ~np.fromiter((_fits_int64(v) for v in text.tolist()), dtype=bool, count=len(text))
        bad = np.flatnonzero(bad)
        if len(bad) and bad[0] < first:
            first = int(bad[0])
            value = text.iloc[first]
            kind = "a number" if not_number[first] else "an integer within 64 bits"
            reason = f"missing field {name!r}" if pd.isna(value) else f"{name} must be {kind}, got {value!r}"
    if first < len(frame):
        raise DataFormatError(path, reason, first + first_line)
    raise DataFormatError(path, "could not parse the file")


def _fits_int64(value: object) -> bool:
    if not isinstance(value, str) or not _INTEGER.fullmatch(value.strip()):
        return False
    return INT64_MIN <= int(value.strip()) <= INT64_MAX


def _check_ratings(table: Ratings, names: tuple[str, str, str, str]) -> Ratings:
    """Vectorised checks: integer ids and time, ratings on the half-star scale 0.5..5."""
    for values, name in zip((table.user, table.movie, table.time), (names[0], names[1], names[3]), strict=True):
        bad = np.flatnonzero(values < 0)
        if len(bad):
            raise DataFormatError(table.path, f"{name} must be non-negative, got {values[bad[0]]}", table.line(bad[0]))
    doubled = table.rating * 2
    bad = np.flatnonzero((doubled != np.rint(doubled)) | (doubled < 1) | (doubled > 10))
    if len(bad):
        raise DataFormatError(
            table.path, f"rating {table.rating[bad[0]]:g} is not a half star in 0.5..5", table.line(bad[0])
        )
    if len(table) == 0:
        raise DataFormatError(table.path, "file has no ratings")
    return table


def read_ratings_csv(path: str | Path) -> Ratings:
    """Read ML-20M/25M ``ratings.csv`` (header ``userId,movieId,rating,timestamp``)."""
    path = Path(path)
    names = ["userId", "movieId", "rating", "timestamp"]
    kwargs = dict(engine="c", header=0, names=names, skip_blank_lines=False)
    try:
        frame = _read_table(
            path, pd.read_csv, dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float32,
                                      "timestamp": np.int64}, **kwargs
        )  # fmt: skip
    except (ValueError, TypeError, OverflowError) as error:
        if isinstance(error, DataFormatError):
            raise
        _first_bad(_read_table(path, pd.read_csv, dtype=str, **kwargs), names, path, 2, INTEGER_COLUMNS)
    _check_header(path, names)
    table = Ratings(path, *(frame[n].to_numpy() for n in names), first_line=2)  # type: ignore[arg-type]
    return _check_ratings(table, tuple(names))  # type: ignore[arg-type]


def _check_header(path: Path, expected: list[str]) -> None:
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline().strip().split(",")
    if header != expected:
        raise DataFormatError(path, f"header must be {','.join(expected)}, got {','.join(header)}", 1)


def read_ratings_dat(path: str | Path) -> Ratings:
    """Read ML-10M ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``, no header).

    Read with ``:`` as separator, which keeps pandas on its C parser; the empty
    in-between columns must then be empty on every line.
    """
    path = Path(path)
    names = ["user", "gap1", "movie", "gap2", "rating", "gap3", "time"]
    gaps = ["gap1", "gap2", "gap3"]
    kwargs = dict(engine="c", sep=":", header=None, names=names, skip_blank_lines=False, quoting=3)
    fast = {"user": np.int64, "movie": np.int64, "rating": np.float32, "time": np.int64}
    try:
        frame = _read_table(path, pd.read_csv, dtype={**fast, **dict.fromkeys(gaps, np.float32)}, **kwargs)
    except (ValueError, TypeError, OverflowError) as error:
        if isinstance(error, DataFormatError):
            raise
        frame = _read_table(path, pd.read_csv, dtype=str, **kwargs)
    filled = np.flatnonzero(frame[gaps].notna().to_numpy().any(axis=1))
    if len(filled):
        raise DataFormatError(path, "expected 4 '::'-separated columns", int(filled[0]) + 1)
    if frame["user"].dtype != np.int64:  # read as text: the fast read failed on a field
        _first_bad(frame, list(fast), path, 1, INTEGER_COLUMNS)
    table = Ratings(path, *(frame[n].to_numpy() for n in fast), first_line=1)  # type: ignore[index]
    return _check_ratings(table, ("user id", "movie id", "rating", "timestamp"))


def _genre_matrix(path: Path, genre_lists: list[str], lines: list[int]) -> tuple[np.ndarray, list[str]]:
    """0/1 flags over the sorted genres the file uses; ``(no genres listed)`` gives an all-zero row."""
    split = [g.split("|") if g != NO_GENRES else [] for g in genre_lists]
    for parts, line in zip(split, lines, strict=True):
        if any(not g.strip() for g in parts):
            raise DataFormatError(path, "empty genre name", line)
    names = sorted({g for parts in split for g in parts})
    column = {g: i for i, g in enumerate(names)}
    flags = np.zeros((len(split), len(names)), dtype=np.int64)
    rows = [i for i, parts in enumerate(split) for _ in parts]
    cols = [column[g] for parts in split for g in parts]
    flags[rows, cols] = 1
    return flags, names


def _movies(path: Path, ids: np.ndarray, titles: list[str], genres: list[str], lines: list[int]) -> Movies:
    order = np.argsort(ids, kind="stable")
    repeat = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(repeat):
        row = int(order[repeat[0] + 1])
        raise DataFormatError(path, f"duplicate movie id {ids[row]}", lines[row])
    year = pd.Series(titles, dtype=object).str.extract(_YEAR)[0].fillna(0).astype(np.int64).to_numpy()
    flags, names = _genre_matrix(path, genres, lines)
    return Movies(path, ids, titles, year, flags, names)


def read_movies_csv(path: str | Path) -> Movies:
    """Read ML-20M/25M ``movies.csv`` (header ``movieId,title,genres``; titles may be quoted)."""
    path = Path(path)
    names = ["movieId", "title", "genres"]
    frame = _read_table(path, pd.read_csv, engine="c", header=0, names=names, dtype=str, keep_default_na=False)
    _check_header(path, names)
    lines = list(range(2, len(frame) + 2))
    ids = pd.to_numeric(frame["movieId"], errors="coerce")  # NaN for a missing id
    integral = np.fromiter((_fits_int64(v) for v in frame["movieId"].tolist()), dtype=bool, count=len(frame))
    bad = np.flatnonzero(ids.isna().to_numpy() | ~integral | (frame["genres"] == "").to_numpy())
    if len(bad):
        row = int(bad[0])
        raise DataFormatError(path, f"bad movieId {frame['movieId'].iloc[row]!r} or empty genres", lines[row])
    exact = np.asarray([int(v) for v in frame["movieId"].tolist()], dtype=np.int64)  # no float rounding
    return _movies(path, exact, frame["title"].tolist(), frame["genres"].tolist(), lines)


def read_movies_dat(path: str | Path, encoding: str = "latin-1") -> Movies:
    """Read ML-10M ``movies.dat`` (``MovieID::Title (yyyy)::Genre|Genre``; ~10k lines, so read line by line)."""
    path = Path(path)
    ids, titles, genres, lines = [], [], [], []
    for number, (mid, title, genre) in iter_rows(path, "::", 3, encoding):
        ids.append(parse_int(mid, path, number, "movie id"))
        titles.append(title)
        genres.append(genre)
        lines.append(number)
    return _movies(path, np.asarray(ids, dtype=np.int64), titles, genres, lines)


def dense_ids(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted distinct ids, 0-based index of each entry)`` like ``np.unique(return_inverse=True)``.

    For the small non-negative ids of MovieLens a presence table does this in linear
    time instead of sorting 25M values.
    """
    top = int(raw.max()) if len(raw) else 0
    if top > 50 * len(raw) + 1_000_000:
        distinct, index = np.unique(raw, return_inverse=True)
        return distinct, index.astype(np.int32)
    present = np.zeros(top + 1, dtype=bool)
    present[raw] = True
    distinct = np.flatnonzero(present)
    position = np.cumsum(present, dtype=np.int64) - 1
    return distinct, position[raw].astype(np.int32)


def check_unique_pairs(path: Path, user: np.ndarray, movie: np.ndarray, num_movies: int, first_line: int) -> None:
    """Raise, naming the line of the repeat, if a (user, movie) pair is rated twice."""
    keys = user.astype(np.int64) * num_movies + movie
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeat = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if len(repeat):
        row = int(order[repeat + 1].min())
        raise DataFormatError(path, "this (user, movie) pair is repeated: rated a second time", row + first_line)
