"""Every registered model honours the RatingModel contract; plus checks specific to the baselines.

Each model is built with ``create_model(name, test_config=True)``: its ``test_config()``, a small, fast
config (the default config unless the model overrides it).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections import defaultdict

import pytest
import torch

from gnnrec.data import RATES, MovieLens100K, RatingSplit
from gnnrec.evaluation import evaluate
from gnnrec.models import NotFittedError, RatingModel, available_models, create_model, get_model_class
from gnnrec.models.baselines import solve_biases

MODELS = available_models()


def make_model(name: str) -> RatingModel:
    return create_model(name, test_config=True)


class RecordingLogger:
    """Stands in for a TensorBoard SummaryWriter: records every ``add_*`` call by tag."""

    def __init__(self) -> None:
        self.calls: dict[str, list] = defaultdict(list)

    def __getattr__(self, method: str):
        if not method.startswith("add_"):
            raise AttributeError(method)

        def record(*args, **kwargs) -> None:
            tag = args[0] if args and isinstance(args[0], str) else kwargs.get("tag", method)
            self.calls[tag].append((args[1:], kwargs))

        return record


@pytest.fixture(scope="module")
def split(u1_split) -> RatingSplit:
    """The session's ``u1_split`` (same data as ``tiny_split``), so each model is fitted once per module."""
    return u1_split


@pytest.fixture(scope="module")
def other_split(ml100k_fixture_dir, tmp_path_factory) -> RatingSplit:
    root = tmp_path_factory.mktemp("conformance_other")
    return MovieLens100K(root, split="u2", source_dir=ml100k_fixture_dir, log=False).rating_split()


@pytest.fixture(scope="module")
def fitted(split):
    """name -> (model fitted on ``split`` with a recording logger, the logger)."""
    cache: dict[str, tuple[RatingModel, RecordingLogger]] = {}

    def get(name: str) -> tuple[RatingModel, RecordingLogger]:
        if name not in cache:
            logger = RecordingLogger()
            model = make_model(name)
            assert model.fit(split, logger=logger) is model
            cache[name] = (model, logger)
        return cache[name]

    return get


def same_history(a: list[dict], b: list[dict]) -> bool:
    """Equal histories, counting NaN (e.g. a metric without a qualifying user) as equal to NaN."""

    def same(x, y) -> bool:
        return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))

    return len(a) == len(b) and all(
        ea.keys() == eb.keys() and all(same(ea[key], eb[key]) for key in ea) for ea, eb in zip(a, b, strict=True)
    )


def rescaled(split: RatingSplit, low: float = 1.0, high: float = 100.0) -> RatingSplit:
    """The same ratings mapped affinely from the split's scale onto ``low..high`` (a new fingerprint)."""
    graph = copy.deepcopy(split.graph)
    old_low, old_high = split.rating_min, split.rating_max

    def scale(r: torch.Tensor) -> torch.Tensor:
        return low + (r - old_low) * (high - low) / (old_high - old_low)

    store = graph[RATES]
    for part in ("train", "val", "test"):
        store[f"{part}_edge_label"] = scale(store[f"{part}_edge_label"])
    store.rating = scale(store.rating)
    graph["movie", "rated_by", "user"].rating = scale(graph["movie", "rated_by", "user"].rating)
    graph.rating_levels = scale(graph.rating_levels)
    graph.fingerprint = f"{split.fingerprint}-rescaled"
    return RatingSplit(graph)


@pytest.mark.parametrize("name", MODELS)
def test_fit_records_history(fitted, name):
    model, _ = fitted(name)
    assert model.is_fitted and model.name == name
    assert model.history, f"{name} left history empty"
    assert all("epoch" in entry for entry in model.history)


@pytest.mark.parametrize("name", MODELS)
def test_predict_shape_dtype_and_range(fitted, split, name):
    model, _ = fitted(name)
    test = split.test
    pred = model.predict(test.user, test.movie)
    assert pred.shape == test.rating.shape and pred.dtype == torch.float32
    assert torch.isfinite(pred).all()
    assert split.rating_min <= float(pred.min()) and float(pred.max()) <= split.rating_max
    grid = model.predict(test.user[:6].view(2, 3), test.movie[:6].view(2, 3))
    torch.testing.assert_close(grid.view(-1), pred[:6], atol=1e-5, rtol=1e-5)  # batch-size rounding only


