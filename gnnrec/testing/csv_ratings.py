"""Writer of a small dataset in the generic CSV layout read by :class:`gnnrec.data.CSVRatings`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnnrec.utils import atomic_write_text

CSV_FILES = {
    "ratings": "ratings.csv",
    "user_features": "users.csv",
    "item_features": "items.csv",
    "user_edges": "user_edges.csv",
    "item_edges": "item_edges.csv",
}


def write_csv_fixture(
    directory: str | Path,
    num_users: int = 20,
    num_items: int = 30,
    ratings_per_user: int = 8,
    levels: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
    unrated_users: int = 2,
    seed: int = 0,
) -> Path:
    """Write ``ratings.csv`` (``user,item,rating,time``), ``users.csv`` (``id,age,country``),
    ``items.csv`` (``id,year,genre``), ``user_edges.csv`` and ``item_edges.csv`` (``source,target,weight``).

    Ids are strings (``u1``, ``i1``, ...). The last ``unrated_users`` users are listed in
    ``users.csv`` but rate nothing (cold-start users). Returns ``directory``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rated = num_users - unrated_users
    user_factor, item_factor = rng.normal(size=(rated, 2)), rng.normal(size=(num_items, 2))
    rows = ["user,item,rating,time"]
    for u in range(rated):
        for i in np.sort(rng.choice(num_items, size=ratings_per_user, replace=False)):
            score = user_factor[u] @ item_factor[i] + rng.normal(scale=0.3)
            level = levels[int(np.clip(np.rint((score + 2) / 4 * (len(levels) - 1)), 0, len(levels) - 1))]
            rows.append(f"u{u + 1},i{i + 1},{level:g},{1_600_000_000 + int(rng.integers(1_000_000))}")
    atomic_write_text(directory / CSV_FILES["ratings"], "\n".join(rows) + "\n")

    countries = ["fr", "jp", "br"]
    users = ["id,age,country"] + [
        f"u{u + 1},{int(rng.integers(16, 70))},{countries[u % len(countries)]}" for u in range(num_users)
    ]
    atomic_write_text(directory / CSV_FILES["user_features"], "\n".join(users) + "\n")
    genres = ["drama", "comedy"]
    items = ["id,year,genre"] + [
        f"i{i + 1},{int(rng.integers(1950, 2020))},{genres[i % len(genres)]}" for i in range(num_items)
    ]
    atomic_write_text(directory / CSV_FILES["item_features"], "\n".join(items) + "\n")

    for key, prefix, count in (("user_edges", "u", num_users), ("item_edges", "i", num_items)):
        edges = ["source,target,weight"] + [
            f"{prefix}{a + 1},{prefix}{(a + 1) % count + 1},{rng.uniform(0.1, 1.0):.3f}" for a in range(count)
        ]
        atomic_write_text(directory / CSV_FILES[key], "\n".join(edges) + "\n")
    return directory
