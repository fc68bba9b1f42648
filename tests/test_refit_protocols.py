"""The second validation carve-out and the refit protocols a benchmark cell can test."""

from __future__ import annotations

import json

import pytest
import torch

from gnnrec.benchmark.refit_protocols import (
    PROTOCOLS,
    AveragedFits,
    refit_protocol_of,
    scaled_epochs,
    standardised_rows,
)
from gnnrec.data.graph import RATES
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model


def _pairs(edges) -> set[tuple[int, int]]:
    return set(zip(edges.user.tolist(), edges.movie.tolist(), strict=True))


def test_hold_out_train_carves_val2_from_train_and_drops_test(tiny_split):
    study = tiny_split.hold_out_train(0.2, seed=1)
    assert len(study.train) + len(study.test) == len(tiny_split.train)
    assert _pairs(study.train) | _pairs(study.test) == _pairs(tiny_split.train)
    assert not _pairs(study.test) & _pairs(tiny_split.test)  # the real test ratings are gone
    assert torch.equal(study.val.rating, tiny_split.val.rating)
    assert study.graph[RATES].edge_index.size(1) == len(study.train)  # message edges follow train
    assert set(study.test.user.tolist()) <= set(study.train.user.tolist())  # every user keeps a train rating
    assert study.fingerprint not in (tiny_split.fingerprint, tiny_split.hold_out_train(0.2, seed=2).fingerprint)
    assert _pairs(study.test) == _pairs(tiny_split.hold_out_train(0.2, seed=1).test)  # seeded
    assert tiny_split.graph[RATES].edge_index.size(1) == len(tiny_split.train)  # the original is untouched
    with pytest.raises(ValueError, match="fraction"):
        tiny_split.hold_out_train(0.0, seed=1)


def test_averaged_fits_are_the_mean_of_the_two_fits(tiny_split):
    merged = tiny_split.merge_validation()
    selection = create_model("mf", {"seed": 0}, test_config=True).fit(tiny_split)
    refit = create_model("mf", {"seed": 1, **selection.refit_overrides()}, test_config=True).fit(merged)
    averaged = AveragedFits(selection, refit)
    user, movie = merged.test.user, merged.test.movie
    expected = (selection.predict(user, movie) + refit.predict(user, movie)) / 2
    assert torch.allclose(averaged.predict(user, movie), expected)
    assert not torch.allclose(expected, refit.predict(user, movie))
    users = torch.arange(5)
    raw = [fit.score_matrix(users, clip=False) for fit in (selection, refit)]
    standardised = (standardised_rows(raw[0]) + standardised_rows(raw[1])) / 2
    assert torch.allclose(averaged.score_matrix(users, clip=False), standardised)
    plain = AveragedFits(selection, refit, standardise=False).score_matrix(users, clip=False)
    assert torch.allclose(plain, (raw[0] + raw[1]) / 2)
    rmse = evaluate(averaged, merged, metrics=["rmse"]).metrics["rmse"]
    assert rmse == pytest.approx(float(((expected - merged.test.rating) ** 2).mean().sqrt()), rel=1e-5)
    with pytest.raises(TypeError, match="one model"):
        AveragedFits(selection, create_model("global-mean").fit(merged))


def test_standardised_rows():
    rows = standardised_rows(torch.tensor([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]]))
    assert torch.allclose(rows[0].mean(), torch.tensor(0.0))
    assert torch.allclose(rows[0].std(correction=0), torch.tensor(1.0))
    assert torch.equal(rows[1], torch.zeros(3))


def test_scaled_epochs_scales_epoch_counts_only():
    scaled = scaled_epochs({"max_epochs": 100, "keep_rating_epoch": 40, "keep_ranking_epoch": 0, "reg": 5.0}, 1.05)
    assert scaled == {"max_epochs": 105, "keep_rating_epoch": 42, "keep_ranking_epoch": 0, "reg": 5.0}


def test_every_model_names_a_refit_protocol():
    from gnnrec.models import available_models

    protocols = {name: refit_protocol_of(create_model(name, test_config=True)) for name in available_models()}
    assert set(protocols.values()) <= set(PROTOCOLS)
    assert protocols["gnn"] == "scaled" and protocols["glocal-k"] == "refit"  # the GNN's follows its fitted preset
    assert refit_protocol_of(create_model("glocal-k", {"protocol": "paper"}, test_config=True)) == "refit"
    assert protocols["bias"] == protocols["mf"] == protocols["ease"] == "refit"

    class Odd:
        refit_protocol = "sometimes"

    with pytest.raises(ValueError, match="choose one of"):
        refit_protocol_of(Odd())


