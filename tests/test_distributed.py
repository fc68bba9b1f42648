"""Data-parallel MF (gnnrec.distributed): 2 gloo processes on 127.0.0.1 equal 1 process with the same global batch."""

from __future__ import annotations

import math
import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from gnnrec import distributed
from gnnrec.data import MovieLens100K
from gnnrec.models import create_model

TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, source: str, root: str, overrides: dict, out: str) -> None:
    os.environ.update(
        {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1"}
    )
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    assert distributed.init_distributed(backend="gloo", timeout_s=TIMEOUT_S)
    try:
        assert distributed.rank() == rank and distributed.world_size() == world
        split = MovieLens100K(root, split="u1", source_dir=source, log=False).rating_split()
        model = create_model("mf", overrides, test_config=True).fit(split)
        if distributed.is_main():
            torch.save({"state": model.module.state_dict(), "epochs": len(model.history)}, out)
    finally:
        distributed.cleanup()


def _run_two_processes(*args) -> None:
    context = mp.start_processes(_worker, args=(2, _free_port(), *args), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"2-process run did not finish in {TIMEOUT_S} s")


@pytest.mark.parametrize("epochs", [1, 3])
def test_two_gloo_processes_equal_one_process(ml100k_fixture_dir, tmp_path, epochs):
    root = tmp_path / "root"
    split = MovieLens100K(root, split="u1", source_dir=ml100k_fixture_dir, log=False).rating_split()
    # 3 steps per epoch, odd global batch: the two shards differ in size
    batch = math.ceil(len(split.train) / 3) | 1
    overrides = {"batch_size": batch, "max_epochs": epochs, "patience": 1, "lr": 0.05}
    single = create_model("mf", overrides, test_config=True).fit(split)
    out = tmp_path / "ddp.pt"
    _run_two_processes(str(ml100k_fixture_dir), str(root), overrides, str(out))
    saved = torch.load(out)
    assert saved["epochs"] == len(single.history)
    for name, value in single.module.state_dict().items():
        torch.testing.assert_close(saved["state"][name], value, atol=1e-5, rtol=0)


def test_single_process_helpers(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.init_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.broadcast_flags([True, 0.5]) == [1.0, 0.5] and distributed.all_reduce_sum(2.5) == 2.5
    module = torch.nn.Linear(2, 2)
    assert distributed.wrap(module) is module
    batch = torch.arange(7)
    parts = [distributed.shard(batch, r, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), batch) and [len(p) for p in parts] == [3, 2, 2]
    seeds = {distributed.rank_seed(5, r) for r in range(4)}
    assert len(seeds) == 4 and distributed.rank_seed(5, 1) == distributed.rank_seed(5, 1) != distributed.rank_seed(6, 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(RuntimeError, match="MASTER_PORT"):
        distributed.init_distributed()
    with distributed.main_first():  # alone: just runs the block
        ran = True
    assert ran
