"""The GNN's scale, side-graph and many-level options together: mini-batches must not change what they compute."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gnnrec.data.synthetic import SyntheticDataset
from gnnrec.models.gnn import GNNConfig, GNNModel
from gnnrec.testing.side_graphs import side_graph_split

SMALL_SIDE = {"num_users": 60, "num_items": 30, "communities": 3, "ratings_per_user": 6, "links_per_user": 4}
MANY_LEVELS = sorted({1, 100, *np.random.default_rng(1).choice(np.arange(2, 100), 40, replace=False).tolist()})


def fast(**overrides) -> GNNConfig:
    return dataclasses.replace(GNNModel.test_config(), **{"max_epochs": 3, "val_every": 1, **overrides})


def assert_same_fit(full: GNNModel, batched: GNNModel) -> None:
    for a, b in zip(full.history, batched.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val_rmse"] == pytest.approx(a["val_rmse"], abs=1e-5)
    for first, second in zip(full.members, batched.members, strict=True):
        for name, value in first.state_dict().items():
            if name == "ranker.movie.bias":  # its gradient is 0 up to round-off (it shifts a user's scores alike)
                continue
            torch.testing.assert_close(second.state_dict()[name], value, atol=1e-5, rtol=0, msg=name)


@pytest.fixture(scope="module")
def side_split(tmp_path_factory):
    base = tmp_path_factory.mktemp("side")
    return side_graph_split(base / "raw", base / "root", flavour="signal", **SMALL_SIDE)


@pytest.fixture(scope="module")
def many_level_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("levels")
    return SyntheticDataset(
        root, num_users=80, num_movies=40, num_ratings=1500, levels=MANY_LEVELS, log=False
    ).rating_split()


def test_side_graphs_in_one_whole_batch_equal_the_full_batch_step(side_split):
    torch.set_num_threads(1)
    config = fast()
    full = GNNModel(config).fit(side_split)
    assert full.members[0].encoder.side_convs  # the side graph is in use
    batched = GNNModel(dataclasses.replace(config, batch_size=len(side_split.train))).fit(side_split)
    assert [row["steps"] for row in batched.history] == [1, 2, 3]
    assert_same_fit(full, batched)


def test_side_graphs_train_in_mini_batches(side_split):
    torch.set_num_threads(1)
    model = GNNModel(fast(max_epochs=20, batch_size=len(side_split.train) // 3)).fit(side_split)
    assert model.history[0]["steps"] == 3
    test = side_split.test
    prediction = model.predict(test.user, test.movie)
    assert torch.isfinite(prediction).all()


@pytest.mark.parametrize("messages", ["binned", "continuous"])
def test_many_level_messages_in_one_whole_batch_equal_the_full_batch_step(many_level_split, messages):
    torch.set_num_threads(1)
    config = fast(rating_messages=messages)
    full = GNNModel(config).fit(many_level_split)
    assert full.members[0].encoder.rating_map is not None
    batched = GNNModel(dataclasses.replace(config, batch_size=len(many_level_split.train))).fit(many_level_split)
    assert_same_fit(full, batched)
    scores = batched.score_matrix()
    assert float(scores.min()) >= 1.0 and float(scores.max()) <= 100.0
