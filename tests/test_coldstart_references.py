"""Cold-start references and their validation draw: hand-computed answers and protocol invariants."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gnnrec.coldstart.evaluation import (
    best_setting,
    choose_on_validation,
    evaluate_coldstart,
    new_node_features,
    validation_scores,
)
from gnnrec.coldstart.protocol import coldstart_draw, validation_draw
from gnnrec.coldstart.references import (
    DemographicPopularity,
    EaseFoldIn,
    GroupMean,
    ItemKnnFoldIn,
    MovieMean,
    blend_with_popularity,
    cosine_neighbours,
    demographic_keys,
    shrunk_liked_rates,
)
from gnnrec.data.graph import PARTS, RATED_BY, RATES
from gnnrec.models import create_model
from gnnrec.models.ease import ease_weights


def test_validation_cold_users_come_from_the_training_users_and_never_from_the_test_draw(tiny_split):
    draw = coldstart_draw(tiny_split, "users", seed=2)
    validation = validation_draw(draw)
    held, test_held = set(validation.held_out.tolist()), set(draw.held_out.tolist())
    assert held and not held & test_held
    assert len(held) == round(0.2 * (tiny_split.num_users - len(test_held)))  # the same share, of the rest
    graph = validation.split.graph
    for part in PARTS:  # neither the validation nor the test cold users are in any training structure
        assert not (held | test_held) & set(graph[RATES][f"{part}_edge_label_index"][0].tolist())
    assert not (held | test_held) & set(graph[RATES].edge_index[0].tolist())
    assert not (held | test_held) & set(graph[RATED_BY].edge_index[1].tolist())
    assert set(validation.ratings.user.tolist()) <= held  # only training ratings of the validation users
    assert sum(len(validation.split.edges(p)) for p in PARTS) + len(validation.ratings) == sum(
        len(draw.split.edges(p)) for p in PARTS
    )
    again = validation_draw(coldstart_draw(tiny_split, "users", seed=2))
    assert torch.equal(again.held_out, validation.held_out) and torch.equal(
        again.ratings.rating, validation.ratings.rating
    )
    other = validation_draw(coldstart_draw(tiny_split, "users", seed=3))
    assert not torch.equal(other.held_out, validation.held_out)
    for n in (0, 1, 3):
        episode = validation.episode(n)
        support = set(zip(episode.support.user.tolist(), episode.support.movie.tolist(), strict=True))
        query = set(zip(episode.query.user.tolist(), episode.query.movie.tolist(), strict=True))
        assert not support & query and {u for u, _ in support | query} <= held


def test_choosing_on_validation_never_reads_the_test_ratings(tiny_split):
    draw = coldstart_draw(tiny_split, "users", seed=1)
    scrambled = dataclasses.replace(draw, ratings=dataclasses.replace(draw.ratings, rating=6 - draw.ratings.rating))
    grid = [0.5, 5.0, 1e6]
    results = [
        choose_on_validation(
            lambda d: GroupMean(GroupMean.config_class(damping=d)),
            grid,
            validation_draw(chosen),
            (0, 1, 3),
            metric="rmse",
        )  # fmt: skip
        for chosen in (draw, scrambled)
    ]
    assert results[0] == results[1]
    best, table = results[0]
    assert list(table) == grid and table[best] == min(table.values())
    validation = validation_draw(draw)
    model = GroupMean(GroupMean.config_class(damping=5.0)).fit(validation.split)
    direct = [evaluate_coldstart(model, validation, validation.episode(n), metrics=["rmse"])["rmse"] for n in (0, 1, 3)]
    assert table[5.0] == pytest.approx(sum(direct) / 3)
    with pytest.raises(ValueError, match="at least one setting"):
        choose_on_validation(lambda d: GroupMean(), [], validation, (0,))


def test_liked_popularity_counts_only_liked_ratings(tiny_split):
    model = create_model("popularity", {"min_rating": 4}, test_config=True).fit(tiny_split)
    train = tiny_split.train
    expected = [0] * tiny_split.num_movies
    for movie, rating in zip(train.movie.tolist(), train.rating.tolist(), strict=True):
        expected[movie] += rating >= 4
    fold = model.fold_in("users", num_new=2)
    assert fold.scores.floor().long()[1].tolist() == expected  # the fraction only breaks ties
    assert expected != torch.bincount(train.movie, minlength=tiny_split.num_movies).tolist()


def test_shrunk_liked_rates_by_hand():
    # users 0, 1 in group 0, user 2 in group 1; liked: (0, film 0), (1, film 0), (1, film 1), (2, film 1)
    group = torch.tensor([0, 0, 1])
    parent = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    rates = shrunk_liked_rates(group, torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 1]), parent, 2, 2.0)
    # group 0: film 0 (2 + 2·0.5) / (2 + 2) = 0.75, film 1 (1 + 1) / 4 = 0.5; group 1: (0 + 1) / 3, (1 + 1) / 3
    torch.testing.assert_close(rates, torch.tensor([[0.75, 0.5], [1 / 3, 2 / 3]]))
    torch.testing.assert_close(shrunk_liked_rates(group, torch.tensor([0]), torch.tensor([0]), parent, 2, 0.0),
                               torch.tensor([[0.5, 0.0], [0.0, 0.0]]))  # fmt: skip


def test_demographic_popularity_matches_a_hand_computed_backoff(tiny_split):
    draw = coldstart_draw(tiny_split, "users", seed=0)
    shrinkage = 3.0
    model = DemographicPopularity(DemographicPopularity.config_class(min_rating=4.0, shrinkage=shrinkage))
    model.fit(draw.split)
    new_users = draw.held_out[:3]
    features = new_node_features(draw, new_users)
    fold = model.fold_in("users", num_new=3, features=features)
    assert not fold.predicts_ratings
    train = draw.split.train
    spec = draw.split.user_layout.spec()
    members = sorted(set(train.user.tolist()))
    keys = demographic_keys(spec, draw.split.graph["user"].x.float()).tolist()
    liked = {(u, m) for u, m, r in zip(train.user.tolist(), train.movie.tolist(), train.rating.tolist(), strict=True)
             if r >= 4}  # fmt: skip
    for row, person in enumerate(demographic_keys(spec, features).tolist()):
        for movie in (0, 7, 31):
            rate = sum((u, movie) in liked for u in members) / len(members)
            for width in (1, 2, 3):
                group = [u for u in members if keys[u][:width] == person[:width]]
                rate = (sum((u, movie) in liked for u in group) + shrinkage * rate) / (len(group) + shrinkage)
            assert float(fold.scores[row, movie]) == pytest.approx(rate, rel=1e-5)
    plain = model.fold_in("users", num_new=1)  # no demographics: liked popularity among the training users
    counts = torch.bincount(train.movie[train.rating >= 4], minlength=tiny_split.num_movies).float() / len(members)
    torch.testing.assert_close(plain.scores[0], counts)


def test_cosine_neighbours_by_hand():
    # users × films: film 0 rated by users {0, 1, 3}, film 1 by {0, 2, 3}, film 2 by {2, 3}
    x = torch.tensor([[1.0, 1, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]])
    gram = x.T @ x
    s6 = 6**0.5
    full = torch.tensor([[0, 2 / 3, 1 / s6], [2 / 3, 0, 2 / s6], [1 / s6, 2 / s6, 0]])
    torch.testing.assert_close(cosine_neighbours(gram, 0), full)
    nearest = torch.tensor([[0, 2 / 3, 0], [0, 0, 2 / s6], [0, 2 / s6, 0]])  # each film keeps its closest
    torch.testing.assert_close(cosine_neighbours(gram, 1), nearest)


def test_popularity_blend_by_hand():
    scores = torch.tensor([[2.0, 4.0, 3.0], [1.0, 1.0, 1.0]])
    popularity = torch.tensor([10.0, 0.0, 5.0])
    blended = blend_with_popularity(scores, popularity, 0.25)
    # rescaled scores [0, 1, 0.5] (a constant row: 0), rescaled popularity [1, 0, 0.5]
    torch.testing.assert_close(blended, torch.tensor([[0.25, 0.75, 0.5], [0.25, 0.0, 0.125]]))
    assert torch.equal(blend_with_popularity(scores, popularity, 0.0), scores)


def _users_of(split, min_rating=0.0):
    train = split.train
    users: dict[int, set[int]] = {}
    for user, movie, rating in zip(train.user.tolist(), train.movie.tolist(), train.rating.tolist(), strict=True):
        if rating >= min_rating:
            users.setdefault(movie, set()).add(user)
    return users


def test_item_knn_fold_in_matches_a_hand_computed_cosine_sum(tiny_split):
    draw = coldstart_draw(tiny_split, "users", seed=0)
    model = ItemKnnFoldIn(ItemKnnFoldIn.config_class(min_rating=3.0)).fit(draw.split)
    support, rating = torch.tensor([[0, 0, 0, 1], [2, 5, 9, 5]]), torch.tensor([5.0, 2.0, 4.0, 3.0])
    fold = model.fold_in("users", support, rating, num_new=2)
    raters = _users_of(draw.split, 3.0)
    for row, films in ((0, [2, 9]), (1, [5])):  # film 5 rated 2 by row 0 is below min_rating: no interaction
        for target in (0, 3, 7, 11):
            expected = 0.0
            for film in films:
                a, b = raters.get(film, set()), raters.get(target, set())
                if film != target and a and b:
                    expected += len(a & b) / (len(a) * len(b)) ** 0.5
            assert float(fold.scores[row, target]) == pytest.approx(expected, abs=1e-6)


def test_ease_fold_in_equals_the_closed_form_with_the_chosen_lambda(tiny_split):
    draw = coldstart_draw(tiny_split, "users", seed=0)
    model = EaseFoldIn(EaseFoldIn.config_class(reg=30.0)).fit(draw.split)
    support, rating = torch.tensor([[0, 0, 1], [1, 4, 6]]), torch.tensor([5.0, 1.0, 4.0])
    x = torch.zeros(2, tiny_split.num_movies, dtype=torch.float64)
    x[0, 1] = x[0, 4] = x[1, 6] = 1.0
    interactions = torch.zeros(tiny_split.num_users, tiny_split.num_movies, dtype=torch.float64)
    for movie, users in _users_of(draw.split).items():
        interactions[list(users), movie] = 1.0
    gram = interactions.T @ interactions
    for reg in (30.0, 1e6):  # another λ: the same decomposition, no refit
        model.config = dataclasses.replace(model.config, reg=reg)
        expected = x @ ease_weights(gram, reg)  # B = I − P·diagMat(1/diag P), P = (G + λI)⁻¹ by inversion
        fold = model.fold_in("users", support, rating, num_new=2)
        torch.testing.assert_close(fold.scores.double(), expected, atol=1e-4, rtol=1e-4)


def test_new_movie_means_by_hand(tiny_split):
    draw = coldstart_draw(tiny_split, "movies", seed=0)
    support, rating = torch.tensor([[0, 0, 1], [1, 4, 6]]), torch.tensor([5.0, 2.0, 4.0])
    train = draw.split.train
    mean = float(train.rating.double().mean())
    k = 5.0
    movie_mean = MovieMean(MovieMean.config_class(damping=k)).fit(draw.split)
    fold = movie_mean.fold_in("movies", support, rating, num_new=3)
    expected = [(7 + k * mean) / (2 + k), (4 + k * mean) / (1 + k), mean]  # the third film has no support
    torch.testing.assert_close(fold.scores[:, 0], torch.tensor(expected, dtype=torch.float32))
    features = new_node_features(draw, draw.held_out[:3])
    group = GroupMean(GroupMean.config_class(damping=k)).fit(draw.split)
    fold = group.fold_in("movies", support, rating, num_new=3, features=features)
    x = draw.split.graph["movie"].x.float()
    binary = ((x == 0) | (x == 1)).all(0)
    flags = [tuple(row) for row in x[:, binary].round().long().tolist()]
    for row, new_flags in enumerate(features[:, binary].round().long().tolist()):
        pairs = zip(train.movie.tolist(), train.rating.tolist(), strict=True)
        same = [r for m, r in pairs if flags[m] == tuple(new_flags)]
        parent = (sum(same) + k * mean) / (len(same) + k)
        mine = rating[support[0] == row].tolist()
        assert float(fold.scores[row, 0]) == pytest.approx((sum(mine) + k * parent) / (len(mine) + k), rel=1e-5)


def test_fold_in_settings_are_chosen_without_refitting(tiny_split):
    draw = coldstart_draw(tiny_split, "users", seed=0)
    validation = validation_draw(draw)
    fits = []

    class Counted(EaseFoldIn):
        def _fit(self, split, logger):
            fits.append(split.fingerprint)
            super()._fit(split, logger)

    grid = [{"reg": reg, "popularity_weight": w} for reg in (1.0, 1e3) for w in (0.0, 0.5)]
    scores = validation_scores(lambda s: Counted(EaseFoldIn.config_class(**s)), grid, validation, (0, 1))
    assert fits == [validation.split.fingerprint]  # one fit: λ and the blend weight are read by the fold-in alone
    assert len(scores) == 4 and all(set(row) == {0, 1} for row in scores)
    best = best_setting(scores, "ndcg@10", 1)
    assert scores[best][1] == max(row[1] for row in scores)
