"""GLocal-K: kernel layers, the objective against a literal transcription of the reference graph, training."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gnnrec.data.split import RatingEdges, RatingSplit
from gnnrec.models import RatingModel, get_model_class
from gnnrec.models.glocal_k import PRESETS, GLocalK, GLocalKConfig, GLocalKNetwork, _RatingMatrix
from gnnrec.nn.kernel import GlobalKernel, KernelLayer, correlate_same, local_kernel


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matrices gain nothing from threads, and on a busy machine OpenMP's waiting makes them slow."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def direct_local_kernel(u, v):
    return torch.clamp(1.0 - torch.linalg.norm(u - v, dim=2) ** 2, min=0.0)


def test_local_kernel_formula_and_clamp():
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(7, 1, 3, generator=gen, dtype=torch.float64) * 0.5
    v = torch.randn(1, 4, 3, generator=gen, dtype=torch.float64) * 0.5
    kernel = local_kernel(u, v)
    assert kernel.shape == (7, 4)
    expected = torch.tensor(
        [[max(0.0, 1.0 - float(((u[i, 0] - v[0, j]) ** 2).sum())) for j in range(4)] for i in range(7)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(kernel, expected)
    assert (kernel == 0).any() and (kernel > 0).any()  # both sides of the clamp are exercised
    with pytest.raises(ValueError, match="kernel dimension"):
        local_kernel(u, torch.zeros(1, 4, 2))


def test_kernel_layer_shapes_forward_and_regularization():
    layer = KernelLayer(6, 4, kernel_dim=5, generator=torch.Generator().manual_seed(0))
    assert layer.weight.shape == (6, 4) and layer.u.shape == (6, 1, 5) and layer.v.shape == (1, 4, 5)
    assert layer.bias.shape == (4,)
    limit = (6.0 / (6 + 4)) ** 0.5
    assert layer.weight.abs().max() <= limit and layer.bias.abs().max() <= (3.0 / 4) ** 0.5
    assert layer.u.abs().max() <= 2e-3 and layer.v.abs().max() <= 2e-3  # truncated at 2σ, σ = 1e-3
    with torch.no_grad():
        layer.u.normal_(0, 0.5)
        layer.v.normal_(0, 0.5)
    x = torch.randn(3, 6)
    what = direct_local_kernel(layer.u, layer.v)
    expected = torch.sigmoid(x @ (layer.weight * what) + layer.bias)
    torch.testing.assert_close(layer(x), expected)
    l2, sparse = layer.regularization()
    torch.testing.assert_close(l2, 0.5 * (layer.weight**2).sum())
    torch.testing.assert_close(sparse, 0.5 * (what**2).sum())
    identity = KernelLayer(6, 4, activation="identity")
    torch.testing.assert_close(identity(x), x @ identity.effective_weight() + identity.bias)
    with pytest.raises(ValueError, match="input features"):
        layer(torch.randn(3, 5))
    with pytest.raises(ValueError, match="activation"):
        KernelLayer(6, 4, activation="tanh")


def test_global_kernel_is_tf_same_cross_correlation():
    gen = torch.Generator().manual_seed(0)
    matrix = torch.randn(5, 4, generator=gen)
    kernel = torch.randn(3, 3, generator=gen)
    torch.testing.assert_close(
        correlate_same(matrix, kernel), F.conv2d(matrix[None, None], kernel[None, None], padding=1)[0, 0]
    )
    # out[i, j] = Σ K[a, b] · R[i + a − 1, j + b − 1]: a lone 1 at K[0, 0] moves every entry down and right.
    shift = torch.zeros(3, 3)
    shift[0, 0] = 1.0
    moved = correlate_same(matrix, shift)
    torch.testing.assert_close(moved[1:, 1:], matrix[:-1, :-1])
    assert (moved[0] == 0).all() and (moved[:, 0] == 0).all()

    layer = GlobalKernel(5, 3, dot_scale=2.0, generator=gen)
    summary = torch.randn(5, generator=gen)
    torch.testing.assert_close(layer.kernel(summary), (2.0 * summary @ layer.weight).view(3, 3))
    torch.testing.assert_close(layer(matrix, summary), F.relu(correlate_same(matrix, layer.kernel(summary))))
    with pytest.raises(ValueError, match="odd"):
        GlobalKernel(5, 2)


def _toy_problem(seed=0):
    gen = torch.Generator().manual_seed(seed)
    items, users = 9, 8
    mask = torch.rand(items, users, generator=gen) < 0.35
    ratings = torch.randint(1, 6, (items, users), generator=gen).double() * mask
    observed = mask.nonzero()
    edges = RatingEdges(observed[:, 1], observed[:, 0], ratings[mask])
    network = GLocalKNetwork(items, users, (5, 4), 3, 3, 1.5, torch.Generator().manual_seed(1)).double()
    with torch.no_grad():  # spread the embeddings so that the local kernels are far from all-ones
        for layer in network.layers:
            layer.u.normal_(0, 0.4, generator=gen)
            layer.v.normal_(0, 0.4, generator=gen)
    matrix = _RatingMatrix(edges, items, users, torch.device("cpu"))
    matrix.values = matrix.values.double()
    matrix.csr, matrix.csr_t, matrix.pattern = matrix.csr.double(), matrix.csr_t.double(), matrix.pattern.double()
    matrix._patches = {3: tuple(p.double() for p in matrix.patches(3))}
    return network, matrix, ratings, mask


def _reference_objective(network, ratings, mask, stage, lambda_2, lambda_s, dot_scale):
    """The authors' graph written out densely: local kernels from norms, conv2d, masked l2_loss."""

    def autoencoder(x):
        for i, layer in enumerate(network.layers):
            x = x @ (layer.weight * direct_local_kernel(layer.u, layer.v)) + layer.bias
            x = torch.sigmoid(x) if i < len(network.layers) - 1 else x
        return x

    inputs = ratings
    if stage == "finetune":
        summary = autoencoder(ratings).mean(dim=1)
        kernel = (summary[None] @ network.global_kernel.weight * dot_scale).view(1, 1, 3, 3)
        inputs = F.relu(F.conv2d(ratings[None, None], kernel, padding=1))[0, 0]
    pred = autoencoder(inputs)
    squared_error = 0.5 * ((mask * (ratings - pred)) ** 2).sum()
    l2 = lambda_2 * sum(0.5 * (layer.weight**2).sum() for layer in network.layers)
    sparse = lambda_s * sum(0.5 * (direct_local_kernel(layer.u, layer.v) ** 2).sum() for layer in network.layers)
    return {"squared_error": squared_error, "l2": l2, "sparse": sparse}, pred


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_objective_and_gradients_equal_the_dense_reference(stage):
    network, matrix, ratings, mask = _toy_problem()
    terms, _ = network.objective(matrix, stage, 20.0, 0.01)
    expected, pred = _reference_objective(network, ratings, mask, stage, 20.0, 0.01, 1.5)
    for name in ("squared_error", "l2", "sparse"):
        torch.testing.assert_close(terms[name], expected[name])
    torch.testing.assert_close(terms["total"], sum(expected.values()))
    assert expected["sparse"].item() > 0 and expected["l2"].item() > 0
    parameters = network.all_parameters()
    grads = torch.autograd.grad(terms["total"], parameters, allow_unused=True)
    expected_grads = torch.autograd.grad(sum(expected.values()), parameters, allow_unused=True)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        if expected_grad is None:  # the global kernel does not enter pre-training
            assert grad is None and stage == "pretrain"
        else:
            torch.testing.assert_close(grad, expected_grad)
    with torch.no_grad():
        full_terms, completed = network.objective(matrix, stage, 20.0, 0.01, full=True)
    torch.testing.assert_close(completed, pred.detach())
    torch.testing.assert_close(full_terms["total"], terms["total"].detach())


