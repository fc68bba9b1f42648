"""Dense float32 matrix products on the CPU through NumPy's OpenBLAS where torch's MKL is the slower library.

torch's CPU wheels multiply with Intel's MKL, which on other vendors' processors (the AMD EPYC these
benchmarks run on) takes code paths that run GLocal-K's single-precision products slower than OpenBLAS on one
thread (measured in ``benchmarks/results/gemm_blas.md``). :func:`matmul` sends such products to
NumPy, whose wheels bundle OpenBLAS, and keeps torch everywhere else (CUDA, other dtypes, several threads,
Intel processors). The two libraries round differently, so the choice is part of a result's provenance
(:func:`cpu_products`, recorded by :func:`gnnrec.benchmark.harness.environment`).

``GNNREC_CPU_BLAS`` overrides the choice: ``auto`` (default), ``numpy`` or ``torch``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import ThreadpoolController
from torch import Tensor

BACKENDS = ("auto", "numpy", "torch")
CPU_INFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_vendor(cpu_info: Path = CPU_INFO) -> str | None:
    """The processor's ``vendor_id`` (``GenuineIntel``, ``AuthenticAMD``, ...), None where the OS does not say."""
    try:
        with cpu_info.open() as lines:
            for line in lines:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def numpy_backend(setting: str | None = None, vendor: str | None = None, torch_has_mkl: bool | None = None) -> bool:
    """Whether dense CPU float32 products go to NumPy under ``setting`` (default ``$GNNREC_CPU_BLAS``).

    ``auto`` picks NumPy when torch multiplies with MKL on a processor that is not Intel's (``vendor``, default
    :func:`cpu_vendor`; an empty one is unknown, and keeps torch).
    """
    setting = (os.environ.get("GNNREC_CPU_BLAS", "auto") if setting is None else setting).strip().lower()
    if setting not in BACKENDS:
        raise ValueError(f"GNNREC_CPU_BLAS must be one of {', '.join(BACKENDS)}, got {setting!r}")
    if setting != "auto":
        return setting == "numpy"
    vendor = cpu_vendor() if vendor is None else vendor
    torch_has_mkl = torch.backends.mkl.is_available() if torch_has_mkl is None else torch_has_mkl
    return bool(torch_has_mkl) and bool(vendor) and vendor != "GenuineIntel"


def uses_numpy(a: Any, b: Any) -> bool:
    """Whether :func:`matmul` sends ``a @ b`` to NumPy: both dense CPU float32 matrices (not other operands with
    ``@``), torch on one thread (with more, torch's threaded MKL is the faster of the two) and :func:`numpy_backend`."""
    dense = all(
        isinstance(t, Tensor) and t.layout == torch.strided and t.device.type == "cpu" and t.dtype == torch.float32
        for t in (a, b)
    )
    return dense and a.dim() == 2 and b.dim() == 2 and torch.get_num_threads() == 1 and numpy_backend()


def cpu_products() -> str:
    """What multiplies dense float32 matrices on one CPU thread here: ``"numpy (OpenBLAS)"`` or ``"torch"``."""
    return "numpy (OpenBLAS)" if numpy_backend() else "torch"


@functools.cache
def numpy_blas() -> ThreadpoolController:
    """threadpoolctl's handle on the BLAS that NumPy loaded (its wheels bundle one under ``numpy.libs`` or
    ``numpy/.dylibs``); empty where none is found."""
    blas = ThreadpoolController().select(user_api="blas")
    paths = [
        c.filepath for c in blas.lib_controllers if any(p.startswith("numpy") for p in Path(c.filepath).parts[-3:])
    ]
    return blas.select(filepath=paths)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """NumPy's BLAS on one thread for the block, as torch is when :func:`matmul` uses it."""
    with numpy_blas().limit(limits=1):
        yield


class _NumpyMatmul(torch.autograd.Function):
    """``a @ b`` and its gradients (``g bᵀ``, ``aᵀ g``) as NumPy products; NumPy passes transposes to BLAS
    as flags, so no operand is copied."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        with one_blas_thread():
            return torch.from_numpy(np.matmul(a.detach().numpy(), b.detach().numpy()))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        g = grad.numpy()
        with one_blas_thread():
            grad_a = torch.from_numpy(g @ b.detach().numpy().T) if ctx.needs_input_grad[0] else None
            grad_b = torch.from_numpy(a.detach().numpy().T @ g) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def matmul(a: Any, b: Tensor) -> Tensor:
    """``a @ b`` for matrices, through NumPy's OpenBLAS where :func:`uses_numpy` says so, else ``a``'s own ``@``
    (a sparse tensor, or any operand with ``@`` such as :class:`gnnrec.nn.sparse.ConstantSparse`).

    Shapes:
        ``a``: ``[n, k]``, ``b``: ``[k, m]``; output ``[n, m]``.
    """
    if uses_numpy(a, b):
        return _NumpyMatmul.apply(a, b)
    return a @ b
