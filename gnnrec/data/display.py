"""Per-node display columns of a rating graph (titles, years, genres, demographics), for people to read.

Used by ``gnnrec recommend`` to print recommendations and by :mod:`gnnrec.tensorboard` for the
embedding projector's metadata.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch_geometric.data import HeteroData


def _check_columns(node_type: str, count: int, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    for name, values in columns.items():
        if len(values) != count:
            raise ValueError(f"{node_type} metadata column {name!r} has {len(values)} values for {count} {node_type}s")
    return columns


def movie_columns(graph: HeteroData) -> dict[str, list[Any]]:
    """Per movie: ``title`` (str), ``year`` (int or None), ``genres`` (list of names), ``raw_id`` (int).

    Datasets without titles, years or genres (e.g. Douban) get placeholders: ``"movie <raw id>"``, None, [].
    """
    store = graph["movie"]
    count = int(store.num_nodes)
    genre_names = list(getattr(graph, "genre_names", None) or [])
    if "genre" in store and genre_names:
        genres = [[genre_names[j] for j in row.nonzero().view(-1).tolist()] for row in store.genre]
    else:
        genres = [[] for _ in range(count)]
    raw_ids = store.raw_id.tolist() if "raw_id" in store else list(range(count))
    columns = {
        "title": list(getattr(store, "title", None) or [f"movie {raw_id}" for raw_id in raw_ids]),
        "year": [y if y > 0 else None for y in store.year.tolist()] if "year" in store else [None] * count,
        "genres": genres,
        "raw_id": raw_ids,
    }
    return _check_columns("movie", count, columns)


def user_columns(graph: HeteroData) -> dict[str, list[Any]]:
    """Per user: ``raw_id``, ``age``, ``gender`` and ``occupation`` (names; codes mapped through
    ``graph.occupation_names``); None where the dataset has no such attribute."""
    store = graph["user"]
    count = int(store.num_nodes)
    occupations: list[Any] = [None] * count
    if "occupation" in store:
        values = store.occupation
        names = list(getattr(graph, "occupation_names", None) or [])
        if isinstance(values, Tensor):
            occupations = [names[v] if 0 <= v < len(names) else v for v in values.tolist()]
        else:
            occupations = list(values)
    columns = {
        "raw_id": store.raw_id.tolist() if "raw_id" in store else list(range(count)),
        "age": store.age.tolist() if "age" in store else [None] * count,
        "gender": list(store.gender) if "gender" in store else [None] * count,
        "occupation": occupations,
    }
    return _check_columns("user", count, columns)