@pytest.mark.parametrize("name", MODELS)
def test_recommend_excludes_seen_movies_and_sorts(fitted, split, name):
    model, _ = fitted(name)
    users = torch.arange(split.num_users)
    k = 5
    movies, scores = model.recommend(users, k=k)
    assert movies.shape == scores.shape == (split.num_users, k)
    seen = split.seen_mask()
    assert not seen[users[:, None], movies].any()
    # sorted by the ranking score (which a model with a ranking head keeps apart from its ratings)
    ranking = model.score_matrix(users, clip=False).gather(1, movies)
    assert (ranking[:, :-1] >= ranking[:, 1:]).all()
    # the returned scores are predicted ratings
    torch.testing.assert_close(scores, model.predict(users[:, None].expand(-1, k), movies), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(fitted, split, other_split, name, tmp_path):
    model, _ = fitted(name)
    path = model.save(tmp_path / f"{name}.pt")
    loaded = RatingModel.load(path, split=split)
    assert type(loaded) is type(model) and loaded.config == model.config
    test = split.test
    assert torch.equal(loaded.predict(test.user, test.movie), model.predict(test.user, test.movie))
    assert torch.equal(loaded.score_matrix(), model.score_matrix())
    assert same_history(loaded.history, model.history)
    with pytest.raises(ValueError, match="fingerprint"):
        RatingModel.load(path, split=other_split)


@pytest.mark.parametrize("name", MODELS)
def test_unknown_indices_raise_index_error(fitted, split, name):
    model, _ = fitted(name)
    with pytest.raises(IndexError, match=f"unknown user index {split.num_users}"):
        model.predict([split.num_users], [0])
    with pytest.raises(IndexError, match="unknown movie index -1"):
        model.predict([0], [-1])
    with pytest.raises(IndexError, match="unknown user index"):
        model.recommend([split.num_users + 5], k=3)


@pytest.mark.parametrize("name", MODELS)
def test_unfitted_model_refuses_to_predict(name, tmp_path):
    model = make_model(name)
    with pytest.raises(NotFittedError):
        model.predict([0], [0])
    with pytest.raises(NotFittedError):
        model.recommend([0], k=1)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "unfitted.pt")


@pytest.mark.parametrize("name", MODELS)
def test_fit_is_reproducible(fitted, split, name):
    model, _ = fitted(name)
    again = make_model(name).fit(split)
    test = split.test
    assert torch.equal(again.predict(test.user, test.movie), model.predict(test.user, test.movie))


@pytest.mark.parametrize("name", MODELS)
def test_evaluates_to_finite_metrics(fitted, split, name):
    model, _ = fitted(name)
    result = evaluate(model, split, k=5)
    assert result.model == name
    assert all(math.isfinite(value) for value in result.metrics.values()), result.metrics


@pytest.mark.parametrize("name", MODELS)
def test_rating_scale_is_read_from_the_split(split, name):
    """On ratings rescaled to 1..100 a model must not predict as if the scale were 1..5."""
    scaled = rescaled(split)
    model = make_model(name).fit(scaled)
    pred = model.predict(scaled.test.user, scaled.test.movie)
    assert scaled.rating_min <= float(pred.min()) and float(pred.max()) <= scaled.rating_max
    at_bound = (pred <= scaled.rating_min) | (pred >= scaled.rating_max)
    assert float(at_bound.float().mean()) < 0.5, f"{name}: most predictions sit at the scale's ends"
    result = evaluate(model, scaled, k=5, relevance_threshold=None)
    assert all(math.isfinite(value) for value in result.metrics.values()), result.metrics


# ---------------------------------------------------------------------- baseline specifics
def test_global_mean_predicts_the_training_mean(fitted, split):
    model, _ = fitted("global-mean")
    expected = float(split.train.rating.double().mean())
    assert torch.allclose(model.predict(split.test.user, split.test.movie), torch.tensor(expected))


def test_bias_picks_regularisation_on_validation(fitted, split):
    model, logger = fitted("bias")
    assert len(model.selection) == len(model.config.reg_grid) ** 2
    best = min(model.selection, key=lambda row: row["val_rmse"])
    assert (model.reg_user, model.reg_item) == (best["reg_user"], best["reg_item"])
    assert model.history[-1]["val_rmse"] == pytest.approx(best["val_rmse"])
    assert "rmse/val" in logger.calls
    fixed = get_model_class("bias")(reg_user=2.0, reg_item=4.0).fit(split)
    assert fixed.selection == [] and (fixed.reg_user, fixed.reg_item) == (2.0, 4.0)


def test_bias_solution_is_the_exact_ridge_solution(split):
    edges, users, movies = split.train, split.num_users, split.num_movies
    mean = float(edges.rating.double().mean())
    user_bias, movie_bias, _ = solve_biases(edges, mean, users, movies, reg_user=2.0, reg_item=5.0)
    design = torch.zeros(len(edges), users + movies, dtype=torch.float64)
    rows = torch.arange(len(edges))
    design[rows, edges.user] = 1.0
    design[rows, users + edges.movie] = 1.0
    penalty = torch.diag(torch.cat([torch.full((users,), 2.0), torch.full((movies,), 5.0)]).double())
    exact = torch.linalg.solve(design.T @ design + penalty, design.T @ (edges.rating.double() - mean))
    torch.testing.assert_close(torch.cat([user_bias, movie_bias]), exact, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="positive"):
        solve_biases(edges, mean, users, movies, reg_user=0.0, reg_item=1.0)


def test_bias_beats_global_mean_on_validation(fitted):
    bias, _ = fitted("bias")
    mean, _ = fitted("global-mean")
    assert bias.history[-1]["val_rmse"] < mean.history[-1]["val_rmse"]


