"""Tests for gnnrec.threads: the "auto" heuristic (patched affinity, load and cgroup quota) and restoration."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gnnrec import threads
from gnnrec.threads import (
    DEFAULT_MAX_THREADS,
    GRAIN_SIZE,
    available_cores,
    busy_cores,
    default_threads,
    resolve_threads,
    torch_threads,
)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """Set the patched machine: ``machine(cores, load, quota=None)``."""

    def configure(cores: int, load: float | None, quota: int | None = None) -> None:
        monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)

        def loadavg() -> tuple[float, float, float]:
            if load is None:
                raise OSError("no load average")
            return (load, load, load)

        monkeypatch.setattr(threads.os, "getloadavg", loadavg)
        monkeypatch.setattr(threads, "_cgroup_cpu_limit", lambda: quota)

    return configure


def test_auto_quiet_and_loaded(machine) -> None:
    machine(8, 1.0)  # only this process
    assert resolve_threads("auto") == 8
    machine(8, 3.2)  # two other busy processes
    assert resolve_threads("auto") == 6
    machine(2, 3.0)  # the 738 s case: two other training jobs on 2 cores
    assert resolve_threads("auto") == 1
    machine(4, None)  # load average unavailable
    assert resolve_threads("auto") == 4
    assert busy_cores() == 0


def test_default_is_fixed_whatever_the_load(machine) -> None:
    counts = set()
    for load in (0.0, 1.0, 3.0, 9.5, None):  # idle, this process, two and eight other jobs, unknown
        machine(8, load)
        counts |= {resolve_threads(), resolve_threads(None), resolve_threads("default"), default_threads()}
    assert counts == {DEFAULT_MAX_THREADS} == {2}
    machine(1, 0.0)  # one core allotted: never more threads than cores
    assert resolve_threads() == 1
    machine(16, 7.0, quota=1)  # a cgroup quota of one core
    assert resolve_threads("default") == 1
    machine(2, 3.0)  # what auto does on the same busy machine: fewer threads, so other arithmetic
    assert resolve_threads("auto") == 1 and resolve_threads() == 2


def test_auto_respects_quota_and_problem_size(machine) -> None:
    machine(16, 0.0, quota=3)
    assert available_cores() == 3
    assert resolve_threads("auto") == 3
    machine(16, 0.0)
    assert resolve_threads("auto", work_size=1000) == 1
    assert resolve_threads("auto", work_size=GRAIN_SIZE) == 1
    assert resolve_threads("auto", work_size=3 * GRAIN_SIZE) == 3
    assert resolve_threads("auto", work_size=10**9) == 16
    with pytest.raises(ValueError, match="work_size"):
        resolve_threads("auto", work_size=-1)


def test_fallback_without_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_affinity(pid: int) -> set[int]:
        raise AttributeError("sched_getaffinity")

    monkeypatch.setattr(threads.os, "sched_getaffinity", no_affinity, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 5)
    monkeypatch.setattr(threads, "_cgroup_cpu_limit", lambda: None)
    assert available_cores() == 5


def test_cgroup_file(tmp_path: Path) -> None:
    path = tmp_path / "cpu.max"
    path.write_text("max 100000\n")
    assert threads._cgroup_cpu_limit(path) is None
    path.write_text("150000 100000\n")
    assert threads._cgroup_cpu_limit(path) == 2
    assert threads._cgroup_cpu_limit(tmp_path / "missing") is None


def test_explicit_values(machine) -> None:
    machine(2, 5.0)
    assert resolve_threads(4) == 4  # an explicit request is honoured even on a loaded machine
    assert resolve_threads("3") == 3
    for bad in (0, -1, "many", "", 1.5, True):
        with pytest.raises(ValueError, match="threads must be"):
            resolve_threads(bad)  # type: ignore[arg-type]


def test_torch_threads_restores() -> None:
    before = torch.get_num_threads()
    target = 2 if before != 2 else 1
    with torch_threads(target) as n:
        assert n == target and torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"), torch_threads(target):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="positive"):
        with torch_threads(0):
            pass


def test_every_command_defaults_to_the_fixed_policy() -> None:
    import argparse

    from gnnrec.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    defaults = {
        name: [a.default for a in command._actions if "--threads" in a.option_strings]
        for name, command in commands.items()
    }
    fitting_or_scoring = ("train", "evaluate", "benchmark", "recommend", "export", "serve")
    assert defaults == {"data": [], "convert": [], **{name: ["default"] for name in fitting_or_scoring}}
