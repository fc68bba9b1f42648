"""Data-parallel MF (gnnrec.distributed): 2 gloo processes on 127.0.0.1 equal 1 process with the same global batch."""

from __future__ import annotations

import json
import math
import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

import gnnrec
from gnnrec import distributed
from gnnrec.data import MovieLens100K
from gnnrec.models import create_model
from gnnrec.models.gnn import step as gnn_steps

TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join_process_group(rank: int, world: int, port: int) -> None:
    """What torchrun would set up: this process's rank in a gloo group on 127.0.0.1, one thread."""
    os.environ.update(
        {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1"}
    )
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    assert distributed.init_distributed(backend="gloo", timeout_s=TIMEOUT_S)


# What the 2-process workers import: loaded once by this process's forkserver (a fresh interpreter), so that each
# test's processes fork from it with clean module state instead of importing torch and gnnrec again.
FORKSERVER_PRELOAD = ["pytest", "torch", "gnnrec.benchmark", "gnnrec.data", "gnnrec.distributed", "gnnrec.models"]


def _in_environment(rank: int, worker, environ: dict[str, str], package: str, *args) -> None:
    """Run ``worker(rank, *args)`` under the test's environment (the forkserver's is that of the first test that
    started it), after checking that the forkserver imported the same gnnrec as the test."""
    os.environ.clear()
    os.environ.update(environ)
    assert gnnrec.__file__ == package, f"the forkserver imported gnnrec from {gnnrec.__file__}, the test from {package}"
    worker(rank, *args)


def _spawn_two(worker, *args) -> None:
    """Run ``worker(rank, 2, port, *args)`` in 2 fresh processes; fail the test after TIMEOUT_S."""
    mp.set_forkserver_preload(FORKSERVER_PRELOAD)  # takes effect when this process's forkserver first starts
    launch = (worker, dict(os.environ), gnnrec.__file__, 2, _free_port(), *args)
    context = mp.start_processes(_in_environment, args=launch, nprocs=2, join=False, start_method="forkserver")
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"2-process run did not finish in {TIMEOUT_S} s")


def _worker(rank: int, world: int, port: int, source: str, root: str, overrides: dict, out: str) -> None:
    _join_process_group(rank, world, port)
    try:
        assert distributed.rank() == rank and distributed.world_size() == world
        split = MovieLens100K(root, split="u1", source_dir=source, log=False).rating_split()
        model = create_model("mf", overrides, test_config=True).fit(split)
        if distributed.is_main():
            torch.save({"state": model.module.state_dict(), "epochs": len(model.history)}, out)
    finally:
        distributed.cleanup()


@pytest.mark.parametrize("epochs", [1, 3])
def test_two_gloo_processes_equal_one_process(ml100k_fixture_dir, tmp_path, epochs):
    root = tmp_path / "root"
    split = MovieLens100K(root, split="u1", source_dir=ml100k_fixture_dir, log=False).rating_split()
    # 3 steps per epoch, odd global batch: the two shards differ in size
    batch = math.ceil(len(split.train) / 3) | 1
    overrides = {"batch_size": batch, "max_epochs": epochs, "patience": 1, "lr": 0.05}
    single = create_model("mf", overrides, test_config=True).fit(split)
    out = tmp_path / "ddp.pt"
    _spawn_two(_worker, str(ml100k_fixture_dir), str(root), overrides, str(out))
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


def _gnn_worker(rank: int, world: int, port: int, source: str, root: str, overrides: dict, out: str) -> None:
    _join_process_group(rank, world, port)
    try:
        overrides = dict(overrides)
        if "_block_users" in overrides:  # several blocks per rank: the checkpointed blocks under DDP
            gnn_steps.RANK_BLOCK_CELLS = overrides.pop("_block_users") * 60
        split = MovieLens100K(root, split="u1", source_dir=source, log=False).rating_split()
        model = create_model("gnn", overrides, test_config=True).fit(split)
        states = [member.state_dict() for member in (*model.members, *model.rank_members)]
        torch.save({"states": states, "history": model.history}, out.replace(".pt", f"-{rank}.pt"))
    finally:
        distributed.cleanup()


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_epochs": 1, "batch_size": "third"},  # 3 mini-batch steps of one epoch
        {"max_epochs": 3, "val_every": 1, "patience": 1},  # 3 full-batch steps, validated and early-stopped by rank 0
        # 6 steps, sampled ranking users
        {"max_epochs": 2, "batch_size": "third", "supervision": "all", "rank_users": 7},
        {"max_epochs": 2, "_block_users": 7},  # the ranking loss in checkpointed blocks of 7 users
    ],
)
def test_two_gloo_processes_train_the_gnn_like_one_process(ml100k_fixture_dir, tmp_path, overrides, monkeypatch):
    root = tmp_path / "root"
    split = MovieLens100K(root, split="u1", source_dir=ml100k_fixture_dir, log=False).rating_split()
    assert split.num_movies == 60
    if overrides.get("batch_size") == "third":
        overrides = {**overrides, "batch_size": math.ceil(len(split.train) / 3)}
    single_overrides = dict(overrides)
    if "_block_users" in single_overrides:
        monkeypatch.setattr(gnn_steps, "RANK_BLOCK_CELLS", single_overrides.pop("_block_users") * 60)
        single_overrides["batch_size"] = len(split.train)  # one process: the same loop, one batch of all edges
    single = create_model("gnn", single_overrides, test_config=True).fit(split)
    out = tmp_path / "ddp.pt"
    _spawn_two(_gnn_worker, str(ml100k_fixture_dir), str(root), overrides, str(out))
    ranks = [torch.load(tmp_path / f"ddp-{rank}.pt") for rank in range(2)]
    expected = [member.state_dict() for member in (*single.members, *single.rank_members)]
    for saved in ranks:
        assert len(saved["history"]) == len(single.history)
        for state, reference in zip(saved["states"], expected, strict=True):
            for name, value in reference.items():
                if name == "ranker.movie.bias":  # shifts all scores of a user alike: the softmax (and BPR margins)
                    continue  # ignore it: its gradient is 0 up to round-off, which Adam normalises into steps
                torch.testing.assert_close(state[name], value, atol=1e-5, rtol=0, msg=name)
    # rank 0 validated (and stopped) exactly as the single process did; rank 1 has no validation metrics
    assert [row.get("val_rmse") for row in ranks[0]["history"]] == pytest.approx(
        [row.get("val_rmse") for row in single.history], abs=1e-5
    )
    assert all("val_rmse" not in row for row in ranks[1]["history"])



