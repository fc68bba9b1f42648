"""GLocal-K's network on the sparse rating matrix: the autoencoder of kernel layers and its training objective.

:class:`RatingMatrix` holds the training ratings in the layouts the fast sparse paths need and
stands in for the dense ``[items, users]`` matrix as input of :class:`~gnnrec.nn.KernelLayer`
and :class:`~gnnrec.nn.GlobalKernel`; :class:`GLocalKNetwork` computes the objective with those
layers (:mod:`gnnrec.nn.kernel` holds the maths). The model around it is
:class:`gnnrec.models.glocal_k.GLocalK`.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from gnnrec.nn.kernel import GlobalKernel, KernelLayer
from gnnrec.nn.sparse import ConstantSparse, csr_tensor, row_pointer

# ReLU(R ⋆ K) is multiplied as a sparse matrix while at most this share of its cells is positive, densely above:
# on the CPU, MKL's sparse × dense products cost about as much as the dense ones at a fifth of the cells filled
# (see the GLocal-K section of docs/performance.md).
SPARSE_INPUT_MAX_DENSITY = 0.15


class ConvolutionSupport:
    """The cells ``R ⋆ K`` can reach ('same' padding, ``size × size`` kernel) and the product that fills them.

    ``patches`` (CSR ``[cells, size²]``) gives ``R ⋆ K`` on those cells as ``patches @ vec(K)``: rating
    ``R[r, c]`` reaches cell ``(r − a + size//2, c − b + size//2)`` through ``K[a, b]``. Cells are in CSR
    (item-major) order; ``transpose_order`` lists them user-major.
    """

    def __init__(self, item: Tensor, user: Tensor, values: Tensor, shape: tuple[int, int], size: int) -> None:
        num_items, num_users = shape
        pad = size // 2
        rows, cols, entries = [], [], []
        for a in range(size):
            for b in range(size):
                out_item, out_user = item - a + pad, user - b + pad
                inside = (out_item >= 0) & (out_item < num_items) & (out_user >= 0) & (out_user < num_users)
                rows.append(out_item[inside] * num_users + out_user[inside])
                cols.append(torch.full_like(rows[-1], a * size + b))
                entries.append(values[inside])
        index = torch.stack([torch.cat(rows), torch.cat(cols)])
        shape_coo = (num_items * num_users, size * size)
        coo = torch.sparse_coo_tensor(index, torch.cat(entries), shape_coo, check_invariants=False)
        coo = coo.coalesce()  # rows sorted by cell, each row's entries by kernel position
        cell, support_row = torch.unique_consecutive(coo.indices()[0], return_inverse=True)
        shape_p = (len(cell), size * size)
        self.shape = shape
        self.cell, self.item, self.user = cell, cell // num_users, cell % num_users
        self.patches = csr_tensor(row_pointer(support_row, len(cell)), coo.indices()[1], coo.values(), shape_p)
        index_t = torch.stack([coo.indices()[1], support_row])
        patches_t = torch.sparse_coo_tensor(index_t, coo.values(), shape_p[::-1], check_invariants=False)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            self.patches_t = patches_t.coalesce().to_sparse_csr()
        self.transpose_order = torch.argsort(self.user * num_items + self.item)

    def correlate(self, kernel: Tensor) -> Tensor:
        """``R ⋆ K`` on the support cells, ``[cells]`` (a gradient for ``kernel``)."""
        return ConstantSparse(self.patches, self.patches_t) @ kernel.reshape(-1)

    def scatter(self, values: Tensor) -> Tensor:
        """The dense ``[items, users]`` matrix holding ``values`` at the support cells, 0 elsewhere."""
        dense = values.new_zeros(self.shape[0] * self.shape[1])
        return dense.index_put((self.cell,), values).view(self.shape)


class SparseReLU:
    r"""``ReLU(values)`` laid out on a :class:`ConvolutionSupport`, as the left operand of ``@``.

    Only the positive cells are stored, so ``X @ W`` and its gradients are sparse products over them:
    :math:`\partial W = X^\top G` and :math:`\partial\,\mathrm{values} = [\mathrm{values} > 0] \odot (G W^\top)`,
    the latter computed at the positive cells only (``sampled_addmm``). The same numbers as the dense
    ``F.relu(dense) @ W``, up to float rounding.

    Shapes:
        ``values``: ``[cells]`` of the support; ``X``: ``[items, users]``; ``W``: ``[users, out]``.
    """

    def __init__(self, values: Tensor, support: ConvolutionSupport, positive: Tensor | None = None) -> None:
        self.values, self.support, self.shape = values, support, support.shape
        positive = values.detach() > 0 if positive is None else positive
        num_items, num_users = self.shape
        # the positive cells as indices into the support, in CSR (item-major) and transposed (user-major) order
        self.positive = positive.nonzero().squeeze(1)
        self.positive_t = support.transpose_order[positive[support.transpose_order]]
        self.crow, self.col = row_pointer(support.item[self.positive], num_items), support.user[self.positive]
        self.crow_t = row_pointer(support.user[self.positive_t], num_users)
        self.col_t = support.item[self.positive_t]

    def csr(self, values: Tensor) -> Tensor:
        return csr_tensor(self.crow, self.col, values, self.shape)

    def csr_t(self, values: Tensor) -> Tensor:
        return csr_tensor(self.crow_t, self.col_t, values, self.shape[::-1])

    def __matmul__(self, weight: Tensor) -> Tensor:
        return _SparseReLUMatmul.apply(self.values, weight, self)

    def to_dense(self) -> Tensor:
        return self.support.scatter(torch.relu(self.values))


class _SparseReLUMatmul(torch.autograd.Function):
    """``ReLU(values) @ weight`` of a :class:`SparseReLU`, with sparse gradients for ``values`` and ``weight``."""

    @staticmethod
    def forward(ctx: Any, values: Tensor, weight: Tensor, operand: SparseReLU) -> Tensor:
        ctx.save_for_backward(values, weight)
        ctx.operand = operand
        return operand.csr(values[operand.positive]) @ weight

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        values, weight = ctx.saved_tensors
        operand: SparseReLU = ctx.operand
        grad_values = grad_weight = None
        if ctx.needs_input_grad[0]:
            pattern = operand.csr(values.new_ones(len(operand.positive)))
            at_positive = torch.sparse.sampled_addmm(pattern, grad, weight.T, beta=0.0).values()
            grad_values = values.new_zeros(values.shape).index_put_((operand.positive,), at_positive)
        if ctx.needs_input_grad[1]:
            grad_weight = operand.csr_t(values[operand.positive_t]) @ grad
        return grad_values, grad_weight, None


class RatingMatrix:
    """The training ratings as the ``[items, users]`` matrix, in the layouts the fast paths need.

    Entries are kept in CSR (item-major) order; ``transpose_order`` lists them in user-major
    order, so that a gradient given per entry can be laid out as the transposed CSR matrix. ``edges`` holds
    ``user``, ``movie`` and ``rating`` tensors (e.g. a split's :class:`~gnnrec.data.split.RatingEdges`).
    ``matrix @ dense`` is the sparse product (gradient for ``dense``) and
    :meth:`relu_correlate_same` the global kernel's convolution and ReLU (:meth:`correlate_same` without
    the ReLU, dense), so it can be fed to :class:`~gnnrec.nn.KernelLayer` and
    :class:`~gnnrec.nn.GlobalKernel` in place of the dense matrix.
    """

    def __init__(
        self, edges: Any, num_items: int, num_users: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> None:
        item, user, rating = edges.movie.long(), edges.user.long(), edges.rating.to(dtype)
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
        self._supports: dict[int, ConvolutionSupport] = {}

    def __matmul__(self, dense: Tensor) -> Tensor:
        return ConstantSparse(self.csr, self.csr_t) @ dense

    def support(self, size: int) -> ConvolutionSupport:
        """The cells a ``size × size`` 'same' cross-correlation of the ratings reaches (built once per size)."""
        if size not in self._supports:
            self._supports[size] = ConvolutionSupport(self.item, self.user, self.values, self.shape, size)
        return self._supports[size]

    def correlate_same(self, kernel: Tensor) -> Tensor:
        """``R ⋆ K`` ('same' zero padding) as :func:`gnnrec.nn.kernel.correlate_same`, from the sparse ratings."""
        support = self.support(kernel.shape[0])
        return support.scatter(support.correlate(kernel))

    def relu_correlate_same(self, kernel: Tensor) -> Tensor | SparseReLU:
        """``ReLU(R ⋆ K)``: a :class:`SparseReLU` while sparse enough (:data:`SPARSE_INPUT_MAX_DENSITY`), else dense."""
        support = self.support(kernel.shape[0])
        values = support.correlate(kernel)
        positive = values.detach() > 0
        if int(positive.sum()) > SPARSE_INPUT_MAX_DENSITY * self.shape[0] * self.shape[1]:
            return support.scatter(torch.relu(values))
        return SparseReLU(values, support, positive)

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
        self, matrix: RatingMatrix, stage: str, lambda_2: float, lambda_s: float, full: bool = False
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """Loss terms of ``stage`` ("pretrain" or "finetune") and, with ``full``, the completed matrix.

        The layers' own ``forward``/``regularization`` compute it; each local kernel is computed once
        and shared by the forward passes and the sparsity penalty.
        """
        kernels = [layer.kernel() for layer in self.layers]
        weights = [layer.effective_weight(kernel) for layer, kernel in zip(self.layers, kernels, strict=True)]
        output = self.layers[-1]
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
        return terms, completed

    def _hidden(self, inputs: Tensor | RatingMatrix, weights: list[Tensor]) -> Tensor:
        hidden = inputs
        for layer, weight in zip(self.layers[:-1], weights[:-1], strict=True):
            hidden = layer(hidden, weight)
        return hidden
