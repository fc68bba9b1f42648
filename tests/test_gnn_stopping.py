"""The GNN's early stopping: plateaus, and fits that end at their epoch budget."""

from __future__ import annotations

import dataclasses

import pytest

from gnnrec.models.gnn import GNNConfig, GNNModel
from gnnrec.models.gnn.presets import PRESETS
from gnnrec.models.gnn.training import plateau_gain

SMALL = {"embedding_dim": 8, "hidden_dim": 20, "output_dim": 16, "rank_dim": 16, "device": "cpu", "threads": 1}


def test_a_gain_counts_only_beyond_the_tolerance():
    assert plateau_gain("rmse", 0.95, None, 0.01)  # the first value always counts
    assert plateau_gain("rmse", 0.98, 1.0, 0.01) and not plateau_gain("rmse", 0.995, 1.0, 0.01)
    assert plateau_gain("ndcg@10", 0.203, 0.2, 0.01) and not plateau_gain("ndcg@10", 0.201, 0.2, 0.01)
    assert plateau_gain("rmse", 0.9999, 1.0, 0.0)  # tolerance 0: every gain counts


# the synthetic preset (no dropout, long patience) trains for hundreds of epochs more than the others
@pytest.mark.parametrize(
    "preset", [pytest.param(name, marks=pytest.mark.slow) if name == "synthetic" else name for name in sorted(PRESETS)]
)
def test_no_preset_ends_its_fit_at_the_budget_while_still_improving(preset, tiny_split):
    model = GNNModel(GNNConfig(preset=preset, **SMALL)).fit(tiny_split)
    budget = model.fit_config.max_epochs
    assert model.budget_hits == [], f"preset {preset} used its whole budget of {budget} epochs"
    assert len(model.history) < budget


def test_a_fit_cut_short_by_its_budget_says_so(tiny_split):
    config = dataclasses.replace(GNNModel.test_config(), max_epochs=10, val_every=5)
    with pytest.warns(UserWarning, match="reached max_epochs=10 while validation was still improving"):
        model = GNNModel(config).fit(tiny_split)
    assert model.budget_hits == [10]


def test_a_wider_tolerance_stops_no_later(tiny_split):
    base = {**SMALL, "max_epochs": 400, "patience": 20, "val_every": 5}
    strict = GNNModel(GNNConfig(**base, plateau_tolerance=0.0)).fit(tiny_split)
    loose = GNNModel(GNNConfig(**base, plateau_tolerance=0.2)).fit(tiny_split)
    assert len(loose.history) <= len(strict.history)
    assert [row["train_loss"] for row in loose.history] == [row["train_loss"] for row in strict.history][
        : len(loose.history)
    ]  # the same training until it stops: the tolerance changes only when
