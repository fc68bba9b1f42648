"""Dense float32 matrix products of GLocal-K's shapes through torch's BLAS and NumPy's, on this CPU.

    python benchmarks/bench_gemm.py --threads 1

GLocal-K's fit is mostly dense products of the item × user matrix through its 500-unit layers
(``docs/performance.md``). torch's CPU wheels multiply with the MKL they are built with, NumPy's wheels with
OpenBLAS; which is faster depends on the CPU (MKL's fastest kernels are dispatched on Intel processors). This
prints, per shape ``m × k @ k × n``, the best of ``--repeats`` timed products of each library after warm-up,
both limited to the same thread count (``threadpoolctl`` for NumPy's pool), and the libraries' names.
Arrays are random in [0, 1); the two libraries round differently, so their results are not compared.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from gnnrec.benchmark import harness

# (m, k, n) of GLocal-K's products on ML-100k (1,682 movies × 943 users, 500-unit layers)
GLOCAL_K_SHAPES = ("1682x500x500", "1682x943x500", "1682x500x943", "500x1682x500")


def shape_value(text: str) -> tuple[int, int, int]:
    """``MxKxN`` → ``(m, k, n)``, each a positive integer."""
    try:
        m, k, n = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r} is not MxKxN (e.g. 1682x500x500)") from None
    if min(m, k, n) < 1:
        raise argparse.ArgumentTypeError(f"shape {text!r} has a size below 1")
    return m, k, n


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=shape_value, nargs="+", default=[shape_value(s) for s in GLOCAL_K_SHAPES],
                        metavar="MxKxN", help="product shapes (default: GLocal-K's on ML-100k)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=10, help="timed products per library and shape")
    harness.add_options(parser, threads=1)
    return parser.parse_args(argv)


def best_seconds(product: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``product``, after two untimed ones."""
    for _ in range(2):
        product()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        product()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def numpy_blas() -> str:
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas" and "numpy" in p.get("filepath", "")]
    pool = pools[0] if pools else next((p for p in threadpool_info() if p.get("user_api") == "blas"), {})
    return f"{pool.get('internal_api', 'unknown')} {pool.get('version', '')}".strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = harness.apply_options(args) or 1
    generator = np.random.default_rng(0)
    mkl = "MKL" if torch.backends.mkl.is_available() else "no MKL"
    print(f"cpu: {cpu_name()}; threads {threads}; torch {torch.__version__} ({mkl}), numpy {np.__version__} "
          f"({numpy_blas()})")  # fmt: skip
    print("| m × k × n | torch ms | torch GFLOP/s | numpy ms | numpy GFLOP/s | numpy / torch time |")
    print("|---|---:|---:|---:|---:|---:|")
    with threadpool_limits(limits=threads, user_api="blas"):
        for m, k, n in args.shapes:
            a = generator.random((m, k), dtype=np.float32)
            b = generator.random((k, n), dtype=np.float32)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            torch_s = best_seconds(lambda ta=ta, tb=tb: torch.mm(ta, tb), args.repeats)
            numpy_s = best_seconds(lambda a=a, b=b: a @ b, args.repeats)
            flops = 2 * m * k * n
            print(f"| {m} × {k} × {n} | {torch_s * 1e3:.1f} | {flops / torch_s / 1e9:.0f} | {numpy_s * 1e3:.1f} | "
                  f"{flops / numpy_s / 1e9:.0f} | {numpy_s / torch_s:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
