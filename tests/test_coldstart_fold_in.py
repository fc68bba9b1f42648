"""Recommending to people who are not in the data, without retraining."""

from __future__ import annotations

import pytest
import torch

from gnnrec.coldstart.fold_in import check_new_ratings, movie_indices_from_raw_ids
from gnnrec.data import MovieLens100K
from gnnrec.data.user_features import ML1MUserFeatures, ML100KUserFeatures, NoUserFeatures, layout_from_spec
from gnnrec.models.gnn import GNNModel


@pytest.fixture(scope="module")
def split(ml100k_fixture_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("coldstart_root")
    return MovieLens100K(root, split="u1", source_dir=ml100k_fixture_dir, log=False).rating_split()


@pytest.fixture(scope="module")
def model(split) -> GNNModel:
    return GNNModel(GNNModel.test_config()).fit(split)


PERSON = {"age": 31, "gender": "F", "occupation": "writer"}


def person_row(split) -> torch.Tensor:
    return split.user_layout.encode(**PERSON).view(1, -1)


@pytest.mark.parametrize("num_rated", [0, 1, 12])
def test_recommends_unseen_movies_for_any_number_of_ratings(model, split, num_rated):
    rated = [(int(m), float(1 + m % 5)) for m in torch.randperm(split.num_movies)[:num_rated]]
    movies, scores = model.recommend_new_user(**PERSON, ratings=rated, k=10)
    assert movies.shape == scores.shape == (10,)
    assert len(set(movies.tolist())) == 10
    assert not set(movies.tolist()) & {m for m, _ in rated}
    # the list follows the ranking head's scores; the returned values are the predicted ratings
    support = torch.tensor([[0] * num_rated, [m for m, _ in rated]], dtype=torch.long)
    fold = model.fold_in("users", support, torch.tensor([r for _, r in rated]), num_new=1,
                         features=person_row(split))  # fmt: skip
    ranked = fold.rank_scores[0, movies]
    assert fold.ranking is not None and torch.all(ranked[:-1] >= ranked[1:])
    assert torch.allclose(scores, fold.predict(torch.zeros(10, dtype=torch.long), movies))
    assert float(scores.min()) >= split.rating_min and float(scores.max()) <= split.rating_max


def test_rated_movies_are_never_recommended_even_when_loved(model, split):
    every_movie, _ = model.recommend_new_user(**PERSON, k=split.num_movies)
    favourites = every_movie[:5].tolist()  # the movies the model likes best for this person
    movies, _ = model.recommend_new_user(**PERSON, ratings=[(m, 5.0) for m in favourites], k=split.num_movies - 5)
    assert sorted(movies.tolist() + favourites) == list(range(split.num_movies))


def test_demographics_alone_give_a_sensible_ranking(model, split):
    movies, scores = model.recommend_new_user(**PERSON, k=split.num_movies)
    assert float(scores.max() - scores.min()) > 0.1  # not a constant ranking
    # well-rated movies should come first: rank correlation with the training mean rating
    train = split.train
    totals = torch.zeros(split.num_movies).index_add_(0, train.movie, train.rating)
    counts = torch.bincount(train.movie, minlength=split.num_movies).float()
    mean = (totals + 3.0 * 3) / (counts + 3.0)  # shrunk towards 3 for rarely rated movies
    rank_of = torch.empty(split.num_movies)
    rank_of[movies] = torch.arange(split.num_movies, dtype=torch.float)
    order_of_mean = torch.argsort(torch.argsort(-mean)).float()
    assert torch.corrcoef(torch.stack([rank_of, order_of_mean]))[0, 1] > 0.3


def test_ratings_change_the_recommendations(model):
    _, liked = model.recommend_new_user(**PERSON, ratings=[(0, 5.0), (1, 5.0), (2, 5.0)], k=20)
    _, hated = model.recommend_new_user(**PERSON, ratings=[(0, 1.0), (1, 1.0), (2, 1.0)], k=20)
    assert not torch.allclose(liked, hated)


def test_cold_start_leaves_the_model_unchanged(model, split):
    before = model.score_matrix()
    edges = model.graph.edge_index.clone()
    model.recommend_new_user(**PERSON, ratings=[(0, 4.0)], k=5)
    assert torch.equal(model.graph.edge_index, edges)
    torch.testing.assert_close(model.score_matrix(), before)


def test_cold_start_after_save_and_load(model, split, tmp_path):
    loaded = GNNModel.load(model.save(tmp_path / "gnn.pt"), split=split)
    for rated in ([], [(3, 5.0), (7, 2.0)]):
        expected = model.recommend_new_user(**PERSON, ratings=rated, k=8)
        actual = loaded.recommend_new_user(**PERSON, ratings=rated, k=8)
        assert torch.equal(actual[0], expected[0])
        torch.testing.assert_close(actual[1], expected[1])


def test_bad_people_and_ratings_raise_clear_errors(model, split):
    with pytest.raises(ValueError, match=r"unknown occupation 'astronaut'; valid occupations: administrator, artist"):
        model.recommend_new_user(age=30, gender="M", occupation="astronaut")
    with pytest.raises(ValueError, match=r"unknown movie index 60; valid indices are 0\.\.59"):
        model.recommend_new_user(**PERSON, ratings=[(60, 4.0)])
    with pytest.raises(ValueError, match=r"not on the rating scale \(1, 2, 3, 4, 5\)"):
        model.recommend_new_user(**PERSON, ratings=[(1, 4.5)])
    with pytest.raises(ValueError, match="rated twice"):
        model.recommend_new_user(**PERSON, ratings=[(1, 4.0), (1, 5.0)])
    with pytest.raises(ValueError, match="gender must be one of M, F"):
        model.recommend_new_user(age=30, gender="X", occupation="writer")
    with pytest.raises(ValueError, match="age must be"):
        model.recommend_new_user(age=-3, gender="M", occupation="writer")
    with pytest.raises(ValueError, match=r"missing user field\(s\): age .*; occupation \(one of administrator"):
        model.recommend_new_user(gender="M")
    with pytest.raises(ValueError, match=r"unknown user field\(s\) zip; valid fields: age, gender, occupation"):
        model.recommend_new_user(**PERSON, zip="12345")
    with pytest.raises(ValueError, match=r"k must lie in 1\.\.59"):
        model.recommend_new_user(**PERSON, ratings=[(0, 3.0)], k=60)
    with pytest.raises(ValueError, match="movie index must be an integer"):
        model.recommend_new_user(**PERSON, ratings=[(2.0, 3.0)])


def test_ml100k_layout_encodes_the_dataset_rows(split):
    graph = split.graph
    layout = split.user_layout
    assert isinstance(layout, ML100KUserFeatures) and layout.num_features == graph["user"].x.size(1)
    assert set(layout.fields()) == {"age", "gender", "occupation"} and "writer" in layout.fields()["occupation"]
    for user in range(graph["user"].num_nodes):
        person = {"age": int(graph["user"].age[user]), "gender": graph["user"].gender[user]}
        row = layout.encode(**person, occupation=graph["user"].occupation[user])
        torch.testing.assert_close(row, graph["user"].x[user])
    assert layout_from_spec(layout.spec()) == layout


def test_layout_errors_name_the_field_and_valid_values(split):
    layout = split.user_layout
    with pytest.raises(ValueError, match=r"unknown occupation 'pilot'; valid occupations: administrator"):
        layout.encode(age=30, gender="M", occupation="pilot")
    with pytest.raises(ValueError, match="gender must be one of M, F, got 'x'"):
        layout.encode(age=30, gender="x", occupation="writer")
    with pytest.raises(ValueError, match=r"age must be a number of years in \(0, 130\), got 200"):
        layout.encode(age=200, gender="F", occupation="writer")
    with pytest.raises(ValueError, match=r"missing user field\(s\): gender \(M or F\)"):
        layout.encode(age=30, occupation="writer")
    with pytest.raises(ValueError, match="unknown user field"):
        NoUserFeatures().encode(age=30)
    assert NoUserFeatures().encode().numel() == 0 and layout_from_spec(None) == NoUserFeatures()
    with pytest.raises(ValueError, match="unknown user-feature layout kind 'zip'"):
        layout_from_spec({"kind": "zip"})


def test_check_new_ratings_returns_tensors():
    movies, ratings = check_new_ratings([(4, 5), (0, 1.0)], 10, torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert movies.tolist() == [4, 0] and ratings.tolist() == [5.0, 1.0]


def test_model_maps_raw_movie_ids_also_after_loading(model, split, tmp_path):
    raw_ids = split.graph["movie"].raw_id
    loaded = GNNModel.load(model.save(tmp_path / "gnn.pt"))
    assert loaded.movie_indices([int(raw_ids[7]), int(raw_ids[2])]) == [7, 2]
    with pytest.raises(ValueError, match="unknown movie id"):
        loaded.movie_indices([10_000])


def test_raw_movie_ids_map_to_indices(split):
    raw_ids = split.graph["movie"].raw_id
    assert movie_indices_from_raw_ids([int(raw_ids[5]), int(raw_ids[0])], raw_ids) == [5, 0]
    assert movie_indices_from_raw_ids(["3"], [7, 3, 9]) == [1]
    with pytest.raises(ValueError, match=r"unknown movie id\(s\) 0, 999; valid movie ids are 1\.\.60"):
        movie_indices_from_raw_ids([1, 0, 999], raw_ids)
    with pytest.raises(ValueError, match="must be integers"):
        movie_indices_from_raw_ids(["Toy Story"], raw_ids)


def test_cold_start_on_ml1m_layout(tmp_path):
    from gnnrec.data.movielens1m import MovieLens1M
    from gnnrec.testing.ml1m_monti import write_ml1m_fixture

    source = write_ml1m_fixture(tmp_path / "ml1m")
    ml1m = MovieLens1M(tmp_path / "root", source_dir=source, log=False).rating_split()
    model = GNNModel(GNNModel.test_config()).fit(ml1m)
    layout = ml1m.user_layout
    assert isinstance(layout, ML1MUserFeatures) and layout.num_features == ml1m.graph["user"].x.size(1)
    occupations = ml1m.graph.occupation_names
    row = layout.encode(age=30, gender="F", occupation=occupations[2])
    assert row[0] == 1 and row[1 + 2] == 1 and row[1 + 7 + 2] == 1  # female, bucket 25, third occupation
    assert row.sum() == 3 and layout.encode(age=12, gender="m", occupation=occupations[0])[1] == 1  # bucket 1
    users = ml1m.graph["user"]
    bucket_age = int(users.age[0]) + 0.5  # any age inside the user's bucket encodes like the data
    torch.testing.assert_close(
        layout.encode(age=bucket_age, gender=users.gender[0], occupation=occupations[int(users.occupation[0])]),
        users.x[0],
    )
    with pytest.raises(ValueError, match="unknown occupation 'pilot'; valid occupations: other, academic"):
        layout.encode(age=30, gender="F", occupation="pilot")
    movies, scores = model.recommend_new_user(
        age=30, gender="M", occupation=ml1m.graph.occupation_names[0], ratings=[(0, 5.0)], k=5
    )
    assert movies.numel() == 5 and 0 not in movies.tolist() and torch.isfinite(scores).all()


def test_undecided_rows_are_those_whose_unrated_scores_all_tie(tiny_split):
    """EASE scores x·B: a person who rated nothing ties every film; one rated film decides the order. A rated
    film's own score does not count."""
    from gnnrec.coldstart.fold_in import FoldIn
    from gnnrec.models import create_model

    ease = create_model("ease", {"reg": 3.0}).fit(tiny_split)
    fold = ease.fold_in("users", torch.tensor([[1], [4]]), torch.tensor([5.0]), num_new=2)
    assert fold.undecided().tolist() == [True, False]
    ties_but_rated = FoldIn("users", torch.tensor([[1.0, 1.0, 5.0]]), torch.tensor([[0], [2]]), False, 1.0, 5.0)
    assert ties_but_rated.undecided().tolist() == [True]
