"""Side graphs in the GNN: the SideGraphConv layer, the side edges the model reads, the GNN with and without them."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from gnnrec.data import FOLLOWS, SIMILAR, CSVRatings, RatingSplit
from gnnrec.models.gnn import GNNConfig, GNNModel
from gnnrec.models.gnn.graph import side_graph_edges
from gnnrec.nn import SideGraphConv
from gnnrec.testing import CSV_FILES, write_csv_fixture
from gnnrec.testing.side_graphs import side_graph_split, write_side_graph_fixture

SMALL = {"num_users": 60, "num_items": 30, "communities": 3, "ratings_per_user": 6, "links_per_user": 4}


def fast(**overrides) -> GNNConfig:
    return dataclasses.replace(GNNModel.test_config(), **{"max_epochs": 40, **overrides})


def dense_reference(conv: SideGraphConv, x, edge_index, weight) -> torch.Tensor:
    """The layer's formula with an explicit weighted adjacency matrix A[i, j] = w_{j -> i}."""
    n = x.size(0)
    adjacency = torch.zeros(n, n)
    adjacency[edge_index[1], edge_index[0]] = weight
    d_in, d_out = adjacency.sum(1), adjacency.sum(0)
    inv_in = torch.where(d_in > 0, d_in.rsqrt(), torch.zeros_like(d_in))
    inv_out = torch.where(d_out > 0, d_out.rsqrt(), torch.zeros_like(d_out))
    norm = inv_in[:, None] * adjacency * inv_out[None, :]
    out = norm @ x @ conv.weight
    if conv.root is not None:
        out = out + x @ conv.root
    return out + (conv.bias if conv.bias is not None else 0)


@pytest.fixture(scope="module")
def side_split(tmp_path_factory) -> RatingSplit:
    base = tmp_path_factory.mktemp("side")
    return side_graph_split(base / "raw", base / "root", flavour="signal", **SMALL)


@pytest.fixture(scope="module")
def side_model(side_split) -> GNNModel:
    return GNNModel(fast()).fit(side_split)


# ---------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("root_weight", [False, True])
def test_side_conv_equals_dense_weighted_adjacency_product(root_weight):
    torch.manual_seed(0)
    # directed and weighted: 0<->1 with different weights, 2->0, 3->1, 1->3; node 4 has no edges
    edge_index = torch.tensor([[0, 1, 2, 3, 1], [1, 0, 0, 1, 3]])
    weight = torch.tensor([0.5, 2.0, 1.5, 0.25, 1.0])
    x = torch.randn(5, 3)
    conv = SideGraphConv(3, 4, root_weight=root_weight)
    with torch.no_grad():
        conv.bias.normal_()
    out = conv(x, edge_index, weight)
    torch.testing.assert_close(out, dense_reference(conv, x, edge_index, weight))
    torch.testing.assert_close(out[4], (x[4] @ conv.root if root_weight else 0) + conv.bias)  # no neighbours
    # without weights every edge weighs 1
    torch.testing.assert_close(conv(x, edge_index), dense_reference(conv, x, edge_index, torch.ones(5)))


def test_side_conv_symmetric_normalisation_and_gradients():
    torch.manual_seed(1)
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    weight = torch.tensor([1.0, 1.0, 3.0, 3.0])
    x = torch.randn(3, 2, requires_grad=True)
    conv = SideGraphConv(2, 2, bias=False)
    adjacency = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 3.0], [0.0, 3.0, 0.0]])
    d = adjacency.sum(1).rsqrt()
    expected = (d[:, None] * adjacency * d[None, :]) @ x @ conv.weight  # D^-1/2 W D^-1/2 X W_rel
    out = conv(x, edge_index, weight)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert x.grad is not None and conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    before = conv.weight.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.weight)


def test_side_conv_refuses_bad_shapes():
    conv = SideGraphConv(3, 2)
    x, edge_index = torch.randn(4, 3), torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, torch.ones(3))
    with pytest.raises(ValueError, match=r"x must have shape \[N, 3\]"):
        conv(torch.randn(4, 2), edge_index)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[0])


# ---------------------------------------------------------------------------- the edges the model reads
def test_side_graph_edges_are_undirected_without_self_loops(side_split):
    graph = copy.copy(side_split.graph)
    graph[FOLLOWS].edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 0]])
    graph[FOLLOWS].edge_weight = torch.tensor([1.0, 0.5, 9.0, 0.2])
    edges = side_graph_edges(graph, "auto")
    assert set(edges) == {"user"}
    pairs = {tuple(e): float(w) for e, w in zip(edges["user"][0].t().tolist(), edges["user"][1], strict=True)}
    assert pairs == pytest.approx({(0, 1): 0.75, (1, 0): 0.75, (3, 0): 0.2, (0, 3): 0.2})  # (2, 2) dropped
    assert side_graph_edges(graph, "off") == {}
    graph[FOLLOWS].edge_weight = torch.tensor([1.0, -0.5, 1.0, 1.0])
    with pytest.raises(ValueError, match="user__follows__user has a negative"):
        side_graph_edges(graph, "auto")
    graph[FOLLOWS].edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 999]])
    graph[FOLLOWS].edge_weight = torch.ones(4)
    with pytest.raises(ValueError, match="outside 0..59"):
        side_graph_edges(graph, "auto")


