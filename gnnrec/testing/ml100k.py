"""Write small synthetic datasets in the MovieLens-100k file formats (for tests and demos).

Ratings come from a noisy low-rank model, so a model that learns beats the global mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
OCCUPATIONS = ["administrator", "artist", "doctor", "educator", "engineer", "other", "student", "writer"]


def write_ml100k_fixture(
    directory: str | Path, num_users: int = 40, num_movies: int = 60, ratings_per_user: int = 25, seed: int = 0
) -> Path:
    """Write u.data, u.item, u.user, u.genre, u.occupation, u1..u5 and ua/ub into ``directory``.

    Every user rates ``ratings_per_user`` distinct movies (at least 20, as in ML-100k),
    so ua/ub can hold exactly 10 test ratings per user.
    """
    if ratings_per_user < 20 or ratings_per_user > num_movies:
        raise ValueError("ratings_per_user must lie in 20..num_movies")
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    (directory / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n")
    (directory / "u.occupation").write_text("".join(f"{o}\n" for o in OCCUPATIONS))
    users = []
    for uid in range(1, num_users + 1):
        job = OCCUPATIONS[uid % len(OCCUPATIONS)]
        users.append(f"{uid}|{rng.integers(15, 70)}|{'MF'[uid % 2]}|{job}|{10000 + uid}")
    (directory / "u.user").write_text("\n".join(users) + "\n")
    items = []
    for mid in range(1, num_movies + 1):
        flags = (rng.random(len(GENRES)) < 0.15).astype(int)
        date = "" if mid == num_movies else f"01-Jan-{1950 + mid % 48}"
        title = f"Movie {mid} ({1950 + mid % 48})" if date else "unknown"
        items.append("|".join([str(mid), title, date, "", f"http://example.org/{mid}", *map(str, flags)]))
    (directory / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))

    user_factors = rng.normal(size=(num_users, 3))
    movie_factors = rng.normal(size=(num_movies, 3))
    movie_bias = rng.normal(scale=0.5, size=num_movies)
    rows = []
    for u in range(num_users):
        for m in rng.choice(num_movies, size=ratings_per_user, replace=False):
            score = 3.3 + movie_bias[m] + 0.6 * user_factors[u] @ movie_factors[m] + rng.normal(scale=0.3)
            rating = int(np.clip(np.rint(score), 1, 5))
            rows.append((u + 1, int(m) + 1, rating, 880000000 + int(rng.integers(0, 10**7))))
    rows = np.asarray(rows, dtype=np.int64)

    def write(name: str, part: np.ndarray) -> None:
        order = np.lexsort((part[:, 1], part[:, 0]))
        lines = "".join("\t".join(map(str, r)) + "\n" for r in part[order])
        (directory / name).write_text(lines)

    write("u.data", rows[rng.permutation(len(rows))])
    fold = rng.permutation(len(rows)) % 5
    for k in range(5):
        write(f"u{k + 1}.base", rows[fold != k])
        write(f"u{k + 1}.test", rows[fold == k])
    # ua/ub: exactly 10 test ratings per user (disjoint between a and b)
    is_a, is_b = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
    for u in range(1, num_users + 1):
        positions = rng.permutation(np.flatnonzero(rows[:, 0] == u))
        is_a[positions[:10]] = True
        is_b[positions[10:20]] = True
    write("ua.base", rows[~is_a])
    write("ua.test", rows[is_a])
    write("ub.base", rows[~is_b])
    write("ub.test", rows[is_b])
    return directory
