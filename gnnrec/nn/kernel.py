"""Kernelised layers of GLocal-K (Han et al., "GLocal-K: Global and Local Kernels for Recommender Systems", CIKM 2021).

* :class:`KernelLayer`: a dense layer whose weights are re-weighted by a learned local kernel.
* :class:`GlobalKernel`: a small convolution kernel computed from an item summary, convolved over the rating matrix.

The one source of GLocal-K's maths: :class:`gnnrec.nn.glocal_k.GLocalKNetwork` computes the
training objective with these layers (feeding them the sparse rating matrix where it can).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnrec.nn.activation import activation as activation_module
from gnnrec.nn.blas import matmul


def local_kernel(u: Tensor, v: Tensor) -> Tensor:
    r"""Local kernel :math:`\hat w_{ij} = \max(0,\ 1 - \lVert u_i - v_j \rVert^2)`.

    ``u`` is ``[n_in, 1, d]`` (or ``[n_in, d]``), ``v`` is ``[1, n_out, d]`` (or ``[n_out, d]``);
    the result is ``[n_in, n_out]``. The squared distance is expanded as
    ``‖u‖² + ‖v‖² − 2 u·v`` (one small matrix product instead of an ``n_in × n_out × d`` tensor).
    """
    u = u.reshape(u.shape[0], -1)
    v = v.reshape(v.shape[-2], -1)
    if u.shape[1] != v.shape[1]:
        raise ValueError(f"u and v need the same kernel dimension, got {u.shape[1]} and {v.shape[1]}")
    squared_distance = (u * u).sum(1, keepdim=True) + (v * v).sum(1) - 2.0 * (u @ v.T)
    return (1.0 - squared_distance).clamp(min=0.0)


def glorot_uniform_(tensor: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """TensorFlow's default initialiser: U(±sqrt(6 / (fan_in + fan_out))); a vector's fans are both its length."""
    if tensor.dim() == 1:
        fan_in = fan_out = tensor.numel()
    else:
        fan_in, fan_out = tensor.shape[0], tensor.shape[1]
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return nn.init.uniform_(tensor, -limit, limit, generator=generator)


def truncated_normal_(tensor: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """N(0, std²) cut at ±2 std, as ``tf.random.truncated_normal``."""
    return nn.init.trunc_normal_(tensor, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)


class KernelLayer(nn.Module):
    r"""GLocal-K's kernel layer: :math:`y = \sigma\big(x\,(W \odot \hat W) + b\big)`.

    :math:`\hat W_{ij} = \max(0, 1 - \lVert u_i - v_j \rVert^2)` is the local kernel of
    ``u`` (``[n_in, 1, d]``) and ``v`` (``[1, n_out, d]``), so each weight is kept, shrunk or
    switched off by how close its input and output embeddings are. ``W`` and ``b`` start
    Glorot-uniform, ``u`` and ``v`` truncated normal with σ = 1e-3 (as the reference code).
    :meth:`regularization` returns :math:`(\tfrac12\sum W^2,\ \tfrac12\sum \hat W^2)`.

    Args:
        in_features, out_features: sizes of ``x`` and ``y``.
        kernel_dim: dimension of the kernel embeddings ``u`` and ``v``.
        activation: :math:`\sigma`, a name of :data:`gnnrec.nn.activation.ACTIVATIONS`.

    Shapes:
        ``x``: ``[N, in_features]`` (a dense tensor, or any operand with ``@``, e.g.
        :class:`gnnrec.nn.sparse.ConstantSparse`); output ``[N, out_features]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_dim: int = 5,
        activation: str = "sigmoid",
        *,
        kernel_init_std: float = 1e-3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or kernel_dim < 1:
            raise ValueError(
                f"KernelLayer needs positive sizes, got in_features={in_features}, "
                f"out_features={out_features}, kernel_dim={kernel_dim}"
            )
        self.in_features, self.out_features, self.kernel_dim = in_features, out_features, kernel_dim
        self.activation = activation
        self.act = activation_module(activation)
        self.kernel_init_std = kernel_init_std
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.u = nn.Parameter(torch.empty(in_features, 1, kernel_dim))
        self.v = nn.Parameter(torch.empty(1, out_features, kernel_dim))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            glorot_uniform_(self.weight, generator)
            truncated_normal_(self.u, self.kernel_init_std, generator)
            truncated_normal_(self.v, self.kernel_init_std, generator)
            glorot_uniform_(self.bias, generator)

    def kernel(self) -> Tensor:
        """The local kernel ``Ŵ``, ``[n_in, n_out]``."""
        return local_kernel(self.u, self.v)

    def effective_weight(self, kernel: Tensor | None = None) -> Tensor:
        """``W ⊙ Ŵ``."""
        return self.weight * (self.kernel() if kernel is None else kernel)

    def activate(self, x: Tensor) -> Tensor:
        return self.act(x)

    def forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """``σ(x (W ⊙ Ŵ) + b)``; pass ``weight`` = :meth:`effective_weight` when it is already computed."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"KernelLayer expects {self.in_features} input features, got {x.shape[-1]}")
        weight = self.effective_weight() if weight is None else weight
        return self.activate(matmul(x, weight) + self.bias)

    def mean_output(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """``forward(x).mean(-1)`` of a linear (``identity``) layer as one matrix-vector product, ``[N]``."""
        if self.activation != "identity":
            raise ValueError(f"mean_output needs the identity activation, this layer has {self.activation!r}")
        weight = self.effective_weight() if weight is None else weight
        return x @ weight.mean(1) + self.bias.mean()

    def regularization(self, kernel: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(½ΣW², ½ΣŴ²)``: the L2 and the kernel-sparsity penalties before their λ."""
        kernel = self.kernel() if kernel is None else kernel
        return 0.5 * (self.weight * self.weight).sum(), 0.5 * (kernel * kernel).sum()

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, kernel_dim={self.kernel_dim}, activation={self.activation}"