def _count_steps(calls: list[tuple[int, bool]]) -> None:
    """Record every call of the one training step (world size, whether DDP wraps it) in ``calls``."""
    forward = gnn_steps.TrainingStep.forward

    def spy(self, *args, **kwargs):
        calls.append((distributed.world_size(), distributed.is_distributed()))
        return forward(self, *args, **kwargs)

    gnn_steps.TrainingStep.forward = spy


def _step_worker(rank: int, world: int, port: int, source: str, root: str, overrides: dict, out: str) -> None:
    _join_process_group(rank, world, port)
    try:
        calls: list[tuple[int, bool]] = []
        _count_steps(calls)
        split = MovieLens100K(root, split="u1", source_dir=source, log=False).rating_split()
        model = create_model("gnn", overrides, test_config=True).fit(split)
        torch.save({"calls": calls, "steps": model.history[-1]["steps"]}, out.replace(".pt", f"-{rank}.pt"))
    finally:
        distributed.cleanup()


def test_full_batch_mini_batch_and_data_parallel_run_the_one_training_step(
    ml100k_fixture_dir, tmp_path, monkeypatch
):
    root = tmp_path / "root"
    split = MovieLens100K(root, split="u1", source_dir=ml100k_fixture_dir, log=False).rating_split()
    overrides = {"max_epochs": 2, "val_every": 1}
    calls: list[tuple[int, bool]] = []
    monkeypatch.setattr(gnn_steps.TrainingStep, "forward", gnn_steps.TrainingStep.forward)  # restored afterwards
    _count_steps(calls)
    full = create_model("gnn", overrides, test_config=True).fit(split)  # one full-batch step per epoch
    assert calls == [(1, False)] * 2 and full.history[-1]["steps"] == 2
    calls.clear()
    batched = create_model("gnn", {**overrides, "batch_size": math.ceil(len(split.train) / 3)}, test_config=True)
    batched.fit(split)  # three mini-batch steps per epoch
    assert calls == [(1, False)] * 6 and batched.history[-1]["steps"] == 6
    out = tmp_path / "steps.pt"
    _spawn_two(_step_worker, str(ml100k_fixture_dir), str(root), overrides, str(out))
    for rank in range(2):  # data-parallel: every rank's steps go through the same step, wrapped in DDP
        saved = torch.load(tmp_path / f"steps-{rank}.pt")
        assert saved["calls"] == [(2, True)] * 2 and saved["steps"] == 2


BENCH_SUITE = {"name": "ddp", "splits": ["u1"], "seeds": [0], "test_config": True, "models": ["mf", "gnn"]}


def _benchmark_worker(rank: int, world: int, port: int, source: str, out: str) -> None:
    from gnnrec.benchmark import run_benchmark

    _join_process_group(rank, world, port)
    try:
        refused = ""
        try:
            run_benchmark({**BENCH_SUITE, "models": ["mf", "bias"]}, out + "-refused", data_dir=source, progress=False)
        except ValueError as error:
            refused = str(error)
        options = {"data_dir": source, "progress": False, "log": lambda line: None, "plots": False}
        first = run_benchmark(BENCH_SUITE, out, **options)
        again = run_benchmark(BENCH_SUITE, out, **options)  # rank 0 reuses every cell; the others follow
        torch.save(
            {"refused": refused, "directory": str(first.directory), "reused": again.results["run"]["cells_reused"]},
            f"{out}-rank{rank}.pt",
        )
    finally:
        distributed.cleanup()


def test_a_benchmark_under_two_gloo_processes_matches_one_process(ml100k_fixture_dir, tmp_path):
    from gnnrec.benchmark import run_benchmark

    single = run_benchmark(
        BENCH_SUITE, tmp_path / "single", data_dir=ml100k_fixture_dir, progress=False, log=lambda line: None
    )
    out = str(tmp_path / "ddp")
    _spawn_two(_benchmark_worker, str(ml100k_fixture_dir), out)
    ranks = [torch.load(f"{out}-rank{rank}.pt") for rank in range(2)]
    assert all("'bias' has no data-parallel training" in saved["refused"] for saved in ranks)
    assert not (tmp_path / "ddp-refused").exists()
    assert ranks[0]["directory"] == out and ranks[0]["reused"] == 2
    assert not os.path.exists(ranks[1]["directory"])  # rank 1 wrote only into its deleted scratch directory
    ddp = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert ddp["run"]["cells_finished"] == 2 and ddp["run"]["cells_failed"] == 0 and ddp["run"]["processes"] == 2
    assert single.results["run"]["processes"] == 1
    assert "2 data-parallel processes" in (tmp_path / "ddp" / "results.md").read_text()
    for expected, got in zip(single.cells, ddp["cells"], strict=True):
        assert got["label"] == expected["label"] and got["status"] == expected["status"] == "ok"
        for name in ("rmse", "mae", "ndcg@10"):
            assert got["metrics"][name] == pytest.approx(expected["metrics"][name], abs=1e-4), (got["label"], name)
