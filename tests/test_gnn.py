"""The "gnn" model: learning, rating scales, determinism, logging, persistence."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import Tensor

from gnnrec.data import RATED_BY, RATES, MovieLens100K, RatingSplit
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model, get_model_class
from gnnrec.models.gnn import GNNConfig, GNNModel
from gnnrec.models.gnn.network import build_network
from gnnrec.nn.masked_adjacency import MaskedAdjacency
from gnnrec.nn.network import RatingGNN


def fast(**overrides) -> GNNConfig:
    return dataclasses.replace(GNNModel.test_config(), **overrides)


def rmse(model, edges) -> float:
    return float((model.predict(edges.user, edges.movie) - edges.rating).pow(2).mean().sqrt())


def mean_rmse(split: RatingSplit, edges) -> float:
    return float((split.train.rating.mean() - edges.rating).pow(2).mean().sqrt())


@pytest.fixture
def fitted(tiny_split) -> GNNModel:
    return GNNModel(fast()).fit(tiny_split)


def test_registered_and_creatable():
    assert get_model_class("gnn") is GNNModel
    model = create_model("gnn", {"num_layers": "2", "decoder": "dot"})
    assert model.config.num_layers == 2 and model.config.decoder == "dot"


def test_trained_model_beats_the_global_mean(fitted, tiny_split):
    assert rmse(fitted, tiny_split.test) < 0.9 * mean_rmse(tiny_split, tiny_split.test)
    rows = [row for row in fitted.history if "val_rmse" in row]  # every val_every = 5 epochs
    assert rows[0]["epoch"] == 5 and {"train_loss", "train_rmse", "val_rmse", "val_mae", "lr"} <= set(rows[0])
    assert min(r["val_rmse"] for r in rows) < rows[0]["val_rmse"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"decoder": "dot", "rank_loss": "bpr"},
        {"decoder": "mlp", "message": "plain", "accumulate": "sum", "num_layers": 2},
        {"use_features": False, "supervision": "all", "edge_dropout": 0.0, "ensemble": 2, "rank_weight": 0.0},
        {"input": "embedding", "use_ids": True, "embedding_dim": 20, "layer_aggregation": "mean", "root_weight": True},
        {"use_features": False, "layer_aggregation": "last", "accumulate": "sum", "supervision": "all"},
    ],
)
def test_variants_learn(tiny_split, overrides):
    model = GNNModel(fast(**overrides)).fit(tiny_split)
    assert rmse(model, tiny_split.test) < mean_rmse(tiny_split, tiny_split.test)


def test_score_matrix_agrees_with_predict(tiny_split):
    for decoder in ("bilinear", "mlp", "dot"):
        model = GNNModel(fast(decoder=decoder, max_epochs=5)).fit(tiny_split)
        users = torch.tensor([0, 3, 7])
        scores = model.score_matrix(users)
        pairs = model.predict(users.repeat_interleave(tiny_split.num_movies), torch.arange(60).repeat(3))
        torch.testing.assert_close(scores, pairs.view(3, -1), rtol=1e-5, atol=1e-5)


def test_same_seed_same_model_other_seed_other_model(tiny_split):
    first = GNNModel(fast(max_epochs=10)).fit(tiny_split).score_matrix()
    again = GNNModel(fast(max_epochs=10)).fit(tiny_split).score_matrix()
    other = GNNModel(fast(max_epochs=10, seed=1)).fit(tiny_split).score_matrix()
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other)


def test_early_stopping_keeps_the_best_validation_weights(tiny_split):
    patience = 5
    model = GNNModel(fast(max_epochs=60, patience=patience, lr=0.05, val_every=1)).fit(tiny_split)
    rows = model.history
    best_row = min(rows, key=lambda r: r["val_rmse"])
    # training stops exactly `patience` epochs after the best one (or at the last epoch) ...
    assert rows[-1]["epoch"] == min(60, best_row["epoch"] + patience)
    # ... and keeps that epoch's weights: the kept model reproduces the best validation RMSE, not the last one
    val = tiny_split.val
    kept = float((model.predict(val.user, val.movie) - val.rating).pow(2).mean().sqrt())
    assert kept == pytest.approx(best_row["val_rmse"], abs=1e-5)
    if rows[-1]["val_rmse"] != best_row["val_rmse"]:
        assert kept != pytest.approx(rows[-1]["val_rmse"], abs=1e-6)


def test_selection_metric_is_validated_and_used(tiny_split):
    with pytest.raises(ValueError, match="unknown selection metric"):
        GNNModel(selection_metric="accuracy")
    with pytest.raises(ValueError, match="cutoff"):
        GNNModel(selection_metric="ndcg@k")
    model = GNNModel(fast(max_epochs=8, selection_metric="mae", val_every=1)).fit(tiny_split)
    assert {"epoch", "train_loss", "val_rmse", "val_mae", "seconds", "lr"} <= set(model.history[0])
    val = tiny_split.val
    kept = float((model.predict(val.user, val.movie) - val.rating).abs().mean())
    assert kept == pytest.approx(min(r["val_mae"] for r in model.history), abs=1e-5)


def half_star_split(split: RatingSplit) -> RatingSplit:
    """The same graph on a 0.5..2.5 half-star scale, to catch hard-coded 1..5 levels."""
    graph = split.graph.clone()
    for key in ("rating", "train_edge_label", "val_edge_label", "test_edge_label"):
        graph[RATES][key] = graph[RATES][key] / 2
    graph[RATED_BY].rating = graph[RATED_BY].rating / 2
    graph.rating_levels = split.rating_levels / 2
    return RatingSplit(graph)


def test_uses_the_split_rating_scale(tiny_split):
    halved = half_star_split(tiny_split)
    model = GNNModel(fast()).fit(halved)
    scores = model.score_matrix()
    assert float(scores.min()) >= 0.5 and float(scores.max()) <= 2.5
    assert model.members[0].rating_values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # model units (target_scale)
    assert model.target_scale.to_user(model.members[0].rating_values).tolist() == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert rmse(model, halved.test) < mean_rmse(halved, halved.test)


def test_ratings_off_the_scale_are_refused(tiny_split):
    graph = tiny_split.graph.clone()
    graph.rating_levels = torch.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="not one of the split's rating levels"):
        GNNModel(fast()).fit(RatingSplit(graph))


def test_gradients_reach_every_parameter(tiny_split):
    graph = tiny_split.graph
    store = graph[RATES]
    variants = (
        {},
        {"decoder": "mlp", "input": "embedding", "use_ids": True, "root_weight": True},
        {"decoder": "dot", "num_layers": 2, "use_ids": True, "accumulate": "sum"},
    )
    for overrides in variants:
        config = fast(dropout=0.0, node_dropout=0.0, edge_dropout=0.0, supervision="all", rank_weight=0, **overrides)
        net = build_network(
            40, 60, graph["user"].x.size(1), graph["movie"].x.size(1), tiny_split.rating_levels, 3.5, config
        )
        ids = torch.arange(40)
        ids[:5] = 40  # some users through the unknown-user row, so it gets a gradient too
        rating_index = (store.rating - 1).long()
        z_user, z_movie = net.encode(graph["user"].x, graph["movie"].x, store.edge_index, rating_index, ids)
        logits, pred = net.decode(z_user, z_movie, store.edge_index[0], store.edge_index[1])
        loss = (pred - store.rating).pow(2).mean() + (0 if logits is None else logits.logsumexp(-1).mean())
        loss.backward()
        for name, parameter in net.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (overrides, name)


def test_target_edges_are_hidden_in_dropped_supervision(tiny_split, monkeypatch):
    """With supervision="dropped", no edge the loss is computed on is a message edge of that step."""
    seen = []
    original = RatingGNN.decode

    def spy(self, z_user, z_movie, user, movie):
        if self.training:
            seen.append(set(zip(user.tolist(), movie.tolist(), strict=True)))
        return original(self, z_user, z_movie, user, movie)

    messages = []
    original_call = MaskedAdjacency.__call__

    def spy_call(self, keep):  # the step's message matrices hold the kept edges alone
        messages.append(set(zip(*self.edge_index[:, keep].tolist(), strict=True)))
        return original_call(self, keep)

    monkeypatch.setattr(RatingGNN, "decode", spy)
    monkeypatch.setattr(MaskedAdjacency, "__call__", spy_call)
    GNNModel(fast(supervision="dropped", max_epochs=3)).fit(tiny_split)
    assert len(seen) == len(messages) == 3
    for targets, edges in zip(seen, messages, strict=True):
        assert targets and not targets & edges
        assert len(targets) + len(edges) == len(tiny_split.train)


def test_embeddings_and_logging(tiny_split):
    class Recorder:
        def __init__(self):
            self.scalars, self.histograms = {}, set()

        def add_scalar(self, tag, value, step):
            self.scalars.setdefault(tag, []).append((step, value))

        def add_histogram(self, tag, values, step):
            self.histograms.add(tag)

    recorder = Recorder()
    model = GNNModel(fast(max_epochs=4, histogram_every=2, val_every=1)).fit(tiny_split, logger=recorder)
    assert {"loss/train", "rmse/train", "rmse/val", "mae/val", "lr"} <= set(recorder.scalars)
    assert [step for step, _ in recorder.scalars["rmse/val"]] == [1, 2, 3, 4]
    assert any("user_to_movie" in tag for tag in recorder.histograms)
    assert {"embedding/user", "embedding/movie"} <= recorder.histograms
    embeddings = model.embeddings()
    assert embeddings["user"].shape == (40, 16) and embeddings["movie"].shape == (60, 16)


def test_save_load_round_trip(fitted, tiny_split, tmp_path):
    path = fitted.save(tmp_path / "gnn.pt")
    loaded = GNNModel.load(path, split=tiny_split)
    torch.testing.assert_close(loaded.score_matrix(), fitted.score_matrix())
    assert loaded.history == fitted.history
    assert loaded.config == fitted.config


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="decoder"):
        GNNModel(decoder="attention")
    with pytest.raises(ValueError, match="edge_dropout"):
        GNNModel(edge_dropout=1.0)
    with pytest.raises(ValueError, match="needs edge_dropout"):
        GNNModel(supervision="dropped", edge_dropout=0.0)
    with pytest.raises(ValueError, match="hidden_dim == embedding_dim"):
        GNNModel(layer_aggregation="mean", hidden_dim=32, embedding_dim=16)
    with pytest.raises(ValueError, match="both off"):
        GNNModel(input="embedding", use_ids=False, use_features=False)
    with pytest.raises(ValueError, match="use accumulate='sum'"):
        GNNModel(message="plain")


def test_ranking_head_serves_ranking_and_rating_head_serves_ratings(tiny_split):
    model = GNNModel(fast(max_epochs=40, val_every=1)).fit(tiny_split)
    assert len(model.rank_members) == len(model.members) == 1
    assert {"val_rmse", "val_ndcg@10", "train_rank_loss"} <= set(model.history[0])
    users = torch.tensor([0, 3, 7])
    ratings = model.score_matrix(users)  # clip=True: predicted ratings
    raw = model.score_matrix(users, clip=False)  # ranking scores of the ranking snapshot
    net = model.rank_members[0]
    z_user, z_movie = net.encode(*(t for t in (model.graph.user_x, model.graph.movie_x)), model.graph.edge_index,
                                 model.graph.rating_index, torch.arange(40))  # fmt: skip
    torch.testing.assert_close(raw, net.ranker(z_user[users], z_movie), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(raw, ratings)
    top, scores = model.recommend(users, k=5)
    expected = raw.masked_fill(model.seen_mask(users), float("-inf")).topk(5).indices
    assert torch.equal(top, expected)
    torch.testing.assert_close(scores, model.predict(users.view(-1, 1).expand_as(top), top))


def test_two_snapshots_follow_validation_rmse_and_ndcg(tiny_split):
    model = GNNModel(fast(max_epochs=60, patience=10, lr=0.05, val_every=1)).fit(tiny_split)
    rows = model.history
    best_rmse = min(rows, key=lambda r: r["val_rmse"])
    best_ndcg = max(rows, key=lambda r: r["val_ndcg@10"])  # the first epoch with the maximum
    assert model.selected_epochs == [{"rating": best_rmse["epoch"], "ranking": best_ndcg["epoch"]}]
    # stops when neither improved for `patience` epochs
    assert rows[-1]["epoch"] == min(60, max(best_rmse["epoch"], best_ndcg["epoch"]) + 10)
    val = evaluate(model, tiny_split, part="val", metrics=["rmse", "ndcg@10"]).metrics
    assert val["rmse"] == pytest.approx(best_rmse["val_rmse"], abs=1e-5)
    assert val["ndcg@10"] == pytest.approx(best_ndcg["val_ndcg@10"], abs=1e-5)


def test_validation_every_few_epochs(tiny_split):
    model = GNNModel(fast(max_epochs=12, val_every=5)).fit(tiny_split)
    assert [r["epoch"] for r in model.history if "val_rmse" in r] == [5, 10, 12]


def test_refit_without_validation_keeps_the_selected_epochs(tiny_split, ml100k_fixture_dir, tmp_path):
    model = GNNModel(fast(max_epochs=30, patience=6, val_every=1)).fit(tiny_split)
    chosen = model.selected_epochs[0]
    assert model.refit_overrides() == {
        "max_epochs": max(chosen.values()),
        "keep_rating_epoch": chosen["rating"],
        "keep_ranking_epoch": chosen["ranking"],
    }
    # an empty validation part (a refit on train + validation): all epochs run, the asked-for snapshots are kept
    whole = MovieLens100K(tmp_path / "whole", split="u1", source_dir=ml100k_fixture_dir, val_fraction=0.0, log=False)
    split = whole.rating_split()
    assert len(split.val) == 0
    refit = GNNModel(fast(max_epochs=7, keep_rating_epoch=3, keep_ranking_epoch=5)).fit(split)
    assert len(refit.history) == 7 and refit.selected_epochs == [{"rating": 3, "ranking": 5}]
    assert not any(key.startswith("val_") for row in refit.history for key in row)
    at3 = GNNModel(fast(max_epochs=3)).fit(split)
    at5 = GNNModel(fast(max_epochs=5)).fit(split)
    torch.testing.assert_close(refit.score_matrix(), at3.score_matrix())
    torch.testing.assert_close(refit.score_matrix(clip=False), at5.score_matrix(clip=False))
    assert not torch.allclose(at3.score_matrix(clip=False), at5.score_matrix(clip=False))
    assert GNNModel(fast()).refit_overrides() == {}


def test_an_own_ranking_encoder_takes_the_ranking_gradient_alone(tiny_split):
    """rank_encoder="own": a training step's ranking loss trains the ranking encoder (with its whole gradient,
    whatever rank_grad_scale) and never the rating encoder; shared: it reaches the one encoder, scaled."""
    from gnnrec.models.gnn.graph import TrainingGraph
    from gnnrec.models.gnn.step import StepPlan, TrainingStep

    graph = TrainingGraph.of(tiny_split)
    keep = torch.rand(graph.edge_index.size(1), generator=torch.Generator().manual_seed(0)) >= 0.25
    targets = (~keep).nonzero().squeeze(1)

    def step_gradients(**overrides) -> dict[str, Tensor]:
        config = fast(dropout=0.0, node_dropout=0.0, **overrides)
        config = config.resolved(tiny_split.dataset, len(tiny_split.rating_levels))[0]
        torch.manual_seed(0)
        net = build_network(40, 60, graph.user_x.size(1), graph.movie_x.size(1), tiny_split.rating_levels, 3.5,
                            config, side_graphs=tuple(graph.side))  # fmt: skip
        adjacency = net.adjacency(graph.edge_index, graph.rating_index, 40, 60)
        step = TrainingStep(net, StepPlan(config, net, graph, adjacency))
        loss, _, _ = step(keep, torch.arange(40), None, targets, len(targets), torch.arange(40), 40, ~keep, 1.0)
        loss.backward()
        return {name: p.grad for name, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}

    def parts(grads: dict[str, Tensor]) -> set[str]:
        return {name.split(".")[0] for name in grads}

    ranking_only = {"mse_weight": 0.0, "ce_weight": 0.0}
    assert parts(step_gradients(rank_encoder="own", **ranking_only)) == {"rank_encoder", "ranker"}
    assert parts(step_gradients(rank_encoder="shared", **ranking_only)) == {"encoder", "ranker"}
    assert parts(step_gradients(rank_encoder="own")) == {"encoder", "decoder", "rank_encoder", "ranker"}
    scaled, whole = (step_gradients(rank_encoder="own", rank_grad_scale=g, **ranking_only) for g in (0.1, 1.0))
    for name, grad in whole.items():
        torch.testing.assert_close(scaled[name], grad)


def test_an_own_ranking_encoder_serves_ranking_and_fold_in_and_round_trips(tiny_split, tmp_path):
    model = GNNModel(fast(max_epochs=30, val_every=1, rank_encoder="own")).fit(tiny_split)
    net = model.rank_members[0]
    assert net.rank_encoder is not None
    graph, users = model.graph, torch.tensor([0, 3, 7])
    inputs = (graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, torch.arange(40))
    r_user, r_movie = net.encode_ranking(*inputs, side=graph.side)
    z_user, z_movie = net.encode(*inputs, side=graph.side)
    raw = model.score_matrix(users, clip=False)
    torch.testing.assert_close(raw, net.ranker(r_user[users], r_movie), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(raw, net.ranker(z_user[users], z_movie), atol=1e-3)  # not the rating encoder's
    loaded = GNNModel.load(model.save(tmp_path / "own.pt"), split=tiny_split)
    torch.testing.assert_close(loaded.score_matrix(users, clip=False), raw)
    assert loaded.config.rank_encoder == "own"
    # a new person's ranking comes from the ranking encoder, their ratings from the rating encoder
    support = torch.tensor([[0, 0, 0], [1, 5, 9]])
    before = model.fold_in("users", support, torch.tensor([5.0, 4.0, 1.0]), num_new=1)
    for parameter in net.rank_encoder.parameters():
        torch.nn.init.normal_(parameter)
    model.use_members(model.members, model.rank_members)  # drop the cached encodings
    after = model.fold_in("users", support, torch.tensor([5.0, 4.0, 1.0]), num_new=1)
    torch.testing.assert_close(after.scores, before.scores)
    assert not torch.allclose(after.rank_scores, before.rank_scores)


def test_the_item_item_ranking_term_is_trained_served_folded_in_and_round_trips(tiny_split, tmp_path):
    from gnnrec.nn.ranking import co_rated_neighbours

    model = GNNModel(fast(max_epochs=30, val_every=1, rank_neighbours=3)).fit(tiny_split)
    net, graph = model.rank_members[0], model.graph
    head = net.ranker
    expected = co_rated_neighbours(*graph.edge_index, graph.num_users, graph.num_movies, 3)
    assert torch.equal(head.neighbour_index, expected)
    assert float(head.neighbour_weight.detach().abs().sum()) > 0  # the ranking loss trained it
    users = torch.tensor([0, 3, 7])
    inputs = (graph.user_x, graph.movie_x, graph.edge_index, graph.rating_index, torch.arange(40))
    z_user, z_movie = net.encode_ranking(*inputs, side=graph.side)
    raw = model.score_matrix(users, clip=False)
    # by hand: the low-rank scores plus each of the user's training movies' weights on its neighbours
    by_hand = torch.addmm(head.bias, head.user(z_user[users]), head.movie(z_movie).t())
    for row, user in enumerate(users.tolist()):
        for movie in graph.edge_index[1, graph.edge_index[0] == user].tolist():
            by_hand[row, head.neighbour_index[movie]] += head.neighbour_weight[movie]
    torch.testing.assert_close(raw, by_hand.detach(), rtol=1e-5, atol=1e-5)
    loaded = GNNModel.load(model.save(tmp_path / "item_item.pt"), split=tiny_split)
    torch.testing.assert_close(loaded.score_matrix(users, clip=False), raw)
    assert torch.equal(loaded.rank_members[0].ranker.neighbour_index, expected)
    # a new person's support films reach their ranking through the term
    support = torch.tensor([[0, 0, 0], [1, 5, 9]])
    before = model.fold_in("users", support, torch.tensor([5.0, 4.0, 1.0]), num_new=1)
    with torch.no_grad():
        head.neighbour_weight[1] += 10.0
    model.use_members(model.members, model.rank_members)
    after = model.fold_in("users", support, torch.tensor([5.0, 4.0, 1.0]), num_new=1)
    lifted = torch.zeros(graph.num_movies, dtype=torch.bool)
    lifted[head.neighbour_index[1]] = True
    torch.testing.assert_close(after.rank_scores[0, ~lifted], before.rank_scores[0, ~lifted])
    torch.testing.assert_close(after.rank_scores[0, lifted], before.rank_scores[0, lifted] + 10.0)
    torch.testing.assert_close(after.scores, before.scores)  # ratings do not read it
    with pytest.raises(ValueError, match="rank_neighbours > 0 needs the exact ranking loss"):
        GNNConfig(rank_neighbours=3, rank_negatives=4.0)


def test_a_refit_continues_the_selection_fits_networks(tiny_split, monkeypatch):
    """warm_start_from: the refit on train ∪ validation starts from the selection fit's rating snapshots and trains
    refit_continue_share of its epochs, keeping the last averaged weights for ratings and rankings."""
    from gnnrec.models.gnn.training import GNNTrainer

    selection = GNNModel(fast(max_epochs=30, patience=30, val_every=5)).fit(tiny_split)
    overrides = selection.refit_overrides()
    merged = tiny_split.merge_validation()
    started_from: list[dict[str, Tensor]] = []
    train_member = GNNTrainer.train_member

    def recording(self, member, *args, **kwargs):
        started_from.append({key: value.clone() for key, value in member.state_dict().items()})
        return train_member(self, member, *args, **kwargs)

    monkeypatch.setattr(GNNTrainer, "train_member", recording)
    continued = GNNModel(fast(**overrides, refit_continue_share=0.2))
    assert continued.warm_start_from(selection)
    continued.fit(merged)
    epochs = round(0.2 * overrides["max_epochs"])
    assert continued.continued_selection and len(continued.history) == epochs
    assert continued.selected_epochs == [{"rating": epochs, "ranking": epochs}]
    assert continued.config.max_epochs == overrides["max_epochs"]  # what was asked for; fit_config has the share
    snapshot = selection.members[0].state_dict()
    assert started_from[0].keys() == snapshot.keys()
    for key, value in snapshot.items():
        torch.testing.assert_close(started_from[0][key], value, rtol=0, atol=0)
    assert not torch.allclose(continued.score_matrix(), selection.score_matrix())  # it trained on
    # the next fit of the same model starts afresh: the states are taken once
    assert len(continued.fit(merged).history) == overrides["max_epochs"] and not continued.continued_selection
    fresh_start = started_from[1]["decoder.bases"]
    assert not torch.equal(fresh_start, snapshot["decoder.bases"])


def test_a_refit_continues_only_a_fitted_gnn_of_the_same_settings(tiny_split):
    selection = GNNModel(fast(max_epochs=10, patience=10)).fit(tiny_split)
    overrides = selection.refit_overrides()
    assert not GNNModel(fast(**overrides, refit_continue_share=0.0)).warm_start_from(selection)
    assert not GNNModel(fast(**overrides)).warm_start_from(GNNModel(fast()))  # not fitted
    assert not GNNModel(fast(**overrides)).warm_start_from(create_model("mf", test_config=True).fit(tiny_split))
    assert selection.refit_protocol == "refit"  # the ml-100k preset continues; the others refit afresh, scaled
    elsewhere = GNNModel(fast(max_epochs=10, patience=10, preset="generic")).fit(tiny_split)
    assert elsewhere.refit_protocol == "scaled" and elsewhere.fit_config.refit_continue_share == 0.0
    assert not GNNModel(fast(**elsewhere.refit_overrides(), preset="generic")).warm_start_from(elsewhere)
    other = GNNModel(fast(**overrides, lr=0.01))
    assert other.warm_start_from(selection)
    with pytest.raises(ValueError, match="cannot continue the selection fit: lr is 0.01 here but 0.03"):
        other.fit(tiny_split.merge_validation())
    shifted = GNNModel(fast(**overrides))
    assert shifted.warm_start_from(selection)
    states, source, _ = shifted._continued
    shifted._continued = (states, source, (1, 1))  # as if the selection fit had another catalogue
    with pytest.raises(ValueError, match="cannot continue the selection fit: it was fitted on 1 users × 1 movies"):
        shifted.fit(tiny_split.merge_validation())
