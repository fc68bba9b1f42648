"""gnnrec.benchmark.harness: the shared options, the clock, the one peak-memory measure and the provenance."""

from __future__ import annotations

import argparse
import time

import numpy
import pytest
import torch

from gnnrec.benchmark import harness
from gnnrec.threads import default_threads, torch_threads


def parser_with(**options) -> argparse.ArgumentParser:
    return harness.add_options(argparse.ArgumentParser(prog="bench"), **options)


def test_add_options_adds_only_what_is_asked() -> None:
    args = parser_with(data_dir=True, threads=2, seed=7, device=True).parse_args([])
    assert (args.data_dir, args.threads, args.seed, args.device) == (None, "2", 7, "cpu")
    bare = parser_with(threads=None).parse_args([])
    assert not any(hasattr(bare, name) for name in ("data_dir", "threads", "seed", "device"))
    with pytest.raises(SystemExit):
        parser_with(threads=None).parse_args(["--threads", "2"])


@pytest.mark.parametrize("value", ["0", "-1", "many", "1.5"])
def test_a_bad_threads_value_is_a_usage_error(value: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser_with().parse_args(["--threads", value])
    assert exit_info.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_threads_follow_the_project_policy() -> None:
    with torch_threads(torch.get_num_threads()):
        assert harness.apply_options(parser_with().parse_args([])) == default_threads()
        assert torch.get_num_threads() == default_threads()
        assert harness.apply_options(parser_with().parse_args(["--threads", "1"])) == 1
        assert torch.get_num_threads() == 1
        auto = harness.thread_count(parser_with(threads="auto").parse_args([]))
        assert isinstance(auto, int) and auto >= 1
    assert harness.apply_options(parser_with(threads=None).parse_args([])) is None


def test_a_device_this_machine_lacks_is_refused(capsys: pytest.CaptureFixture) -> None:
    bad = ["--device", "nonsense"] if torch.cuda.is_available() else ["--device", "cuda"]
    with pytest.raises(SystemExit) as exit_info:
        parser_with(device=True).parse_args(bad)
    assert exit_info.value.code == 2 and "--device" in capsys.readouterr().err


def test_timed_measures_wall_and_cpu_seconds() -> None:
    with harness.timed() as clock:
        time.sleep(0.05)
        running = clock.seconds
    fixed = clock.seconds
    assert 0.05 <= running <= fixed < 5.0
    assert clock.seconds == fixed  # frozen after the block
    assert 0.0 <= clock.cpu_seconds < fixed  # sleeping costs no CPU time
    assert str(clock).endswith("s CPU")


def test_peak_memory_sees_an_allocation_and_resets() -> None:
    memory = harness.PeakMemory()
    memory.reset()
    before = memory.peak_rss_mb()
    block = numpy.ones(64 * 2**20 // 8)  # 64 MiB, touched
    during = memory.peak_rss_mb()
    del block
    assert during >= before + 48  # the kernel's high-water mark saw the pages
    assert harness.peak_rss_gib() == pytest.approx(harness.peak_rss_mib() / 1024, rel=1e-3)
    if memory.per_cell:  # Linux: the high-water mark can be lowered again
        memory.reset()
        assert memory.peak_rss_mb() < during
        assert memory.method.startswith("VmHWM")


def test_provenance_holds_what_a_results_file_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    info = harness.provenance(seeds=[0, 1], argv=["bench.py", "--seed", "0"])
    for key in ("commit", "commit_short", "dirty", "gnnrec_version", "torch", "python", "machine", "cpu_count",
                "cores_available", "torch_threads", "load_average", "started"):  # fmt: skip
        assert key in info, key
    assert info["torch"] == torch.__version__ and info["omp_num_threads"] == "3"
    assert info["seeds"] == [0, 1] and info["command"] == "bench.py --seed 0"
    assert info["cores_available"] >= 1 and info["torch_threads"] == torch.get_num_threads()
    assert harness.load_average() == "n/a" or len(harness.load_average().split(" / ")) == 3


def test_a_child_module_reports_its_own_peak_not_its_parents(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's peak RSS is its own: a parent that holds far more memory does not raise it (Linux's
    ``RUSAGE_CHILDREN`` would count the parent's pages the child had mapped before ``exec``)."""
    import os
    import subprocess
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    held = numpy.ones(400 * 2**20, dtype=numpy.uint8)  # 400 MiB resident in this process
    assert harness.peak_rss_mib() > 400
    source = tmp_path / "data.json"
    source.write_text('{"a": 1}')
    seconds, peak = harness.run_python_module("json.tool", [str(source)])
    assert seconds > 0 and peak is not None and 0 < peak < harness.peak_rss_mib() - 300
    with pytest.raises(subprocess.CalledProcessError):
        harness.run_python_module("json.tool", [str(tmp_path / "missing.json")])
    del held
