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
