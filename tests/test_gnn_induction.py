"""Cold-start training of the GNN (induction): which edges a "new" node keeps, and how its targets are weighted."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import torch

from gnnrec.data.graph import RATES
from gnnrec.models.gnn import GNNConfig
from gnnrec.models.gnn.graph import TrainingGraph, arrival_shares
from gnnrec.models.gnn.network import build_network
from gnnrec.models.gnn.presets import COLDSTART_TRAINING
from gnnrec.models.gnn.step import StepPlan, TrainingStep, induction_step


def test_arrival_shares_rank_each_nodes_ratings_by_time(tiny_split):
    user_share, movie_share = arrival_shares(tiny_split)
    store = tiny_split.graph[RATES]
    edge_index, time = store.edge_index, store.time
    for node, share in ((edge_index[0], user_share), (edge_index[1], movie_share)):
        for n in node.unique()[:10].tolist():
            mine = (node == n).nonzero().squeeze(1)
            degree = len(mine)
            assert sorted((share[mine] * degree).round().long().tolist()) == list(range(degree))
            earlier = time[mine].unsqueeze(1) < time[mine].unsqueeze(0)  # [i, j]: i was rated before j
            assert bool((share[mine].unsqueeze(1) < share[mine].unsqueeze(0))[earlier].all())


def test_arrival_shares_need_rating_times(tiny_split):
    del tiny_split.graph[RATES].time
    assert arrival_shares(tiny_split) is None


def test_a_new_node_keeps_its_earliest_edges(tiny_split):
    graph = TrainingGraph.of(tiny_split)
    arrival = arrival_shares(tiny_split)
    keep = torch.ones(graph.edge_index.size(1), dtype=torch.bool)
    torch.manual_seed(0)
    kept, user_ids, _, new_edge = induction_step(
        keep, torch.arange(graph.num_users), graph.edge_index, graph.num_users, graph.num_movies, 0.5, 0.0,
        max_kept=0.5, arrival=arrival,
    )  # fmt: skip
    new_users = (user_ids == graph.num_users).nonzero().squeeze(1)
    assert len(new_users) > 0
    user = graph.edge_index[0]
    assert torch.equal(new_edge, (user_ids == graph.num_users)[user])
    for n in new_users.tolist():
        mine = user == n
        shares = arrival[0][mine]
        if bool(kept[mine].any()) and not bool(kept[mine].all()):  # every kept edge came before every dropped one
            assert float(shares[kept[mine]].max()) < float(shares[~kept[mine]].min())
    assert bool(kept[~new_edge].all())  # warm nodes keep everything


def test_a_target_weight_of_one_is_no_weight(tiny_split):
    graph = TrainingGraph.of(tiny_split)
    config = GNNConfig(max_epochs=1, dropout=0.0, node_dropout=0.0, hidden_dim=20, output_dim=10, rank_dim=10)
    config = config.resolved(tiny_split.dataset, len(tiny_split.rating_levels))[0]
    keep = torch.rand(graph.edge_index.size(1), generator=torch.Generator().manual_seed(0)) >= 0.25
    targets = (~keep).nonzero().squeeze(1)
    users = torch.arange(graph.num_users)

    def loss(weight):
        torch.manual_seed(0)
        net = build_network(graph.num_users, graph.num_movies, graph.user_x.size(1), graph.movie_x.size(1),
                            tiny_split.rating_levels, 3.5, config, side_graphs=tuple(graph.side))  # fmt: skip
        adjacency = net.adjacency(graph.edge_index, graph.rating_index, graph.num_users, graph.num_movies)
        step = TrainingStep(net, StepPlan(config, net, graph, adjacency))
        args = (keep, users, None, targets, len(targets), users, len(users), ~keep, 1.0)
        return step(*args, weight)[0]

    ones = torch.ones(graph.edge_index.size(1))
    torch.testing.assert_close(loss(ones), loss(None), rtol=0, atol=0)
    assert float(loss(ones * 0.5)) < float(loss(None))  # the weight scales every target's term


def test_the_coldstart_suite_trains_the_gnn_as_recommend_does():
    suite = json.loads(resources.files("gnnrec.benchmark").joinpath("suites/coldstart.json").read_text())
    assert suite["overrides"]["gnn"] == COLDSTART_TRAINING


def test_the_fold_in_offset_moves_a_new_users_ratings_by_the_shrunk_mean_residual(tiny_split):
    from gnnrec.models.gnn import GNNModel

    model = GNNModel(GNNModel.test_config(), max_epochs=2, val_every=1, fold_in_offset_reg=None).fit(tiny_split)
    pairs, rating = torch.tensor([[0, 0, 0], [2, 5, 7]]), torch.tensor([5.0, 5.0, 4.0])
    plain = model.fold_in("users", pairs, rating)
    residual = (rating - plain.predict(pairs[0], pairs[1])).sum()
    for reg in (0.0, 10.0):
        model.config = dataclasses.replace(model.config, fold_in_offset_reg=reg)
        moved = model.fold_in("users", pairs, rating)
        torch.testing.assert_close(moved.scores, plain.scores + residual / (3 + reg))
        assert moved.ranking is None or torch.equal(moved.ranking, plain.ranking)  # lists are unchanged
    model.config = dataclasses.replace(model.config, fold_in_offset_reg=10.0)
    empty = model.fold_in("users", pairs[:, :0], rating[:0], num_new=1).scores  # n = 0: nothing to offset
    model.config = dataclasses.replace(model.config, fold_in_offset_reg=None)
    assert torch.equal(empty, model.fold_in("users", pairs[:, :0], rating[:0], num_new=1).scores)
