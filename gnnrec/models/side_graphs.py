"""The side graphs a split offers to the ``gnn`` model: user–user ``follows`` and movie–movie ``similar``."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.utils import remove_self_loops, to_undirected

from gnnrec.data.graph import FOLLOWS, SIMILAR

SIDE_GRAPH_MODES = ("auto", "off")  # auto: every side relation the split has; off: ignore them
SIDE_RELATIONS = {"user": FOLLOWS, "movie": SIMILAR}  # node type -> its same-type relation


def side_graph_edges(data: HeteroData, mode: str = "auto") -> dict[str, tuple[Tensor, Tensor]]:
    """``{node type: (edge_index [2, E], edge_weight [E])}`` of the side graphs message passing uses.

    ``mode="off"`` gives none; ``"auto"`` every relation of :data:`SIDE_RELATIONS` the graph has with at least
    one edge besides self-loops. Each is made undirected (an edge listed in one direction gets the reverse with
    the same weight; a pair listed both ways gets the mean of its two weights on both) without self-loops (the
    encoder keeps a node's own representation anyway). Weights (``edge_weight``, default 1) must be finite and
    non-negative; node indices must be nodes of the graph.
    """
    if mode not in SIDE_GRAPH_MODES:
        raise ValueError(f"side_graphs={mode!r}; choose one of {', '.join(SIDE_GRAPH_MODES)}")
    out: dict[str, tuple[Tensor, Tensor]] = {}
    if mode == "off":
        return out
    for kind, edge_type in SIDE_RELATIONS.items():
        if edge_type not in data.edge_types:
            continue
        store = data[edge_type]
        name = "__".join(edge_type)
        edge_index = store.edge_index.long().cpu()
        weight = store.edge_weight.float().cpu() if "edge_weight" in store else torch.ones(edge_index.size(1))
        num_nodes = data[kind].num_nodes
        if edge_index.dim() != 2 or edge_index.size(0) != 2 or weight.shape != (edge_index.size(1),):
            raise ValueError(f"side graph {name}: edge_index {tuple(edge_index.shape)} and edge_weight "
                             f"{tuple(weight.shape)} must have shapes [2, E] and [E]")  # fmt: skip
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
            raise ValueError(f"side graph {name} names a node outside 0..{num_nodes - 1}")
        if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
            raise ValueError(f"side graph {name} has a negative or non-finite edge_weight")
        edge_index, weight = remove_self_loops(edge_index, weight)
        if edge_index.size(1) == 0:
            continue
        out[kind] = to_undirected(edge_index, weight, num_nodes=num_nodes, reduce="mean")
    return out
