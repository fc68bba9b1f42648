"""A seeded generator of MovieLens-25M-shaped rating data, and the ``synthetic`` dataset built on it.

Degrees follow power laws (a few heavy users and blockbuster movies, a long tail);
ratings come from a low-rank latent model with user and movie biases plus noise,
rounded to the rating scale, so a model that learns the interactions clearly beats
the bias baseline. Which movies a user rates depends on popularity and, with
``taste_exposure`` > 0, on the same latent factors (people watch what they expect to
like), so the rated set itself carries the implicit signal top-K models read. Arrays
are int32/float32 and sampling is vectorised and done in blocks, so 25M ratings fit
in a few GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gnnrec.data.base import RatingGraphDataset, year_range
from gnnrec.data.movielens_large import HALF_STARS, LARGE_SPLITS, Movies, build_large_graph
from gnnrec.utils import atomic_path

ML25M_GENRES = [
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
ML25M_SIZE = {"num_users": 162_541, "num_movies": 59_047, "num_ratings": 25_000_095}
_CHUNK = 1 << 21
DEFAULT_TASTE_EXPOSURE = 2.0  # EASE / popularity validation ndcg@10 as on ML-100k (bench_taste_exposure.py)
_BLOCK = 1 << 22  # user × movie scores held at once by sample_taste_pairs


@dataclass
class SyntheticRatings:
    """Generated data: ratings with 0-based ``user``/``movie`` indices, and the movies' genres and years."""

    user: np.ndarray  # int32
    movie: np.ndarray  # int32
    rating: np.ndarray  # float32, on ``levels``
    time: np.ndarray  # int64 seconds
    genres: np.ndarray  # [num_movies, len(ML25M_GENRES)] int8 0/1
    year: np.ndarray  # [num_movies] int64
    levels: list[float]

    def __len__(self) -> int:
        return len(self.rating)

    def write_ml25m_csv(self, directory: str | Path, chunk_rows: int = 1 << 21) -> Path:
        """Write ``ratings.csv`` and ``movies.csv`` in MovieLens-25M's layout (1-based ids) atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = np.asarray(ML25M_GENRES, dtype=object)
        genres = ["|".join(names[row.astype(bool)]) or "(no genres listed)" for row in self.genres]
        titles = [f"Movie {i + 1}, The ({y})" if i % 3 else f'Movie {i + 1}: "Part" {i % 7} ({y})'
                  for i, y in enumerate(self.year.tolist())]  # fmt: skip
        movies = pd.DataFrame({"movieId": np.arange(1, len(self.year) + 1), "title": titles, "genres": genres})
        with atomic_path(directory / "movies.csv") as tmp:
            movies.to_csv(tmp, index=False)
        with atomic_path(directory / "ratings.csv") as tmp, open(tmp, "w", newline="") as handle:
            handle.write("userId,movieId,rating,timestamp\n")
            for start in range(0, len(self), chunk_rows):
                part = slice(start, start + chunk_rows)
                frame = pd.DataFrame(
                    {
                        "userId": self.user[part] + 1,
                        "movieId": self.movie[part] + 1,
                        "rating": self.rating[part],
                        "timestamp": self.time[part],
                    }
                )
                frame.to_csv(handle, index=False, header=False, float_format="%.1f")
        return directory


def _power_law_weights(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """Zipf-like weights ``rank^-exponent`` assigned to the items in random order."""
    weights = np.arange(1, size + 1, dtype=np.float64) ** -exponent
    rng.shuffle(weights)
    return weights / weights.sum()


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting: NumPy 2's hash-based unique is many times slower on int64 keys."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]]


def _draw(rng: np.random.Generator, cdf: np.ndarray, count: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(count)), len(cdf) - 1).astype(np.int32)


def user_degrees(rng: np.random.Generator, num_users: int, num_movies: int, num_ratings: int, exponent: float):
    """Power-law user degrees, each in ``1..num_movies // 2`` (at least 1), summing to ``num_ratings``."""
    cap = max(1, num_movies // 2)
    if not max(num_users, num_movies) <= num_ratings <= num_users * cap:
        raise ValueError(f"num_ratings must lie in {max(num_users, num_movies)}..{num_users * cap}, got {num_ratings}")
    degree = np.clip(np.floor(_power_law_weights(rng, num_users, exponent) * num_ratings), 1, cap).astype(np.int64)
    while (deficit := num_ratings - int(degree.sum())) > 0:  # hand the rest out in proportion to the room left
        room = cap - degree
        degree += np.minimum(rng.multinomial(deficit, room / room.sum()), room)
    while (excess := int(degree.sum()) - num_ratings) > 0:  # the floor of 1 overshot: trim the heaviest
        heavy = np.argsort(degree)[-excess:]
        degree[heavy] -= np.minimum(1, degree[heavy] - 1)
    return degree


def sample_pairs(
    rng: np.random.Generator, num_users: int, num_movies: int, num_ratings: int, user_exp: float, movie_exp: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, movie) pairs with power-law degrees; every user and movie occurs at least once.

    Each user draws as many movies as its degree by power-law movie weights; repeats are
    dropped and redrawn (after three rounds uniformly, so heavy users finish quickly).
    """
    degree = user_degrees(rng, num_users, num_movies, num_ratings, user_exp)
    movie_cdf = np.cumsum(_power_law_weights(rng, num_movies, movie_exp))
    keys = np.zeros(0, dtype=np.int64)
    need, rounds = degree, 0
    while need.any():
        user = np.repeat(np.arange(num_users, dtype=np.int64), need)
        if rounds < 3:
            movie = _draw(rng, movie_cdf, len(user))
        else:
            movie = rng.integers(0, num_movies, len(user), dtype=np.int32)
        keys = _sorted_unique(np.concatenate([keys, user * num_movies + movie]))
        need = degree - np.bincount(keys // num_movies, minlength=num_users)
        rounds += 1
    return _cover_movies_and_shuffle(rng, keys // num_movies, keys % num_movies, num_movies)


def _cover_movies_and_shuffle(
    rng: np.random.Generator, user: np.ndarray, movie: np.ndarray, num_movies: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs with every movie rated at least once, in random order, as int32."""
    # Give each unrated movie one rating taken from a movie rated more than once (the rater keeps its degree).
    unrated = np.flatnonzero(np.bincount(movie, minlength=num_movies) == 0)
    if len(unrated):
        order = np.argsort(movie, kind="stable")
        first = np.r_[True, movie[order][1:] != movie[order][:-1]]
        spare = order[~first]  # never a movie's only rating; (user, unrated movie) cannot exist yet
        movie[rng.choice(spare, len(unrated), replace=False)] = unrated
    order = rng.permutation(len(user))  # random file order
    return user[order].astype(np.int32), movie[order].astype(np.int32)


def sample_taste_pairs(
    rng: np.random.Generator,
    num_users: int,
    num_movies: int,
    num_ratings: int,
    user_exp: float,
    movie_exp: float,
    user_factors: np.ndarray,
    movie_factors: np.ndarray,
    taste_exposure: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`sample_pairs`, but a user rates the movies they like more often.

    User ``u`` draws its ``d_u`` movies without replacement with weights
    ``w_m · exp(taste_exposure · <p_u, q_m>)``: ``w`` the power-law movie weights, ``p``/``q``
    (``user_factors``/``movie_factors``) the latent factors of the ratings. The draw is the
    Gumbel top-k trick (the ``d_u`` largest ``log w_m + taste_exposure · <p_u, q_m> + G_um``,
    ``G`` standard Gumbel), computed for blocks of users of similar degree, so memory stays
    bounded by the block and the work grows with users × movies. Unrated movies then get one
    rating each as in :func:`sample_pairs`.
    """
    degree = user_degrees(rng, num_users, num_movies, num_ratings, user_exp)
    log_weight = np.log(_power_law_weights(rng, num_movies, movie_exp)).astype(np.float32)
    movie_factors = np.ascontiguousarray(movie_factors.T, dtype=np.float32)
    by_degree = np.argsort(-degree, kind="stable")  # a block's users need similar numbers of movies
    block = max(1, _BLOCK // num_movies)
    users, movies = [], []
    for start in range(0, num_users, block):
        rows = by_degree[start : start + block]
        need = degree[rows]
        keys = user_factors[rows].astype(np.float32) @ movie_factors
        keys *= np.float32(taste_exposure)
        keys += log_weight
        with np.errstate(divide="ignore"):  # a draw of exactly 0 gives an infinite key: that movie is taken
            keys -= np.log(rng.standard_exponential((len(rows), num_movies), dtype=np.float32))  # + Gumbel noise
        most = int(need[0])
        top = np.argpartition(keys, num_movies - most, axis=1)[:, num_movies - most :]
        ranked = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
        keep = np.arange(most) < need[:, None]
        users.append(np.broadcast_to(rows[:, None], ranked.shape)[keep])
        movies.append(ranked[keep])
    user, movie = np.concatenate(users).astype(np.int64), np.concatenate(movies).astype(np.int64)
    order = np.argsort(user * num_movies + movie)  # the order sample_pairs' keys have
    return _cover_movies_and_shuffle(rng, user[order], movie[order], num_movies)


def check_taste_exposure(value: Any) -> float:
    """``value`` as a float, or a ``ValueError`` naming it when it is not a finite number >= 0."""
    try:
        strength = float(value)
    except (TypeError, ValueError):
        strength = float("nan")
    if not (np.isfinite(strength) and strength >= 0):
        raise ValueError(f"taste_exposure must be a finite number >= 0, got {value!r}")
    return strength


def latent_factors(
    rng: np.random.Generator, num_users: int, num_movies: int, rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """User and movie factors ``p``/``q`` (their dot products have sd 0.8) and biases (sd 0.5), float32."""
    scale = 0.8 / np.sqrt(rank)
    p = rng.normal(scale=np.sqrt(scale), size=(num_users, rank)).astype(np.float32)
    q = rng.normal(scale=np.sqrt(scale), size=(num_movies, rank)).astype(np.float32)
    b_user = rng.normal(scale=0.5, size=num_users).astype(np.float32)
    b_movie = rng.normal(scale=0.5, size=num_movies).astype(np.float32)
    return p, q, b_user, b_movie


def generate_ratings(
    num_users: int = 1000,
    num_movies: int = 500,
    num_ratings: int = 20_000,
    levels: Sequence[float] = tuple(HALF_STARS),
    seed: int = 0,
    rank: int = 8,
    noise: float = 0.35,
    user_exponent: float = 0.8,
    movie_exponent: float = 1.0,
    taste_exposure: float = DEFAULT_TASTE_EXPOSURE,
) -> SyntheticRatings:
    """Generate ML-25M-shaped ratings: power-law degrees, low-rank scores rounded to ``levels``.

    Score of a pair: ``b_u + b_m + <p_u, q_m> + noise`` (biases sd 0.5, interactions
    sd 0.8, ``noise`` sd), standardised and mapped so the ratings have mean ≈ 70% of the
    way up the scale and sd ≈ 20% of its span, then rounded to the nearest level.

    Which pairs are rated: ``taste_exposure`` = 0 draws each user's movies by the power-law
    movie weights alone (:func:`sample_pairs`), so the rated set says nothing about taste;
    ``taste_exposure`` = β > 0 weights movie ``m`` for user ``u`` by ``w_m · exp(β <p_u, q_m>)``
    (:func:`sample_taste_pairs`; the factors are then drawn before the pairs, so the data
    differ from β = 0's everywhere, not only in the pairs). The default makes EASE beat
    popularity on validation ndcg@10 by about the ratio it does on ML-100k
    (``benchmarks/bench_taste_exposure.py``). The same arguments always give the same data.
    """
    levels_arr = np.asarray(sorted(levels), dtype=np.float32)
    if len(levels_arr) < 2:
        raise ValueError("levels must hold at least two rating values")
    taste_exposure = check_taste_exposure(taste_exposure)
    rng = np.random.default_rng(seed)
    sizes = (num_users, num_movies, num_ratings, user_exponent, movie_exponent)
    if taste_exposure == 0:  # exposure by popularity alone; the factors are drawn after the pairs
        user, movie = sample_pairs(rng, *sizes)
        p, q, b_user, b_movie = latent_factors(rng, num_users, num_movies, rank)
    else:
        p, q, b_user, b_movie = latent_factors(rng, num_users, num_movies, rank)
        user, movie = sample_taste_pairs(rng, *sizes, p, q, taste_exposure)
    score = np.empty(len(user), dtype=np.float32)
    for start in range(0, len(user), _CHUNK):
        u, m = user[start : start + _CHUNK], movie[start : start + _CHUNK]
        score[start : start + _CHUNK] = b_user[u] + b_movie[m] + np.einsum("ij,ij->i", p[u], q[m])
    score += rng.normal(scale=noise, size=len(score)).astype(np.float32)
    score -= score.mean()
    score /= score.std()
    low, high = float(levels_arr[0]), float(levels_arr[-1])
    value = low + (0.7 + 0.2 * score) * (high - low)
    del score
    index = np.clip(np.searchsorted((levels_arr[1:] + levels_arr[:-1]) / 2, value), 0, len(levels_arr) - 1)
    rating = levels_arr[index]
    # Timestamps between 1995 and 2019; genres 1–3 per movie, years 1920–2019.
    time = rng.integers(789_000_000, 1_574_000_000, size=len(rating), dtype=np.int64)
    genres = np.zeros((num_movies, len(ML25M_GENRES)), dtype=np.int8)
    for k in range(3):
        pick = rng.integers(0, len(ML25M_GENRES), size=num_movies)
        keep = np.ones(num_movies, bool) if k == 0 else rng.random(num_movies) < 0.4
        genres[np.flatnonzero(keep), pick[keep]] = 1
    year = rng.integers(1920, 2020, size=num_movies, dtype=np.int64)
    return SyntheticRatings(user, movie, rating, time, genres, year, [float(x) for x in levels_arr])


class SyntheticDataset(RatingGraphDataset):
    r"""Generated ML-25M-shaped ratings (:func:`generate_ratings`) as a rating graph.

    Laid out like :class:`~gnnrec.data.MovieLens25M`'s graph (no user features, movie genre
    flags and year), with the same ``random`` and ``temporal`` splits. Nothing is read or
    downloaded: the graph is generated from the size parameters and ``data_seed`` and
    cached under a name fingerprinting them.

    Args:
        root: writable dataset root (default ``$GNNREC_HOME/datasets/synthetic``).
        split: ``random`` (default) or ``temporal``.
        source_dir: must be ``None`` (there is nothing to read); accepted for the shared API.
        num_users, num_movies, num_ratings, levels, rank, noise: see :func:`generate_ratings`.
        taste_exposure: how strongly a user's latent taste decides which movies they rate
            (:func:`generate_ratings`): 0 = by popularity alone, no implicit signal; the default
            gives the data about ML-100k's implicit signal (EASE against popularity on validation).
        data_seed: seed of the generator (``seed`` seeds the split and validation carve-out).
    """

    name = "synthetic"
    env_var = ""  # nothing to look up; os.environ.get("") is always None
    raw_folder = "synthetic"
    splits = LARGE_SPLITS
    default_split = "random"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str | None = None,
        *,
        num_users: int = 1000,
        num_movies: int = 500,
        num_ratings: int = 20_000,
        levels: Sequence[float] = tuple(HALF_STARS),
        rank: int = 8,
        noise: float = 0.35,
        taste_exposure: float = DEFAULT_TASTE_EXPOSURE,
        data_seed: int = 0,
        **common: Any,
    ) -> None:
        if common.get("source_dir") is not None:
            raise ValueError("the synthetic dataset is generated; it takes no source_dir")
        self.generator_args = {
            "num_users": int(num_users),
            "num_movies": int(num_movies),
            "num_ratings": int(num_ratings),
            "levels": [float(x) for x in levels],
            "rank": int(rank),
            "noise": float(noise),
            "taste_exposure": check_taste_exposure(taste_exposure),
            "seed": int(data_seed),
        }
        super().__init__(root, split, **common)

    @property
    def raw_file_names(self) -> list[str]:
        return []

    def _settings(self) -> dict:
        generator = {("data_seed" if k == "seed" else k): v for k, v in self.generator_args.items()}
        return {"split": self.split, "val_fraction": self.val_fraction, "seed": self.seed, **generator}

    def download(self) -> None:
        """Nothing to download: :meth:`process` generates the data."""

    def process(self) -> None:
        data_args = dict(self.generator_args)
        generated = generate_ratings(**data_args)
        movies = Movies(Path("synthetic"), np.arange(len(generated.year)), [], generated.year,
                        generated.genres.astype(np.int64), list(ML25M_GENRES))  # fmt: skip
        rows = np.arange(len(generated.year))
        data = build_large_graph(
            self,
            generated.user,
            generated.movie,
            generated.rating,
            generated.time,
            data_args["num_users"],
            movies,
            rows,
            generated.levels,
        )
        data["user"].raw_id = torch.arange(1, data_args["num_users"] + 1)  # the ids write_ml25m_csv uses
        data["movie"].raw_id = torch.arange(1, len(generated.year) + 1)
        data["movie"].year = torch.from_numpy(generated.year)
        data.year_range = year_range(generated.year)
        self._save_graph(data)
