"""Weighted message passing over a same-type side graph (user–user "follows", movie–movie "similar")."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot


def weighted_edge_norm(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tensor:
    r"""Per-edge coefficient :math:`w_{ji} / \sqrt{d^{out}_j\, d^{in}_i}` of an edge :math:`j \to i`.

    Degrees are sums of edge weights (:math:`d^{out}_j = \sum_k w_{jk}`, :math:`d^{in}_i = \sum_k w_{ki}`),
    so on an undirected graph this is the symmetric normalisation :math:`D^{-1/2} W D^{-1/2}`.
    An edge touching a node of zero degree gets 0.
    """
    src, dst = edge_index
    deg_out = torch.zeros(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device).index_add_(0, src, edge_weight)
    deg_in = torch.zeros(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device).index_add_(0, dst, edge_weight)
    scale = (deg_out[src] * deg_in[dst]).rsqrt()
    return edge_weight * scale.masked_fill(torch.isinf(scale), 0.0)


class SideGraphConv(MessagePassing):
    r"""A graph convolution over a weighted relation between nodes of one type (a side graph).

    .. math::
        \mathbf{h}_i' = \mathbf{W} \sum_{j \in \mathcal{N}(i)} \frac{w_{ji}}{\sqrt{d^{out}_j\, d^{in}_i}}\,
            \mathbf{h}_j \;+\; \mathbf{W}_0 \mathbf{h}_i + \mathbf{b},
        \qquad d^{out}_j = \sum_k w_{jk}, \quad d^{in}_i = \sum_k w_{ki}

    for edges :math:`j \to i` with weights :math:`w_{ji} \ge 0` (``edge_weight``, default 1). On an
    undirected graph (both directions listed with the same weight) the coefficients are the symmetric
    normalisation :math:`D^{-1/2} W D^{-1/2}` of the weighted adjacency matrix. A node without edges receives
    no message: its output is :math:`\mathbf{W}_0 \mathbf{h}_i + \mathbf{b}`. The root term
    :math:`\mathbf{W}_0 \mathbf{h}_i` is present with ``root_weight=True``, :math:`\mathbf{b}` with ``bias``.

    Args:
        in_channels: size of the input node features.
        out_channels: size of the output node features.
        root_weight: add the transformed own features :math:`\mathbf{W}_0 \mathbf{h}_i`.
        bias: learn the additive bias :math:`\mathbf{b}`.

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, ``edge_index`` :math:`(2, E)` (source, target),
          optional ``edge_weight`` :math:`(E)`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, *, root_weight: bool = False, bias: bool = True) -> None:
        super().__init__(aggr="add", node_dim=0)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be at least 1, got {in_channels}, {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.root = nn.Parameter(torch.empty(in_channels, out_channels)) if root_weight else None
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        glorot(self.weight)
        if self.root is not None:
            glorot(self.root)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """New node features from the weighted, normalised sum of the neighbours' (see the class formula).

        Args:
            x: node features ``[N, in_channels]``.
            edge_index: ``[2, E]`` long tensor of (source, target) node indices in ``0..N-1``.
            edge_weight: ``[E]`` non-negative edge weights (default: all 1).
        """
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(f"x must have shape [N, {self.in_channels}], got {tuple(x.shape)}")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
        if edge_weight is None:
            edge_weight = x.new_ones(edge_index.size(1))
        elif edge_weight.shape != (edge_index.size(1),):
            raise ValueError(f"edge_weight has shape {tuple(edge_weight.shape)} for {edge_index.size(1)} edges")
        num_nodes = x.size(0)
        norm = weighted_edge_norm(edge_index, edge_weight.to(x.dtype), num_nodes)
        out = self.propagate(edge_index, x=x @ self.weight, norm=norm, size=(num_nodes, num_nodes))
        if self.root is not None:
            out = out + x @ self.root
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor, norm: Tensor) -> Tensor:
        return x_j * norm.unsqueeze(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, root_weight={self.root is not None})"
