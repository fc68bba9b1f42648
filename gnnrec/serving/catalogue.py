"""The people-facing side of a split: raw user and movie ids, titles, years, genres and popularity, with
lookups from raw ids to indices and a :class:`~gnnrec.data.titles.TitleIndex`."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import torch
from torch_geometric.data import HeteroData

from gnnrec.data.display import movie_columns, user_columns
from gnnrec.data.split import RatingSplit
from gnnrec.data.titles import TitleIndex, split_year


def node_ids(graph: HeteroData, node_type: str) -> list[int | str]:
    """Raw ids of a node type in index order: string ``ids`` (CSV data), else ``raw_id``, else the indices."""
    store = graph[node_type]
    if "ids" in store:
        return list(store.ids)
    if "raw_id" in store:
        return store.raw_id.tolist()
    return list(range(int(store.num_nodes)))


class UnknownIdError(ValueError):
    """A raw user or movie id that is not in the data."""

    def __init__(self, kind: str, value: Any, count: int) -> None:
        self.kind = kind
        self.value = value
        super().__init__(f"unknown {kind} id {value!r} ({count} {kind}s in the data)")


class Catalogue:
    """Raw ids, titles and metadata of a split's users and movies."""

    def __init__(self, split: RatingSplit) -> None:
        graph = split.graph
        self.split = split
        self.user_ids = node_ids(graph, "user")
        self.movie_ids = node_ids(graph, "movie")
        columns = movie_columns(graph)
        # the year in a title ("Hamlet (1996)") is the one people give, not the release date's (1997)
        self.years: list[int | None] = [
            split_year(t)[1] or y for t, y in zip(columns["title"], columns["year"], strict=True)
        ]
        self.genres: list[list[str]] = columns["genres"]
        has_titles = getattr(graph["movie"], "title", None) is not None
        # without titles (e.g. a CSV of ratings) a film is called by its id
        self.titles = [
            split_year(t)[0] if has_titles else str(i) for t, i in zip(columns["title"], self.movie_ids, strict=True)
        ]
        self.string_ids = any(isinstance(v, str) for v in self.movie_ids)
        known = split.known
        self.popularity: list[int] = torch.bincount(known.movie, minlength=split.num_movies).tolist()
        self._user_index = {self._key(v): i for i, v in enumerate(self.user_ids)}
        self._movie_index = {self._key(v): i for i, v in enumerate(self.movie_ids)}
        self.movie_id_set = set(self.movie_ids)

    @staticmethod
    def _key(value: Any) -> str:
        return str(value)

    @cached_property
    def title_index(self) -> TitleIndex:
        return TitleIndex(self.titles, self.years, self.movie_ids, self.popularity)

    @cached_property
    def users(self) -> dict[str, list[Any]]:
        """Per user: ``raw_id``, ``age``, ``gender``, ``occupation`` (None where the data has none)."""
        return user_columns(self.split.graph)

    def user_index(self, raw_id: Any) -> int:
        index = self._user_index.get(self._key(raw_id))
        if index is None:
            raise UnknownIdError("user", raw_id, len(self.user_ids))
        return index

    def movie_index(self, raw_id: Any) -> int:
        index = self._movie_index.get(self._key(raw_id))
        if index is None:
            raise UnknownIdError("movie", raw_id, len(self.movie_ids))
        return index

    def label(self, movie: int) -> str:
        """``"Toy Story (1995)"``."""
        year = self.years[movie]
        return f"{self.titles[movie]} ({year})" if year else self.titles[movie]

    def movie(self, movie: int) -> dict[str, Any]:
        """A movie as plain data: ``movie_id``, ``title``, ``year``, ``genres``."""
        return {
            "movie_id": self.movie_ids[movie],
            "title": self.titles[movie],
            "year": self.years[movie],
            "genres": self.genres[movie],
        }