def test_config_validation_and_presets():
    assert GLocalKConfig() == GLocalKConfig.preset("ml-100k")
    ml1m = GLocalKConfig.preset("ML-1M", seed=3)
    assert (ml1m.lambda_2, ml1m.lambda_s, ml1m.dot_scale, ml1m.seed) == (70.0, 0.018, 0.5, 3)
    assert (ml1m.pretrain_iterations, ml1m.finetune_iterations, ml1m.pretrain_epochs, ml1m.finetune_epochs) == (
        50,
        10,
        20,
        30,
    )
    assert GLocalKConfig.preset("douban").lambda_s == PRESETS["douban"]["lambda_s"] == 0.022
    with pytest.raises(ValueError, match="no GLocal-K preset"):
        GLocalKConfig.preset("netflix")
    with pytest.raises(ValueError, match="protocol"):
        GLocalKConfig(protocol="cheat")
    with pytest.raises(ValueError, match="selection"):
        GLocalKConfig(selection="best_test")
    with pytest.raises(ValueError, match="hidden_sizes"):
        GLocalKConfig(hidden_sizes=())
    with pytest.raises(ValueError, match="global_kernel_size"):
        GLocalKConfig(global_kernel_size=4)
    with pytest.raises(ValueError, match="cannot both be 0"):
        GLocalKConfig(pretrain_epochs=0, finetune_epochs=0)
    assert GLocalK(hidden_sizes="[8, 4]").config.hidden_sizes == (8, 4)  # --set style strings


