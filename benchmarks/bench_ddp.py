"""Throughput of data-parallel MF training: 2 gloo processes against 1 process, same global batch.

Trains ``mf`` for a fixed number of epochs (no early stop) on ML-100k u1 (``$GNNREC_ML100K_DIR``) or
on the generated ``synthetic`` dataset, once in this process and once in 2 processes joined over
127.0.0.1 with gloo (:mod:`gnnrec.distributed`, as ``torchrun --nproc_per_node=2`` would), and prints
training ratings per second of each and their ratio. Each process uses ``--threads`` CPU threads.

    python benchmarks/bench_ddp.py [--dataset ml-100k|synthetic] [--epochs 5] [--batch-size 4096]
"""

from __future__ import annotations

import argparse
import os
import socket

import torch
import torch.multiprocessing as mp

from gnnrec import distributed
from gnnrec.benchmark import harness
from gnnrec.data import load_split
from gnnrec.models import create_model


def _split(dataset: str, data_dir: str | None):
    if dataset == "synthetic":
        return load_split(dataset, log=False, num_users=20_000, num_movies=5_000, num_ratings=1_000_000)
    return load_split(dataset, log=False, source_dir=data_dir)


def _fit_seconds(dataset: str, data_dir: str | None, overrides: dict) -> tuple[float, int]:
    split = _split(dataset, data_dir)
    model = create_model("mf", overrides)
    with harness.timed() as fit:
        model.fit(split)
    return fit.seconds, len(model.history) * len(split.train)


def _worker(rank: int, port: int, dataset: str, data_dir: str | None, overrides: dict, threads: int, queue) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"})
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(threads)
    distributed.init_distributed(backend="gloo")
    try:
        result = _fit_seconds(dataset, data_dir, overrides)
        if distributed.is_main():
            queue.put(result)
    finally:
        distributed.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_options(parser, data_dir=True, threads=1)
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "synthetic"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4096)
    args = parser.parse_args(argv)
    overrides = {"max_epochs": args.epochs, "patience": args.epochs, "batch_size": args.batch_size, "device": "cpu"}
    _split(args.dataset, args.data_dir)  # build the cache once, outside the timings
    threads = harness.apply_options(args)
    seconds, ratings = _fit_seconds(args.dataset, args.data_dir, overrides)
    single = ratings / seconds
    print(f"1 process : {seconds:.2f} s for {ratings:,} training ratings ({single:,.0f} ratings/s)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.start_processes(_worker, args=(port, args.dataset, args.data_dir, overrides, threads, queue), nprocs=2,
                       start_method="spawn")  # fmt: skip
    seconds2, ratings2 = queue.get()
    double = ratings2 / seconds2
    print(f"2 processes (gloo): {seconds2:.2f} s for {ratings2:,} training ratings ({double:,.0f} ratings/s)")
    print(f"throughput ratio 2 / 1: {double / single:.2f} (CPU cores: {os.cpu_count()}; threads per process: "
          f"{threads}; fit time includes rank 0's per-epoch validation)")  # fmt: skip


if __name__ == "__main__":
    main()
