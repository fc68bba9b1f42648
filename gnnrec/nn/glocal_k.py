"""GLocal-K's network on the sparse rating matrix: the autoencoder of kernel layers and its training objective.

:class:`RatingMatrix` holds the training ratings in the layouts the fast sparse paths need and
stands in for the dense ``[items, users]`` matrix as input of :class:`~gnnrec.nn.KernelLayer`
and :class:`~gnnrec.nn.GlobalKernel`; :class:`GLocalKNetwork` computes the objective with those
layers (:mod:`gnnrec.nn.kernel` holds the maths). The model around it is
:class:`gnnrec.models.glocal_k.GLocalK`.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from gnnrec.nn.kernel import GlobalKernel, KernelLayer
from gnnrec.nn.sparse import ConstantSparse, csr_tensor, row_pointer


class RatingMatrix:
    """The training ratings as the ``[items, users]`` matrix, in the layouts the fast paths need.

    Entries are kept in CSR (item-major) order; ``transpose_order`` lists them in user-major
    order, so that a gradient given per entry can be laid out as the transposed CSR matrix. ``edges`` holds
    ``user``, ``movie`` and ``rating`` tensors (e.g. a split's :class:`~gnnrec.data.split.RatingEdges`).
    ``matrix @ dense`` is the sparse product (gradient for ``dense``) and
    :meth:`correlate_same` the global kernel's convolution, so it can be fed to
    :class:`~gnnrec.nn.KernelLayer` and :class:`~gnnrec.nn.GlobalKernel` in place of the dense matrix.
    """

    def __init__(self, edges: Any, num_items: int, num_users: int, device: torch.device) -> None:
        item, user, rating = edges.movie.long(), edges.user.long(), edges.rating.float()
        key = item * num_users + user
        order = torch.argsort(key)
        if len(key) and bool((key[order][1:] == key[order][:-1]).any()):
            raise ValueError("the training edges hold a (user, movie) pair twice; GLocal-K needs one rating per pair")
        item, user, rating = item[order], user[order], rating[order]
        self.shape = (num_items, num_users)
        self.item, self.user, self.values = item.to(device), user.to(device), rating.to(device)
        self.crow = row_pointer(item, num_items).to(device)
        self.col = self.user
        self.csr = self.with_values(self.values)
        self.pattern = self.with_values(torch.ones_like(self.values))
        transpose_order = torch.argsort(user * num_items + item)
        self.transpose_order = transpose_order.to(device)
        self.crow_t = row_pointer(user[transpose_order], num_users).to(device)
        self.col_t = item[transpose_order].to(device)
        self.csr_t = self.transposed(self.values)
        self._patches: dict[int, tuple[Tensor, Tensor]] = {}

    def __matmul__(self, dense: Tensor) -> Tensor:
        return ConstantSparse(self.csr, self.csr_t) @ dense

    def correlate_same(self, kernel: Tensor) -> Tensor:
        """``R ⋆ K`` ('same' zero padding) as :func:`gnnrec.nn.kernel.correlate_same`, from the sparse ratings."""
        patches = ConstantSparse(*self.patches(kernel.shape[0]))
        return (patches @ kernel.reshape(-1)).view(self.shape)

    def patches(self, size: int) -> tuple[Tensor, Tensor]:
        """``P`` (CSR ``[items · users, size²]``) with ``P @ vec(K) = vec(R ⋆ K)`` ('same' padding), and ``Pᵀ``.

        The rating matrix is sparse, so its cross-correlation with a small kernel is a sparse
        matrix-vector product: rating ``R[r, c]`` reaches output ``(r − a + size//2, c − b + size//2)``
        through ``K[a, b]``.
        """
        if size not in self._patches:
            num_items, num_users = self.shape
            pad = size // 2
            rows, cols, values = [], [], []
            for a in range(size):
                for b in range(size):
                    out_item, out_user = self.item - a + pad, self.user - b + pad
                    inside = (out_item >= 0) & (out_item < num_items) & (out_user >= 0) & (out_user < num_users)
                    rows.append(out_item[inside] * num_users + out_user[inside])
                    cols.append(torch.full_like(rows[-1], a * size + b))
                    values.append(self.values[inside])
            index, value = torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(values)
            shape = (num_items * num_users, size * size)
            patches = torch.sparse_coo_tensor(index, value, shape, check_invariants=False).coalesce()
            patches_t = torch.sparse_coo_tensor(index.flip(0), value, shape[::-1], check_invariants=False).coalesce()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self._patches[size] = (patches.to_sparse_csr(), patches_t.to_sparse_csr())
        return self._patches[size]

    def with_values(self, values: Tensor) -> Tensor:
        """CSR ``[items, users]`` matrix of the observed pattern holding ``values`` (CSR order)."""
        return csr_tensor(self.crow, self.col, values, self.shape)

    def transposed(self, values: Tensor) -> Tensor:
        """CSR ``[users, items]`` matrix of the observed pattern holding ``values`` (given in CSR order)."""
        return csr_tensor(self.crow_t, self.col_t, values[self.transpose_order], self.shape[::-1])


class _ObservedMatmul(torch.autograd.Function):
    """``(hidden @ weight + bias)`` at the observed entries of the rating matrix only, in CSR order.

    Every gradient is a sparse-dense product over the observed pattern, which keeps them
    bitwise reproducible with several threads (an indexed ``bias[user]`` backward is not).
    """

    @staticmethod
    def forward(ctx: Any, hidden: Tensor, weight: Tensor, bias: Tensor, matrix: RatingMatrix) -> Tensor:
        ctx.save_for_backward(hidden, weight)
        ctx.matrix = matrix
        return torch.sparse.sampled_addmm(matrix.pattern, hidden, weight, beta=0.0).values() + bias[matrix.col]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        hidden, weight = ctx.saved_tensors
        matrix: RatingMatrix = ctx.matrix
        grad_hidden = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = matrix.with_values(grad) @ weight.T
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_t = matrix.transposed(grad)  # [users, items]
            if ctx.needs_input_grad[1]:
                grad_weight = (grad_t @ hidden).T
            if ctx.needs_input_grad[2]:
                grad_bias = (grad_t @ hidden.new_ones(hidden.shape[0], 1)).squeeze(1)
        return grad_hidden, grad_weight, grad_bias, None


class ObjectiveValue(NamedTuple):
    """What :meth:`GLocalKNetwork.objective` returns."""

    terms: dict[str, Tensor]  # squared_error, l2, sparse and their total
    completed: Tensor | None  # the completed [items, users] matrix (``full`` only)
    hidden: Tensor  # the last hidden layer's output [items, hidden], detached


class GLocalKNetwork(nn.Module):
    """The kernel-layer autoencoder (``n_users → hidden… → n_users``) and the global kernel."""

    def __init__(
        self,
        num_items: int,
        num_users: int,
        hidden_sizes: tuple[int, ...] = (500, 500),
        kernel_dim: int = 5,
        global_kernel_size: int = 3,
        dot_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        sizes = [num_users, *hidden_sizes, num_users]
        self.layers = nn.ModuleList(
            KernelLayer(
                sizes[i],
                sizes[i + 1],
                kernel_dim,
                "sigmoid" if i < len(hidden_sizes) else "identity",
                generator=generator,
            )
            for i in range(len(sizes) - 1)
        )
        self.global_kernel = GlobalKernel(num_items, global_kernel_size, dot_scale, generator=generator)

    def local_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.layers for p in (layer.weight, layer.u, layer.v, layer.bias)]

    def all_parameters(self) -> list[nn.Parameter]:
        return [*self.local_parameters(), self.global_kernel.weight]

    def objective(
        self,
        matrix: RatingMatrix,
        stage: str,
        lambda_2: float,
        lambda_s: float,
        full: bool = False,
        hidden: Tensor | None = None,
    ) -> ObjectiveValue:
        """Loss terms of ``stage`` ("pretrain" or "finetune"), with ``full`` the completed matrix, and the last
        hidden layer's output.

        The layers' own ``forward``/``regularization`` compute it; each local kernel is computed once
        and shared by the forward passes and the sparsity penalty. ``hidden``: the last hidden layer's output at
        the current weights, when already computed (by an earlier call at the same weights), so that only the
        output layer and the penalties are computed again.
        """
        kernels = [layer.kernel() for layer in self.layers]
        weights = [layer.effective_weight(kernel) for layer, kernel in zip(self.layers, kernels, strict=True)]
        output = self.layers[-1]
        if hidden is None:
            inputs: Tensor | RatingMatrix = matrix
            if stage == "finetune":
                # The global kernel needs only the users' mean of the local output: one matrix-vector product.
                item_summary = output.mean_output(self._hidden(matrix, weights), weights[-1])
                inputs = self.global_kernel(matrix, item_summary)
            hidden = self._hidden(inputs, weights)
        if full:
            completed = output(hidden, weights[-1])
            observed = completed[matrix.item, matrix.user]
        else:
            completed = None
            observed = output.activate(_ObservedMatmul.apply(hidden, weights[-1], output.bias, matrix))
        residual = matrix.values - observed
        penalties = [layer.regularization(kernel) for layer, kernel in zip(self.layers, kernels, strict=True)]
        l2 = sum(penalty[0] for penalty in penalties)
        sparse = sum(penalty[1] for penalty in penalties)
        terms = {"squared_error": 0.5 * (residual * residual).sum(), "l2": lambda_2 * l2, "sparse": lambda_s * sparse}
        terms["total"] = terms["squared_error"] + terms["l2"] + terms["sparse"]
        return ObjectiveValue(terms, completed, hidden.detach())

    def _hidden(self, inputs: Tensor | RatingMatrix, weights: list[Tensor]) -> Tensor:
        hidden = inputs
        for layer, weight in zip(self.layers[:-1], weights[:-1], strict=True):
            hidden = layer(hidden, weight)
        return hidden
