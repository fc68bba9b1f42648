"""Dense CPU products through NumPy's OpenBLAS (gnnrec.nn.blas): the choice of library and the products."""

from __future__ import annotations

import pytest
import torch

from gnnrec.nn import blas
from gnnrec.nn.kernel import KernelLayer
from gnnrec.threads import torch_threads


def test_cpu_vendor_reads_vendor_id(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n")
    assert blas.cpu_vendor.__wrapped__(info) == "AuthenticAMD"
    info.write_text("processor\t: 0\n")
    assert blas.cpu_vendor.__wrapped__(info) is None
    assert blas.cpu_vendor.__wrapped__(tmp_path / "missing") is None


@pytest.mark.parametrize(
    ("setting", "vendor", "mkl", "expected"),
    [
        ("auto", "AuthenticAMD", True, True),
        ("auto", "GenuineIntel", True, False),
        ("auto", "AuthenticAMD", False, False),  # torch without MKL: its own BLAS is not the handicapped one
        ("auto", "", True, False),  # vendor unknown
        ("numpy", "GenuineIntel", True, True),
        ("Torch", "AuthenticAMD", True, False),
    ],
)
def test_numpy_backend_choice(setting, vendor, mkl, expected):
    assert blas.numpy_backend(setting, vendor=vendor, torch_has_mkl=mkl) is expected


def test_unknown_setting_is_refused(monkeypatch):
    monkeypatch.setenv("GNNREC_CPU_BLAS", "mkl")
    with pytest.raises(ValueError, match="GNNREC_CPU_BLAS must be one of auto, numpy, torch, got 'mkl'"):
        blas.numpy_backend()


def test_only_one_thread_dense_float32_cpu_matrices_go_to_numpy(monkeypatch):
    monkeypatch.setenv("GNNREC_CPU_BLAS", "numpy")
    a, b = torch.rand(4, 3), torch.rand(3, 2)
    with torch_threads(1):
        assert blas.uses_numpy(a, b)
        assert not blas.uses_numpy(a.double(), b.double())
        assert not blas.uses_numpy(a.to_sparse_csr(), b)
        assert not blas.uses_numpy(a, b[:, 0])
    with torch_threads(2):
        assert not blas.uses_numpy(a, b)
    monkeypatch.setenv("GNNREC_CPU_BLAS", "torch")
    with torch_threads(1):
        assert not blas.uses_numpy(a, b)


@pytest.mark.parametrize("transposed", [False, True])
def test_numpy_product_and_gradients_match_torch(monkeypatch, transposed):
    monkeypatch.setenv("GNNREC_CPU_BLAS", "numpy")
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(37, 23, generator=generator)
    b = torch.randn(29, 23, generator=generator).T if transposed else torch.randn(23, 29, generator=generator)
    grad = torch.randn(37, 29, generator=generator)
    results = []
    for backend in ("numpy", "torch"):
        monkeypatch.setenv("GNNREC_CPU_BLAS", backend)
        left, right = a.clone().requires_grad_(), b.detach().clone().requires_grad_()
        with torch_threads(1):
            out = blas.matmul(left, right)
            out.backward(grad)
        assert (type(out.grad_fn).__name__ == "_NumpyMatmulBackward") is (backend == "numpy")
        assert out.shape == (37, 29)
        results.append((out.detach(), left.grad, right.grad))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_kernel_layer_output_does_not_depend_on_the_library(monkeypatch):
    layer = KernelLayer(11, 7, kernel_dim=3, generator=torch.Generator().manual_seed(1))
    x = torch.rand(5, 11, generator=torch.Generator().manual_seed(2))
    outputs = []
    for backend in ("numpy", "torch"):
        monkeypatch.setenv("GNNREC_CPU_BLAS", backend)
        with torch_threads(1):
            outputs.append(layer(x))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)


def test_one_blas_thread_limits_numpys_blas_and_restores_it():
    controller = blas.numpy_blas()
    if not controller.lib_controllers:
        pytest.skip("no BLAS found under NumPy's package directory (a NumPy not built from its wheels)")
    before = [lib.num_threads for lib in controller.lib_controllers]
    with blas.one_blas_thread():
        assert [lib.get_num_threads() for lib in controller.lib_controllers] == [1] * len(before)
    assert [lib.get_num_threads() for lib in controller.lib_controllers] == before


def test_cpu_products_names_the_library(monkeypatch):
    monkeypatch.setenv("GNNREC_CPU_BLAS", "numpy")
    assert blas.cpu_products() == "numpy (OpenBLAS)"
    monkeypatch.setenv("GNNREC_CPU_BLAS", "torch")
    assert blas.cpu_products() == "torch"


def test_cli_refuses_a_bad_setting_before_any_work(monkeypatch, capsys, tmp_path):
    from gnnrec.cli import main

    monkeypatch.setenv("GNNREC_CPU_BLAS", "fast")
    monkeypatch.setenv("GNNREC_HOME", str(tmp_path))
    assert main(["data", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gnnrec data: error: GNNREC_CPU_BLAS must be one of auto, numpy, torch, got 'fast'"
    assert not any(tmp_path.iterdir())  # nothing written