def test_mf_keeps_the_best_validation_epoch_and_logs(split):
    logger = RecordingLogger()
    model = get_model_class("mf")(dim=8, max_epochs=30, patience=2, batch_size=256, lr=0.05, reg=0.0).fit(
        split, logger=logger
    )
    assert set(model.history[0]) >= {"epoch", "train_loss", "train_rmse", "val_rmse", "lr", "seconds"}
    assert [e["epoch"] for e in model.history] == list(range(1, len(model.history) + 1))
    assert all(a["seconds"] <= b["seconds"] for a, b in itertools.pairwise(model.history))  # since fit start
    best = min(model.history, key=lambda e: e["val_rmse"])
    assert model.best_epoch == best["epoch"] < len(model.history)  # unregularised: it overfits and stops
    val = split.val
    val_pred = model.predict(val.user, val.movie)
    assert ((val_pred - val.rating).pow(2).mean().sqrt()) == pytest.approx(best["val_rmse"], abs=1e-5)
    for tag in ("loss/train", "rmse/train", "rmse/val", "lr", "weights/user_factor"):
        assert len(logger.calls[tag]) == len(model.history), tag


def test_mf_seed_changes_the_model(split):
    cls = get_model_class("mf")
    a = cls(cls.test_config()).fit(split)
    b = cls(cls.test_config(), seed=1).fit(split)
    assert not torch.equal(a.predict(split.test.user, split.test.movie), b.predict(split.test.user, split.test.movie))


def test_without_validation_ratings(ml100k_fixture_dir, tmp_path):
    split = MovieLens100K(tmp_path / "r", source_dir=ml100k_fixture_dir, val_fraction=0.0, log=False).rating_split()
    cls = get_model_class("mf")
    model = cls(cls.test_config()).fit(split)
    assert len(model.history) == model.config.max_epochs and model.best_epoch == model.config.max_epochs
    with pytest.raises(ValueError, match="validation"):
        get_model_class("bias")().fit(split)
    assert get_model_class("bias")(reg_user=1.0, reg_item=1.0).fit(split).is_fitted


@pytest.mark.parametrize(
    ("name", "overrides", "key"),
    [
        ("bias", {"reg_user": 0.0}, "reg_user"),
        ("bias", {"reg_grid": (1.0, -3.0)}, "reg_grid"),
        ("bias", {"reg_grid": ()}, "reg_grid"),
        ("bias", {"max_iterations": 0}, "max_iterations"),
        ("bias", {"selection_metric": "recall"}, "recall"),
        ("mf", {"dim": 0}, "dim"),
        ("mf", {"lr": 0.0}, "lr"),
        ("mf", {"reg": -0.1}, "reg"),
        ("mf", {"batch_size": 2.5}, "batch_size"),
        ("mf", {"patience": 0}, "patience"),
        ("mf", {"device": "gpu7"}, "device"),
        ("mf", {"selection_metric": "ndcg@ten"}, "ndcg@ten"),
        ("mf", {"selection_metric": "nope"}, "nope"),
    ],
)
def test_baseline_configs_refuse_bad_values(name, overrides, key):
    with pytest.raises(ValueError, match=key):
        create_model(name, overrides)
    with pytest.raises(ValueError, match=key):
        get_model_class(name).config_class(**overrides)


@pytest.mark.parametrize("name", ["bias", "mf"])
def test_baselines_select_on_the_configured_validation_metric(split, name):
    small = {"max_epochs": 6, "dim": 8, "batch_size": 256} if name == "mf" else {}
    overrides = {"selection_metric": "ndcg@5", **small}
    model = create_model(name, overrides).fit(split)
    assert all({"val_rmse", "val_ndcg@5"} <= set(entry) for entry in model.history)
    if name == "bias":
        best = max(model.selection, key=lambda row: row["val_ndcg@5"])
        assert (model.reg_user, model.reg_item) == (best["reg_user"], best["reg_item"])
    else:
        best = max(model.history, key=lambda entry: entry["val_ndcg@5"])
        assert model.best_epoch == best["epoch"]


_RATING_ONLY_TESTS = {
    "test_predict_shape_dtype_and_range",
    "test_recommend_excludes_seen_movies_and_sorts",
    "test_save_load_round_trip",
    "test_unknown_indices_raise_index_error",
    "test_fit_is_reproducible",
    "test_evaluates_to_finite_metrics",
    "test_rating_scale_is_read_from_the_split",
}


@pytest.fixture(autouse=True)
def _skip_rating_checks_for_ranking_only_models(request):
    """Ranking-only models (``predicts_ratings = False``) refuse predict(); their own tests cover them."""
    name = getattr(getattr(request.node, "callspec", None), "params", {}).get("name")
    if (
        name in MODELS
        and not get_model_class(name).predicts_ratings
        and request.node.originalname in _RATING_ONLY_TESTS
    ):
        pytest.skip(f"{name} is ranking-only: predict() does not apply")
