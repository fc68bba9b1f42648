"""Write small datasets in the MovieLens-10M (``::``) and MovieLens-20M/25M (CSV) formats, for tests.

Ratings come from :func:`gnnrec.data.synthetic.generate_ratings` (a noisy low-rank
model on half stars), with raw ids that have gaps, as in the real files.
"""

from __future__ import annotations

from pathlib import Path

from gnnrec.data.synthetic import ML25M_GENRES, generate_ratings
from gnnrec.utils import atomic_write_text


def write_ml25m_fixture(directory: str | Path, num_users: int = 30, num_movies: int = 40, num_ratings: int = 400,
                        seed: int = 0) -> Path:  # fmt: skip
    """Write ``ratings.csv`` and ``movies.csv`` (ML-20M/25M layout, headers, quoted titles) into ``directory``."""
    return generate_ratings(num_users, num_movies, num_ratings, seed=seed).write_ml25m_csv(directory)


def write_ml10m_fixture(directory: str | Path, num_users: int = 30, num_movies: int = 40, num_ratings: int = 400,
                        seed: int = 0) -> Path:  # fmt: skip
    """Write ``ratings.dat`` and ``movies.dat`` (``::``-separated, no header) into ``directory``.

    Movie ids are ``1, 3, 5, ...``; one title has a colon, one has no "(yyyy)" and one
    extra movie is listed without ratings and with ``(no genres listed)``.
    """
    data = generate_ratings(num_users, num_movies, num_ratings, seed=seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = zip(data.user.tolist(), data.movie.tolist(), data.rating.tolist(), data.time.tolist(), strict=True)
    atomic_write_text(directory / "ratings.dat", "".join(f"{u + 1}::{2 * m + 1}::{r:g}::{t}\n" for u, m, r, t in rows))
    movies = []
    for index, (flags, year) in enumerate(zip(data.genres, data.year.tolist(), strict=True)):
        genres = "|".join(g for g, flag in zip(ML25M_GENRES, flags, strict=True) if flag)
        title = {0: f"Star Film: Part {index} ({year})", 1: f"Untitled {index}"}.get(index, f"Film {index} ({year})")
        movies.append(f"{2 * index + 1}::{title}::{genres}\n")
    movies.append(f"{2 * num_movies + 1}::Never Rated (1990)::(no genres listed)\n")
    atomic_write_text(directory / "movies.dat", "".join(movies))
    return directory
