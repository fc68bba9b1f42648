"""Suites take dataset options (a dataset, its settings, the validation share, the data seed), so that a
validation screen on any dataset is a suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gnnrec.benchmark import Suite, load_suite
from gnnrec.cli import main
from gnnrec.models import available_models
from gnnrec.testing import write_monti_fixture

TINY_SYNTHETIC = {"num_users": 40, "num_movies": 30, "num_ratings": 500}


def suite_dict(**changes) -> dict:
    return {"name": "tiny", "splits": ["random"], "seeds": [0], "models": ["bias"], "dataset": "synthetic", **changes}


def test_dataset_settings_reach_the_split() -> None:
    suite = Suite.from_dict(suite_dict(dataset_settings=TINY_SYNTHETIC))
    split = suite.load_split("random", log=False)
    assert (split.num_users, split.num_movies) == (40, 30)
    assert len(split.train) + len(split.val) + len(split.test) == 500
    assert Suite.from_dict(suite.to_dict()) == suite  # survives suite.json


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_userz": 3}, "dataset 'synthetic' has no setting 'num_userz'; it takes: num_users"),
        ({"val_fraction": 0.1}, "may not hold 'val_fraction'; set it with 'val_fraction'"),
        ({"seed": 1}, "may not hold 'seed'; set it with 'data_seed'"),
        ({"source_dir": "/data"}, "may not hold 'source_dir'; set it with '--data-dir'"),
        ([1, 2], "must be an object of settings"),
    ],
)
def test_bad_dataset_settings_are_refused_naming_them(settings, message) -> None:
    with pytest.raises(ValueError, match="dataset_settings") as error:
        Suite.from_dict(suite_dict(dataset_settings=settings))
    assert message in str(error.value)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_benchmark_takes_dataset_options_on_the_command_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        capsys, "benchmark", "quick", "--models", "bias", "--dataset", "synthetic", "--splits", "random",
        "--dataset-setting", "num_users=40", "--dataset-setting", "num_movies=30", "--dataset-setting",
        "num_ratings=500", "--val-fraction", "0.1", "--data-seed", "3", "--out", out, "--no-tensorboard",
        "--no-plots", "--no-projector", "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    stored = json.loads((out / "suite.json").read_text())
    assert stored["dataset"] == "synthetic" and stored["dataset_settings"] == TINY_SYNTHETIC
    assert (stored["val_fraction"], stored["data_seed"]) == (0.1, 3)
    assert "dataset synthetic (num_users=40, num_movies=30, num_ratings=500)" in (out / "results.md").read_text()
    assert "| bias | 1/1 |" in stdout


def test_taste_exposure_is_a_dataset_setting_on_the_command_line(tmp_path: Path, capsys) -> None:
    common = ["benchmark", "quick", "--models", "bias", "--dataset", "synthetic", "--splits", "random",
              "--dataset-setting", "num_users=40", "--dataset-setting", "num_movies=30", "--dataset-setting",
              "num_ratings=500", "--no-tensorboard", "--no-plots", "--no-projector", "--threads", "1"]  # fmt: skip
    code, _, err = run_cli(capsys, *common, "--dataset-setting", "taste_exposure=0.5", "--out", tmp_path / "run")
    assert code == 0, err
    stored = json.loads((tmp_path / "run" / "suite.json").read_text())
    assert stored["dataset_settings"] == {**TINY_SYNTHETIC, "taste_exposure": 0.5}
    code, _, err = run_cli(capsys, *common, "--dataset-setting", "taste_exposure=-1", "--out", tmp_path / "bad")
    assert code == 2 and "taste_exposure must be a finite number >= 0, got -1" in err and err.count("\n") == 1, err


def test_a_bad_dataset_setting_on_the_command_line_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(
        capsys, "benchmark", "quick", "--models", "bias", "--dataset", "synthetic", "--splits", "random",
        "--dataset-setting", "num_userz=4", "--out", tmp_path / "run",
    )  # fmt: skip
    assert code == 2 and "has no setting 'num_userz'" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_the_no_feature_screen_is_a_suite(ml100k_fixture_dir: Path, tmp_path: Path, capsys) -> None:
    suite = load_suite("nofeat_screen")
    assert suite.select_on == "validation" and suite.overrides == {"gnn": {"use_features": False}}
    chosen = load_suite("nofeat").entries()[0].overrides
    screened = [entry.overrides | {"use_features": False} for entry in suite.entries()]
    assert chosen in screened  # the nofeat suite's config is one of the screened variants
    out = tmp_path / "screen"
    code, _, err = run_cli(
        capsys, "benchmark", "nofeat_screen", "--test-config", "--models", "gnn[nofeat]", "gnn[stats]",
        "--data-dir", ml100k_fixture_dir, "--out", out, "--no-tensorboard", "--no-plots", "--no-projector",
        "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert {cell["label"] for cell in cells} == {"gnn[nofeat]", "gnn[stats]"}
    assert all(cell["config"]["use_features"] is False for cell in cells)
    assert not any(cell["metrics"] for cell in cells)  # a screen: no test rating scored
    assert all(cell["selection"]["metrics"]["rmse"] > 0 for cell in cells)
    text = (out / "results.md").read_text()
    assert "No test rating was scored" in text and "## Rating metrics (test)" not in text
    assert "| gnn[nofeat] | 1/1 |" in text.split("<!-- table:validation -->")[1]


def test_the_warm_accuracy_check_of_cold_start_training_is_a_screen_suite(ml100k_fixture_dir, tmp_path, capsys) -> None:
    suite = load_suite("coldstart_warm")
    assert (suite.select_on, suite.test_chosen) == ("validation", False)
    out = tmp_path / "warm"
    code, _, err = run_cli(
        capsys, "benchmark", "coldstart_warm", "--test-config", "--seeds", "0", "--data-dir", ml100k_fixture_dir,
        "--out", out, "--no-tensorboard", "--no-plots", "--no-projector", "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["selection"]["chosen"] in {"gnn[induction 0]", "gnn[induction 0.3/0.1]"}
    assert [cell["config"]["induction_users"] for cell in results["cells"]] == [0.0, 0.3]
    assert not any(cell["metrics"] for cell in results["cells"])


def test_the_douban_suite_runs_every_model_on_the_given_split_honestly(tmp_path, capsys) -> None:
    suite = load_suite("douban")
    assert (suite.dataset, suite.splits, suite.seeds) == ("douban", ["given"], [0, 1, 2])
    assert suite.models is None and suite.overrides == {} and suite.refit and suite.select_on is None
    data = write_monti_fixture(tmp_path / "douban", "douban", num_users=30, num_items=40, seed=2)
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        capsys, "benchmark", "douban", "--test-config", "--seeds", "0", "--data-dir", data, "--out", out,
        "--set", "max_epochs=3", "--set", "glocal-k.finetune_epochs=2", "--no-tensorboard", "--no-plots",
        "--no-projector", "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert sorted(cell["model"] for cell in cells) == sorted(available_models())
    assert all(cell["status"] == "ok" and cell["split_name"] == "douban/given" for cell in cells)
    assert all(cell["refit"] and cell["refit_fit"] and cell["test_evaluated"] for cell in cells)
    for name in available_models():
        assert f"| {name} | 1/1 |" in stdout


def test_the_wide_catalogue_suite_has_far_more_movies_than_users(tmp_path, capsys) -> None:
    suite = load_suite("wide")
    settings = suite.dataset_settings
    assert suite.dataset == "synthetic" and settings["num_movies"] >= 15 * settings["num_users"]
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "benchmark", "wide", "--test-config", "--dataset-setting", "num_users=20", "--dataset-setting",
        "num_movies=300", "--dataset-setting", "num_ratings=1200", "--set", "max_epochs=3", "--out", out,
        "--no-tensorboard", "--no-plots", "--no-projector", "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert [cell["status"] for cell in results["cells"]] == ["ok"] * len(suite.entries())
    assert all(cell["split_name"] == "synthetic/random" for cell in results["cells"])


def test_a_test_free_suite_must_be_a_screen() -> None:
    with pytest.raises(ValueError, match="'test_chosen': false is for a screen"):
        Suite.from_dict(suite_dict(test_chosen=False))
