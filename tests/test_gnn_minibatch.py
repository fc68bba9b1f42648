"""Mini-batch training of the "gnn" model (gnnrec.models.gnn.step) and the masked adjacency it encodes with."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import gnnrec.models.gnn.model as gnn_module
import gnnrec.models.gnn.step as steps_module
from gnnrec.models.gnn import GNNConfig, GNNModel
from gnnrec.models.gnn.step import AUTO_BATCH_EDGES, FULL_BATCH_MAX_EDGES, batch_edges
from gnnrec.nn.conv import BipartiteRatingConv
from gnnrec.nn.masked_adjacency import MaskedAdjacency
from gnnrec.nn.network import RatingGNN


def fast(**overrides) -> GNNConfig:
    return dataclasses.replace(GNNModel.test_config(), **overrides)


def rmse(model, edges) -> float:
    return float((model.predict(edges.user, edges.movie) - edges.rating).pow(2).mean().sqrt())


def states(model: GNNModel) -> list[dict[str, torch.Tensor]]:
    return [member.state_dict() for member in (*model.members, *model.rank_members)]


def assert_same_parameters(first: GNNModel, second: GNNModel, atol: float) -> None:
    for a, b in zip(states(first), states(second), strict=True):
        for name, value in a.items():
            if name == "ranker.movie.bias":  # its gradient is 0 up to round-off (it shifts a user's scores alike)
                continue
            torch.testing.assert_close(b[name], value, atol=atol, rtol=0, msg=name)


@pytest.mark.parametrize("options", [{"accumulate": "stack"}, {"accumulate": "sum"}, {"message": "plain"}])
def test_masked_adjacency_equals_the_rebuilt_adjacency(options):
    torch.manual_seed(0)
    conv = BipartiteRatingConv(30, 20, 10, 5, node_dropout=0.0, **options)
    edge_index = torch.stack([torch.randint(30, (300,)), torch.randint(20, (300,))])
    rating_index = torch.randint(5, (300,))
    masked = MaskedAdjacency(conv, edge_index, rating_index, 30, 20)
    users, movies = torch.arange(30), torch.arange(20)
    for _ in range(2):
        keep = torch.rand(300) > 0.3
        results = []
        for adjacency in (conv.adjacency(edge_index[:, keep], rating_index[keep], 30, 20), masked(keep)):
            conv.zero_grad()
            user, movie = conv(users, movies, adjacency)
            (user.pow(2).sum() + movie.sum()).backward()
            results.append((user, movie, [parameter.grad.clone() for parameter in conv.parameters()]))
        (user0, movie0, grads0), (user1, movie1, grads1) = results
        assert torch.equal(user0, user1) and torch.equal(movie0, movie1)  # dropped edges add exact zeros
        for grad0, grad1 in zip(grads0, grads1, strict=True):
            torch.testing.assert_close(grad1, grad0, atol=1e-6, rtol=1e-5)


def test_batch_size_config_and_the_automatic_rule():
    assert GNNConfig().batch_size == "auto" and GNNConfig(batch_size="512").batch_size == 512
    assert GNNConfig(batch_size=0).batch_size == 0
    for bad in (-1, "many", 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            GNNConfig(batch_size=bad)
    with pytest.raises(ValueError, match="rank_users"):
        GNNConfig(rank_users=-1)
    assert batch_edges("auto", FULL_BATCH_MAX_EDGES) is None and batch_edges(0, 10) is None
    assert batch_edges("auto", FULL_BATCH_MAX_EDGES + 1) == AUTO_BATCH_EDGES
    assert batch_edges(100, 10) == 100  # an explicit size always takes the mini-batch loop (one batch here)


def test_the_default_takes_the_full_batch_step(tiny_split, monkeypatch):
    plans = []
    original = steps_module.StepPlan.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        plans.append(self)

    monkeypatch.setattr(steps_module.StepPlan, "__init__", spy)
    model = GNNModel(fast(max_epochs=2)).fit(tiny_split)
    assert [row["steps"] for row in model.history] == [1, 2]  # one full-batch step per epoch
    assert len(plans) == 1 and plans[0].batch is None and plans[0].single_step
    # edge dropout: the full-batch step too reads the masked adjacency, laid out once
    assert model.config.edge_dropout > 0 and plans[0].masked is not None


def test_the_full_batch_step_with_the_masked_adjacency_equals_the_rebuilt_one(tiny_split, monkeypatch):
    config = fast(max_epochs=3, val_every=1)
    masked = GNNModel(config).fit(tiny_split)
    original = steps_module.StepPlan.__init__

    def without_masked(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.masked = None  # the step then rebuilds the kept edges' matrices

    monkeypatch.setattr(steps_module.StepPlan, "__init__", without_masked)
    rebuilt = GNNModel(config).fit(tiny_split)
    # the two matrices sum their kept edges in another order, and Adam's normalised steps carry that
    # round-off into weights whose gradients are near 0 (2.5e-6 seen on one CPU): the siblings' tolerance
    assert_same_parameters(masked, rebuilt, atol=1e-5)
    for a, b in zip(masked.history, rebuilt.history, strict=True):
        assert b["val_rmse"] == pytest.approx(a["val_rmse"], abs=1e-6)


@pytest.mark.parametrize("overrides", [{}, {"supervision": "all", "rank_loss": "bpr"}])
def test_a_batch_of_the_whole_set_reproduces_the_full_batch_steps(tiny_split, overrides):
    config = fast(max_epochs=3, val_every=1, **overrides)
    full = GNNModel(config).fit(tiny_split)
    batched = GNNModel(dataclasses.replace(config, batch_size=len(tiny_split.train))).fit(tiny_split)
    assert [row["steps"] for row in batched.history] == [1, 2, 3]
    assert_same_parameters(full, batched, atol=1e-5)
    for a, b in zip(full.history, batched.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["train_rank_loss"] == pytest.approx(a["train_rank_loss"], rel=1e-5)
        assert b["val_rmse"] == pytest.approx(a["val_rmse"], abs=1e-5)


def test_full_batch_and_mini_batches_both_learn(tiny_split):
    mean = float((tiny_split.train.rating.mean() - tiny_split.test.rating).pow(2).mean().sqrt())
    full = GNNModel(fast()).fit(tiny_split)
    batched = GNNModel(fast(batch_size=len(tiny_split.train) // 4)).fit(tiny_split)
    assert batched.history[0]["steps"] == 4 and batched.history[-1]["steps"] == 4 * len(batched.history)
    assert rmse(full, tiny_split.test) < 0.9 * mean and rmse(batched, tiny_split.test) < 0.9 * mean


def test_mini_batch_targets_are_never_message_edges(tiny_split, monkeypatch):
    """supervision="dropped": a step's targets are dropped from its messages; an epoch's batches are disjoint."""
    kept, targets = [], []
    call, decode = MaskedAdjacency.__call__, RatingGNN.decode

    def spy_call(self, keep):
        kept.append({tuple(edge) for edge in self.edge_index[:, keep].t().tolist()})
        return call(self, keep)

    def spy_decode(self, z_user, z_movie, user, movie):
        if self.training:
            targets.append(list(zip(user.tolist(), movie.tolist(), strict=True)))
        return decode(self, z_user, z_movie, user, movie)

    monkeypatch.setattr(MaskedAdjacency, "__call__", spy_call)
    monkeypatch.setattr(RatingGNN, "decode", spy_decode)
    num_edges = len(tiny_split.train)
    GNNModel(fast(max_epochs=1, batch_size=num_edges // 3 + 1, rank_weight=0.0)).fit(tiny_split)
    assert len(kept) == len(targets) == 3
    for messages, step_targets in zip(kept, targets, strict=True):
        assert step_targets and not set(step_targets) & messages
    seen = [pair for step_targets in targets for pair in step_targets]
    assert len(seen) == len(set(seen)) < num_edges  # disjoint batches; only the dropped share is supervised


def test_blocked_ranking_loss_equals_one_block(tiny_split, monkeypatch):
    config = fast(max_epochs=2, val_every=1, batch_size=len(tiny_split.train))
    one_block = GNNModel(config).fit(tiny_split)
    monkeypatch.setattr(steps_module, "RANK_BLOCK_CELLS", 7 * tiny_split.num_movies)  # 7 users per block
    blocks = GNNModel(config).fit(tiny_split)
    assert_same_parameters(one_block, blocks, atol=1e-5)
    sampled = GNNModel(dataclasses.replace(config, rank_users=9)).fit(tiny_split)  # 9 of 40 users per step
    assert sampled.history[-1]["train_rank_loss"] != pytest.approx(one_block.history[-1]["train_rank_loss"])


def test_prediction_in_chunks_equals_one_chunk(tiny_split, monkeypatch):
    model = GNNModel(fast(max_epochs=5)).fit(tiny_split)
    whole = model.predict(tiny_split.test.user, tiny_split.test.movie)
    monkeypatch.setattr(gnn_module, "PREDICT_PAIRS", 7)
    chunked = model.predict(tiny_split.test.user, tiny_split.test.movie)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)  # other matmul blockings: last-bit differences


def test_sampled_negatives_follow_the_ratings_and_the_exact_loss_past_the_catalogue(tiny_split, monkeypatch):
    from gnnrec.nn import ranking

    config = fast(max_epochs=2, val_every=1)
    edges, users, movies = len(tiny_split.train), tiny_split.num_users, tiny_split.num_movies
    assert steps_module.sampled_negatives(config, edges, users, movies) is None  # default: the whole catalogue
    per_user = edges / users
    assert steps_module.sampled_negatives(dataclasses.replace(config, rank_negatives=0.5), edges, users, movies) == (
        math.ceil(0.5 * per_user)
    )
    assert steps_module.sampled_negatives(dataclasses.replace(config, rank_negatives=1e6), edges, users, movies) is None
    bpr = dataclasses.replace(config, rank_negatives=0.5, rank_loss="bpr")
    assert steps_module.sampled_negatives(bpr, edges, users, movies) is None
    drawn = []
    loss = ranking.multinomial_loss

    def spy(*args, **kwargs):
        drawn.append(len(args[-1]))
        return loss(*args, **kwargs)

    monkeypatch.setattr(steps_module, "multinomial_loss", spy)
    model = GNNModel(dataclasses.replace(config, rank_negatives=0.5)).fit(tiny_split)
    assert drawn == [math.ceil(0.5 * per_user)] * 2
    assert all(math.isfinite(row["train_rank_loss"]) for row in model.history)


def test_pair_pattern_products_and_their_gradients():
    from gnnrec.nn.sparse import PairPattern

    torch.manual_seed(0)
    a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    row, col = torch.tensor([3, 0, 3, 1, 0]), torch.tensor([4, 4, 0, 2, 4])  # unsorted, one pair twice
    pairs = PairPattern(row, col, 4, 5)
    torch.testing.assert_close(pairs.dot(a, b), (a[row] * b[col]).sum(-1))
    assert torch.autograd.gradcheck(lambda x, y: pairs.dot(x, y), (a, b))
    assert PairPattern(row[:0], col[:0], 4, 5).dot(a, b).shape == (0,)


def test_mini_batches_train_the_item_item_term_through_blocks_of_users(tiny_split, monkeypatch):
    from gnnrec.nn import ranking

    monkeypatch.setattr(ranking, "LOSS_WHOLE_CELLS", 0)  # blocks of users inside the loss as well
    config = fast(max_epochs=3, val_every=1, batch_size=64, rank_users=8, rank_neighbours=3)
    model = GNNModel(config).fit(tiny_split)
    weight = model.rank_members[0].ranker.neighbour_weight.detach()
    assert float(weight.abs().sum()) > 0
    assert all(math.isfinite(row["train_rank_loss"]) for row in model.history)