class GlobalKernel(nn.Module):
    r"""GLocal-K's global convolution kernel.

    From an item summary :math:`s \in \mathbb{R}^{n_{items}}` (the mean over users of the local
    autoencoder's output), the kernel is :math:`K = \mathrm{reshape}(\gamma\, s^\top C,\ [k, k])`
    with a learned :math:`C \in \mathbb{R}^{n_{items} \times k^2}` (truncated normal, σ = 0.1) and
    the dot scale :math:`\gamma`. :meth:`forward` returns :math:`\mathrm{ReLU}(R \star K)`: the
    ``[n_items, n_users]`` rating matrix cross-correlated with ``K`` ('same' zero padding, stride 1),
    as ``tf.nn.conv2d`` on the matrix seen as a one-channel image with items as its height.

    Args:
        num_items: length of the item summary (rows of the rating matrix).
        kernel_size: ``k``, odd.
        dot_scale: :math:`\gamma`.

    Shapes:
        ``ratings``: ``[num_items, num_users]``, dense, or any object with a
        ``correlate_same(kernel)`` method giving the same product (e.g. a sparse rating matrix);
        ``item_summary``: ``[num_items]``; output ``[num_items, num_users]``.
    """

    def __init__(
        self,
        num_items: int,
        kernel_size: int = 3,
        dot_scale: float = 1.0,
        *,
        init_std: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if num_items < 1:
            raise ValueError(f"GlobalKernel needs at least one item, got num_items={num_items}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number ('same' padding), got {kernel_size}")
        self.num_items, self.kernel_size, self.dot_scale = num_items, kernel_size, float(dot_scale)
        self.init_std = init_std
        self.weight = nn.Parameter(torch.empty(num_items, kernel_size * kernel_size))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            truncated_normal_(self.weight, self.init_std, generator)

    def kernel(self, item_summary: Tensor) -> Tensor:
        """``[k, k]`` kernel from the ``[n_items]`` summary."""
        if item_summary.shape != (self.num_items,):
            raise ValueError(f"item_summary must have shape ({self.num_items},), got {tuple(item_summary.shape)}")
        return ((item_summary @ self.weight) * self.dot_scale).view(self.kernel_size, self.kernel_size)

    def forward(self, ratings: Tensor, item_summary: Tensor) -> Tensor:
        if len(ratings.shape) != 2 or ratings.shape[0] != self.num_items:
            raise ValueError(f"ratings must be [{self.num_items}, num_users], got {tuple(ratings.shape)}")
        kernel = self.kernel(item_summary)
        if isinstance(ratings, Tensor):
            return F.relu(correlate_same(ratings, kernel))
        return F.relu(ratings.correlate_same(kernel))


def correlate_same(matrix: Tensor, kernel: Tensor) -> Tensor:
    """2-D cross-correlation of ``matrix`` with an odd square ``kernel``, zero 'same' padding.

    Written as a sum of shifted copies, which on the CPU is several times faster than
    ``conv2d`` for one channel and gives ``kernel`` its gradient just as well.
    """
    size = kernel.shape[0]
    rows, cols = matrix.shape
    padded = F.pad(matrix, (size // 2,) * 4)
    out = None
    for a in range(size):
        for b in range(size):
            term = kernel[a, b] * padded[a : a + rows, b : b + cols]
            out = term if out is None else out + term
    return out