def test_fixture_flavours_share_ratings_and_differ_in_links(tmp_path):
    signal = write_side_graph_fixture(tmp_path / "signal", "signal", **SMALL)
    noise = write_side_graph_fixture(tmp_path / "noise", "noise", **SMALL)
    assert (signal / "ratings.csv").read_text() == (noise / "ratings.csv").read_text()

    def same_community(directory):
        rows = [line.split(",") for line in (directory / "user_edges.csv").read_text().splitlines()[1:]]
        assert len(rows) == SMALL["num_users"] * SMALL["links_per_user"]
        return [(int(a[1:]) - 1) % 3 == (int(b[1:]) - 1) % 3 for a, b, _ in rows]

    assert all(same_community(signal))
    assert 0.5 < 1 - sum(same_community(noise)) / len(same_community(noise))  # ~2/3 of random links cross
    with pytest.raises(ValueError, match="flavour"):
        write_side_graph_fixture(tmp_path / "x", "loud")


# ---------------------------------------------------------------------------- the GNN
def test_gnn_fits_and_predicts_with_the_side_graph(side_model, side_split):
    assert set(side_model.graph.side) == {"user"}
    assert all(set(m.encoder.side_convs) == {"user"} for m in side_model.members + side_model.rank_members)
    test = side_split.test
    pred = side_model.predict(test.user, test.movie)
    assert torch.isfinite(pred).all()
    rmse = float((pred - test.rating).pow(2).mean().sqrt())
    mean = float((side_split.train.rating.mean() - test.rating).pow(2).mean().sqrt())
    assert rmse < mean
    top, scores = side_model.recommend([0, 1], k=5)
    assert top.shape == (2, 5) and torch.isfinite(scores).all()


def test_side_graph_changes_the_model_and_off_ignores_it(side_split, side_model):
    off = GNNModel(fast(side_graphs="off")).fit(side_split)
    assert off.graph.side == {} and all(not m.encoder.side_convs for m in off.members)
    assert not torch.allclose(off.score_matrix(), side_model.score_matrix())
    # "off" is the same model as on the split without the side graph
    graph = copy.copy(side_split.graph)
    del graph[FOLLOWS]
    assert FOLLOWS not in graph.edge_types
    plain = GNNModel(fast()).fit(RatingSplit(graph))
    assert plain.graph.side == {}
    torch.testing.assert_close(off.score_matrix(), plain.score_matrix(), rtol=0, atol=0)


def test_fold_in_and_new_user_with_side_graphs(side_model, side_split):
    support = torch.tensor([[0, 0, 1], [2, 5, 7]])
    fold = side_model.fold_in("users", support, torch.tensor([5.0, 1.0, 4.0]), num_new=2)
    assert fold.scores.shape == (2, side_split.num_movies) and torch.isfinite(fold.scores).all()
    top, ratings = side_model.recommend_new_user(ratings=[(3, 5.0), (4, 2.0)], k=4)
    assert top.shape == (4,) and not set(top.tolist()) & {3, 4} and torch.isfinite(ratings).all()
    movies = side_model.fold_in("movies", torch.tensor([[0, 0], [1, 2]]), torch.tensor([3.0, 4.0]), num_new=1)
    assert movies.scores.shape == (1, side_split.num_users)


def test_save_load_round_trip_with_side_graphs(side_model, side_split, tmp_path):
    loaded = GNNModel.load(side_model.save(tmp_path / "side.pt"), split=side_split)
    assert set(loaded.graph.side) == {"user"}
    torch.testing.assert_close(loaded.graph.side["user"][1], side_model.graph.side["user"][1])
    torch.testing.assert_close(loaded.score_matrix(), side_model.score_matrix())
    torch.testing.assert_close(loaded.score_matrix(clip=False), side_model.score_matrix(clip=False))
    support, rating = torch.tensor([[0], [2]]), torch.tensor([5.0])
    torch.testing.assert_close(
        loaded.fold_in("users", support, rating).scores, side_model.fold_in("users", support, rating).scores
    )


def test_old_checkpoint_state_without_side_graphs_loads(side_split):
    model = GNNModel(fast(side_graphs="off", max_epochs=5)).fit(side_split)
    state = model._state()
    del state["graph"]["side"]  # written before side graphs existed
    again = GNNModel(model.config)
    again.info, again.seen = model.info, model.seen
    again._load_state(state)
    torch.testing.assert_close(again.score_matrix(), model.score_matrix())


def test_movie_similarity_graph_and_both_relations(tmp_path):
    source = write_csv_fixture(tmp_path / "csv", num_users=20, num_items=25, ratings_per_user=8, unrated_users=0)
    split = CSVRatings(tmp_path / "root", source_dir=source, log=False, **CSV_FILES).rating_split()
    assert FOLLOWS in split.graph.edge_types and SIMILAR in split.graph.edge_types
    model = GNNModel(fast(max_epochs=10)).fit(split)
    assert set(model.graph.side) == {"user", "movie"}
    assert set(model.members[0].encoder.side_convs) == {"user", "movie"}
    assert torch.isfinite(model.score_matrix()).all()
    new_movie = model.fold_in("movies", torch.tensor([[0, 0], [1, 3]]), torch.tensor([1.0, 4.5]))
    assert new_movie.scores.shape == (1, 20) and torch.isfinite(new_movie.scores).all()
    loaded = GNNModel.load(model.save(tmp_path / "both.pt"), split=split)
    torch.testing.assert_close(loaded.score_matrix(), model.score_matrix())


def test_side_graphs_setting_is_validated():
    with pytest.raises(ValueError, match="side_graphs='on'; choose one of auto, off"):
        GNNConfig(side_graphs="on")
    with pytest.raises(ValueError, match="side_graphs='always'"):
        side_graph_edges(None, "always")
    assert GNNConfig().side_graphs == "auto"
