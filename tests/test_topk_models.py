"""Ranking-only peers (popularity, EASE, LightGCN): recommend, save/load, reproducibility, EASE's closed form."""

from __future__ import annotations

import pytest
import scipy.sparse
import torch

from gnnrec.data import load_split
from gnnrec.evaluation import evaluate
from gnnrec.models import RatingModel, create_model
from gnnrec.models.ease import GramSpectrum, UserGramSpectrum, ease_weights, symmetric_product, wide_ease_weights

PEERS = ["popularity", "ease", "lightgcn"]


@pytest.mark.parametrize("name", PEERS)
def test_peer_recommends_saves_loads_and_is_reproducible(name, tiny_split, tmp_path):
    model = create_model(name, test_config=True).fit(tiny_split)
    assert model.predicts_ratings is False
    top, scores = model.recommend([0, 1, 2], k=5)
    assert top.shape == (3, 5)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    assert not model.seen_mask(torch.tensor([0, 1, 2])).gather(1, top).any()
    loaded = RatingModel.load(model.save(tmp_path / "m.pt"), tiny_split)
    torch.testing.assert_close(loaded.score_matrix(clip=False), model.score_matrix(clip=False))
    again = create_model(name, test_config=True).fit(tiny_split)
    torch.testing.assert_close(again.score_matrix(clip=False), model.score_matrix(clip=False))
    result = evaluate(model, tiny_split)
    assert result.metrics["rmse"] is None and 0.0 <= result.metrics["ndcg@10"] <= 1.0


