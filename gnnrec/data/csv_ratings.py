"""A generic dataset: ratings from a CSV, with optional user/item feature tables and side graphs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gnnrec.data.base import RatingGraphDataset
from gnnrec.data.errors import DataFormatError
from gnnrec.data.graph import FOLLOWS, SIMILAR
from gnnrec.data.parsing import (
    CSVTable,
    check_unique_rows,
    index_ids,
    parse_floats,
    parse_integers,
    read_csv_table,
)
from gnnrec.data.partition import random_split


def _feature_matrix(table: CSVTable) -> tuple[list[str], torch.Tensor, list[str]]:
    """Ids (first column) and features of a feature table: numeric columns min–max scaled, others one-hot."""
    ids = table.column(table.columns[0], "id column")
    check_unique_rows(table, ids, lambda row: f"id {ids[row]!r}")
    blocks, names = [], []
    for name in table.columns[1:]:
        values = table.column(name)
        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        if np.isfinite(numbers).all():
            low, high = numbers.min(), numbers.max()
            if not np.isfinite(high - low):
                row = int(np.argmax(np.abs(numbers)))
                raise DataFormatError(
                    table.path, f"feature {name!r} value {values[row]} is too large to scale", int(table.line[row])
                )
            blocks.append(((numbers - low) / (high - low if high > low else 1.0))[:, None])
            names.append(name)
        else:
            categories = sorted(set(values.tolist()))
            blocks.append((values[:, None] == np.asarray(categories, dtype=object)[None, :]).astype(np.float64))
            names.extend(f"{name}={c}" for c in categories)
    x = np.concatenate(blocks, axis=1) if blocks else np.ones((len(ids), 1))
    return ids.tolist(), torch.from_numpy(x).float(), names or ["constant"]


_PLAIN_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


def integer_ids(ids: list[str]) -> list[int] | None:
    """The ids as integers when every one is a plain 64-bit decimal integer written one way (no ``007``), else None.

    Ids are strings; only ids that round-trip through ``int`` are also given as a ``raw_id`` tensor, so two
    different strings never share a raw id and huge or non-ASCII numbers stay strings.
    """
    if not all(_PLAIN_INTEGER.fullmatch(v) for v in ids):
        return None
    numbers = [int(v) for v in ids]
    return numbers if all(-(2**63) <= n < 2**63 for n in numbers) else None


class CSVRatings(RatingGraphDataset):
    r"""Your own ratings as a rating graph: a CSV of ``user, item, rating[, time]`` rows.

    All files lie in ``source_dir`` (or ``$GNNREC_CSV_DIR``); names may also be absolute paths.

    * ``ratings`` — one rating a row. With ``header`` the columns are found by the names in
      ``columns`` (``user``, ``item``, ``rating`` and the optional ``time``); without, they are
      the first three (four) columns in that order. Ids are any strings. Ratings are any numbers;
      ``rating_levels`` declares the allowed values (default: the distinct values in the file).
    * ``user_features`` / ``item_features`` — a CSV with a header: the first column is the id,
      every other column a feature; a numeric column is min–max scaled to [0, 1], any other is
      one-hot encoded (sorted categories; names in ``feature_names``). When given, the table lists
      every node (nodes without ratings included, in table order) and a rating with an id not in it
      is an error. Without it nodes are the rating file's ids in order of first appearance and
      ``x`` is a single column of ones.
    * ``user_edges`` / ``item_edges`` — side graphs, rows ``id, id[, weight]`` (a header row when
      ``header``), stored as ``('user', 'follows', 'user')`` / ``('movie', 'similar', 'movie')``
      (as in :class:`~gnnrec.data.MontiDataset`) with ``edge_index`` (as listed, one direction a
      row) and ``edge_weight`` (default 1).

    Node ids (strings, in node order) are ``ids`` on each node type; when they are all plain 64-bit
    integers (``42``, not ``042``, huge or non-ASCII digits) they are also ``raw_id`` (a tensor, as for
    the other datasets). Ratings must fit the float32 the graph stores them in (``1e308`` does not).
    Items are the ``movie`` node type, like every other dataset. The only split, ``random``,
    sends ``test_fraction`` of the ratings (seeded with ``seed``) to test; ``val_fraction`` of
    each user's remaining ratings is then carved out for validation. Every bad row (missing
    column or value, non-numeric rating, undeclared level, repeated rating or id, unknown id)
    raises a :class:`~gnnrec.data.DataFormatError` naming the file and line.

    Args:
        ratings: the ratings file.
        user_features: optional user feature table.
        item_features: optional item feature table.
        user_edges: optional user–user edge list.
        item_edges: optional item–item edge list.
        sep: the field separator of every file.
        header: whether the ratings and edge files start with a header row.
        columns: header names of the user, item, rating and (optional) time columns.
        rating_levels: the allowed rating values (default: inferred from the data).
        test_fraction: test share of the ``random`` split.
    """

    name = "csv"
    display_name = "CSV ratings"
    env_var = "GNNREC_CSV_DIR"
    raw_folder = "csv"
    splits = ("random",)
    default_split = "random"

    def __init__(
        self,
        root: str | Path | None = None,
        split: str | None = None,
        *,
        ratings: str = "ratings.csv",
        user_features: str | None = None,
        item_features: str | None = None,
        user_edges: str | None = None,
        item_edges: str | None = None,
        sep: str = ",",
        header: bool = True,
        columns: Sequence[str] = ("user", "item", "rating", "time"),
        rating_levels: Sequence[float] | None = None,
        test_fraction: float = 0.1,
        **common: Any,
    ) -> None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        if len(columns) not in (3, 4):
            raise ValueError(f"columns must name user, item, rating and optionally time, got {list(columns)}")
        self.files = {
            "ratings": ratings,
            "user_features": user_features,
            "item_features": item_features,
            "user_edges": user_edges,
            "item_edges": item_edges,
        }
        self.sep = sep
        self.header = bool(header)
        self.columns = tuple(columns)
        self.declared_levels = None if rating_levels is None else sorted(float(v) for v in rating_levels)
        self.test_fraction = float(test_fraction)
        super().__init__(root, split, **common)

    @property
    def raw_file_names(self) -> list[str]:
        return [f for f in self.files.values() if f is not None]

    def _path(self, key: str) -> Path:
        return Path(self.raw_dir) / self.files[key]

    def _settings(self) -> dict:
        return {
            "split": self.split,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "files": dict(self.files),
            "sep": self.sep,
            "header": self.header,
            "columns": list(self.columns),
            "rating_levels": self.declared_levels,
        }

    def _nodes(self, key: str, rated: np.ndarray) -> tuple[dict[str, int], torch.Tensor, list[str], str]:
        """Node index, features, feature names and the listing named in errors, for ``user`` or ``item``."""
        if self.files[key] is None:
            ids = list(dict.fromkeys(rated.tolist()))
            return {v: i for i, v in enumerate(ids)}, torch.ones(len(ids), 1), ["constant"], ""
        ids, x, names = _feature_matrix(read_csv_table(self._path(key), self.sep, header=True))
        return {v: i for i, v in enumerate(ids)}, x, names, self.files[key]

    def _read_ratings(self) -> tuple[CSVTable, list[np.ndarray]]:
        table = read_csv_table(self._path("ratings"), self.sep, self.header)
        names = list(self.columns) if self.header else [str(i) for i in range(len(self.columns))]
        required, time_name = names[:3], names[3] if len(names) == 4 else None
        values = [table.column(name) for name in required]
        time = table.column(time_name) if time_name is not None and time_name in table.columns else None
        return table, [*values, time]

    def process(self) -> None:
        table, (user_raw, item_raw, rating_raw, time_raw) = self._read_ratings()
        rating = parse_floats(table, rating_raw, "rating")
        levels = self.declared_levels or np.unique(rating).tolist()
        off = np.flatnonzero(~np.isin(rating, levels))
        if len(off):
            row = int(off[0])
            raise DataFormatError(
                table.path, f"rating {rating[row]:g} is not one of the declared levels {levels}", int(table.line[row])
            )
        time = np.zeros(len(rating), dtype=np.int64)
        if time_raw is not None:
            time = parse_integers(table, time_raw, "time")

        user_index, user_x, user_names, user_listing = self._nodes("user_features", user_raw)
        item_index, item_x, item_names, item_listing = self._nodes("item_features", item_raw)
        user = index_ids(table, user_raw, user_index, "user id", user_listing)
        item = index_ids(table, item_raw, item_index, "item id", item_listing)
        check_unique_rows(
            table,
            user * len(item_index) + item,
            lambda row: f"rating of item {item_raw[row]!r} by user {user_raw[row]!r}",
        )

        train_pos, test_pos = random_split(len(rating), self.test_fraction, self.seed)
        every = (user, item, rating, time)
        data = self._build(
            user_x, item_x, tuple(a[train_pos] for a in every), tuple(a[test_pos] for a in every), levels
        )
        for key, edge_type, index, listing in (
            ("user_edges", FOLLOWS, user_index, user_listing or self.files["ratings"]),
            ("item_edges", SIMILAR, item_index, item_listing or self.files["ratings"]),
        ):
            if self.files[key] is not None:
                edge_index, weight = self._read_edges(key, index, listing)
                data[edge_type].edge_index = edge_index
                data[edge_type].edge_weight = weight
        for node, index in (("user", user_index), ("movie", item_index)):
            ids = list(index)
            data[node].ids = ids
            raw_id = integer_ids(ids)
            if raw_id is not None:  # ids that are plain 64-bit integers also give the usual raw_id tensor
                data[node].raw_id = torch.tensor(raw_id, dtype=torch.long)
        data["user"].feature_names = user_names
        data["movie"].feature_names = item_names
        self._save_graph(data)

    def _read_edges(self, key: str, index: dict[str, int], listing: str) -> tuple[torch.Tensor, torch.Tensor]:
        table = read_csv_table(self._path(key), self.sep, self.header)
        if len(table.columns) not in (2, 3):
            raise DataFormatError(
                table.path, f"expected 2 or 3 columns (id, id[, weight]), found {len(table.columns)}", 1
            )
        source_raw, target_raw = table.column(table.columns[0]), table.column(table.columns[1])
        source = index_ids(table, source_raw, index, "id", listing)
        target = index_ids(table, target_raw, index, "id", listing)
        weight = np.ones(len(source))
        if len(table.columns) == 3:
            weight = parse_floats(table, table.column(table.columns[2]), "edge weight")
        check_unique_rows(
            table, source * len(index) + target, lambda row: f"edge {source_raw[row]!r} -> {target_raw[row]!r}"
        )
        edge_index = torch.from_numpy(np.stack([source, target]))
        return edge_index, torch.from_numpy(weight).float()
