"""Datasets by name, so the CLI and runner can take ``--dataset``."""

from __future__ import annotations

from gnnrec.data.movielens import MovieLens100K

DATASETS: dict[str, type] = {"ml-100k": MovieLens100K}


def get_dataset(name: str) -> type:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}") from None