def test_ease_weights_solve_the_constrained_least_squares():
    x = (torch.rand(30, 8, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    reg = 2.0
    weights = ease_weights(x.T @ x, reg)
    assert torch.all(torch.diagonal(weights) == 0)
    # stationarity of ‖X − XB‖² + λ‖B‖² with diag(B) = 0: off-diagonal gradient entries vanish
    gradient = -x.T @ (x - x @ weights) + reg * weights
    off = ~torch.eye(8, dtype=torch.bool)
    assert gradient[off].abs().max() < 1e-8
    with pytest.raises(ValueError, match="positive"):
        ease_weights(x.T @ x, 0.0)


def test_one_decomposition_gives_every_lambdas_weights_and_scores():
    x = (torch.rand(40, 12, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    x[:, 5] = 0.0  # a movie nobody rated: a zero eigenvalue, kept finite by λ
    spectrum = GramSpectrum(x.T @ x)
    for reg in (1.0, 30.0, 1e6):
        expected = ease_weights(x.T @ x, reg)
        torch.testing.assert_close(spectrum.weights(reg), expected, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(
            spectrum.precision_diagonal(reg), torch.linalg.inv(x.T @ x + reg * torch.eye(12)).diagonal()
        )
        scale = float((x @ expected).abs().max())  # scores shrink as 1/λ: compare relative to their size
        torch.testing.assert_close(
            spectrum.scores(x[:7].float(), reg), (x[:7] @ expected).float(), rtol=1e-4, atol=1e-6 * scale
        )
    with pytest.raises(ValueError, match="positive"):
        spectrum.weights(0.0)


def test_user_side_decomposition_gives_every_lambdas_weights_and_scores():
    """A wide catalogue (users < movies) through the Woodbury identity equals the movie-side closed form."""
    x = (torch.rand(15, 40, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    x[:, 5] = 0.0  # a movie nobody rated
    x[3] = 0.0  # a user with no interactions: a zero eigenvalue of XXᵀ
    spectrum = UserGramSpectrum(scipy.sparse.csr_matrix(x.numpy()))
    new_rows = (torch.rand(4, 40, generator=torch.Generator().manual_seed(3)) < 0.3).double()
    users = torch.tensor([0, 3, 7, 2])
    for reg in (1.0, 30.0, 1e6):
        expected = ease_weights(x.T @ x, reg)
        torch.testing.assert_close(spectrum.weights(reg), expected, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(
            spectrum.precision_diagonal(reg), torch.linalg.inv(x.T @ x + reg * torch.eye(40)).diagonal()
        )
        scale = float((x @ expected).abs().max())
        torch.testing.assert_close(
            spectrum.scores(new_rows.float(), reg), (new_rows @ expected).float(), rtol=1e-4, atol=1e-6 * scale
        )
        torch.testing.assert_close(
            spectrum.training_scores(users, x[users].float(), reg),
            (x[users] @ expected).float(),
            rtol=1e-4,
            atol=1e-6 * scale,
        )
    with pytest.raises(ValueError, match="positive"):
        spectrum.weights(0.0)
    for reg in (1.0, 30.0):  # one λ alone: a Cholesky factorisation of XXᵀ + λI
        alone = wide_ease_weights(scipy.sparse.csr_matrix(x.numpy()), reg)
        torch.testing.assert_close(alone, ease_weights(x.T @ x, reg), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_symmetric_product_is_the_full_gram_of_the_rows(dtype):
    factor = torch.randn(9, 9, generator=torch.Generator().manual_seed(4), dtype=dtype)
    torch.testing.assert_close(symmetric_product(factor), factor @ factor.T)


def test_ease_wide_and_tall_decompositions_choose_the_same_lambda_and_weights(tiny_split, monkeypatch):
    import gnnrec.models.ease as ease_module

    assert tiny_split.num_users < tiny_split.num_movies  # the fixture is a wide catalogue
    grid = (0.5, 3.0, 20.0, 1e3)
    user_side = create_model("ease", {"reg_grid": grid}).fit(tiny_split)
    monkeypatch.setattr(ease_module, "wide", lambda num_movies, num_users: False)  # the movie-side decomposition
    movie_side = create_model("ease", {"reg_grid": grid}).fit(tiny_split)
    assert user_side.reg == movie_side.reg
    for a, b in zip(user_side.history, movie_side.history, strict=True):
        assert abs(a["val_ndcg@10"] - b["val_ndcg@10"]) < 1e-6
    torch.testing.assert_close(user_side.weights, movie_side.weights, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", ["wide", "tall"])
def test_ease_grid_search_picks_the_lambda_that_per_lambda_inversion_picks(shape, tiny_split):
    if shape == "tall":  # more users than movies: the movie-side decomposition
        tiny_split = load_split("synthetic", num_users=60, num_movies=25, num_ratings=600, log=False)

    grid = (0.5, 3.0, 20.0, 1e3)
    searched = create_model("ease", {"reg_grid": grid}).fit(tiny_split)
    per_lambda = {reg: create_model("ease", {"reg": reg}).fit(tiny_split) for reg in grid}
    values = [row["val_ndcg@10"] for row in searched.history]
    assert [row["reg"] for row in searched.history] == list(grid)
    for reg, value in zip(grid, values, strict=True):
        expected = evaluate(per_lambda[reg], tiny_split, part="val", metrics=["ndcg@10"]).metrics["ndcg@10"]
        assert abs(value - expected) < 1e-6
    assert searched.reg == grid[values.index(max(values))]
    torch.testing.assert_close(searched.score_matrix(clip=False), per_lambda[searched.reg].score_matrix(clip=False))


def test_ease_scores_are_the_dense_closed_form_in_chunks(tiny_split, monkeypatch):
    import gnnrec.models.ease as ease_module

    model = create_model("ease", {"reg": 3.0}).fit(tiny_split)
    train = tiny_split.train
    x = torch.zeros(tiny_split.num_users, tiny_split.num_movies, dtype=torch.float64)
    x[train.user, train.movie] = 1.0
    expected = (x @ ease_weights(x.T @ x, 3.0)).float()
    torch.testing.assert_close(model.score_matrix(clip=False), expected)
    monkeypatch.setattr(ease_module, "PREDICT_MEMORY_BUDGET", 1)  # one pair per chunk
    user, movie = tiny_split.test.user, tiny_split.test.movie
    torch.testing.assert_close(model._predict(user, movie), expected[user, movie])


def test_ease_refuses_a_catalogue_whose_dense_matrices_do_not_fit(tiny_split, monkeypatch):
    import gnnrec.models.ease as ease_module

    assert ease_module.fit_memory_estimate(59_047) > 150 * 2**30  # ML-25M's catalogue
    monkeypatch.setattr(ease_module, "available_memory", lambda device: 1000)
    with pytest.raises(MemoryError, match=r"EASE needs about .* GiB on cpu .* but only 0\.0 GiB is available"):
        create_model("ease", test_config=True).fit(tiny_split)


def test_lightgcn_propagation_equals_pygs_with_its_per_layer_normalisation(tiny_split):
    """The adjacency normalised once and reused as its own transpose gives PyG's embeddings and gradients."""
    from torch_geometric.nn.models import LightGCN as PyGLightGCN
    from torch_geometric.utils import to_torch_csr_tensor

    model = create_model("lightgcn", test_config=True).fit(tiny_split)
    train, num_users = tiny_split.train, tiny_split.num_users
    edge_index = model._graph(train.user, train.movie, num_users)
    num_nodes = num_users + tiny_split.num_movies
    reference = PyGLightGCN(num_nodes, model.config.dim, model.config.num_layers)  # normalises in every layer
    reference.load_state_dict(model.module.state_dict())
    expected = reference.get_embedding(to_torch_csr_tensor(edge_index, size=(num_nodes, num_nodes)))
    got = model._embedding_of_graph(model._adjacency(edge_index, num_nodes))
    torch.testing.assert_close(got, expected)
    weights = torch.rand_like(expected)
    model.module.zero_grad(set_to_none=True)  # the fit leaves its last step's gradient
    (expected * weights).sum().backward()
    (got * weights).sum().backward()
    torch.testing.assert_close(model.module.embedding.weight.grad, reference.embedding.weight.grad)


def test_popularity_ranks_by_training_count(tiny_split):
    model = create_model("popularity").fit(tiny_split)
    count = torch.bincount(tiny_split.train.movie, minlength=tiny_split.num_movies)
    assert torch.equal(model.score_matrix([0], clip=False)[0].floor().long(), count)


@pytest.mark.parametrize(
    ("name", "overrides", "key"),
    [
        ("ease", {"reg": 0.0}, "reg"),
        ("ease", {"reg_grid": ()}, "reg_grid"),
        ("ease", {"selection_metric": "ndcg@k"}, "cutoff"),
        ("lightgcn", {"dim": 0}, "dim"),
        ("lightgcn", {"lr": -1.0}, "lr"),
        ("lightgcn", {"device": "gpu7"}, "device"),
        ("popularity", {"min_rating": -1.0}, "min_rating"),
    ],
)
def test_peer_configs_refuse_bad_values(name, overrides, key):
    from gnnrec.models import create_model

    with pytest.raises(ValueError, match=key):
        create_model(name, overrides)
