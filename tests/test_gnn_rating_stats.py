"""The ``rating_stats`` input of the gnn model: per-node statistics of the message edges (no side features)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gnnrec.data import RATES
from gnnrec.models.gnn import GNNConfig, GNNModel
from gnnrec.models.gnn.network import build_network
from gnnrec.nn import encoder as encoder_module
from gnnrec.nn.network import RatingGNN
from gnnrec.nn.rating_stats import rating_statistics


def fast(**overrides) -> GNNConfig:
    return dataclasses.replace(GNNModel.test_config(), **overrides)


def test_statistics_by_hand():
    # users 0, 1, 2 (2 has no edges); movies 0, 1; levels 1..5 as indices 0..4
    edge_index = torch.tensor([[0, 0, 1], [0, 1, 0]])
    rating_index = torch.tensor([4, 2, 0])  # ratings 5, 3, 1
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    users, movies = rating_statistics(edge_index, rating_index, values, 3, 2)
    assert users.shape == (3, 7) and movies.shape == (2, 7)
    assert users[0, 0].item() == pytest.approx(math.log(3) / math.log(3))  # two edges, two movies
    assert users[0, 1].item() == pytest.approx((4.0 - 1.0) / 4.0)  # mean rating 4
    assert users[0, 2:].tolist() == pytest.approx([0, 0, 0.5, 0, 0.5])
    assert users[1, 1].item() == 0.0 and users[1, 2:].tolist() == [1, 0, 0, 0, 0]
    assert users[2].tolist() == [0.0] * 7  # no edges: nothing
    assert movies[0, 0].item() == pytest.approx(math.log(3) / math.log(4))  # two users of three
    assert movies[0, 1].item() == pytest.approx((3.0 - 1.0) / 4.0)
    assert movies[1, 2:].tolist() == pytest.approx([0, 0, 1, 0, 0])


def test_representations_read_the_statistics_and_gradients_reach_them(tiny_split):
    graph, store = tiny_split.graph, tiny_split.graph[RATES]
    config = fast(use_features=False, rating_stats=True, dropout=0.0, node_dropout=0.0, rank_weight=0)
    config = dataclasses.replace(config, rating_messages="levels")
    user_x, movie_x = graph["user"].x, graph["movie"].x
    net = build_network(user_x.size(0), movie_x.size(0), user_x.size(1), movie_x.size(1),
                    tiny_split.rating_levels, 3.5, config)  # fmt: skip
    assert net.encoder.user_features is None and net.encoder.user_stats is not None
    rating_index = (store.rating - 1).long()
    ids = torch.arange(user_x.size(0))
    z_user, z_movie = net.encode(user_x, movie_x, store.edge_index, rating_index, ids)
    logits, pred = net.decode(z_user, z_movie, store.edge_index[0], store.edge_index[1])
    ((pred - store.rating).pow(2).mean() + logits.logsumexp(-1).mean()).backward()
    for layer in (net.encoder.user_stats, net.encoder.movie_stats):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    # the same edges with other ratings: the convolution's messages change too, so compare with the
    # statistics switched off (zero projection): a difference must then come from the statistics alone
    with torch.no_grad():
        net.encoder.user_stats.weight.zero_()
        net.encoder.user_stats.bias.zero_()
    net.eval()
    before, _ = net.encode(user_x, movie_x, store.edge_index, rating_index, ids)
    net.encoder.user_stats.reset_parameters()
    after, _ = net.encode(user_x, movie_x, store.edge_index, rating_index, ids)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("batch_size", ["auto", 300])  # one full-batch step per epoch | mini-batches (masked path)
def test_statistics_never_see_a_step_target(tiny_split, monkeypatch, batch_size):
    """In training the statistics come from the step's message edges, never from the edges the loss is on."""
    seen_stats, seen_targets = [], []
    original_stats, original_decode = encoder_module.rating_statistics, RatingGNN.decode

    def spy_stats(edge_index, *args):
        seen_stats.append(set(zip(edge_index[0].tolist(), edge_index[1].tolist(), strict=True)))
        return original_stats(edge_index, *args)

    def spy_decode(self, z_user, z_movie, user, movie):
        if self.training:
            seen_targets.append((len(seen_stats) - 1, set(zip(user.tolist(), movie.tolist(), strict=True))))
        return original_decode(self, z_user, z_movie, user, movie)

    monkeypatch.setattr(encoder_module, "rating_statistics", spy_stats)
    monkeypatch.setattr(RatingGNN, "decode", spy_decode)
    config = fast(use_features=False, rating_stats=True, max_epochs=3, val_every=100, batch_size=batch_size)
    GNNModel(config).fit(tiny_split)
    assert len(seen_targets) == 3 if batch_size == "auto" else len(seen_targets) > 3
    for index, targets in seen_targets:
        assert targets and not targets & seen_stats[index]
        if batch_size == "auto":  # every training rating is either a message edge or a target
            assert len(targets) + len(seen_stats[index]) == len(tiny_split.train)


def test_learns_without_side_features(tiny_split):
    model = GNNModel(fast(use_features=False, rating_stats=True)).fit(tiny_split)
    test = tiny_split.test
    rmse = float((model.predict(test.user, test.movie) - test.rating).pow(2).mean().sqrt())
    assert rmse < float((tiny_split.train.rating.mean() - test.rating).pow(2).mean().sqrt())
    assert GNNModel(fast(use_features=False, use_ids=False, rating_stats=True, num_layers=0))  # stats alone: an input
