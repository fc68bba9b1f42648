"""Cells fitted in worker processes (``jobs`` > 1) give the results of the one-process loop."""

from __future__ import annotations

import json

import pytest

from gnnrec.benchmark import load_suite, run_benchmark
from gnnrec.benchmark.runner import check_jobs, cost_rank
from gnnrec.benchmark.suite import Suite, build_cells
from gnnrec.cli.benchmark import parse_jobs

SUITE = {
    "name": "jobs",
    "splits": ["u1"],
    "seeds": [0, 1],
    "test_config": True,
    "models": ["bias", "mf", "gnn", "popularity"],
    "overrides": {"gnn": {"max_epochs": 3}, "mf": {"max_epochs": 3}},
}


def _run(out, data_dir, **kwargs):
    return run_benchmark(SUITE, out, data_dir=data_dir, progress=False, log=lambda line: None, plots=False,
                         tensorboard=False, **kwargs)  # fmt: skip


def test_cells_in_two_worker_processes_equal_the_one_process_run(ml100k_fixture_dir, tmp_path):
    serial = _run(tmp_path / "serial", ml100k_fixture_dir, threads=1)
    parallel = _run(tmp_path / "parallel", ml100k_fixture_dir, threads=2, jobs=2)
    assert parallel.results["run"]["threads"] == {"requested": 2, "torch_threads": 1, "jobs": 2}
    assert parallel.results["run"]["cells_finished"] == 8 and parallel.results["run"]["cells_failed"] == 0
    by_id = {cell["id"]: cell for cell in serial.cells}
    assert [cell["id"] for cell in parallel.cells] == list(by_id)  # the suite's order, whatever finished first
    for cell in parallel.cells:
        assert cell["metrics"] == by_id[cell["id"]]["metrics"], cell["id"]
        stored = json.loads((tmp_path / "parallel" / "cells" / f"{cell['id']}.json").read_text())
        assert stored["metrics"] == cell["metrics"]

    again = _run(tmp_path / "parallel", ml100k_fixture_dir, threads=2, jobs=2)
    assert again.results["run"]["cells_reused"] == 8  # a rerun reuses what the workers stored


def test_costly_cells_are_scheduled_first():
    cells = build_cells(Suite.from_dict({**SUITE, "seeds": [0]}))
    ranked = sorted(cells, key=lambda cell: -cost_rank(cell))
    assert ranked[0].entry.model == "gnn" and ranked[-1].entry.model in ("bias", "popularity")


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_jobs_value_is_refused(value):
    with pytest.raises(ValueError, match="--jobs must be a positive integer or 'auto'"):
        parse_jobs(value)


def test_auto_jobs_is_the_available_cores():
    assert parse_jobs("auto") >= 1 and parse_jobs("3") == 3


def test_cold_start_suites_refuse_worker_processes():
    suite = load_suite("coldstart")
    with pytest.raises(ValueError, match="cold-start suite.*use --jobs 1"):
        check_jobs(suite, 2)
    check_jobs(suite, 1)


def test_the_epoch_budget_table_says_how_each_fit_ended():
    from gnnrec.benchmark.report import epoch_budget_table

    def cell(label, budget, epochs, warnings=()):
        history = [{"epoch": e} for e in range(1, epochs + 1)]
        return {"label": label, "split": "u1", "seed": 0, "config": {"max_epochs": budget}, "history": history,
                "fit_config": {"max_epochs": epochs + 1}, "warnings": list(warnings)}  # fmt: skip

    no_budget = {"label": "d", "split": "u1", "seed": 0, "config": {}, "history": [{"epoch": 1}]}
    results = {"cells": [cell("a", 10, 4), cell("b", 10, 10), cell("c", 10, 10, ["still improving"]), no_budget]}
    rows = epoch_budget_table(results).splitlines()[2:]
    assert rows == ["| a | u1 | 0 | 10 | 4 | early stop |", "| b | u1 | 0 | 10 | 10 | budget |",
                    "| c | u1 | 0 | 10 | 10 | budget, still improving |"]  # fmt: skip
    assert epoch_budget_table({"cells": [no_budget]}) == ""
