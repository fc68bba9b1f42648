"""Fold-in's grown adjacency: the same matrices as rebuilding the adjacency, and one-way fold-ins that encode each
new node as if it joined alone."""

from __future__ import annotations

import dataclasses
from unittest import mock

import pytest
import torch

from gnnrec.models import RatingModel
from gnnrec.models.gnn import GNNModel
from gnnrec.nn import BipartiteRatingConv, grown_adjacency
from gnnrec.nn.grown_adjacency import GrownAdjacency
from gnnrec.nn.rating_messages import RatingMessageMap

NUM_USERS, NUM_MOVIES, NUM_EDGES = 30, 20, 300


def assert_same_csr(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    for part in ("crow_indices", "col_indices", "values"):
        a, e = getattr(actual, part)(), getattr(expected, part)()
        assert a.dtype == e.dtype and torch.equal(a, e), part


@pytest.mark.parametrize(
    ("options", "rating_messages"),
    [({"accumulate": "stack"}, "levels"), ({"accumulate": "sum"}, "levels"), ({"message": "plain"}, "levels"),
     ({"accumulate": "sum"}, "continuous"), ({"accumulate": "stack"}, "binned")],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["users", "movies"])
@pytest.mark.parametrize("piecewise_points", [64, 0])  # both ways of merging the new entries in
def test_grown_adjacency_equals_the_rebuilt_adjacency(options, rating_messages, kind, piecewise_points, monkeypatch):
    monkeypatch.setattr(grown_adjacency, "PIECEWISE_MERGE_POINTS", piecewise_points)
    torch.manual_seed(0)
    rating_map = RatingMessageMap(torch.arange(1.0, 11.0), rating_messages, 4) if rating_messages != "levels" else None
    levels = 10 if rating_map else 5
    channels = rating_map.num_channels if rating_map else levels
    conv = BipartiteRatingConv(NUM_USERS, NUM_MOVIES, 3 * channels, channels, **options)
    edge_index = torch.stack([torch.randint(NUM_USERS, (NUM_EDGES,)), torch.randint(NUM_MOVIES, (NUM_EDGES,))])
    rating_index = torch.randint(levels, (NUM_EDGES,))
    grown = GrownAdjacency(conv, edge_index, rating_index, NUM_USERS, NUM_MOVIES, rating_map)
    for num_new, support in ((1, 0), (1, 1), (1, 6), (4, 0), (4, 9), (4, 40)):
        new_row = torch.randint(num_new, (support,))
        if kind == "users":
            new_edges = torch.stack([NUM_USERS + new_row, torch.randint(NUM_MOVIES, (support,))])
            sizes = (NUM_USERS + num_new, NUM_MOVIES)
        else:
            new_edges = torch.stack([torch.randint(NUM_USERS, (support,)), NUM_MOVIES + new_row])
            sizes = (NUM_USERS, NUM_MOVIES + num_new)
        new_levels = torch.randint(levels, (support,))
        all_edges, all_levels = torch.cat([edge_index, new_edges], 1), torch.cat([rating_index, new_levels])
        channel, weight = rating_map(all_levels) if rating_map else (all_levels, None)
        expected = conv.adjacency(all_edges, channel, *sizes, weight)
        actual = grown(new_edges, new_levels, *sizes)
        for a, e in zip(actual, expected, strict=True):
            assert_same_csr(a, e)


@pytest.mark.parametrize("kind", ["users", "movies"])
def test_one_way_adjacency_encodes_each_new_node_as_if_it_joined_alone(kind):
    torch.manual_seed(0)
    conv = BipartiteRatingConv(NUM_USERS, NUM_MOVIES, 15, 5)
    edge_index = torch.stack([torch.randint(NUM_USERS, (NUM_EDGES,)), torch.randint(NUM_MOVIES, (NUM_EDGES,))])
    rating_index = torch.randint(5, (NUM_EDGES,))
    grown = GrownAdjacency(conv, edge_index, rating_index, NUM_USERS, NUM_MOVIES)
    num_new, support = 4, 12
    new_row = torch.arange(num_new).repeat_interleave(support // num_new)
    num_other = NUM_MOVIES if kind == "users" else NUM_USERS
    other = torch.cat([torch.randperm(num_other)[: support // num_new] for _ in range(num_new)])
    levels = torch.randint(5, (support,))

    def edges(rows: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
        return torch.stack([NUM_USERS + rows, others] if kind == "users" else [others, NUM_MOVIES + rows])

    def sizes(count: int) -> tuple[int, int]:
        return (NUM_USERS + count, NUM_MOVIES) if kind == "users" else (NUM_USERS, NUM_MOVIES + count)

    together = [m.to_dense() for m in grown(edges(new_row, other), levels, *sizes(num_new), one_way=True)]
    into_new = 1 if kind == "users" else 0  # movie -> user matrix for new users, user -> movie for new movies
    fixed_rows = NUM_USERS if kind == "users" else NUM_MOVIES
    fixed = [m.to_dense() for m in grown(edges(new_row[:0], other[:0]), levels[:0], *sizes(num_new))]
    assert torch.equal(together[1 - into_new], fixed[1 - into_new])  # nothing flows into the fitted nodes
    per = together[into_new].size(0) // (fixed_rows + num_new)  # matrix rows per node (one per level if stacked)
    assert torch.equal(together[into_new][: fixed_rows * per], fixed[into_new][: fixed_rows * per])
    for row in range(num_new):  # each new node's rows: as when it alone joins the graph (two-way)
        mine = new_row == row
        alone = grown(edges(new_row[mine] * 0, other[mine]), levels[mine], *sizes(1))[into_new].to_dense()
        start = (fixed_rows + row) * per
        assert torch.equal(together[into_new][start : start + per], alone[fixed_rows * per :])


def test_one_way_adjacency_refuses_an_edge_between_fitted_nodes():
    conv = BipartiteRatingConv(NUM_USERS, NUM_MOVIES, 10, 5)
    grown = GrownAdjacency(conv, torch.zeros(2, 1, dtype=torch.long), torch.zeros(1, dtype=torch.long), 3, 2)
    with pytest.raises(ValueError, match="every new edge must join a new node to a node of the fixed graph"):
        grown(torch.tensor([[0], [1]]), torch.zeros(1, dtype=torch.long), 3, 2, one_way=True)


def test_grown_adjacency_refuses_a_smaller_graph():
    conv = BipartiteRatingConv(NUM_USERS, NUM_MOVIES, 10, 5)
    grown = GrownAdjacency(conv, torch.zeros(2, 1, dtype=torch.long), torch.zeros(1, dtype=torch.long), 3, 2)
    with pytest.raises(ValueError, match=r"the grown graph \(2 users, 2 movies\) is smaller than the fixed one"):
        grown(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 2, 2)


@pytest.fixture(scope="module")
def model(gnn_checkpoint, u1_split) -> GNNModel:
    return RatingModel.load(gnn_checkpoint, u1_split)


def laid_out_afresh(model: GNNModel, *args, **kwargs):
    """The fold-in with the training graph's adjacency laid out again for this call (nothing cached)."""
    encoder = (model.members or model.rank_members)[0].encoder

    def fresh(self):
        graph = self.graph
        return encoder.grown_adjacency(graph.edge_index, graph.rating_index, graph.num_users, graph.num_movies)

    with mock.patch.object(GNNModel, "_fold_in_adjacency", fresh):
        return model.fold_in(*args, **kwargs)


def assert_same_fold_in(actual, expected) -> None:
    for field in ("scores", "ranking", "contributions"):
        a, e = getattr(actual, field), getattr(expected, field)
        assert (a is None) == (e is None), field
        assert a is None or torch.equal(a, e), field


def random_support(model: GNNModel, kind: str, num_new: int, support: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    num_other = model.info.num_movies if kind == "users" else model.info.num_users
    rows = torch.arange(num_new).repeat_interleave(support)
    others = torch.cat([torch.randperm(num_other, generator=generator)[:support] for _ in range(num_new)])
    rating = torch.randint(1, 6, (rows.numel(),), generator=generator).float()
    return torch.stack([rows, others]), rating


@pytest.mark.parametrize("kind", ["users", "movies"])
@pytest.mark.parametrize("explain", [False, True])
def test_fold_in_equals_the_fold_in_on_an_adjacency_laid_out_afresh(model, kind, explain):
    for num_new, support in ((1, 0), (1, 1), (1, 5), (3, 4)):
        pairs, rating = random_support(model, kind, num_new, support)
        actual = model.fold_in(kind, pairs, rating, num_new=num_new, explain=explain)
        assert_same_fold_in(actual, laid_out_afresh(model, kind, pairs, rating, num_new=num_new, explain=explain))


def assert_together_as_alone(model: GNNModel, kind: str, pairs: torch.Tensor, rating: torch.Tensor, num_new: int):
    together = model.fold_in(kind, pairs, rating, num_new=num_new)
    for row in range(num_new):
        mine = pairs[0] == row
        alone = model.fold_in(kind, torch.stack([pairs[0][mine] * 0, pairs[1][mine]]), rating[mine], num_new=1)
        torch.testing.assert_close(together.scores[row], alone.scores[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(together.rank_scores[row], alone.rank_scores[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["users", "movies"])
def test_new_nodes_folded_in_together_score_as_each_folded_in_alone(model, kind):
    pairs, rating = random_support(model, kind, 5, 4)
    assert_together_as_alone(model, kind, pairs, rating, 5)


def test_contributions_are_the_score_drops_of_separate_fold_ins(model):
    pairs, rating = random_support(model, "users", 1, 4)
    fold = model.fold_in("users", pairs, rating, explain=True)
    for left_out in range(4):
        kept = torch.arange(4) != left_out
        without = model.fold_in("users", pairs[:, kept], rating[kept])
        drop = fold.rank_scores[0] - without.rank_scores[0]
        torch.testing.assert_close(fold.contributions[left_out], drop, rtol=0, atol=1e-4)


def test_fold_in_follows_a_changed_training_graph(gnn_checkpoint, u1_split):
    model = RatingModel.load(gnn_checkpoint, u1_split)
    pairs, rating = torch.tensor([[0, 0], [2, 5]]), torch.tensor([4.0, 1.0])
    model.fold_in("users", pairs, rating)  # lays out the training graph
    graph = model.graph
    model.graph = dataclasses.replace(graph, edge_index=graph.edge_index[:, 1:], rating_index=graph.rating_index[1:])
    assert_same_fold_in(model.fold_in("users", pairs, rating), laid_out_afresh(model, "users", pairs, rating))


@pytest.mark.parametrize(
    "overrides",
    [{"rating_messages": "continuous", "rating_bins": 3, "accumulate": "sum", "num_layers": 2, "rating_stats": True},
     {"message": "plain", "accumulate": "sum", "input": "embedding", "use_ids": True}],
)  # fmt: skip
def test_fold_in_of_other_encoders_equals_the_fold_in_on_an_adjacency_laid_out_afresh(u1_split, overrides):
    model = GNNModel(GNNModel.test_config(), max_epochs=2, val_every=1, **overrides).fit(u1_split)
    pairs, rating = torch.tensor([[0, 0, 1], [2, 5, 5]]), torch.tensor([4.0, 1.0, 5.0])
    for kind in ("users", "movies"):
        actual = model.fold_in(kind, pairs, rating, explain=True)
        assert_same_fold_in(actual, laid_out_afresh(model, kind, pairs, rating, explain=True))
        assert_together_as_alone(model, kind, pairs, rating, 2)  # two new nodes sharing a support node
