"""Numbers a reviewer can trust: no model reads the test ratings, refit, provenance-keyed reuse, ablations,
README tables and the paired bootstrap as the runner wires them."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

import gnnrec.benchmark.runner as runner
from gnnrec.benchmark import OK, run_benchmark
from gnnrec.benchmark.markers import extract_table, render
from gnnrec.benchmark.significance import leader_comparisons
from gnnrec.data.graph import RATES
from gnnrec.data.split import RatingSplit
from gnnrec.models import available_models, create_model
from gnnrec.models.baselines import GlobalMean
from gnnrec.models.registry import MODEL_CLASSES
from gnnrec.utils import seed_everything


def _poisoned(split: RatingSplit) -> RatingSplit:
    """The same split whose test part (every path to it: edges, link data, graph attributes) holds other ratings
    at other (user, movie) pairs."""
    graph = copy.copy(split.graph)
    store = graph[RATES]
    generator = torch.Generator().manual_seed(123)
    count = store.test_edge_label.numel()
    store.test_edge_label_index = torch.stack(
        [
            torch.randint(split.num_users, (count,), generator=generator),
            torch.randint(split.num_movies, (count,), generator=generator),
        ]
    )
    store.test_edge_label = split.rating_levels[torch.randint(len(split.rating_levels), (count,), generator=generator)]
    poisoned = RatingSplit(graph)
    assert not torch.equal(poisoned.test.rating, split.test.rating) or not torch.equal(
        poisoned.test.user, split.test.user
    )
    return poisoned


def _fit(name: str, split: RatingSplit):
    seed_everything(0)
    model = create_model(name, {"device": "cpu"} if _has(name, "device") else None, test_config=True)
    return model.fit(split)


def _has(name: str, field: str) -> bool:
    from gnnrec.models import get_model_class

    return field in {f.name for f in dataclasses.fields(get_model_class(name).config_class)}


@pytest.mark.parametrize("name", available_models())
def test_fit_never_reads_the_test_ratings(name, tiny_split):
    """Every registered model (default protocol) fits the same whatever the test part holds."""
    torch.set_num_threads(1)
    clean = _fit(name, tiny_split)
    dirty = _fit(name, _poisoned(tiny_split))
    users = torch.arange(tiny_split.num_users)
    assert torch.equal(clean.score_matrix(users, clip=False), dirty.score_matrix(users, clip=False))
    assert json.dumps(clean.history, default=str).count("test_") == 0


def test_merge_validation(tiny_split):
    merged = tiny_split.merge_validation()
    assert len(merged.train) == len(tiny_split.train) + len(tiny_split.val) and len(merged.val) == 0
    assert torch.equal(merged.test.rating, tiny_split.test.rating)
    assert merged.graph[RATES].edge_index.size(1) == len(merged.train)
    assert merged.graph["movie", "rated_by", "user"].edge_index.size(1) == len(merged.train)
    assert merged.fingerprint != tiny_split.fingerprint
    assert tiny_split.graph[RATES].edge_index.size(1) == len(tiny_split.train)  # the original is untouched
    for name in available_models():  # every model refits without validation ratings (fixed schedule)
        selected = _fit(name, tiny_split).refit_overrides()
        overrides = {**selected, **({"device": "cpu"} if _has(name, "device") else {})}
        refit = create_model(name, overrides, test_config=True).fit(merged)
        assert refit.score_matrix(torch.arange(3), clip=False).isfinite().all()


def _run(suite, out, data_dir, **kwargs):
    return run_benchmark(
        suite, out, data_dir=data_dir, progress=False, log=lambda line: None, tensorboard=False, plots=False, **kwargs
    )


def _suite(**values) -> dict:
    return {"name": "t", "splits": ["u1"], "seeds": [0], "test_config": True, **values}


def test_refit_uses_the_selected_epoch_count(ml100k_fixture_dir, tmp_path):
    suite = _suite(models=["mf", {"model": "mf", "label": "mf-no-refit", "refit": False}, "bias"])
    suite["overrides"] = {"mf": {"max_epochs": 12, "patience": 2, "device": "cpu"}}
    run = _run(suite, tmp_path / "run", ml100k_fixture_dir, threads=1)
    cells = {c["label"]: c for c in run.cells}
    assert all(c["status"] == OK for c in cells.values())
    mf = cells["mf"]
    best = mf["selection"]["selected"]["max_epochs"]
    val_scores = [e["val_rmse"] for e in mf["history"]]
    assert best == 1 + int(np.argmin(val_scores))
    assert mf["refit_fit"]["config"]["max_epochs"] == best and len(mf["refit_fit"]["history"]) == best
    assert mf["selection"]["metrics"]["rmse"] > 0 and mf["metrics"]["rmse"] > 0
    assert cells["mf-no-refit"]["refit_fit"] is None and cells["mf-no-refit"]["refit"] is False
    bias = cells["bias"]
    assert set(bias["refit_fit"]["overrides"]) >= {"reg_user", "reg_item"}
    assert bias["refit_fit"]["train_ratings"] > len(bias["history"])  # train ∪ val
    assert run.results["run"]["threads"]["torch_threads"] == 1
    for cell in run.cells:
        assert cell["provenance"]["gnnrec_version"] and cell["code_version_key"]
        assert (tmp_path / "run" / "cells" / cell["per_user"]).is_file()
    assert run.results["provenance"]["command"] is not None


def test_score_without_refit_equals_a_no_refit_cell(ml100k_fixture_dir, tmp_path):
    suite = _suite(models=["mf", {"model": "mf", "label": "mf-no-refit", "refit": False}], score_without_refit=True)
    suite["overrides"] = {"mf": {"max_epochs": 6, "device": "cpu"}}
    run = _run(suite, tmp_path / "run", ml100k_fixture_dir, threads=1)
    cells = {c["label"]: c for c in run.cells}
    assert cells["mf-no-refit"]["metrics_without_refit"] is None  # nothing was refitted
    before = cells["mf"]["metrics_without_refit"]
    assert before["rmse"] == pytest.approx(cells["mf-no-refit"]["metrics"]["rmse"], abs=1e-6)
    assert before["rmse"] != cells["mf"]["metrics"]["rmse"]
    table = extract_table((tmp_path / "run" / "results.md").read_text(), "refit-effect", "results.md")
    row = next(line for line in table.splitlines() if line.startswith("| mf |"))
    delta = cells["mf"]["metrics"]["rmse"] - before["rmse"]
    assert f"{delta:+.4f}" in row and "mf-no-refit" not in table


class Counting(GlobalMean):
    name = "counting-trust"
    fits = 0

    def _fit(self, split, logger):
        type(self).fits += 1
        super()._fit(split, logger)


def test_changed_code_recomputes_cells_unless_stale_reuse_is_asked(ml100k_fixture_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(MODEL_CLASSES, Counting.name, Counting)
    Counting.fits = 0
    suite = _suite(models=[Counting.name], refit=False)
    out = tmp_path / "run"
    version = {"commit": "a" * 40, "commit_short": "aaaaaaa", "dirty": False, "diff_sha256": "0" * 64}
    monkeypatch.setattr(runner, "code_version", lambda: {**version, "gnnrec_version": "x", "command": None})
    _run(suite, out, ml100k_fixture_dir)
    _run(suite, out, ml100k_fixture_dir)
    assert Counting.fits == 1  # same code: reused

    version["diff_sha256"] = "1" * 64  # an uncommitted change
    run = _run(suite, out, ml100k_fixture_dir, reuse_stale=True)
    assert Counting.fits == 1 and run.results["run"]["cells_stale"] == 1 and run.cells[0]["stale"]
    assert f"{Counting.name} †" in run.markdown
    run = _run(suite, out, ml100k_fixture_dir)
    assert Counting.fits == 2 and not run.cells[0]["stale"]  # changed code: recomputed


def test_another_cpu_product_library_recomputes_cells_unless_stale_reuse_is_asked(
    ml100k_fixture_dir, tmp_path, monkeypatch
):
    monkeypatch.setitem(MODEL_CLASSES, Counting.name, Counting)
    Counting.fits = 0
    suite = _suite(models=[Counting.name], refit=False)
    out = tmp_path / "run"
    monkeypatch.setenv("GNNREC_CPU_BLAS", "torch")
    _run(suite, out, ml100k_fixture_dir)
    assert Counting.fits == 1 and run_cell_record(out)["cpu_products"] == "torch"
    monkeypatch.setenv("GNNREC_CPU_BLAS", "numpy")  # other rounding: the cell no longer stands for this run
    run = _run(suite, out, ml100k_fixture_dir, reuse_stale=True)
    assert Counting.fits == 1 and run.cells[0]["stale"]
    _run(suite, out, ml100k_fixture_dir)
    assert Counting.fits == 2 and run_cell_record(out)["cpu_products"] == "numpy (OpenBLAS)"


def run_cell_record(run_dir):
    (path,) = (run_dir / "cells").glob("*.json")
    return json.loads(path.read_text())


def test_select_on_validation_tests_only_the_chosen_variant(ml100k_fixture_dir, tmp_path):
    suite = _suite(
        models=[
            {"model": "bias", "label": "weak", "overrides": {"reg_user": 1000.0, "reg_item": 1000.0}},
            {"model": "bias", "label": "strong", "overrides": {"reg_user": 3.0, "reg_item": 3.0}},
        ],
        select_on="validation",
    )
    run = _run(suite, tmp_path / "run", ml100k_fixture_dir)
    chosen = run.results["selection"]["chosen"]
    means = run.results["selection"]["validation_means"]
    assert chosen == min(means, key=means.get)
    for cell in run.cells:
        assert cell["selection"]["metrics"]["rmse"] > 0
        assert bool(cell["metrics"]) == (cell["label"] == chosen)
    table = extract_table(run.markdown, "validation", "results.md")
    assert "weak" in table and "strong" in table
    assert chosen in extract_table(run.markdown, "rating", "results.md")
    other = ({"weak", "strong"} - {chosen}).pop()
    assert other not in extract_table(run.markdown, "rating", "results.md")


def test_results_tables_round_trip_into_the_readme(ml100k_fixture_dir, tmp_path):
    run = _run(_suite(models=["bias", "popularity"], seeds=[0, 1]), tmp_path / "res", ml100k_fixture_dir)
    rating = extract_table(run.markdown, "rating", "results.md")
    ranking = extract_table(run.markdown, "ranking", "results.md")
    assert "| popularity | 2/2 | — | — | — |" in rating  # ranking-only: no rating metrics
    assert "±" in rating and "[" in rating  # mean ± std [95% CI]
    assert "ndcg@10" in ranking and "rmse" not in ranking
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results: res/results.md#rating -->\nold\n<!-- /results -->\nend\n")
    rendered = render(readme.read_text(), readme)
    assert rating in rendered and "old" not in rendered
    assert render(rendered, readme) == rendered


def _cell(label: str, per_user: str, rmse: float, ndcg: float) -> dict:
    return {
        "label": label,
        "status": OK,
        "split": "u1",
        "per_user": per_user,
        "metrics": {"rmse": rmse, "ndcg@10": ndcg},
    }


def test_paired_bootstrap_of_the_leader_from_stored_per_user_arrays(tmp_path):
    (tmp_path / "cells").mkdir()
    users = np.arange(200)
    count = np.full(200, 5)
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.5, 200)
    arrays = {
        "good": (base * 5, base * 0 + 0.5),
        "bad": (base * 5 + 2.0, base * 0 + 0.3),  # worse for every user
        "twin": (base * 5 + rng.choice([-0.01, 0.01], 200), base * 0 + 0.5),  # good, up to zero-mean noise
    }
    records = []
    for label, (sse, ndcg) in arrays.items():
        np.savez(
            tmp_path / "cells" / f"{label}.npz",
            rating_user=users,
            sse=sse,
            count=count,
            ranked_user=users,
            **{"ndcg@10": ndcg},
        )
        rmse = float(np.sqrt(sse.sum() / count.sum()))
        records.append(_cell(label, f"{label}.npz", rmse, float(ndcg.mean())))
    test = leader_comparisons(tmp_path, records, ["good", "bad", "twin"], "rmse", num_samples=500)
    rows = {row["label"]: row for row in test["rows"]}
    assert test["leader"] in ("good", "twin")
    assert rows["bad"]["significant"] and rows["bad"]["diff"] < 0 and rows["bad"]["p_value"] < 0.05
    other_twin = ({"good", "twin"} - {test["leader"]}).pop()
    assert not rows[other_twin]["significant"]
    ranking = leader_comparisons(tmp_path, records, ["good", "bad", "twin"], "ndcg@10", num_samples=500)
    rows = {row["label"]: row for row in ranking["rows"]}
    assert rows["bad"]["diff"] == pytest.approx(0.2) and rows["bad"]["significant"]
    assert rows[({"good", "twin"} - {ranking["leader"]}).pop()]["p_value"] == 1.0
    again = leader_comparisons(tmp_path, records, ["good", "bad", "twin"], "rmse", num_samples=500)
    assert again == leader_comparisons(tmp_path, records, ["good", "bad", "twin"], "rmse", num_samples=500)


def test_glocal_k_records_its_resolved_config_and_paper_epochs(ml100k_fixture_dir, tmp_path):
    suite = _suite(
        models=["glocal-k", {"model": "glocal-k", "label": "gk-paper", "overrides": {"protocol": "paper"}}],
        overrides={"glocal-k": {"device": "cpu"}},
    )
    run = _run(suite, tmp_path / "run", ml100k_fixture_dir)
    cells = {c["label"]: c for c in run.cells}
    honest, paper = cells["glocal-k"], cells["gk-paper"]
    assert honest["status"] == paper["status"] == OK
    assert honest["preset_name"] == "ml-100k" and None not in honest["fit_config"].values()
    assert honest["refit_fit"]["config"]["selection"] == "last"
    assert honest["refit_fit"]["config"]["finetune_epochs"] == honest["selection"]["selected"]["finetune_epochs"]
    assert paper["paper_metrics"] and all("epoch" in v for v in paper["paper_metrics"].values())
    table = extract_table(run.markdown, "paper-protocol", "results.md")
    assert "gk-paper" in table and "@ epoch" in table


def test_cli_benchmark_threads_and_no_refit(ml100k_fixture_dir, tmp_path, capsys):
    from gnnrec.cli import main

    path = tmp_path / "suite.json"
    path.write_text(json.dumps(_suite(models=["bias"])))
    out = tmp_path / "run"
    argv = ["benchmark", str(path), "--out", str(out), "--data-dir", str(ml100k_fixture_dir), "--test-config"]
    argv += ["--no-tensorboard", "--no-plots", "--threads", "1", "--no-refit"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["threads"] == {"requested": "1", "torch_threads": 1, "jobs": 1}
    assert results["cells"][0]["refit"] is False and results["cells"][0]["refit_fit"] is None
    assert "--no-refit" in results["provenance"]["command"]
    assert main(["benchmark", "--threads", "zero", str(path)]) == 2
    assert "threads must be 'default', 'auto' or a positive integer" in capsys.readouterr().err
