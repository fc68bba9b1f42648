"""Target normalisation: every rating model gives the same predictions, in the user's unit, on any affine
image of the rating scale (1–100, half stars), and the public API maps ratings in and predictions out."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gnnrec.data.target_scale import TargetScale
from gnnrec.models import available_models, create_model, get_model_class
from gnnrec.utils import seed_everything

RATING_MODELS = [name for name in available_models() if get_model_class(name).predicts_ratings]
# r ↦ 1 + 99 (r − 1) / 4 (the scale benchmark's 1–100) and r ↦ (r + 1) / 2 (half stars 1–3)
MAPS = {"1-100": (99 / 4, 1 - 99 / 4), "half-star": (0.5, 0.5)}


def test_target_scale_round_trips_and_leaves_one_to_five_alone(tiny_split):
    values = torch.tensor([0.5, 1.0, 3.5, 5.0])
    scale = TargetScale(0.5, 5.0)
    torch.testing.assert_close(scale.to_model(values), torch.tensor([1.0, 1 + 4 * 0.5 / 4.5, 1 + 4 * 3 / 4.5, 5.0]))
    torch.testing.assert_close(scale.to_user(scale.to_model(values)), values)
    assert TargetScale.of(tiny_split).is_identity and TargetScale.of(tiny_split).model_split(tiny_split) is tiny_split
    mapped = tiny_split.map_ratings(*MAPS["1-100"])
    assert (mapped.rating_min, mapped.rating_max) == pytest.approx((1.0, 100.0))
    back = TargetScale.of(mapped).model_split(mapped)
    for part in ("train", "val", "test"):
        torch.testing.assert_close(back.edges(part).rating, tiny_split.edges(part).rating)
    torch.testing.assert_close(
        back.graph["user", "rates", "movie"].rating, tiny_split.graph["user", "rates", "movie"].rating
    )
    assert torch.equal(tiny_split.train.rating, tiny_split.graph["user", "rates", "movie"].train_edge_label)
    with pytest.raises(ValueError, match="positive slope"):
        tiny_split.map_ratings(-1.0, 6.0)


def _fit(name: str, split):
    seed_everything(0)
    cls = get_model_class(name)
    overrides = {"device": "cpu"} if "device" in {f.name for f in dataclasses.fields(cls.config_class)} else None
    return create_model(name, overrides, test_config=True).fit(split)


@pytest.mark.parametrize("scale", list(MAPS))
@pytest.mark.parametrize("name", RATING_MODELS)
def test_predictions_follow_an_affine_change_of_unit(name, scale, tiny_split):
    slope, offset = MAPS[scale]
    mapped = tiny_split.map_ratings(slope, offset)
    base, other = _fit(name, tiny_split), _fit(name, mapped)
    test = tiny_split.test
    expected = base.predict(test.user, test.movie) * slope + offset
    got = other.predict(test.user, test.movie)
    assert got.min() >= mapped.rating_min - 1e-4 and got.max() <= mapped.rating_max + 1e-4
    torch.testing.assert_close(got, expected, atol=2e-3 * slope, rtol=0)
    rmse = float(((got - mapped.test.rating) ** 2).mean().sqrt())
    base_rmse = float(((base.predict(test.user, test.movie) - test.rating) ** 2).mean().sqrt())
    assert rmse / base_rmse == pytest.approx(slope, rel=2e-3)
    torch.testing.assert_close(
        other.score_matrix(torch.arange(4)),
        base.score_matrix(torch.arange(4)) * slope + offset,
        atol=2e-3 * slope,
        rtol=0,
    )


@pytest.mark.parametrize("name", [n for n in RATING_MODELS if "users" in get_model_class(n).fold_in_kinds])
def test_fold_in_takes_and_gives_ratings_in_the_user_scale(name, tiny_split):
    slope, offset = MAPS["1-100"]
    mapped = tiny_split.map_ratings(slope, offset)
    base, other = _fit(name, tiny_split), _fit(name, mapped)
    support, rating = torch.tensor([[0, 0], [1, 2]]), torch.tensor([5.0, 2.0])
    expected = base.fold_in("users", support, rating, num_new=1).scores * slope + offset
    got = other.fold_in("users", support, rating * slope + offset, num_new=1).scores
    torch.testing.assert_close(got, expected, atol=2e-3 * slope, rtol=0)
    with pytest.raises(ValueError, match="outside the scale"):
        other.fold_in("users", support, torch.tensor([0.5, 50.0]), num_new=1)
