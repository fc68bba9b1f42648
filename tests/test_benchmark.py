"""The benchmark runner: suites as data, result files, failures, resuming."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math

import pytest

from gnnrec.benchmark import (
    OK,
    PeakMemory,
    Suite,
    available_suites,
    build_cells,
    format_mean_std,
    load_suite,
    mean_std,
    parse_targeted_overrides,
    run_benchmark,
    summarize,
    summary_table,
)
from gnnrec.benchmark.report import rounded_record
from gnnrec.models import available_models
from gnnrec.models.baselines import GlobalMean
from gnnrec.models.registry import MODEL_CLASSES

CELL_KEYS = {
    "id",
    "label",
    "model",
    "overrides",
    "config",
    "dataset",
    "split",
    "split_fingerprint",
    "seed",
    "status",
    "metrics",
    "fit_seconds",
    "eval_seconds",
    "peak_rss_mb",
    "history",
    "error",
}


@dataclasses.dataclass
class CountingConfig:
    steps: int = 30
    scale: float = 1.0
    seed: int = 0


class Counting(GlobalMean):
    """The global mean with a config of its own; counts its fits, to see which cells a rerun recomputes."""

    name = "counting"
    config_class = CountingConfig
    fits = 0

    def _fit(self, split, logger):
        type(self).fits += 1
        super()._fit(split, logger)


@dataclasses.dataclass
class OtherConfig:
    dim: int = 8
    lr: float = 0.1
    seed: int = 0


class Other(GlobalMean):
    name = "other"
    config_class = OtherConfig


class Broken(GlobalMean):
    name = "broken"

    def _fit(self, split, logger):
        raise RuntimeError("boom in fit")


class Interrupting(GlobalMean):
    name = "interrupting"

    def _fit(self, split, logger):
        raise KeyboardInterrupt


@pytest.fixture(autouse=True)
def test_models(monkeypatch):
    Counting.fits = 0
    for cls in (Counting, Other, Broken, Interrupting):
        monkeypatch.setitem(MODEL_CLASSES, cls.name, cls)


def _suite(**values) -> dict:
    return {"name": "t", "splits": ["u1"], "seeds": [0], "test_config": True, **values}


def _run(suite, out, data_dir, **kwargs):
    return run_benchmark(suite, out, data_dir=data_dir, progress=False, log=lambda line: None, **kwargs)


def test_results_files_and_a_failure_that_keeps_the_others(ml100k_fixture_dir, tmp_path):
    out = tmp_path / "run"
    suite = _suite(models=["counting", "broken", "global-mean"], seeds=[0, 1])
    run = _run(suite, out, ml100k_fixture_dir, projector=False)

    status = {(c["label"], c["seed"]): c["status"] for c in run.cells}
    assert status[("counting", 0)] == status[("global-mean", 1)] == OK
    assert status[("broken", 0)] == "failed: RuntimeError: boom in fit"

    results = json.loads((out / "results.json").read_text())
    assert set(results) >= {"suite", "run", "environment", "memory_method", "summary", "cells"}
    assert results["run"]["cells_total"] == results["run"]["cells_finished"] == 6
    assert results["run"]["cells_failed"] == 2 and results["run"]["complete"]
    assert {"python", "torch", "torch_geometric", "gnnrec", "platform", "cpu_count"} <= set(results["environment"])
    for cell in results["cells"]:
        assert CELL_KEYS <= set(cell)
        assert (out / "cells" / f"{cell['id']}.json").is_file()
        if cell["status"] == OK:
            assert {"rmse", "mae", "ndcg", "ndcg@10", "recall@10"} <= set(cell["metrics"])
            assert cell["fit_seconds"] >= 0 and cell["eval_seconds"] > 0 and cell["peak_rss_mb"] > 0
            assert cell["history"] and (out / cell["tensorboard"]).is_dir()
    counting = [c for c in results["cells"] if c["label"] == "counting"]
    assert counting[0]["config"] == {"steps": 30, "scale": 1.0, "seed": 0}

    summary = {row["label"]: row for row in results["summary"]}
    rmse = [c["metrics"]["rmse"] for c in counting]
    assert summary["counting"]["metrics"]["rmse"]["mean"] == pytest.approx(sum(rmse) / 2)
    assert summary["broken"]["ok"] == 0 and len(summary["broken"]["failed"]) == 2

    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert len(rows) == 6 and {"label", "split", "seed", "status", "rmse", "fit_seconds", "config"} <= set(rows[0])

    markdown = (out / "results.md").read_text()
    assert "| counting | 2/2 |" in markdown and "| broken | 0/2 |" in markdown
    assert "## Failed cells" in markdown and "boom in fit" in markdown
    assert "torch_geometric" in markdown and "CPUs" in markdown and "peak memory" in markdown
    for name in ("metrics.png", "learning_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_reuses_finished_cells_and_recomputes_changed_or_failed_ones(ml100k_fixture_dir, tmp_path):
    out = tmp_path / "run"
    suite = _suite(models=["counting", "broken"], seeds=[0, 1], refit=False)
    _run(suite, out, ml100k_fixture_dir, plots=False, tensorboard=False)
    assert Counting.fits == 2

    run = _run(suite, out, ml100k_fixture_dir, plots=False, tensorboard=False)
    assert Counting.fits == 2  # both finished cells reused
    assert run.results["run"]["cells_reused"] == 2
    assert run.results["run"]["cells_failed"] == 2  # failed cells were tried again

    changed = _suite(models=["counting"], seeds=[0, 1], overrides={"counting": {"steps": 3}}, refit=False)
    run = _run(changed, out, ml100k_fixture_dir, plots=False, tensorboard=False)
    assert Counting.fits == 4 and run.results["run"]["cells_reused"] == 0
    assert all(c["config"]["steps"] == 3 for c in run.cells)


def test_interrupted_run_keeps_finished_cells(ml100k_fixture_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _run(_suite(models=["counting", "interrupting"], refit=False), out, ml100k_fixture_dir, plots=False)
    assert (out / "cells" / "counting__u1__seed0.json").is_file()
    partial = json.loads((out / "results.json").read_text())
    assert partial["run"]["cells_finished"] == 1 and not partial["run"]["complete"]

    run = _run(_suite(models=["counting"], refit=False), out, ml100k_fixture_dir, plots=False)
    assert Counting.fits == 1 and run.results["run"]["cells_reused"] == 1


def test_build_cells_resolves_overrides():
    suite = Suite.from_dict(
        _suite(
            models=[
                "global-mean",
                "counting",
                "other",
                {"label": "other[small]", "model": "other", "overrides": {"dim": 2}},
            ],
            seeds=[0, 5],
            overrides={"*": {"steps": 3, "dim": 4}, "counting": {"steps": 4}, "other[small]": {"lr": 0.5}},
        )
    )
    cells = build_cells(suite)
    assert len(cells) == 8 and len({c.id for c in cells}) == 8
    by_id = {c.id: c.overrides for c in cells}
    assert by_id["global-mean__u1__seed0"] == {}
    assert by_id["counting__u1__seed0"] == {"steps": 4, "seed": 0}
    assert by_id["other__u1__seed5"] == {"dim": 4, "seed": 5}
    assert by_id["other-small__u1__seed0"] == {"dim": 4, "lr": 0.5, "seed": 0}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"*": {"no_such_key": 1}}, "no model of suite 't' has config key"),
        ({"nope": {"dim": 1}}, "override target 'nope' is not a model"),
        ({"counting": {"steps": "many"}}, "expects int"),
        ({"counting": {"bogus": 1}}, "unknown config key"),
    ],
)
def test_bad_overrides_are_refused_before_running(overrides, message):
    suite = Suite.from_dict(_suite(models=["global-mean", "counting"], overrides=overrides))
    with pytest.raises(ValueError, match=message):
        build_cells(suite)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bogus": 1}, "unknown suite key"),
        ({"models": ["counting", {"model": "counting"}]}, "duplicate model label"),
        ({"models": [{"label": "x"}]}, "'model' key"),
        ({"seeds": []}, "non-empty list"),
        ({"models": ["no-such-model"]}, "unknown model 'no-such-model'"),
    ],
)
def test_bad_suites_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        build_cells(Suite.from_dict(_suite(**values)))


def test_select_models_and_targeted_overrides():
    suite = load_suite("paper")
    assert [e.label for e in suite.select_models(["glocal-k"]).entries()] == ["glocal-k", "glocal-k[paper]"]
    assert [e.label for e in suite.select_models(["glocal-k[paper]"]).entries()] == ["glocal-k[paper]"]
    quick = load_suite("quick").select_models(["mf"])
    assert "glocal-k" not in quick.overrides and [e.label for e in quick.entries()] == ["mf"]
    build_cells(quick)
    with pytest.raises(ValueError, match="has no model 'nope'"):
        suite.select_models(["nope"])
    assert parse_targeted_overrides({"epochs": "3", "gnn.lr": "0.1", "glocal-k[paper].lambda_2": "1"}) == {
        "*": {"epochs": "3"},
        "gnn": {"lr": "0.1"},
        "glocal-k[paper]": {"lambda_2": "1"},
    }


def test_shipped_suites_are_valid():
    assert {"quick", "paper", "cv5", "douban"} <= set(available_suites())
    for name in available_suites():
        build_cells(load_suite(name))
    quick = load_suite("quick")
    assert [e.model for e in quick.entries()] == available_models() and quick.splits == ["u1"]
    assert {"global-mean", "bias", "mf", "glocal-k", "gnn"} <= set(available_models())
    assert len(quick.seeds) == 1
    paper = load_suite("paper")
    assert len(paper.seeds) == 3
    assert {e.label: e.overrides for e in paper.entries()}["glocal-k[paper]"] == {"protocol": "paper"}
    assert load_suite("cv5").splits == ["u1", "u2", "u3", "u4", "u5"]
    douban = load_suite("douban")
    assert (douban.dataset, douban.splits, douban.seeds, douban.models) == ("douban", ["given"], [0, 1, 2], None)


def test_unknown_suite_lists_the_available_ones():
    with pytest.raises(ValueError, match="available suites: .*quick"):
        load_suite("nope")


def test_user_suites_by_path_and_directory(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_suite(name="mine")), encoding="utf-8")
    assert load_suite(str(path)).name == "mine" and load_suite(path).name == "mine"
    assert available_suites(tmp_path) == ["mine"] and load_suite("mine", tmp_path).name == "mine"
    with pytest.raises(ValueError, match="does not exist"):
        load_suite(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        load_suite(tmp_path / "broken.json")


def test_format_mean_std():
    assert format_mean_std([1.0, 2.0]) == "1.5000 ± 0.7071"
    assert format_mean_std([0.25], digits=2) == "0.25"  # one value: no spread to report
    assert format_mean_std([]) == "–"
    assert format_mean_std(mean_std([1.0, 3.0]), digits=1) == "2.0 ± 1.4"


def test_summary_statistics_and_table():
    def cell(rmse, status=OK):
        return {
            "label": "m",
            "model": "m",
            "split": "u1",
            "seed": 0,
            "status": status,
            "metrics": {"rmse": rmse} if status == OK else {},
            "fit_seconds": 1.0,
            "eval_seconds": 0.5,
            "peak_rss_mb": 100.0,
            "config": {},
        }

    records = [cell(1.0), cell(2.0), cell(None, "failed: X")]
    summary = summarize(records, ["m"])
    assert summary[0]["metrics"]["rmse"]["mean"] == 1.5
    assert summary[0]["metrics"]["rmse"]["std"] == pytest.approx(math.sqrt(0.5))
    assert (summary[0]["ok"], summary[0]["cells"]) == (2, 3)
    table = summary_table({"summary": summary, "cells": records})
    assert "| m | 2/3 | 1.5000 ± 0.7071 |" in table and "rmse ↓" in table


def test_peak_memory_is_measured():
    memory = PeakMemory()
    memory.reset()
    assert memory.peak_rss_mb() > 10 and "RSS" in memory.method


def test_rounded_records_keep_seven_significant_digits():
    history = [{"epoch": 3, "val_rmse": 0.8923750594457931, "lr": 0.01, "loss": float("nan"), "note": None}]
    assert rounded_record(history) == [{"epoch": 3, "val_rmse": 0.8923751, "lr": 0.01, "loss": None, "note": None}]
