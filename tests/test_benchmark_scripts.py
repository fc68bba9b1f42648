"""Every script in benchmarks/ starts and prints its usage (``--help``), and does a tiny run on the fixture data.

The tiny runs call each script as ``__main__`` in this process (no second torch import), with the smallest
sizes its options allow; scripts that start other processes (data-parallel workers, a server, a browser, the
checkouts' subprocesses) run as subprocesses and are marked ``slow``.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gnnrec.threads import torch_threads

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 20 and Path(SCRIPTS[0]).parent.name == "benchmarks"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_script_prints_its_usage(script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    monkeypatch.syspath_prepend(str(script.parent))  # scripts that import their neighbours
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out


# ---------------------------------------------------------------------- tiny runs
def run_script(name: str, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> str:
    """Run ``benchmarks/<name>`` as ``__main__`` with ``args``; its stdout (the exit status must be 0)."""
    script = REPO / "benchmarks" / name
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    with torch_threads(torch.get_num_threads()):  # a script's --threads must not leak into later tests
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit_info:
            assert exit_info.code in (0, None), capsys.readouterr()
    return capsys.readouterr().out


def run_subprocess(name: str, args: list[str], timeout: float = 120.0) -> str:
    """Run ``benchmarks/<name>`` in a fresh interpreter (bounded by ``timeout``); its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.fixture