@pytest.mark.parametrize("protocol", ["average", "none", "scaled"])
def test_a_cell_tests_what_its_models_refit_protocol_asks(protocol, ml100k_fixture_dir, tmp_path, monkeypatch):
    from gnnrec.benchmark import OK, run_benchmark
    from gnnrec.data import load_split
    from gnnrec.models.base import RatingModel
    from gnnrec.models.mf import MF

    monkeypatch.setattr(MF, "refit_protocol", protocol, raising=False)
    suite = {"name": "t", "splits": ["u1"], "seeds": [0], "test_config": True, "models": ["mf", "bias"]}
    suite["overrides"] = {"mf": {"max_epochs": 6, "device": "cpu"}}
    run = run_benchmark(suite, tmp_path / "run", data_dir=ml100k_fixture_dir, progress=False, log=lambda line: None,
                        tensorboard=False, plots=False, save_models=True, threads=1)  # fmt: skip
    cells = {c["label"]: c for c in run.cells}
    assert all(c["status"] == OK for c in cells.values())
    assert cells["bias"]["refit_protocol"] == "refit"
    mf = cells["mf"]
    assert mf["refit_protocol"] == protocol
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert next(c for c in saved["cells"] if c["label"] == "mf")["refit_protocol"] == protocol
    assert mf["selection"]["metrics"]["rmse"] > 0  # the selection fit's validation metrics, as always
    report = (tmp_path / "run" / "results.md").read_text()
    assert (f"mf ({protocol})" in report) == (protocol != "none") and "bias (" not in report
    split = load_split("ml-100k", "u1", source_dir=ml100k_fixture_dir, log=False)
    selection = RatingModel.load(tmp_path / "run" / (mf["selection"].get("checkpoint") or mf["checkpoint"]))
    if protocol == "none":
        assert mf["refit_fit"] is None
        expected = evaluate(selection, split).metrics
    else:
        merged = split.merge_validation()
        refit = RatingModel.load(tmp_path / "run" / mf["checkpoint"])
        selected = mf["selection"]["selected"]["max_epochs"]
        factor = len(merged.train) / len(split.train)
        assert refit.config.max_epochs == (round(selected * factor) if protocol == "scaled" else selected)
        tested = AveragedFits(selection, refit) if protocol == "average" else refit
        expected = evaluate(tested, merged).metrics
    assert mf["metrics"]["rmse"] == pytest.approx(expected["rmse"], abs=1e-6)
    assert mf["metrics"]["ndcg@10"] == pytest.approx(expected["ndcg@10"], abs=1e-6)


def test_glocal_k_and_gnn_cells_refit_from_what_the_selection_fit_learned(tmp_path, ml100k_fixture_dir):
    from gnnrec.benchmark import OK, run_benchmark

    suite = {"name": "t", "splits": ["u1"], "seeds": [0], "test_config": True, "models": ["glocal-k", "mf", "gnn"]}
    suite["overrides"] = {"mf": {"max_epochs": 4, "device": "cpu"}, "gnn": {"max_epochs": 20, "patience": 20}}
    run = run_benchmark(suite, tmp_path / "run", data_dir=ml100k_fixture_dir, progress=False, log=lambda line: None,
                        tensorboard=False, plots=False, threads=1)  # fmt: skip
    cells = {c["label"]: c for c in run.cells}
    glocal_k = cells["glocal-k"]
    assert glocal_k["status"] == OK and glocal_k["refit_protocol"] == "refit"
    assert glocal_k["refit_fit"]["warm_start"] is True and cells["mf"]["refit_fit"]["warm_start"] is False
    assert {row["phase"] for row in glocal_k["refit_fit"]["history"]} == {"finetune"}
    selected = glocal_k["selection"]["selected"]["finetune_epochs"]
    assert len(glocal_k["refit_fit"]["history"]) == max(1, round(0.25 * selected))  # the ml-100k preset's share
    assert {row["phase"] for row in glocal_k["history"]} == {"pretrain", "finetune"}
    report = (tmp_path / "run" / "results.md").read_text()
    gnn = cells["gnn"]
    assert gnn["status"] == OK and gnn["refit_protocol"] == "refit" and gnn["refit_fit"]["warm_start"] is True
    assert len(gnn["refit_fit"]["history"]) == round(0.5 * gnn["selection"]["selected"]["max_epochs"])
    assert "(`warm_start_from`): glocal-k: the refit continues the selection fit's fine-tuning for 25%" in report
    assert "gnn: the refit continues the selection fit's networks for 50% of the selected epochs" in report
