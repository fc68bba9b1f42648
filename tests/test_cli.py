"""`gnnrec` subcommands, run in-process on the tiny fixture dataset."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from gnnrec.cli import main
from gnnrec.models import available_models
from gnnrec.models.baselines import GlobalMean
from gnnrec.models.registry import MODEL_CLASSES

FAST_GNN = ["--set", "max_epochs=3", "--set", "embedding_dim=8", "--set", "hidden_dim=8", "--set", "output_dim=8"]


@dataclasses.dataclass
class StepsConfig:
    steps: int = 30


class Steps(GlobalMean):
    """The global mean with a config, so that --set has a key to set whatever the real models' fields are."""

    name = "steps"
    config_class = StepsConfig


@pytest.fixture
def steps_model(monkeypatch):
    monkeypatch.setitem(MODEL_CLASSES, Steps.name, Steps)


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def trained_mf(ml100k_fixture_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "mf"
    assert main(["train", "mf", "--data-dir", str(ml100k_fixture_dir), "--test-config", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    "command", [[], ["data"], ["train"], ["evaluate"], ["benchmark"], ["recommend"], ["export"], ["serve"]]
)
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: gnnrec" in capsys.readouterr().out


def test_data_describes_the_split(ml100k_fixture_dir, capsys):
    code, out, _ = _run(capsys, "data", "--data-dir", ml100k_fixture_dir)
    assert code == 0 and "40 users, 60 movies" in out


def test_train_writes_checkpoint_config_metrics_and_logs(trained_mf, capsys):
    assert {p.name for p in trained_mf.iterdir()} == {"model.safetensors", "config.json", "metrics.json", "tensorboard"}
    config = json.loads((trained_mf / "config.json").read_text())
    assert config["model"] == "mf" and config["config"]["dim"] == 8 and config["split_name"] == "ml-100k/u1"
    metrics = json.loads((trained_mf / "metrics.json").read_text())
    assert list(metrics) == ["val"] and metrics["val"]["part"] == "val"  # test untouched without --evaluate-test
    assert any((trained_mf / "tensorboard").glob("events.out.tfevents.*"))


def test_train_with_seed_overrides_and_test_evaluation(steps_model, ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "steps"
    code, stdout, _ = _run(
        capsys, "train", "steps", "--data-dir", ml100k_fixture_dir, "--set", "steps=2", "--out", out, "--evaluate-test"
    )
    assert code == 0
    assert "steps ml-100k/u1 test" in stdout and f"tensorboard --logdir {out / 'tensorboard'}" in stdout
    assert set(json.loads((out / "metrics.json").read_text())) == {"val", "test"}
    assert json.loads((out / "config.json").read_text())["config"] == {"steps": 2}

    code, _, _ = _run(capsys, "train", "mf", "--data-dir", ml100k_fixture_dir, "--test-config", "--seed", "7",
                      "--out", tmp_path / "mf")  # fmt: skip
    assert code == 0 and json.loads((tmp_path / "mf" / "config.json").read_text())["config"]["seed"] == 7


def test_train_prints_a_ranking_only_models_table(ml100k_fixture_dir, tmp_path, capsys):
    code, stdout, _ = _run(capsys, "train", "popularity", "--data-dir", ml100k_fixture_dir, "--out", tmp_path / "p",
                           "--evaluate-test")  # fmt: skip
    assert code == 0
    rmse = next(line for line in stdout.splitlines() if line.startswith("rmse"))
    assert rmse.split()[1:] == ["–", "–"]  # no ratings predicted: not defined, for val and test
    assert any(line.startswith("ndcg@10") and "–" not in line for line in stdout.splitlines())


def test_train_writes_under_gnnrec_home_by_default(ml100k_fixture_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GNNREC_HOME", str(tmp_path / "home"))
    code, stdout, _ = _run(capsys, "train", "global-mean", "--data-dir", ml100k_fixture_dir)
    assert code == 0
    (run,) = (tmp_path / "home" / "runs").iterdir()
    assert run.name.startswith("train-global-mean-ml-100k-u1-") and (run / "model.safetensors").is_file()


def test_evaluate_uses_the_training_split_and_refuses_others(trained_mf, ml100k_fixture_dir, capsys):
    code, out, _ = _run(capsys, "evaluate", trained_mf, "--data-dir", ml100k_fixture_dir, "--part", "both")
    assert code == 0 and "mf ml-100k/u1 val" in out and "mf ml-100k/u1 test" in out and "rmse" in out

    code, out, _ = _run(
        capsys, "evaluate", trained_mf / "model.safetensors", "--data-dir", ml100k_fixture_dir, "--json"
    )
    assert code == 0 and json.loads(out)[0]["metrics"]["rmse"] > 0

    code, _, err = _run(capsys, "evaluate", trained_mf, "--data-dir", ml100k_fixture_dir, "--split", "u2")
    assert code == 2 and "was trained on ml-100k/u1" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "no-such-model"], "unknown model 'no-such-model'; available: "),
        (["train", "bias", "--set", "sweeps"], "--set expects key=value"),
        (["train", "bias", "--set", "bogus=1"], "unknown config key(s) bogus"),
        (["train", "mf", "--test-config", "--seed", "1", "--set", "seed=2"], "give the seed once"),
        (["train", "bias", "--split", "u9"], "unknown split 'u9'"),
        (["evaluate", "missing/model.safetensors"], "no checkpoint at missing/model.safetensors"),
        (["benchmark", "no-such-suite"], "unknown suite 'no-such-suite'; available suites: "),
        (["benchmark", "quick", "--models", "nope"], "suite 'quick' has no model 'nope'"),
        (
            ["benchmark", "quick", "--models", "global-mean", "--set", "epochs=1"],
            "no model of suite 'quick' has config",
        ),
        (["benchmark"], "name a suite"),
        (["recommend"], "give --user RAW_ID"),
        (["recommend", "--user", "1", "--age", "3"], "give either --user"),
        (["recommend", "--age", "30", "--gender", "F"], "a new person needs --occupation"),
        (["recommend", "--user", "999"], "unknown user id 999; valid user ids lie in 1..40 (40 users)"),
        (["recommend", "--age", "30", "--gender", "F", "--occupation", "pilot"], "valid occupations: administrator"),
        (["recommend", "--age", "30", "--gender", "F", "--occupation", "artist", "--liked", "999"], "unknown movie id"),
        (["recommend", "--age", "30", "--gender", "X", "--occupation", "artist"], "gender must be one of M, F"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(argv, message, ml100k_fixture_dir, capsys):
    needs_data = argv[0] in ("train", "recommend") or argv[:2] == ["benchmark", "quick"]
    code, _, err = _run(capsys, *argv, *(["--data-dir", ml100k_fixture_dir] if needs_data else []))
    assert code == 2
    assert message in err and err.startswith(f"gnnrec {argv[0]}: error: ") and err.count("\n") == 1


def test_benchmark_runs_resumes_and_prints_the_table(steps_model, ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["benchmark", "quick", "--models", "global-mean,steps", "--data-dir", ml100k_fixture_dir, "--out", out]
    code, stdout, _ = _run(capsys, *argv, "--set", "steps.steps=2", "--no-projector")
    assert code == 0
    assert "| global-mean | 1/1 |" in stdout and "| steps | 1/1 |" in stdout
    assert f"tensorboard --logdir {out / 'tensorboard'}" in stdout
    results = json.loads((out / "results.json").read_text())
    assert [c["label"] for c in results["cells"]] == ["global-mean", "steps"]
    assert results["cells"][1]["config"] == {"steps": 2}
    assert results["run"]["command"].startswith("gnnrec benchmark quick --models global-mean,steps")

    code, stdout, _ = _run(capsys, "benchmark", "--resume", out, "--data-dir", ml100k_fixture_dir)
    assert code == 0 and "| steps | 1/1 |" in stdout
    assert json.loads((out / "results.json").read_text())["run"]["cells_reused"] == 2

    code, _, err = _run(capsys, "benchmark", "--resume", tmp_path / "nothing")
    assert code == 2 and "not a benchmark run directory" in err


def test_benchmark_every_registered_model_with_test_configs(ml100k_fixture_dir, tmp_path, capsys):
    code, stdout, err = _run(
        capsys, "benchmark", "quick", "--test-config", "--data-dir", ml100k_fixture_dir, "--out", tmp_path / "b",
        "--set", "max_epochs=3", "--set", "glocal-k.finetune_epochs=2", "--no-plots",
    )  # fmt: skip
    assert code == 0, err
    for name in available_models():
        assert f"| {name} | 1/1 |" in stdout


def test_recommend_known_user_from_checkpoint(trained_mf, ml100k_fixture_dir, capsys):
    code, out, _ = _run(capsys, "recommend", "--checkpoint", trained_mf, "--user", 3, "-k", 4,
                        "--data-dir", ml100k_fixture_dir)  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("top 4 for user 3 (age ") and "by mf" in lines[0]
    assert len(lines) == 2 + 4 and "title" in lines[1] and "Movie" in out

    code, out, _ = _run(capsys, "recommend", "--checkpoint", trained_mf, "--user", 3, "--json",
                        "--data-dir", ml100k_fixture_dir)  # fmt: skip
    rows = json.loads(out)["recommendations"]
    assert code == 0 and len(rows) == 10
    assert set(rows[0]) == {"rank", "movie_id", "title", "year", "genres", "predicted_rating", "reason"}
    assert rows[0]["reason"] is None  # a known user's list comes from the model, not from films they named


def test_recommend_shows_a_films_title_year_not_its_release_dates(ml100k_fixture_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(ml100k_fixture_dir, data)
    items = re.sub(r"\|01-Jan-\d{4}\|", "|14-Mar-2000|", (data / "u.item").read_bytes().decode("latin-1"))
    (data / "u.item").write_bytes(items.encode("latin-1"))  # every film re-released in 2000
    out = tmp_path / "bias"
    assert main(["train", "bias", "--data-dir", str(data), "--out", str(out)]) == 0
    capsys.readouterr()
    code, text, _ = _run(capsys, "recommend", "--checkpoint", out, "--user", 3, "--json", "--data-dir", data)
    rows = json.loads(text)["recommendations"]
    assert code == 0 and rows
    titled = [row for row in rows if row["title"] != "unknown"]  # the fixture's last film has no title or date
    assert titled
    for row in titled:  # the fixture's "Movie N (1950 + N % 48)"
        assert (row["title"], row["year"]) == (f"Movie {row['movie_id']}", 1950 + row["movie_id"] % 48)


def test_recommend_new_person_needs_a_model_that_folds_in_users(ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "mean"
    assert main(["train", "global-mean", "--data-dir", str(ml100k_fixture_dir), "--out", str(out)]) == 0
    code, _, err = _run(capsys, "recommend", "--checkpoint", out, "--age", 30, "--gender", "F",
                        "--occupation", "artist", "--data-dir", ml100k_fixture_dir)  # fmt: skip
    assert code == 2 and "'global-mean' checkpoint cannot place a new person" in err


def test_recommend_refuses_a_list_of_ties_for_a_new_person(ml100k_fixture_dir, tmp_path, capsys):
    """EASE reads neither a profile nor disliked films: every film scores 0, and a list would be the catalogue's
    order; with a liked film it ranks."""
    out = tmp_path / "ease"
    assert main(["train", "ease", "--data-dir", str(ml100k_fixture_dir), "--test-config", "--out", str(out)]) == 0
    capsys.readouterr()
    code, _, err = _run(capsys, "recommend", "--checkpoint", out, "--age", 30, "--gender", "F",
                        "--occupation", "artist", "--data-dir", ml100k_fixture_dir)  # fmt: skip
    assert code == 2 and "'ease' scores every film alike for this person" in err and "--liked" in err
    code, stdout, _ = _run(capsys, "recommend", "--checkpoint", out, "--liked", "1", "2", "-k", "3",
                           "--data-dir", ml100k_fixture_dir)  # fmt: skip
    assert code == 0 and "by ease" in stdout


def test_recommend_takes_titles_and_gives_reasons_from_the_support_only(trained_mf, ml100k_fixture_dir, capsys):
    argv = ["recommend", "--checkpoint", trained_mf, "--data-dir", ml100k_fixture_dir, "-k", 6, "--liked",
            "MOVIE 3", "movie 5 (1955):4", "7", "--disliked", "Movie 9:2"]  # fmt: skip
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["heading"].startswith("top 6 for a new person (4 rated movie(s)) by mf")
    support = {"Movie 3 (1953)", "Movie 5 (1955)", "Movie 7 (1957)", "Movie 9 (1959)"}
    rows = body["recommendations"]
    assert len(rows) == 6 and not {r["movie_id"] for r in rows} & {3, 5, 7, 9}
    for row in rows:
        named = re.findall(r"Movie \d+ \(\d{4}\)", row["reason"])
        assert row["reason"].startswith("because you ") and 1 <= len(named) <= 2 and set(named) <= support
    code, text, _ = _run(capsys, *argv)
    assert code == 0 and len(text.splitlines()) == 2 + 2 * 6
    assert text.splitlines()[3].strip() == rows[0]["reason"]


@pytest.mark.parametrize(
    ("liked", "message"),
    [
        (["Movie 3 (1999)"], "--liked 'Movie 3 (1999)': no film titled 'Movie 3 (1999)'; closest: Movie 3 (1953)"),
        (
            ["Movie 3", "movie 3 (1953):4"],
            "--liked lists movie movie 3 (1953) twice ('Movie 3' and 'movie 3 (1953):4')",
        ),  # noqa: E501
        (["Movie 3:4.5"], "--liked 'Movie 3:4.5': rating must be one of 1, 2, 3, 4, 5"),
    ],
)
def test_recommend_refuses_titles_it_cannot_place(liked, message, trained_mf, ml100k_fixture_dir, capsys):
    code, _, err = _run(capsys, "recommend", "--checkpoint", trained_mf, "--data-dir", ml100k_fixture_dir,
                        "--liked", *liked)  # fmt: skip
    assert code == 2 and message in err


def test_an_ambiguous_title_lists_the_candidates_with_ids_and_years(ml100k_fixture_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(ml100k_fixture_dir, data)
    items = (data / "u.item").read_bytes().decode("latin-1").replace("|Movie 4 (1954)|", "|Movie 3 (1990)|")
    (data / "u.item").write_bytes(items.encode("latin-1"))
    code, _, err = _run(capsys, "recommend", "--data-dir", data, "--liked", "movie 3")
    assert code == 2 and "--liked 'movie 3': 'movie 3' matches 2 films: " in err and "give the year" in err
    assert "Movie 3 (1953) (id 3)" in err and "Movie 3 (1990) (id 4)" in err
    assert not (Path(os.environ["GNNREC_HOME"]) / "models").exists()  # refused before any training


def test_a_film_both_liked_and_disliked_is_refused(trained_mf, ml100k_fixture_dir, capsys):
    code, _, err = _run(capsys, "recommend", "--checkpoint", trained_mf, "--data-dir", ml100k_fixture_dir,
                        "--liked", "Movie 3", "--disliked", "3")  # fmt: skip
    assert code == 2 and "--disliked '3': Movie 3 (1953) is already listed in --liked ('Movie 3')" in err


@pytest.mark.skipif("gnn" not in available_models(), reason="the gnn model is not registered")
def test_recommend_new_person_trains_and_caches_the_gnn(ml100k_fixture_dir, capsys):
    argv = ["recommend", "--age", 30, "--gender", "F", "--occupation", "artist", "--liked", "1", "2:3",
            "-k", 5, "--data-dir", ml100k_fixture_dir, *FAST_GNN]  # fmt: skip
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    assert "no --checkpoint: training gnn" in err
    assert out.splitlines()[0].startswith(
        "top 5 for a new person (age 30, gender F, occupation artist, 2 rated movie(s)) by gnn"
    )
    assert len(out.splitlines()) == 2 + 2 * 5  # a film, then its reason
    for rated in ("Movie 1 ", "Movie 2 "):  # rated movies are never recommended
        assert f"  {rated}" not in out
    for reason in out.splitlines()[3::2]:
        assert set(re.findall(r"Movie \d+ \(\d{4}\)", reason)) <= {"Movie 1 (1951)", "Movie 2 (1952)"}

    code, again, err = _run(capsys, *argv)
    assert code == 0 and "using the cached gnn model" in err and again == out


def test_train_evaluate_recommend_do_not_import_the_benchmark_runner(ml100k_fixture_dir, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "mean"
    script = (
        "import sys\n"
        "from gnnrec.cli import main\n"
        f"data = ['--data-dir', {str(ml100k_fixture_dir)!r}]\n"
        f"assert main(['train', 'global-mean', *data, '--out', {str(out)!r}]) == 0\n"
        f"assert main(['evaluate', {str(out)!r}, *data]) == 0\n"
        f"assert main(['recommend', '--checkpoint', {str(out)!r}, '--user', '1', '-k', '3', *data]) == 0\n"
        "loaded = sorted(name for name in sys.modules if name.startswith('gnnrec.benchmark'))\n"
        "assert not loaded, loaded\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "GNNREC_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "top 3 for user 1" in done.stdout


def test_a_checkpoint_without_its_dataset_needs_dataset(ml100k_fixture_dir, tmp_path, capsys):
    from gnnrec.models.checkpoint import read_checkpoint, write_checkpoint

    out = tmp_path / "mean"
    assert _run(capsys, "train", "global-mean", "--data-dir", ml100k_fixture_dir, "--out", out)[0] == 0
    payload = read_checkpoint(out / "model.safetensors")
    payload["split"]["dataset"] = ""  # as written before SplitInfo recorded the dataset
    write_checkpoint(out / "model.safetensors", payload)
    code, _, err = _run(capsys, "evaluate", out, "--data-dir", ml100k_fixture_dir)
    assert code == 2 and "give --dataset" in err
    code, stdout, _ = _run(capsys, "evaluate", out, "--data-dir", ml100k_fixture_dir, "--dataset", "ml-100k")
    assert code == 0 and "rmse" in stdout


def test_benchmark_coldstart_runs_through_the_main_runner(ml100k_fixture_dir, tmp_path, capsys):
    out = tmp_path / "cold"
    argv = ["benchmark", "coldstart", "--models", "bias,movie-mean", "--seeds", "0", "--data-dir", ml100k_fixture_dir]
    code, stdout, err = _run(capsys, *argv, "--out", out, "--test-config")
    assert code == 0, err
    assert "<!-- table:users-rmse -->" in stdout and "| movie-mean |" in stdout and "tensorboard --logdir" not in stdout
    results = json.loads((out / "results.json").read_text())
    assert {c["label"] for c in results["cells"]} == {"bias", "movie-mean"} and results["coldstart"]["kinds"]
    code, _, err = _run(capsys, "benchmark", "coldstart", "--models", "nope")
    assert code == 2 and "suite 'coldstart' has no model 'nope'" in err
