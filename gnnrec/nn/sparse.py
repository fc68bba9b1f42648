"""Sparse CSR helpers shared by the layers and models: building a CSR matrix, and products with a constant one.

PyG's :func:`~torch_geometric.utils.to_torch_csr_tensor` sorts and re-indexes on every call; the
fast paths here keep one fixed sparsity pattern and rebuild the matrix with new values at every
optimisation step, so they build the row pointer once (PyG's ``index2ptr``) and reuse it.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch_geometric.utils.sparse import index2ptr


def csr_tensor(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """``torch.sparse_csr_tensor`` without its invariant checks and its "CSR support is in beta" warning.

    The few CSR operations used in gnnrec (sparse @ dense, ``sampled_addmm``) are stable.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def to_csr(matrix: Tensor) -> Tensor:
    """A dense or sparse COO matrix as CSR (``to_sparse_csr``) without the "CSR support is in beta" warning
    (see :func:`csr_tensor`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return matrix.to_sparse_csr()


def row_pointer(rows: Tensor, num_rows: int) -> Tensor:
    """CSR row pointer (``crow_indices``, length ``num_rows + 1``) of row indices sorted ascending."""
    return index2ptr(rows.long(), num_rows)


def coo_to_csr(row: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """CSR matrix of the entries ``(row[i], col[i]) = values[i]``; entries of one row keep their given order."""
    order = torch.sort(row, stable=True).indices
    return csr_tensor(row_pointer(row[order], shape[0]), col[order], values[order], shape)


class _ConstantSparseMatmul(torch.autograd.Function):
    """``A @ dense`` for a constant sparse ``A`` whose transpose is given (gradient for ``dense`` only)."""

    @staticmethod
    def forward(ctx: Any, dense: Tensor, matrix: Tensor, matrix_t: Tensor) -> Tensor:
        ctx.matrix_t = matrix_t
        return matrix @ dense

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return ctx.matrix_t @ grad, None, None


class ConstantSparse:
    r"""A constant sparse matrix :math:`A` (no gradient) for products :math:`A X` that backpropagate to :math:`X`.

    ``A @ X`` returns :math:`AX`; its backward is :math:`A^\top G` with the transpose stored once
    (``torch.sparse.mm``'s own backward would transpose ``A`` at every call).

    Args:
        matrix: sparse CSR ``[n, m]``.
        matrix_t: its transpose, sparse CSR ``[m, n]``.
    """

    def __init__(self, matrix: Tensor, matrix_t: Tensor) -> None:
        if tuple(matrix.shape) != tuple(matrix_t.shape)[::-1]:
            raise ValueError(f"matrix_t must be the transpose of matrix, got {matrix.shape} and {matrix_t.shape}")
        self.matrix, self.matrix_t = matrix, matrix_t

    @property
    def shape(self) -> torch.Size:
        return self.matrix.shape

    def __matmul__(self, dense: Tensor) -> Tensor:
        if dense.dim() == 1:
            return _ConstantSparseMatmul.apply(dense[:, None], self.matrix, self.matrix_t).squeeze(1)
        return _ConstantSparseMatmul.apply(dense, self.matrix, self.matrix_t)


class PairPattern:
    r"""A fixed list of (row, column) pairs for dot products :math:`\langle a_{r_e}, b_{c_e} \rangle` of two node
    tables, as one sampled sparse-dense product instead of two gathered ``[E, d]`` copies.

    ``dot(a, b)`` reads each row of ``a`` and ``b`` in place (``torch.sparse.sampled_addmm`` on the pairs' CSR
    pattern); its backward is two sparse-dense products, :math:`G b` and :math:`G^\top a`. The sorts that build
    both patterns are done once, so one pattern serves several products (e.g. a decoder's basis matrices).

    Args:
        row: ``[E]`` row of ``a`` of each pair.
        col: ``[E]`` row of ``b`` of each pair.
        num_rows: rows of ``a``.
        num_cols: rows of ``b``.
    """

    def __init__(self, row: Tensor, col: Tensor, num_rows: int, num_cols: int) -> None:
        self.shape = (num_rows, num_cols)
        row, col = row.long(), col.long()
        self.by_row = torch.sort(row, stable=True).indices
        self.by_col = torch.sort(col, stable=True).indices
        self.crow = row_pointer(row[self.by_row], num_rows)
        self.col_of_row_order = col[self.by_row]
        self.ccol = row_pointer(col[self.by_col], num_cols)
        self.row_of_col_order = row[self.by_col]

    def by_rows(self, values: Tensor) -> Tensor:
        """CSR ``[num_rows, num_cols]`` holding ``values`` (in pair order) at the pairs."""
        return csr_tensor(self.crow, self.col_of_row_order, values[self.by_row].contiguous(), self.shape)

    def by_cols(self, values: Tensor) -> Tensor:
        """CSR ``[num_cols, num_rows]`` (the transpose) holding ``values`` (in pair order) at the pairs."""
        return csr_tensor(self.ccol, self.row_of_col_order, values[self.by_col].contiguous(), self.shape[::-1])

    def dot(self, a: Tensor, b: Tensor) -> Tensor:
        """``[E]``: ``(a[row[e]] * b[col[e]]).sum()`` of each pair, ``a`` ``[num_rows, d]``, ``b`` ``[num_cols, d]``."""
        return _PairDot.apply(a, b, self)


class _PairDot(torch.autograd.Function):
    """:meth:`PairPattern.dot` with its two sparse-dense gradient products."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, pattern: PairPattern) -> Tensor:
        ctx.save_for_backward(a, b)
        ctx.pattern = pattern
        zeros = pattern.by_rows(a.new_zeros(len(pattern.by_row)))  # beta=0 still reads the values: no garbage
        values = torch.sparse.sampled_addmm(zeros, a, b.t(), beta=0.0).values()
        out = torch.empty_like(values)
        out[pattern.by_row] = values
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        a, b = ctx.saved_tensors
        pattern: PairPattern = ctx.pattern
        grad_a = pattern.by_rows(grad) @ b if ctx.needs_input_grad[0] else None
        grad_b = pattern.by_cols(grad) @ a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None
