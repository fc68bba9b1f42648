"""Assemble a bipartite user–movie :class:`HeteroData` rating graph with its split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData

RATES = ("user", "rates", "movie")
RATED_BY = ("movie", "rated_by", "user")
FOLLOWS = ("user", "follows", "user")  # optional user–user side graph
SIMILAR = ("movie", "similar", "movie")  # optional item–item side graph
PARTS = ("train", "val", "test")


def fingerprint_files(paths: list[Path]) -> str:
    """MD5 over the names and bytes of ``paths``: changes whenever a raw file does."""
    digest = hashlib.md5()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_rating_graph(
    *,
    user_x: torch.Tensor,
    movie_x: torch.Tensor,
    parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    rating_levels: list[float],
) -> HeteroData:
    """Build the graph whose message edges are the training ratings only.

    ``parts`` maps ``train``/``val``/``test`` to ``(user, movie, rating, time)`` arrays
    of 0-based indices. Each part is stored as ``{part}_edge_label_index`` /
    ``{part}_edge_label`` (and ``{part}_edge_time``) on the ``rates`` edge type.
    """
    data = HeteroData()
    data["user"].x = user_x.float()
    data["user"].num_nodes = user_x.size(0)
    data["movie"].x = movie_x.float()
    data["movie"].num_nodes = movie_x.size(0)

    for part in PARTS:
        user, movie, rating, time = parts[part]
        store = data[RATES]
        store[f"{part}_edge_label_index"] = torch.from_numpy(np.stack([user, movie])).long()
        store[f"{part}_edge_label"] = torch.from_numpy(np.asarray(rating, dtype=np.float32))
        store[f"{part}_edge_time"] = torch.from_numpy(np.asarray(time)).long()

    store = data[RATES]
    store.edge_index = store.train_edge_label_index.clone()
    store.rating = store.train_edge_label.clone()
    store.time = store.train_edge_time.clone()
    data[RATED_BY].edge_index = store.edge_index.flip(0)
    data[RATED_BY].rating = store.rating.clone()
    data[RATED_BY].time = store.time.clone()
    data.rating_levels = torch.tensor(rating_levels, dtype=torch.float32)
    return data