class _RecordingLogger:
    def __init__(self):
        self.scalars, self.histograms = {}, []

    def add_scalar(self, tag, value, step):
        self.scalars.setdefault(tag, []).append((step, value))

    def add_histogram(self, tag, values, step):
        self.histograms.append(tag)


def test_fit_decreases_loss_logs_and_never_reads_test_when_honest(tiny_split, monkeypatch):
    def no_test(self):
        raise AssertionError("the honest protocol read the test ratings")

    monkeypatch.setattr(RatingSplit, "test", property(no_test))
    config = dataclasses.replace(GLocalK.test_config(), pretrain_epochs=3, finetune_epochs=3)
    logger = _RecordingLogger()
    model = GLocalK(config).fit(tiny_split, logger=logger)
    history = model.history
    assert [h["stage"] for h in history] == ["pretrain"] * 3 + ["finetune"] * 3
    assert [h["epoch"] for h in history] == list(range(1, 7))
    pretrain_losses = [h["loss"] for h in history[:3]]
    assert pretrain_losses[-1] < pretrain_losses[0]
    assert history[-1]["loss"] < history[0]["loss"]
    for h in history:
        assert h["loss"] == pytest.approx(h["loss_squared_error"] + h["loss_l2"] + h["loss_sparse"], rel=1e-5)
        assert "test_rmse" not in h and h["protocol"] == "honest" and h["val_rmse"] > 0
    best = min(history[3:], key=lambda h: h["val_rmse"])
    assert model.selected == {"stage": "finetune", "stage_epoch": best["stage_epoch"], "epoch": best["epoch"]} | {
        "criterion": "val_rmse"
    }
    assert model.protocol_note == f"honest protocol (best validation epoch: finetune epoch {best['stage_epoch']})"
    for stage in ("pretrain", "finetune"):
        for key in ("rmse_train", "rmse_val", "loss", "loss_squared_error", "loss_l2", "loss_sparse"):
            assert len(logger.scalars[f"glocal_k/{stage}/{key}"]) == 3
    assert "glocal_k/finetune/local_kernel_0" in logger.histograms


def test_paper_protocol_selects_on_test_and_is_labelled(tiny_split):
    model = GLocalK(GLocalK.test_config(), protocol="paper", finetune_epochs=3).fit(tiny_split)
    finetune = [h for h in model.history if h["stage"] == "finetune"]
    assert all("test_rmse" in h and h["protocol"] == "paper" for h in model.history)
    best = min(finetune, key=lambda h: h["test_rmse"])
    assert model.selected["criterion"] == "test_rmse" and model.selected["stage_epoch"] == best["stage_epoch"]
    assert model.protocol_note.startswith("paper protocol (best test epoch")
    test = tiny_split.test
    rmse = float(((model.predict(test.user, test.movie) - test.rating.float()) ** 2).mean().sqrt())
    assert rmse == pytest.approx(best["test_rmse"], rel=1e-5)


def test_same_seed_same_predictions_and_save_load(tiny_split, tmp_path):
    config = GLocalK.test_config()
    first = GLocalK(config, seed=5).fit(tiny_split)
    second = GLocalK(config, seed=5).fit(tiny_split)
    other = GLocalK(config, seed=6).fit(tiny_split)
    assert torch.equal(first.score_matrix(), second.score_matrix())
    assert not torch.equal(first.score_matrix(), other.score_matrix())
    scores = first.score_matrix()
    assert scores.min() >= tiny_split.rating_min and scores.max() <= tiny_split.rating_max
    users = torch.tensor([0, 3, 7])
    movies = torch.tensor([5, 0, 59])
    torch.testing.assert_close(first.predict(users, movies), scores[users, movies])
    top, top_scores = first.recommend(users, k=5)
    assert not first.seen_mask(users).gather(1, top).any()
    torch.testing.assert_close(top_scores, scores[users[:, None], top])

    path = first.save(tmp_path / "glocal_k.pt")
    loaded = RatingModel.load(path, split=tiny_split)
    assert isinstance(loaded, GLocalK) and get_model_class("glocal-k") is GLocalK
    assert torch.equal(loaded.score_matrix(), scores)
    assert loaded.protocol_note == first.protocol_note and loaded.history == first.history
    for name, value in first.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], value)


def test_rejects_a_scale_that_collides_with_the_missing_marker(tiny_split, monkeypatch):
    monkeypatch.setattr(RatingSplit, "rating_levels", property(lambda self: torch.tensor([0.0, 1.0, 2.0])))
    with pytest.raises(ValueError, match="ratings must be positive"):
        GLocalK(GLocalK.test_config()).fit(tiny_split)
