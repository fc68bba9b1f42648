"""Datasets by name, so the CLI and runner can take ``--dataset``.

Every registered class takes ``(root=None, split=<default_split>, *, source_dir=None,
val_fraction=0.05, seed=0, ...)`` and has ``name``, ``splits``, ``default_split`` and
``env_var`` attributes.
"""

from __future__ import annotations

from gnnrec.data.monti import Douban, Flixster, YahooMusic
from gnnrec.data.movielens import MovieLens100K
from gnnrec.data.movielens1m import MovieLens1M
from gnnrec.data.movielens_large import MovieLens10M, MovieLens20M, MovieLens25M
from gnnrec.data.synthetic import SyntheticDataset

DATASETS: dict[str, type] = {cls.name: cls for cls in (MovieLens100K, MovieLens1M, Douban, Flixster, YahooMusic)}
DATASETS.update({cls.name: cls for cls in (MovieLens10M, MovieLens20M, MovieLens25M, SyntheticDataset)})


def available_datasets() -> list[str]:
    return sorted(DATASETS)


def get_dataset(name: str) -> type:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}") from None
