"""GLocal-K: kernel layers, the objective against a literal transcription of the reference graph, training."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gnnrec.config import resolve_preset
from gnnrec.data.split import RatingEdges, RatingSplit
from gnnrec.evaluation import evaluate
from gnnrec.models import RatingModel, get_model_class
from gnnrec.models.glocal_k import FALLBACK_PRESET, PRESETS, GLocalK, GLocalKConfig
from gnnrec.nn.glocal_k import GLocalKNetwork, RatingMatrix
from gnnrec.nn.kernel import GlobalKernel, KernelLayer, correlate_same, local_kernel
from gnnrec.nn.sparse import ConstantSparse, coo_to_csr, row_pointer


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
        KernelLayer(6, 4, activation="swish")


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
    matrix = RatingMatrix(edges, items, users, torch.device("cpu"))
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
    terms, _, hidden = network.objective(matrix, stage, 20.0, 0.01)
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
        full_terms, completed, _ = network.objective(matrix, stage, 20.0, 0.01, full=True)
        # from the hidden layer of an earlier pass at the same weights: the same numbers
        reused_terms, reused, _ = network.objective(matrix, stage, 20.0, 0.01, full=True, hidden=hidden)
    torch.testing.assert_close(completed, pred.detach())
    torch.testing.assert_close(full_terms["total"], terms["total"].detach())
    assert torch.equal(reused, completed) and torch.equal(reused_terms["total"], full_terms["total"])


def test_config_validation_and_presets():
    assert GLocalKConfig().lambda_2 is None  # unset: from the split's dataset preset at fit time
    assert GLocalKConfig().resolved("ml-100k")[0] == GLocalKConfig.preset_config("ml-100k", preset="auto")
    ml1m = GLocalKConfig.preset_config("ML-1M", seed=3)
    assert (ml1m.lambda_2, ml1m.lambda_s, ml1m.dot_scale, ml1m.seed) == (70.0, 0.018, 0.5, 3)
    assert (ml1m.pretrain_iterations, ml1m.finetune_iterations, ml1m.pretrain_epochs, ml1m.finetune_epochs) == (
        50,
        10,
        20,
        30,
    )
    assert GLocalKConfig.preset_config("douban").lambda_s == PRESETS["douban"]["lambda_s"] == 0.022
    with pytest.raises(ValueError, match="no GLocal-K preset"):
        GLocalKConfig.preset_config("netflix")
    assert GLocalK(hidden_sizes="[8, 4]").config.hidden_sizes == (8, 4)  # --set style strings
    assert GLocalK(lambda_2="none", dot_scale="2").config.dot_scale == 2.0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"protocol": "cheat"}, "protocol"),
        ({"selection": "best_test"}, "selection"),
        ({"selection_metric": "accuracy"}, "selection metric"),
        ({"selection_metric": "ndcg@x"}, "cutoff"),
        ({"hidden_sizes": ()}, "hidden_sizes"),
        ({"hidden_sizes": ("a",)}, "hidden_sizes"),
        ({"kernel_dim": 0}, "kernel_dim"),
        ({"global_kernel_size": 4}, "global_kernel_size"),
        ({"pretrain_epochs": 0, "finetune_epochs": 0}, "cannot both be 0"),
        ({"finetune_epochs": -1}, "finetune_epochs"),
        ({"pretrain_iterations": 0}, "pretrain_iterations"),
        ({"finetune_iterations": 1.5}, "finetune_iterations must be an integer"),
        ({"lbfgs_history": 0}, "lbfgs_history"),
        ({"lambda_2": -1.0}, "lambda_2"),
        ({"lambda_s": float("nan")}, "lambda_s"),
        ({"dot_scale": float("inf")}, "dot_scale"),
        ({"seed": -1}, "seed"),
        ({"preset": "netflix"}, "unknown preset"),
        ({"device": "gpu0"}, "device"),
    ],
)
def test_config_rejects_bad_values(overrides, match):
    with pytest.raises(ValueError, match=match):
        GLocalKConfig(**overrides)


def test_unset_fields_follow_the_split_dataset_preset(tmp_path):
    from gnnrec.data import MovieLens1M
    from gnnrec.testing import write_ml1m_fixture

    source = write_ml1m_fixture(tmp_path / "ml-1m", num_users=30, num_movies=25, ratings_per_user=8)
    split = MovieLens1M(source_dir=source, root=tmp_path / "cache", log=False).rating_split()
    assert split.dataset == "ml-1m"
    fast = {"hidden_sizes": (8,), "pretrain_epochs": 1, "finetune_epochs": 1, "device": "cpu"}
    model = GLocalK(**fast, pretrain_iterations=2, lambda_2=5.0).fit(split)
    assert model.preset_name == "ml-1m" and "preset ml-1m" in model.protocol_note
    used = model.fit_config
    assert (used.lambda_s, used.dot_scale, used.finetune_iterations) == (0.018, 0.5, 10)  # ML-1M's
    assert (used.lambda_2, used.pretrain_iterations, used.pretrain_epochs) == (5.0, 2, 1)  # explicit ones win
    assert model.config.lambda_s is None  # the user's config is left as given
    forced = GLocalK(**fast, preset="douban", pretrain_iterations=2, finetune_iterations=2).fit(split)
    assert forced.preset_name == "douban" and forced.fit_config.dot_scale == 2.0


def test_datasets_without_a_preset_use_the_fallback(tiny_split, monkeypatch):
    monkeypatch.setattr(RatingSplit, "dataset", property(lambda self: "flixster"), raising=False)
    model = GLocalK(GLocalK.test_config()).fit(tiny_split)
    assert model.preset_name == FALLBACK_PRESET == "ml-100k"
    assert model.fit_config.lambda_2 == PRESETS["ml-100k"]["lambda_2"]


def test_preset_helper_fills_only_unset_fields():
    @dataclasses.dataclass
    class Toy:
        a: int | None = None
        b: int | None = None

    presets = {"x": {"a": 1, "b": 2}, "y": {"a": 3, "b": 4}}
    assert resolve_preset(Toy(b=9), presets, "Y", "x") == (Toy(3, 9), "y")
    assert resolve_preset(Toy(), presets, "unknown", "x") == (Toy(1, 2), "x")
    assert resolve_preset(Toy(), presets, "y", "x", preset="x") == (Toy(1, 2), "x")
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_preset(Toy(), presets, "y", "x", preset="z")
    with pytest.raises(ValueError, match="unknown field"):
        resolve_preset(Toy(), {"x": {"c": 1}}, "x", "x")


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
    assert [h["phase"] for h in history] == ["pretrain"] * 3 + ["finetune"] * 3
    assert [h["epoch"] for h in history] == [1, 2, 3] * 2
    assert [h["seconds"] for h in history] == sorted(h["seconds"] for h in history)  # elapsed since fit start
    pretrain_losses = [h["train_loss"] for h in history[:3]]
    assert pretrain_losses[-1] < pretrain_losses[0]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for h in history:
        assert h["train_loss"] == pytest.approx(h["loss_squared_error"] + h["loss_l2"] + h["loss_sparse"], rel=1e-5)
        assert not any(key.startswith("test_") for key in h)
        assert h["protocol"] == "honest" and h["val_rmse"] > 0 and h["train_rmse"] > 0
    best = min(history[3:], key=lambda h: h["val_rmse"])
    assert model.selected == {"phase": "finetune", "epoch": best["epoch"], "step": 3 + best["epoch"]} | {
        "criterion": "val_rmse"
    }
    assert model.protocol_note == (
        f"honest protocol (best validation rmse epoch: finetune epoch {best['epoch']}; preset ml-100k)"
    )
    assert model.paper_metrics == {}
    val = evaluate(model, tiny_split, part="val", metrics=["rmse"]).metrics["rmse"]
    assert val == pytest.approx(best["val_rmse"], rel=1e-6)
    for stage in ("pretrain", "finetune"):
        for key in ("rmse_train", "rmse_val", "loss", "loss_squared_error", "loss_l2", "loss_sparse"):
            assert len(logger.scalars[f"glocal_k/{stage}/{key}"]) == 3
    assert "glocal_k/finetune/local_kernel_0" in logger.histograms


def test_selection_metric_picks_the_best_validation_epoch_of_that_metric(tiny_split):
    config = dataclasses.replace(GLocalK.test_config(), finetune_epochs=4, selection_metric="ndcg@5")
    model = GLocalK(config).fit(tiny_split)
    finetune = model.history[-4:]
    assert all({"val_rmse", "val_ndcg@5"} <= set(h) for h in finetune)
    best = max(finetune, key=lambda h: h["val_ndcg@5"])  # first of ties, as the loop keeps strict improvements
    assert model.selected["criterion"] == "val_ndcg@5" and model.selected["epoch"] == best["epoch"]
    assert "best validation ndcg@5 epoch" in model.protocol_note


def test_paper_protocol_keeps_each_metric_best_test_epoch_and_is_labelled(tiny_split):
    model = GLocalK(GLocalK.test_config(), protocol="paper", finetune_epochs=5).fit(tiny_split)
    finetune = [h for h in model.history if h["phase"] == "finetune"]
    assert all({"test_rmse", "test_mae", "test_ndcg"} <= set(h) and h["protocol"] == "paper" for h in model.history)
    expected = {
        "rmse": min(finetune, key=lambda h: h["test_rmse"]),
        "mae": min(finetune, key=lambda h: h["test_mae"]),
        "ndcg": max(finetune, key=lambda h: h["test_ndcg"]),
    }
    assert set(model.paper_metrics) == {"rmse", "mae", "ndcg"}
    for name, row in expected.items():
        value, epoch = model.paper_metrics[name]
        assert value == row[f"test_{name}"] and epoch == row["epoch"]
        assert f"{name} {value:.4f} @ finetune epoch {epoch}" in model.protocol_note
    assert model.selected["criterion"] == "test_rmse" and model.selected["epoch"] == expected["rmse"]["epoch"]
    assert model.protocol_note.startswith("paper protocol (best test rmse epoch")
    assert "optimistic" in model.protocol_note
    # the predictions kept are the best test-RMSE epoch's
    rmse = evaluate(model, tiny_split, part="test", metrics=["rmse"]).metrics["rmse"]
    assert rmse == pytest.approx(model.paper_metrics["rmse"][0], rel=1e-6)


def test_each_epoch_reuses_the_last_evaluation_and_fits_as_a_fresh_pass_would(tiny_split, monkeypatch):
    from gnnrec.models.glocal_k import FlatObjective

    found = []
    extra_at = FlatObjective.extra_at

    def spy(self, x):
        value = extra_at(self, x)
        found.append(value is not None)
        return value

    monkeypatch.setattr(FlatObjective, "extra_at", spy)
    reused = GLocalK(GLocalK.test_config()).fit(tiny_split)
    assert found and any(found)
    monkeypatch.setattr(FlatObjective, "extra_at", lambda self, x: None)  # every epoch's matrix from a fresh pass
    fresh = GLocalK(GLocalK.test_config()).fit(tiny_split)
    assert torch.equal(reused.score_matrix(), fresh.score_matrix())
    drop = {"seconds"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in reused.history] == [
        {k: v for k, v in r.items() if k not in drop} for r in fresh.history
    ]


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
    assert loaded.preset_name == "ml-100k" and loaded.fit_config == first.fit_config
    for name, value in first.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], value)


def test_a_scale_from_zero_does_not_collide_with_the_missing_marker(tiny_split):
    shifted = tiny_split.map_ratings(1.0, -1.0)  # 0..4: a 0 rating must not read as "unobserved"
    model = GLocalK(GLocalK.test_config()).fit(shifted)
    scores = model.score_matrix()
    assert scores.min() >= 0 and scores.max() <= 4
    observed = model.predict(shifted.train.user, shifted.train.movie)
    torch.testing.assert_close(
        observed,
        GLocalK(GLocalK.test_config()).fit(tiny_split).predict(tiny_split.train.user, tiny_split.train.movie) - 1.0,
        atol=1e-4,
        rtol=0,
    )


def test_sparse_helpers_equal_their_dense_reference():
    gen = torch.Generator().manual_seed(0)
    row, col = torch.tensor([2, 0, 2, 1, 0]), torch.tensor([1, 3, 0, 2, 0])
    values = torch.randn(5, generator=gen, dtype=torch.float64)
    dense = torch.zeros(3, 4, dtype=torch.float64).index_put_((row, col), values)
    csr = coo_to_csr(row, col, values, (3, 4))
    assert csr.layout == torch.sparse_csr and torch.equal(csr.to_dense(), dense)
    torch.testing.assert_close(row_pointer(torch.tensor([0, 0, 2]), 4), torch.tensor([0, 2, 2, 3, 3]))
    x = torch.randn(4, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    product = ConstantSparse(csr, coo_to_csr(col, row, values, (4, 3))) @ x
    (grad,) = torch.autograd.grad((product**2).sum(), x)
    (expected_grad,) = torch.autograd.grad(((dense @ x) ** 2).sum(), x)
    torch.testing.assert_close(product, dense @ x)
    torch.testing.assert_close(grad, expected_grad)
    with pytest.raises(ValueError, match="transpose"):
        ConstantSparse(csr, csr)


def test_sparse_rating_matrix_feeds_the_layers_as_the_dense_matrix():
    network, matrix, ratings, _ = _toy_problem()
    layer, global_kernel = network.layers[0], network.global_kernel
    torch.testing.assert_close(layer(matrix), layer(ratings))
    summary = torch.randn(ratings.shape[0], dtype=torch.float64)
    torch.testing.assert_close(global_kernel(matrix, summary), global_kernel(ratings, summary))
    kernel = torch.randn(3, 3, dtype=torch.float64)
    torch.testing.assert_close(matrix.correlate_same(kernel), correlate_same(ratings, kernel))
    output = network.layers[-1]
    hidden = torch.randn(ratings.shape[0], output.in_features, dtype=torch.float64)
    torch.testing.assert_close(output.mean_output(hidden), output(hidden).mean(1))
    with pytest.raises(ValueError, match="identity"):
        layer.mean_output(ratings)


def test_fit_refuses_when_the_dense_matrices_do_not_fit(tiny_split, monkeypatch):
    import gnnrec.models.glocal_k as glocal_module

    need = glocal_module.fit_memory_estimate(59_047, 162_541, 0, 10)
    assert need == 4 * glocal_module.DENSE_MATRIX_COPIES * 59_047 * 162_541  # ML-25M: about a terabyte
    assert glocal_module.available_memory(torch.device("cpu")) > 0
    monkeypatch.setattr(glocal_module, "available_memory", lambda device: 1000)
    with pytest.raises(MemoryError, match=r"(?s)GLocal-K needs about .* GiB on cpu .* but only 0\.0 GiB is available"):
        GLocalK(GLocalK.test_config()).fit(tiny_split)
    monkeypatch.setattr(glocal_module, "available_memory", lambda device: 2**40)
    assert GLocalK(GLocalK.test_config()).fit(tiny_split).history


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_fit_stops_with_a_clear_error_when_predictions_turn_non_finite(tiny_split, monkeypatch, bad):
    objective = GLocalKNetwork.objective

    def one_bad_entry(self, matrix, stage, lambda_2, lambda_s, full=False, hidden=None):
        value = objective(self, matrix, stage, lambda_2, lambda_s, full=full, hidden=hidden)
        if value.completed is None:
            return value
        completed = value.completed.clone()
        completed[-1, -1] = bad
        return value._replace(completed=completed)

    monkeypatch.setattr(GLocalKNetwork, "objective", one_bad_entry)
    with pytest.raises(FloatingPointError, match="diverged in pretrain epoch 1"):
        GLocalK(GLocalK.test_config()).fit(tiny_split)


def test_a_refit_reuses_the_selection_fits_pretraining_and_only_fine_tunes(tiny_split):
    config = dataclasses.replace(GLocalK.test_config(), selection="last", refit_continue_share=0.0)
    selection = GLocalK(config, seed=3).fit(tiny_split)
    assert selection.pretrained_state is not None and selection.selected["phase"] == "finetune"
    # the same schedule on the same data, started from the selection fit's pre-training, repeats its fine-tuning
    # bit for bit, without pre-training again
    refit = GLocalK(config, seed=3)
    assert refit.warm_start_from(selection)
    refit.fit(tiny_split)
    assert refit.reused_pretraining and "pre-training reused" in refit.protocol_note
    assert [row["phase"] for row in refit.history] == ["finetune"] * config.finetune_epochs
    assert torch.equal(refit.score_matrix(), selection.score_matrix())
    for name, value in selection.pretrained_state.items():
        assert torch.equal(refit.pretrained_state[name], value)
    # a second fit of the same instance starts from scratch again
    refit.fit(tiny_split)
    assert not refit.reused_pretraining and refit.history[0]["phase"] == "pretrain"


def test_pretraining_is_reused_only_when_asked_and_compatible(tiny_split):
    config = dataclasses.replace(GLocalK.test_config(), refit_continue_share=0.0)
    selection = GLocalK(config, seed=3).fit(tiny_split)
    assert not GLocalK(config, seed=3, reuse_pretraining=False).warm_start_from(selection)
    assert not GLocalK(config, seed=3).warm_start_from(create_mf(tiny_split))
    pretrain_only = GLocalK(config, seed=3, finetune_epochs=0).fit(tiny_split)
    assert pretrain_only.pretrained_state is None
    assert not GLocalK(config, seed=3).warm_start_from(pretrain_only)
    for field, value in (("lambda_2", 3.0), ("seed", 4), ("pretrain_epochs", 1)):
        refit = GLocalK(config, **{"seed": 3, field: value})
        assert refit.warm_start_from(selection)
        with pytest.raises(ValueError, match=f"cannot reuse pre-training: {field} is"):
            refit.fit(tiny_split)
    with pytest.raises(ValueError, match="reuse_pretraining must be true or false"):
        GLocalKConfig(reuse_pretraining="yes")


def test_a_continued_refit_takes_up_the_selected_fine_tuning(tiny_split):
    config = dataclasses.replace(GLocalK.test_config(), selection="last")
    selection = GLocalK(config, seed=3, finetune_epochs=2).fit(tiny_split)
    longer = GLocalK(config, seed=3, finetune_epochs=4).fit(tiny_split)
    # each epoch starts L-BFGS-B afresh from the weights, so 2 epochs continued from the selection fit's last
    # fine-tuned weights are the last 2 of a 4-epoch fit, bit for bit
    refit = GLocalK(config, seed=3, finetune_epochs=4, refit_continue_share=0.5)
    assert refit.warm_start_from(selection)
    refit.fit(tiny_split)
    assert refit.continued_selection and refit.reused_pretraining and refit.pretrained_state is None
    assert [row["phase"] for row in refit.history] == ["finetune"] * 2
    assert torch.equal(refit.score_matrix(), longer.score_matrix())
    assert "continued the selection fit's fine-tuning" in refit.protocol_note
    assert refit.warm_start_note == "the refit continues the selection fit's fine-tuning for 50% of the selected epochs"
    # the state is taken once: the next fit starts from scratch
    refit.fit(tiny_split)
    assert not refit.continued_selection and refit.history[0]["phase"] == "pretrain"


def test_the_continued_share_follows_the_selection_fits_preset_unless_set(tiny_split, monkeypatch):
    from gnnrec.models import glocal_k_config

    selection = GLocalK(GLocalK.test_config(), seed=3).fit(tiny_split)
    assert selection.preset_name == "ml-100k" and GLocalK(GLocalK.test_config()).continue_share(selection) == 0.25
    monkeypatch.setitem(glocal_k_config.PRESETS, "ml-100k", {**glocal_k_config.PRESETS["ml-100k"],
                                                             "refit_continue_share": 0.75})  # fmt: skip
    selection = GLocalK(GLocalK.test_config(), seed=3).fit(tiny_split)
    assert GLocalK(GLocalK.test_config()).continue_share(selection) == 0.75
    assert GLocalK(GLocalK.test_config(), refit_continue_share=0.0).continue_share(selection) == 0.0


def test_a_continuation_is_refused_from_a_fit_with_other_settings(tiny_split):
    config = GLocalK.test_config()
    selection = GLocalK(config, seed=3).fit(tiny_split)
    for field, value in (("finetune_iterations", 2), ("lambda_s", 0.5), ("pretrain_epochs", 1)):
        refit = GLocalK(config, **{"seed": 3, "refit_continue_share": 0.5, field: value})
        assert refit.warm_start_from(selection)
        with pytest.raises(ValueError, match=f"cannot continue the selection fit: {field} is"):
            refit.fit(tiny_split)
    # how the refit starts is its own setting: the selected values do not carry the selection fit's share
    assert "refit_continue_share" not in selection.refit_overrides()
    # what selection sets, the epoch count and the share itself may differ
    refit = GLocalK(config, seed=3, refit_continue_share=1.0, finetune_epochs=1, selection="last")
    assert refit.warm_start_from(selection)
    refit.fit(tiny_split)
    assert refit.continued_selection and len(refit.history) == 1
    for bad in (-0.1, 1.5, float("nan"), True, "half"):
        with pytest.raises(ValueError, match="refit_continue_share.* must be a"):
            GLocalKConfig(refit_continue_share=bad)


def create_mf(split):
    from gnnrec.models.mf import MF

    return MF(MF.test_config()).fit(split)
