"""Datasets by name, so the CLI and runner can take ``--dataset``; :func:`load_split` is their one loader.

Every registered class is a :class:`~gnnrec.data.base.RatingGraphDataset`: it takes
``(root=None, split=None, *, source_dir=None, val_fraction=0.05, seed=0, ...)`` plus its
own keyword-only settings, and has ``name``, ``splits``, ``default_split`` and
``env_var`` attributes.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from gnnrec.data.base import RatingGraphDataset
from gnnrec.data.csv_ratings import CSVRatings
from gnnrec.data.monti import Douban, Flixster, YahooMusic
from gnnrec.data.movielens import MovieLens100K
from gnnrec.data.movielens1m import MovieLens1M
from gnnrec.data.movielens_large import MovieLens10M, MovieLens20M, MovieLens25M
from gnnrec.data.split import RatingSplit
from gnnrec.data.synthetic import SyntheticDataset

DATASETS: dict[str, type[RatingGraphDataset]] = {
    cls.name: cls
    for cls in (
        MovieLens100K,
        MovieLens1M,
        MovieLens10M,
        MovieLens20M,
        MovieLens25M,
        Douban,
        Flixster,
        YahooMusic,
        CSVRatings,
        SyntheticDataset,
    )
}


def available_datasets() -> list[str]:
    return sorted(DATASETS)


def get_dataset(name: str) -> type[RatingGraphDataset]:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}") from None


def dataset_settings(name: str) -> tuple[str, ...]:
    """The keyword settings dataset ``name`` takes (shared ones first), e.g. to filter a checkpoint's settings."""
    names: list[str] = []
    for cls in reversed(get_dataset(name).__mro__):
        if isinstance(cls, type) and issubclass(cls, RatingGraphDataset) and "__init__" in vars(cls):
            for param in inspect.signature(cls.__init__).parameters.values():
                if param.kind is param.KEYWORD_ONLY and param.name not in names:
                    names.append(param.name)
    return tuple(names)


def load_split(
    dataset: str = "ml-100k", split: str | None = None, *, root: str | Path | None = None, **settings: Any
) -> RatingSplit:
    """Resolve a dataset by name and return one of its splits (default: the dataset's ``default_split``).

    ``settings`` are the dataset's keyword settings (``source_dir``, ``val_fraction``, ``seed``,
    ``log``, and its own, see :func:`dataset_settings`); one the dataset does not take is
    refused with an error that names it.
    """
    cls = get_dataset(dataset)
    known = dataset_settings(dataset)
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(
            f"dataset {dataset!r} takes no setting {', '.join(map(repr, unknown))}; it takes: {', '.join(known)}"
        )
    return cls(root, split, **settings).rating_split()
