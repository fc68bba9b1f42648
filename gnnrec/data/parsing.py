"""Strict readers for the MovieLens-100k text files.

Every problem is reported as a :class:`DataFormatError` naming the file and line.
Plain Python parsing is used instead of ``pandas.read_csv`` because pandas silently
pads short rows with NaN and reports no line for many of the errors we must name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gnnrec.data.errors import DataFormatError


def iter_rows(
    path: str | Path, sep: str, num_columns: int | None, encoding: str = "utf-8"
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for every non-blank line of ``path``."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    seen_any = False
    with path.open(encoding=encoding, newline="") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
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
    try:
        return int(value.strip())
    except ValueError:
        raise DataFormatError(path, f"{what} must be an integer, got {value!r}", line) from None


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
    ids, ages, genders, jobs, zips = [], [], [], [], []
    for number, (uid, age, gender, job, zip_code) in iter_rows(path, "|", 5):
        ids.append(parse_int(uid, path, number, "user id"))
        ages.append(parse_int(age, path, number, "age"))
        if gender not in ("M", "F"):
            raise DataFormatError(path, f"gender must be 'M' or 'F', got {gender!r}", number)
        if job not in occupations:
            raise DataFormatError(path, f"unknown occupation {job!r}; valid: {', '.join(occupations)}", number)
        genders.append(gender)
        jobs.append(job)
        zips.append(zip_code)
    _check_unique(path, ids, "user id")
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
    ids, titles, dates, years, flags = [], [], [], [], []
    for number, fields in iter_rows(path, "|", 5 + len(genres), encoding="latin-1"):
        ids.append(parse_int(fields[0], path, number, "movie id"))
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
    _check_unique(path, ids, "movie id")
    return MovieTable(path, np.asarray(ids), titles, dates, np.asarray(years), np.asarray(flags, dtype=np.int64))


def _check_unique(path: Path, ids: list[int], what: str) -> None:
    seen: dict[int, int] = {}
    for position, value in enumerate(ids):
        if value in seen:
            raise DataFormatError(path, f"duplicate {what} {value} (first seen in row {seen[value] + 1})")
        seen[value] = position


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
