"""The recommendation service: every endpoint, every error it can return (as JSON with a 4xx status, never a
500 for bad input), batching under concurrent requests, and the ``gnnrec serve`` command."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from gnnrec.cli import main  # noqa: E402
from gnnrec.data.titles import TitleIndex  # noqa: E402
from gnnrec.models import RatingModel, create_model  # noqa: E402
from gnnrec.serving.app import create_app  # noqa: E402
from gnnrec.serving.service import MAX_K, MAX_RATED, NewPerson, Recommender, ServiceError  # noqa: E402
from gnnrec.testing.csv_ratings import write_csv_fixture  # noqa: E402
from gnnrec.testing.serving import LOOPBACK, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def split(u1_split):
    return u1_split


@pytest.fixture(scope="module")
def recommender(gnn_checkpoint, split):
    service = Recommender(RatingModel.load(gnn_checkpoint, split), split)
    yield service
    service.close()


@pytest.fixture(scope="module")
def client(recommender):
    with TestClient(create_app(recommender), raise_server_exceptions=False) as test_client:
        yield test_client


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["detail"], body
    return body


def test_health_describes_the_model(client, split):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["model"] == "gnn" and body["dataset"] == split.name
    assert body["users"] == split.num_users and body["movies"] == split.num_movies
    assert body["similarity"] == "embedding-cosine"
    assert body["new_person"]["supported"] and set(body["new_person"]["fields"]) == {"age", "gender", "occupation"}
    assert "writer" in body["new_person"]["occupations"]


def test_known_user_top_k_matches_the_model(client, recommender):
    response = client.get("/api/users/3/recommendations", params={"k": 5})
    assert response.status_code == 200
    body = response.json()
    user = recommender.catalogue.user_index(3)
    top, score = recommender.model.recommend([user], k=5)
    ids = [recommender.catalogue.movie_ids[m] for m in top[0].tolist()]
    assert [r["movie_id"] for r in body["recommendations"]] == ids
    assert [r["rank"] for r in body["recommendations"]] == [1, 2, 3, 4, 5]
    assert body["recommendations"][0]["score"] == pytest.approx(float(score[0, 0]), abs=1e-4)
    assert all(r["reason"] is None and r["title"] for r in body["recommendations"])
    seen = set(recommender.model.seen_mask(torch.tensor([user]))[0].nonzero().view(-1).tolist())
    assert not seen & set(top[0].tolist())


def test_similar_films_exclude_the_film_itself(client):
    body = client.get("/api/movies/7/similar", params={"k": 4}).json()
    assert body["movie"]["movie_id"] == 7 and body["method"] == "embedding-cosine"
    assert len(body["similar"]) == 4 and 7 not in [s["movie_id"] for s in body["similar"]]
    values = [s["similarity"] for s in body["similar"]]
    assert values == sorted(values, reverse=True) and all(-1.0 <= v <= 1.0 for v in values)


def test_title_search(client):
    body = client.get("/api/movies/search", params={"q": "movie 1", "limit": 5}).json()
    assert body["results"][0]["title"] == "Movie 1" and len(body["results"]) == 5
    assert all(r["title"].startswith("Movie 1") for r in body["results"])
    assert client.get("/api/movies/search", params={"q": "no such film"}).json()["results"] == []


def test_new_person_by_titles_and_ids(client, recommender):
    body = {"liked": ["movie 3", 5, "Movie 8 (1958)"], "disliked": ["Movie 9"], "k": 6}
    response = client.post("/api/recommendations", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [m["movie_id"] for m in result["liked"]] == [3, 5, 8] and result["disliked"][0]["movie_id"] == 9
    ids = [r["movie_id"] for r in result["recommendations"]]
    assert len(ids) == 6 and not {3, 5, 8, 9} & set(ids)
    with_person = client.post(
        "/api/recommendations", json={**body, "age": 30, "gender": "F", "occupation": "writer"}
    ).json()
    assert len(with_person["recommendations"]) == 6
    # the same person, folded in directly
    movies = torch.tensor([recommender.catalogue.movie_index(m) for m in (3, 5, 8, 9)])
    ratings = torch.tensor([5.0, 5.0, 5.0, 1.0])
    support = torch.stack([torch.zeros_like(movies), movies])
    fold = recommender.model.fold_in("users", support, ratings, num_new=1, explain=True)
    assert ids == [recommender.catalogue.movie_ids[m] for m in fold.top_k(6)[0].tolist()]
    # every film's reason: the listed films that raise its score most, and no other film
    reasons = [r["reason"] for r in result["recommendations"]]
    assert reasons == fold.explain(0, fold.top_k(6)[0], recommender.labels)
    listed = {"Movie 3 (1953)", "Movie 5 (1955)", "Movie 8 (1958)", "Movie 9 (1959)"}
    # (a film no listed film raises, on this tiny model, gets the popularity reason and names none)
    assert any(reason.startswith("because you ") for reason in reasons)
    for reason in reasons:
        named = set(re.findall(r"Movie \d+ \(\d{4}\)", reason))
        if reason.startswith("because you "):
            assert named and named <= listed
        else:
            assert reason.endswith("none of the films you rated raises it") and not named
        assert "disliked Movie 9 (1959)" in reason or "Movie 9" not in reason  # the disliked film is called so


def test_new_person_with_no_films_uses_demographics(client):
    response = client.post("/api/recommendations", json={"age": 25, "gender": "M", "occupation": "student"})
    assert response.status_code == 200 and len(response.json()["recommendations"]) == 10
    assert {r["reason"] for r in response.json()["recommendations"]} == {"from your profile alone: no rated films yet"}


def test_precomputed_lists_match_requests_scored_on_demand(recommender, split):
    on_demand = Recommender(recommender.model, split, precompute_budget=0)
    try:
        assert on_demand.user_lists is None and on_demand.similar_lists is None
        assert recommender.user_lists is not None and recommender.similar_lists is not None
        for user in (1, 17, 40):
            assert on_demand.known_user(user, 12) == recommender.known_user(user, 12)
        for movie in (1, 30, 60):
            assert on_demand.similar(movie, 9) == recommender.similar(movie, 9)
    finally:
        on_demand.close()


def test_concurrent_requests_are_batched_and_agree(gnn_checkpoint, split):
    recommender = Recommender(RatingModel.load(gnn_checkpoint, split), split, precompute_budget=0)
    users = list(range(1, 21))
    calls = []
    original = recommender._top_users

    def counted(payloads):
        calls.append(len(payloads))
        return original(payloads)

    recommender.batcher.handlers["user"] = counted
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda u: recommender.known_user(u, k=3 + u % 4), users * 3))
    finally:
        recommender.batcher.handlers["user"] = original
        recommender.close()
    for user, result in zip(users * 3, results, strict=True):
        top, _ = recommender.model.recommend([recommender.catalogue.user_index(user)], k=3 + user % 4)
        assert [r["movie_id"] for r in result["recommendations"]] == [
            recommender.catalogue.movie_ids[m] for m in top[0].tolist()
        ]
    assert sum(calls) == len(users) * 3 and len(calls) <= len(users) * 3


# ---------------------------------------------------------------------- every error the service returns
@pytest.mark.parametrize(
    "path, status, code, fragment",
    [
        ("/api/users/99999/recommendations", 404, "unknown_user", "unknown user id '99999'"),
        ("/api/users/abc/recommendations", 404, "unknown_user", "unknown user id 'abc'"),
        ("/api/movies/99999/similar", 404, "unknown_movie", "unknown movie id '99999'"),
        ("/api/users/1/recommendations?k=0", 422, "invalid_request", "k: Input should be greater than or equal to 1"),
        (f"/api/users/1/recommendations?k={MAX_K + 1}", 422, "invalid_request", "k: Input should be less than"),
        ("/api/users/1/recommendations?k=ten", 422, "invalid_request", "k: Input should be a valid integer"),
        ("/api/users/1/recommendations?k=60", 422, "invalid_k", "k must be an integer in 1..59"),
        ("/api/movies/1/similar?k=-3", 422, "invalid_request", "k: Input should be greater than or equal to 1"),
        ("/api/movies/1/similar?k=60", 422, "invalid_k", "k must be an integer in 1..59"),
        ("/api/movies/search", 422, "invalid_request", "q: Field required"),
        ("/api/movies/search?q=", 422, "invalid_request", "q: String should have at least 1 character"),
        ("/api/movies/search?q=%20%20", 422, "invalid_request", "q: give some text to search for"),
        ("/api/movies/search?q=a&limit=0", 422, "invalid_request", "limit: Input should be greater than"),
        ("/no/such/page", 404, "not_found", "GET /no/such/page: Not Found"),
    ],
)
def test_bad_requests_get_json_errors(client, path, status, code, fragment):
    assert fragment in error_of(client.get(path), status, code)["detail"]


@pytest.mark.parametrize(
    "body, code, fragment",
    [
        ({"liked": [99999]}, "unknown_movie", "liked[0]: unknown movie id 99999"),
        ({"liked": [1], "disliked": ["Movie 77"]}, "unknown_title", "disliked[0]: no film titled 'Movie 77'"),
        ({"liked": [2, 2]}, "duplicate_movie", "liked[1]: Movie 2 (1952) is already listed in liked[0]"),
        ({"liked": [2], "disliked": ["movie 2"]}, "duplicate_movie", "disliked[0]: Movie 2 (1952) is already"),
        ({"liked": [1], "age": 30}, "invalid_person", "missing gender, occupation"),
        ({"age": 30, "gender": "X", "occupation": "writer"}, "invalid_person", "gender must be one of M, F"),
        ({"age": -4, "gender": "F", "occupation": "writer"}, "invalid_person", "age must be a number of years"),
        ({"age": 30, "gender": "F", "occupation": "pilot"}, "invalid_person", "unknown occupation 'pilot'"),
        ({"liked": [1, 2], "k": 59}, "invalid_k", "k must be an integer in 1..58"),
        ({"liked": [1], "k": 0}, "invalid_request", "k: Input should be greater than or equal to 1"),
        ({"liked": [1.5]}, "invalid_request", "liked.0: Input should be a valid integer"),
        ({"liked": [None]}, "invalid_request", "liked.0:"),
        ({"liked": "Movie 1"}, "invalid_request", "liked: Input should be a valid list"),
        ({"likes": [1]}, "invalid_request", "likes: Extra inputs are not permitted"),
        ({"age": "old", "gender": "F", "occupation": "writer"}, "invalid_request", "age: Input should be a valid"),
        ({"liked": list(range(1, MAX_RATED + 2))}, "invalid_request", f"liked: List should have at most {MAX_RATED}"),
        ([1, 2], "invalid_request", "Input should be a valid dictionary"),
    ],
)
def test_bad_new_person_gets_422(client, body, code, fragment):
    assert fragment in error_of(client.post("/api/recommendations", json=body), 422, code)["detail"]


def test_malformed_json_body(client):
    response = client.post("/api/recommendations", content=b"{liked: [1", headers={"content-type": "application/json"})
    assert "body: malformed JSON" in error_of(response, 422, "invalid_request")["detail"]


def test_too_many_films_in_total(recommender):
    person = NewPerson(liked=list(range(1, 101)), disliked=list(range(101, 202)))
    with pytest.raises(ServiceError, match=f"at most {MAX_RATED}"):
        recommender.new_person(person)


def test_unknown_title_suggests_and_ambiguous_title_lists_candidates(client, recommender, monkeypatch):
    body = error_of(client.post("/api/recommendations", json={"liked": ["Movei 12"]}), 422, "unknown_title")
    assert body["query"] == "Movei 12" and body["suggestions"][0]["title"] == "Movie 12"
    catalogue = recommender.catalogue
    titles = list(catalogue.titles)
    titles[4] = titles[3]  # two films called "Movie 4", years 1954 and 1955
    monkeypatch.setattr(catalogue, "title_index", TitleIndex(titles, catalogue.years, catalogue.movie_ids))
    body = error_of(client.post("/api/recommendations", json={"liked": ["movie 4"]}), 422, "ambiguous_title")
    assert {c["movie_id"] for c in body["candidates"]} == {4, 5} and body["query"] == "movie 4"
    assert client.post("/api/recommendations", json={"liked": ["movie 4 (1955)"]}).status_code == 200


def test_wrong_method(client):
    assert "DELETE /health" in error_of(client.delete("/health"), 405, "method_not_allowed")["detail"]


def test_a_person_the_model_cannot_tell_apart_is_a_422(split):
    """EASE reads no profile: a person with demographics only scores every film 0, a list of ties."""
    service = Recommender(create_model("ease", {"reg": 200.0}).fit(split), split)
    try:
        with TestClient(create_app(service), raise_server_exceptions=False) as ease_client:
            person = {"age": 30, "gender": "F", "occupation": "writer"}
            body = error_of(ease_client.post("/api/recommendations", json=person), 422, "no_signal")
            assert "scores every film alike" in body["detail"]
            assert ease_client.post("/api/recommendations", json={**person, "liked": [1]}).status_code == 200
    finally:
        service.close()


def test_a_failing_fold_in_is_a_422_for_that_request_only(client, recommender, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("new users have 3 features, the model's users have 24")

    monkeypatch.setattr(recommender.model, "fold_in", refuse)
    body = error_of(client.post("/api/recommendations", json={"liked": [1]}), 422, "invalid_person")
    assert "features" in body["detail"]
    monkeypatch.undo()
    assert client.post("/api/recommendations", json={"liked": [1]}).status_code == 200
    assert client.get("/api/users/1/recommendations").status_code == 200


def test_model_without_fold_in_answers_501(split):
    service = Recommender(create_model("global-mean").fit(split), split)
    try:
        with TestClient(create_app(service)) as test_client:
            body = error_of(test_client.post("/api/recommendations", json={"liked": [1]}), 501,
                            "new_person_not_supported")  # fmt: skip
            assert "'global-mean' model cannot place a new person" in body["detail"] and "gnn" in body["detail"]
            assert test_client.get("/health").json()["similarity"] == "score-profile-cosine"
            assert test_client.get("/api/movies/3/similar?k=3").status_code == 200
    finally:
        service.close()


def test_dataset_without_demographics(tmp_path):
    from gnnrec.data import CSVRatings

    source = write_csv_fixture(tmp_path / "csv")
    csv_split = CSVRatings(tmp_path / "root", source_dir=source, ratings="ratings.csv", log=False).rating_split()
    service = Recommender(create_model("mf", test_config=True).fit(csv_split), csv_split)
    try:
        with TestClient(create_app(service)) as test_client:
            health = test_client.get("/health").json()
            assert health["new_person"]["fields"] == {} and health["similarity"] == "score-profile-cosine"
            body = {"liked": ["i1"], "age": 30, "gender": "F", "occupation": "writer"}
            response = test_client.post("/api/recommendations", json=body)
            assert "has no user demographics" in error_of(response, 422, "invalid_person")["detail"]
            user = service.catalogue.user_ids[0]
            assert test_client.get(f"/api/users/{user}/recommendations?k=3").status_code == 200
    finally:
        service.close()


# ---------------------------------------------------------------------- the command
def test_serve_needs_the_serve_extra(gnn_checkpoint, monkeypatch, capsys):
    monkeypatch.setattr("gnnrec.cli.serve.SERVE_PACKAGES", ("fastapi", "gnnrec_no_such_module"))
    assert main(["serve", str(gnn_checkpoint)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gnnrec serve: error: serving needs gnnrec_no_such_module: pip install gnnrec[serve]"


@pytest.mark.slow  # a fresh interpreter imports torch and loads the data: tens of seconds on a busy machine
def test_serve_command_binds_loopback_and_stops_on_ctrl_c(gnn_checkpoint, ml100k_fixture_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "gnnrec", "serve", str(gnn_checkpoint), "--port", str(port), "--quiet"]
    command += ["--data-dir", str(ml100k_fixture_dir), "--threads", "1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                health = httpx.get(f"http://{LOOPBACK}:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gnnrec serve did not answer within 120 s"
                time.sleep(0.2)
        assert health.json()["model"] == "gnn"
        assert httpx.get(f"http://{LOOPBACK}:{port}/docs", timeout=5).status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert f"http://127.0.0.1:{port}/" in process.stdout.read()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "70000"], "--port must lie in 0..65535"),
    ],
)
def test_serve_bad_options(gnn_checkpoint, argv, message, capsys):
    assert main(["serve", str(gnn_checkpoint), *argv]) == 2
    assert message in capsys.readouterr().err
