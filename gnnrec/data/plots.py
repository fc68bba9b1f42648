"""Pictures of a rating dataset: rating histogram, user and movie degree distributions (log–log), ratings
over time, genre counts, demographics and the density of the rating matrix, as PNG files.

Every rating of the split counts (train, validation and test together). Plots a dataset cannot have (no
timestamps, genres or demographics) are skipped with the reason. matplotlib is used through its object API
(no pyplot, no global backend state; PNGs are drawn by Agg) and each file is written atomically.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnnrec.data.display import movie_columns, user_columns
from gnnrec.data.graph import PARTS, RATES
from gnnrec.data.split import RatingSplit
from gnnrec.utils import atomic_path

PLOTS = ("ratings", "user_degree", "movie_degree", "ratings_over_time", "genres", "demographics", "density")
DENSITY_BINS = 200  # cells per side of the density picture


def _figure(columns: int = 1, size: tuple[float, float] = (6.4, 4.2)):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] * columns, size[1]), layout="constrained")
    return figure, figure.subplots(1, columns, squeeze=False).ravel()


def _save(figure: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path


def _all_ratings(split: RatingSplit) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """User, movie, rating and (where every part has them) time of every rating of the split."""
    parts = [split.edges(part) for part in PARTS]
    store = split.graph[RATES]
    times = [store[f"{part}_edge_time"] for part in PARTS if f"{part}_edge_time" in store]
    time = torch.cat(times) if len(times) == len(PARTS) else None
    return (
        torch.cat([p.user for p in parts]),
        torch.cat([p.movie for p in parts]),
        torch.cat([p.rating for p in parts]),
        time,
    )


def _degree_plot(degrees: np.ndarray, kind: str, split: RatingSplit, path: Path) -> Path:
    figure, (axis,) = _figure()
    values, counts = np.unique(degrees[degrees > 0], return_counts=True)
    axis.loglog(values, counts, "o", markersize=3, alpha=0.7)
    axis.set_xlabel(f"ratings per {kind}")
    axis.set_ylabel(f"{kind}s")
    zero = int((degrees == 0).sum())
    note = f"; {zero} {kind}s without ratings not shown" if zero else ""
    axis.set_title(f"{split.name}: {kind} degree (median {np.median(degrees):g}, max {degrees.max()}{note})")
    axis.grid(True, which="both", alpha=0.3)
    return _save(figure, path)


def plot_dataset(split: RatingSplit, directory: str | Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Write the dataset's PNGs into ``directory``; returns ``({plot: path}, {skipped plot: reason})``."""
    directory = Path(directory)
    user, movie, rating, time = _all_ratings(split)
    written: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    num_users, num_movies = split.num_users, split.num_movies

    figure, (axis,) = _figure()
    levels = split.rating_levels.tolist()
    counts = [int((rating == level).sum()) for level in levels]
    width = 0.8 * (min(np.diff(levels)) if len(levels) > 1 else 1.0)
    axis.bar(levels, counts, width=width)
    axis.set_xticks(levels)
    axis.set_xlabel("rating")
    axis.set_ylabel("ratings")
    axis.set_title(f"{split.name}: {len(rating):,} ratings, mean {float(rating.float().mean()):.2f}")
    written["ratings"] = _save(figure, directory / "ratings.png")

    user_degree = torch.bincount(user, minlength=num_users).numpy()
    movie_degree = torch.bincount(movie, minlength=num_movies).numpy()
    written["user_degree"] = _degree_plot(user_degree, "user", split, directory / "user_degree.png")
    written["movie_degree"] = _degree_plot(movie_degree, "movie", split, directory / "movie_degree.png")

    if time is None or int(time.min()) <= 0 or int(time.min()) == int(time.max()):
        skipped["ratings_over_time"] = "the ratings carry no timestamps"
    else:
        months = time.numpy().astype("datetime64[s]").astype("datetime64[M]")
        span = np.arange(months.min(), months.max() + 1)
        found, counts = np.unique(months, return_counts=True)
        monthly = np.zeros(len(span), dtype=np.int64)
        monthly[np.searchsorted(span, found)] = counts
        labels = [str(m) for m in span]
        figure, (axis,) = _figure(size=(max(6.4, 0.18 * len(labels)), 4.2))
        axis.bar(range(len(labels)), monthly)
        step = max(1, len(labels) // 24)
        axis.set_xticks(range(0, len(labels), step), labels[::step], rotation=60, ha="right")
        axis.set_ylabel("ratings per month")
        axis.set_title(f"{split.name}: ratings over time ({labels[0]} to {labels[-1]}, UTC)")
        written["ratings_over_time"] = _save(figure, directory / "ratings_over_time.png")

    genres = movie_columns(split.graph)["genres"]
    genre_counts = Counter(name for names in genres for name in names)
    if not genre_counts:
        skipped["genres"] = "the movies have no genres"
    else:
        names = [name for name, _ in genre_counts.most_common()]
        rated = Counter()
        for index, count in enumerate(movie_degree.tolist()):
            for name in genres[index]:
                rated[name] += count
        figure, axes = _figure(2, size=(5.2, max(3.5, 0.25 * len(names))))
        for axis, counter, label in ((axes[0], genre_counts, "movies"), (axes[1], rated, "ratings")):
            axis.barh(names[::-1], [counter[n] for n in names[::-1]])
            axis.set_xlabel(label)
        figure.suptitle(f"{split.name}: genres (a movie may have several)")
        written["genres"] = _save(figure, directory / "genres.png")

    users = user_columns(split.graph)
    present = [name for name in ("age", "gender", "occupation") if any(v is not None for v in users[name])]
    if not present:
        skipped["demographics"] = "the users have no age, gender or occupation"
    else:
        figure, axes = _figure(len(present), size=(4.8, 4.2))
        for axis, name in zip(axes, present, strict=True):
            values = [v for v in users[name] if v is not None]
            if name == "age":
                axis.hist(values, bins=min(30, len(set(values))), color="tab:green")
                axis.set_xlabel("age (as recorded)")
                axis.set_ylabel("users")
            else:
                counted = Counter(map(str, values)).most_common()
                axis.barh([c for c, _ in counted][::-1], [n for _, n in counted][::-1], color="tab:green")
                axis.set_xlabel("users")
            axis.set_title(name)
        figure.suptitle(f"{split.name}: {num_users:,} users")
        written["demographics"] = _save(figure, directory / "demographics.png")

    density = len(rating) / max(1, num_users * num_movies)
    user_rank = np.argsort(np.argsort(-user_degree, kind="stable"), kind="stable")
    movie_rank = np.argsort(np.argsort(-movie_degree, kind="stable"), kind="stable")
    bins = (min(DENSITY_BINS, num_users), min(DENSITY_BINS, num_movies))
    grid, _, _ = np.histogram2d(
        user_rank[user.numpy()], movie_rank[movie.numpy()], bins=bins, range=[[0, num_users], [0, num_movies]]
    )
    cell = (num_users / bins[0]) * (num_movies / bins[1])
    figure, (axis,) = _figure(size=(6.4, 5.2))
    image = axis.imshow(grid / cell, aspect="auto", cmap="viridis", origin="upper", vmin=0, vmax=1,
                        extent=(0, num_movies, num_users, 0))  # fmt: skip
    figure.colorbar(image, ax=axis, label="share of pairs rated")
    axis.set_xlabel("movies, most rated first")
    axis.set_ylabel("users, most active first")
    axis.set_title(f"{split.name}: density {density:.2%} ({len(rating):,} of {num_users * num_movies:,} pairs)")
    written["density"] = _save(figure, directory / "density.png")
    return written, skipped