def fixture_data(ml100k_fixture_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny ML-100k-format dataset, also as ``$GNNREC_ML100K_DIR`` (scripts that read it from there)."""
    monkeypatch.setenv("GNNREC_ML100K_DIR", str(ml100k_fixture_dir))
    return ml100k_fixture_dir


@pytest.fixture
def checkpoint(fixture_data: Path, tmp_path: Path) -> Path:
    """A fitted ``bias`` model of the fixture's u1 split, saved as a checkpoint."""
    from gnnrec.data import load_split
    from gnnrec.models import create_model

    split = load_split("ml-100k", "u1", source_dir=fixture_data, log=False)
    return create_model("bias").fit(split).save(tmp_path / "model.safetensors")


SYNTHETIC = ["--num-ratings", "1000", "--num-users", "60", "--num-movies", "40"]
# (script, arguments, text its output must hold); "{data}" is the fixture folder, "{tmp}" the test's folder
TINY_RUNS: list[tuple[str, list[str], str]] = [
    ("bench_ease_catalogue.py", [*SYNTHETIC, "--threads", "1", "--out", "{tmp}/ease.md"], "chosen λ"),
    ("bench_evaluator.py", ["--data-dir", "{data}", "--repeats", "2", "--threads", "1"], "evaluate: median"),
    ("bench_gemm.py", ["--shapes", "8x4x3", "5x6x7", "--repeats", "1", "--threads", "1"], "| 5 × 6 × 7 |"),
    ("bench_glocal_k.py", ["--data-dir", "{data}", "--seeds", "0", "--threads", "1",
                           "--set", "pretrain_epochs=1", "--set", "finetune_epochs=1"], "GLocal-K on ml-100k/u1"),
    ("bench_gnn_epoch_scaling.py", ["--sizes", "600", "1200", "--epochs", "2", "--threads", "1", "--out",
                                    "{tmp}/scaling.md", "--plot", "{tmp}/scaling.png"], "| 1,200 | 1,080 |"),
    ("bench_gnn_coldstart.py", ["--data-dir", "{data}", "--set", "max_epochs=2", "--set", "val_every=1",
                                "--set", "induction_users=0.3"], "| 0 |"),
    ("bench_gnn.py", ["--data-dir", "{data}", "--seeds", "0", "--threads", "1", "--set", "max_epochs=2",
                      "--set", "val_every=1"], "fit_cpu_seconds"),
    ("bench_gnn_ranking.py", ["--data-dir", "{data}", "--set", "max_epochs=2", "--set", "val_every=1"], "val_ndcg@10"),
    ("bench_gnn_stopping.py", ["--data-dir", "{data}", "--budget", "10", "--budgets", "10", "--patiences", "5",
                               "--threads", "1", "--set", "val_every=1"], "ended by"),
    ("bench_gnn_synthetic.py", [*SYNTHETIC, "--epochs", "2"], "val RMSE (rating units)"),
    ("bench_load_large.py", SYNTHETIC, "processed-cache load"),
    ("bench_rating_levels.py", ["--users", "60", "--movies", "40", "--ratings", "1200", "--seeds", "0", "--epochs",
                                "2", "--variants", "continuous", "binned", "--out", "{tmp}/levels.md"],
     "Chosen on validation RMSE"),
    ("bench_refit_protocol.py", ["--data-dir", "{data}", "--test-config", "--seeds", "0", "--models", "gnn", "mf",
                                 "ease", "--set", "max_epochs=10", "--warm-sets", "refit_continue_share=0.2",
                                 "--out", "{tmp}/refit.md"], "| gnn | mean | rmse |"),
    ("bench_scale.py", ["--data-dir", "{data}", "--models", "global-mean", "bias", "--threads", "1"], "table:scale"),
    ("bench_side_graphs.py", ["--seeds", "0", "--max-epochs", "2", "--out", "{tmp}/side.md"], "side_graphs"),
    ("bench_taste_exposure.py", ["--data-dir", "{data}", *SYNTHETIC, "--strengths", "0", "2", "--threads", "1"],
     "| synthetic taste_exposure=2 |"),
    ("bench_topk.py", ["--data-dir", "{data}", "--skip-grid", "--max-epochs", "1"], "popularity"),
    ("fuzz_readers.py", ["--examples", "12"], "| **all** | 12 |"),
    ("profile_fits.py", ["--data-dir", "{data}", "--models", "glocal-k", "--rows", "3"], "Operators by self time"),
    ("readme_tables.py", ["--check"], "up to date"),
    ("run.py", ["quick", "--test-config", "--models", "bias", "--data-dir", "{data}", "--out", "{tmp}/quick",
                "--no-tensorboard", "--no-plots", "--no-projector", "--threads", "1"], "results:"),
]  # fmt: skip


def _expand(args: list[str], data: Path, tmp: Path) -> list[str]:
    return [arg.format(data=data, tmp=tmp) for arg in args]


@pytest.mark.parametrize("name, args, expected", TINY_RUNS, ids=[run[0] for run in TINY_RUNS])
def test_script_tiny_run(
    name: str,
    args: list[str],
    expected: str,
    fixture_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    out = run_script(name, _expand(args, fixture_data, tmp_path), monkeypatch, capsys)
    assert expected in out


def test_bench_fold_in_tiny_run(
    gnn_checkpoint: Path, fixture_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = run_script("bench_fold_in.py", [str(gnn_checkpoint), "--data-dir", str(fixture_data), "--rounds", "1",
                                          "--support", "2"], monkeypatch, capsys)  # fmt: skip
    table = [line for line in out.splitlines() if line.startswith("| 1") or line.startswith("| 16")]
    assert len(table) == 4 and all(line.rstrip().endswith("| True |") for line in table), out


def test_every_script_has_a_tiny_run() -> None:
    covered = {run[0] for run in TINY_RUNS} | {
        "bench_ddp.py",
        "bench_export.py",
        "bench_fold_in.py",
        "bench_gnn_large.py",
        "bench_sizes.py",
        "check_same_predictions.py",
        "load_test.py",
        "record.py",
        "screenshot_web_page.py",
    }  # the second set: the tests below
    assert {script.name for script in SCRIPTS} == covered


def test_record_writes_the_output_with_provenance(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "record.md"
    printed = run_script("record.py", [str(out), "--", sys.executable, "-c", "print('numbers 1 2 3')"], monkeypatch,
                         capsys)  # fmt: skip
    text = out.read_text()
    assert "numbers 1 2 3" in printed and "```\nnumbers 1 2 3\n```" in text
    assert "(recorded by `benchmarks/record.py`)" in text and "load average (1/5/15 min) before" in text


def test_record_writes_nothing_when_the_command_fails(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "record.md"
    monkeypatch.setattr(sys, "argv", ["record.py", str(out), "--", sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "benchmarks" / "record.py"), run_name="__main__")
    assert exit_info.value.code == 3 and not out.exists()


@pytest.mark.slow
def test_bench_ddp_tiny_run(fixture_data: Path) -> None:
    out = run_subprocess("bench_ddp.py", ["--data-dir", str(fixture_data), "--epochs", "1", "--batch-size", "256"])
    assert "throughput ratio 2 / 1" in out


@pytest.mark.slow
def test_bench_export_tiny_run(checkpoint: Path, fixture_data: Path) -> None:
    out = run_subprocess("bench_export.py", [str(checkpoint), "--data-dir", str(fixture_data), "-k", "5",
                                             "--repeats", "1", "--threads", "1"])  # fmt: skip
    assert "top-5 -> parquet" in out and "peak resident memory of this process" in out


@pytest.mark.slow
def test_bench_gnn_large_tiny_run() -> None:
    out = run_subprocess("bench_gnn_large.py", [*SYNTHETIC, "--epochs", "1", "--threads", "1"])
    assert "peak RSS of the whole run" in out


@pytest.mark.slow
def test_bench_sizes_tiny_run() -> None:
    args = ["--sizes", "tiny", "--models", "bias", "--threads", "1", "--timeout", "120"]
    out = run_subprocess("bench_sizes.py", args)
    assert "| tiny | bias | ok |" in out


@pytest.mark.slow
def test_check_same_predictions_tiny_run(fixture_data: Path, tmp_path: Path) -> None:
    out = run_subprocess("check_same_predictions.py", [str(REPO), str(REPO), "--models", "bias", "global-mean",
                                                       "--data-dir", str(fixture_data)])  # fmt: skip
    assert "| bias | `{}` | yes | 0 |" in out


@pytest.mark.slow
def test_load_test_tiny_run(checkpoint: Path, fixture_data: Path) -> None:
    out = run_subprocess("load_test.py", [str(checkpoint), "--data-dir", str(fixture_data), "--requests", "5",
                                          "--warmup", "1", "--concurrency", "1", "--time-limit", "10"])  # fmt: skip
    assert "| known-user top-10 | 1 | 5 | 0 |" in out


def _chromium_present() -> bool:
    from gnnrec.testing.serving import CHROMEDRIVER, CHROMIUM

    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@pytest.mark.slow
def test_screenshot_web_page_tiny_run(checkpoint: Path, fixture_data: Path, tmp_path: Path) -> None:
    if not _chromium_present():
        pytest.skip("headless Chromium and chromedriver are not installed")
    liked = ["Movie 11", "Movie 22", "Movie 33", "Movie 44", "Movie 55"]
    args = [str(checkpoint), "--data-dir", str(fixture_data), "--out", str(tmp_path / "page.png"), "--liked", *liked]
    out = run_subprocess("screenshot_web_page.py", args)
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "liked Movie 11" in out
