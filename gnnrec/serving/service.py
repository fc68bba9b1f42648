"""The recommendation service without the web framework: a loaded model and its split answer requests for a
known user's top-K, similar films, title search and a new person's recommendations.

Requests are validated in the caller's thread (errors are :class:`ServiceError`\\ s naming what is wrong);
known users' top-K and films' similar films are computed once at start-up, in batches, where that fits a
budget, and then only looked up. Otherwise the model runs on one worker thread (:class:`ScoreBatcher`),
which scores the requests that arrive while it is busy together: one ``recommend`` call for all waiting
known users, one similarity product for all waiting films, one fold-in for all waiting new people.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gnnrec.coldstart.fold_in import check_new_ratings
from gnnrec.data.split import RatingSplit
from gnnrec.data.titles import AmbiguousTitleError, TitleMatch, UnknownTitleError, natural_title
from gnnrec.serving.catalogue import Catalogue, UnknownIdError
from gnnrec.serving.similarity import MovieSimilarity

MAX_K = 100  # longest list one request may ask for
MAX_RATED = 200  # most films one new person may list (liked and disliked together)
MAX_BATCH = 64  # most requests of one kind scored together
PRECOMPUTE_BUDGET = 2 * 10**8  # most (rows × movies) scores computed at start-up for the precomputed lists


class ServiceError(ValueError):
    """Bad input: ``status`` (HTTP), ``code`` (machine-readable) and ``extra`` fields for the response."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra


def _film(match: TitleMatch) -> dict[str, Any]:
    return {"movie_id": match.raw_id, "title": match.title, "year": match.year}


def title_error(error: ValueError, field_name: str) -> ServiceError:
    """A :class:`ServiceError` for an unknown or ambiguous title, with the suggestions or candidates."""
    if isinstance(error, AmbiguousTitleError):
        return ServiceError(
            422, "ambiguous_title", f"{field_name}: {error}", query=error.query,
            candidates=[_film(m) for m in error.candidates],
        )  # fmt: skip
    if isinstance(error, UnknownTitleError):
        return ServiceError(
            422, "unknown_title", f"{field_name}: {error}", query=error.query,
            suggestions=[_film(m) for m in error.suggestions],
        )  # fmt: skip
    return ServiceError(422, "invalid_request", f"{field_name}: {error}")


def models_with_user_fold_in() -> list[str]:
    """Registered model names that can add a new user without retraining."""
    from gnnrec.models import available_models, get_model_class

    return [name for name in available_models() if "users" in get_model_class(name).fold_in_kinds]


@dataclass
class _Job:
    kind: str
    payload: Any
    future: Future = field(default_factory=Future)


class ScoreBatcher:
    """One worker thread runs ``handlers[kind](payloads) -> results``; jobs of one kind waiting together form
    one call (at most ``max_batch``). A handler's exception fails the jobs of its call; an exception returned
    as one job's result fails that job alone."""

    def __init__(self, handlers: dict[str, Callable[[list[Any]], list[Any]]], max_batch: int = MAX_BATCH) -> None:
        self.handlers = handlers
        self.max_batch = max_batch
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="gnnrec-scorer", daemon=True)
        self._thread.start()

    def submit(self, kind: str, payload: Any, timeout: float | None = 60.0) -> Any:
        if not self._thread.is_alive():
            raise RuntimeError("the scoring thread has stopped")
        job = _Job(kind, payload)
        self._jobs.put(job)
        return job.future.result(timeout)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def _work(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            waiting = [first]
            while len(waiting) < self.max_batch * len(self.handlers):
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)  # stop after this round
                    break
                waiting.append(job)
            for kind in dict.fromkeys(job.kind for job in waiting):
                jobs = [job for job in waiting if job.kind == kind]
                for start in range(0, len(jobs), self.max_batch):
                    self._run(kind, jobs[start : start + self.max_batch])

    def _run(self, kind: str, jobs: list[_Job]) -> None:
        try:
            results = self.handlers[kind]([job.payload for job in jobs])
        except BaseException as error:  # noqa: BLE001 - handed to the waiting requests
            for job in jobs:
                job.future.set_exception(error)
            return
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):  # a handler's per-job failure
                job.future.set_exception(result)
            else:
                job.future.set_result(result)


@dataclass(frozen=True)
class NewPerson:
    """A person who is not in the data: optional demographics and the films they liked and disliked
    (``int`` = a raw movie id, ``str`` = a title)."""

    liked: Sequence[int | str] = ()
    disliked: Sequence[int | str] = ()
    age: float | None = None
    gender: str | None = None
    occupation: str | None = None


class Recommender:
    """A fitted model and its split, answering the service's requests."""

    def __init__(
        self,
        model: Any,
        split: RatingSplit,
        max_batch: int = MAX_BATCH,
        precompute_budget: int = PRECOMPUTE_BUDGET,
    ) -> None:
        self.model = model
        self.split = split
        self.catalogue = Catalogue(split)
        self.layout = split.user_layout
        self.similarity = MovieSimilarity.of(model)
        self.catalogue.title_index  # noqa: B018 - built now, not on the first request
        # reasons name films as people say them: "The Empire Strikes Back (1980)"
        self.labels = [natural_title(self.catalogue.label(movie)) for movie in range(split.num_movies)]
        model.recommend(torch.zeros(1, dtype=torch.long), k=1)  # fills the model's scoring caches
        self.batcher = ScoreBatcher(
            {"user": self._top_users, "similar": self._top_similar, "person": self._top_persons}, max_batch
        )
        info = model.info
        # Known users' and films' lists do not change while the model is served: where scoring every user
        # (film) once fits the budget, they are computed now, in batches, and requests only look them up.
        self.user_lists = self._all_users() if info.num_users * info.num_movies <= precompute_budget else None
        self.similar_lists = self._all_similar() if info.num_movies**2 <= precompute_budget else None

    def _all_users(self) -> tuple[Tensor, Tensor, Tensor]:
        users = torch.arange(self.model.info.num_users)
        top, score = self.model.recommend(users, k=self.max_k)
        return top, score, ~self.model.seen_mask(users).gather(1, top)

    def _all_similar(self) -> tuple[Tensor, Tensor]:
        tops, values = zip(*((top, value) for _, top, value in self.similarity.chunks(self.max_k)), strict=True)
        return torch.cat(tops), torch.cat(values)

    def close(self) -> None:
        self.batcher.close()

    # ------------------------------------------------------------------ what the service tells about itself
    @property
    def supports_new_person(self) -> bool:
        return "users" in getattr(self.model, "fold_in_kinds", ())

    def health(self) -> dict[str, Any]:
        info = self.model.info
        return {
            "status": "ok",
            "model": self.model.name,
            "dataset": info.name,
            "users": info.num_users,
            "movies": info.num_movies,
            "rating_scale": [info.rating_min, info.rating_max],
            "predicts_ratings": bool(self.model.predicts_ratings),
            "similarity": self.similarity.method,
            "new_person": {
                "supported": self.supports_new_person,
                "fields": self.layout.fields(),
                "occupations": list(getattr(self.layout, "occupations", []) or []),
            },
            "max_k": self.max_k,
        }

    @property
    def max_k(self) -> int:
        return min(MAX_K, self.model.info.num_movies - 1)

    def check_k(self, k: int, limit: int | None = None) -> int:
        limit = self.max_k if limit is None else min(limit, self.max_k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limit:
            raise ServiceError(422, "invalid_k", f"k must be an integer in 1..{limit}, got {k!r}")
        return k

    def _row(self, rank: int, movie: int, score: float, key: str = "score") -> dict[str, Any]:
        return {"rank": rank, **self.catalogue.movie(movie), key: round(float(score), 4), "reason": None}

    # ------------------------------------------------------------------ requests
    def known_user(self, user_id: Any, k: int = 10) -> dict[str, Any]:
        """A known user's top-``k`` unseen films."""
        try:
            user = self.catalogue.user_index(user_id)
        except UnknownIdError as error:
            raise ServiceError(404, "unknown_user", str(error), user_id=user_id) from None
        k = self.check_k(k)
        if self.user_lists is not None:
            top, score, unseen = (part[user, :k] for part in self.user_lists)
            movies, scores = top[unseen].tolist(), score[unseen].tolist()
        else:
            movies, scores = self.batcher.submit("user", (user, k))
        return {
            "user_id": self.catalogue.user_ids[user],
            "model": self.model.name,
            "recommendations": [
                self._row(rank, m, s) for rank, (m, s) in enumerate(zip(movies, scores, strict=True), start=1)
            ],
        }

    def similar(self, movie_id: Any, k: int = 10) -> dict[str, Any]:
        """The ``k`` films most similar to one film."""
        try:
            movie = self.catalogue.movie_index(movie_id)
        except UnknownIdError as error:
            raise ServiceError(404, "unknown_movie", str(error), movie_id=movie_id) from None
        k = self.check_k(k)
        if self.similar_lists is not None:
            movies, values = (part[movie, :k].tolist() for part in self.similar_lists)
        else:
            movies, values = self.batcher.submit("similar", (movie, k))
        return {
            "movie": self.catalogue.movie(movie),
            "method": self.similarity.method,
            "similar": [
                self._row(rank, m, v, "similarity")
                for rank, (m, v) in enumerate(zip(movies, values, strict=True), start=1)
            ],
        }

    def search(self, query: str, limit: int = 10) -> dict[str, Any]:
        """Films whose title matches what has been typed so far."""
        if not isinstance(query, str) or not query.strip():
            raise ServiceError(422, "invalid_request", "q: give some text to search for")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_K:
            raise ServiceError(422, "invalid_request", f"limit must be an integer in 1..{MAX_K}, got {limit!r}")
        matches = self.catalogue.title_index.search(query, limit)
        return {
            "query": query,
            "results": [
                {**self.catalogue.movie(m.index), "ratings": self.catalogue.popularity[m.index]} for m in matches
            ],
        }

    def resolve_movie(self, item: Any, where: str) -> int:
        """A movie index from a raw id (an integer, or a string where the data's ids are strings) or a title."""
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ServiceError(422, "invalid_request", f"{where}: give a movie id (integer) or a title, got {item!r}")
        if isinstance(item, int) or (self.catalogue.string_ids and item in self.catalogue.movie_id_set):
            try:
                return self.catalogue.movie_index(item)
            except UnknownIdError as error:
                raise ServiceError(422, "unknown_movie", f"{where}: {error}", movie_id=item) from None
        try:
            return self.catalogue.title_index.resolve(item).index
        except ValueError as error:
            raise title_error(error, where) from None

    def person_features(self, person: NewPerson) -> Tensor | None:
        """The feature row of the person's demographics (None: none given, the average user's are used)."""
        given = {name: getattr(person, name) for name in ("age", "gender", "occupation")}
        given = {name: value for name, value in given.items() if value is not None and value != ""}
        if not given:
            return None
        fields = self.layout.fields()
        if not fields:
            raise ServiceError(
                422, "invalid_person", f"{self.split.name} has no user demographics; give liked/disliked films only"
            )
        missing = [name for name in fields if name not in given]
        if missing:
            raise ServiceError(
                422, "invalid_person", f"give all of {', '.join(fields)} or none of them; missing {', '.join(missing)}"
            )
        try:
            return self.layout.encode(**given).view(1, -1)
        except ValueError as error:
            raise ServiceError(422, "invalid_person", str(error)) from None

    def new_person(self, person: NewPerson, k: int = 10) -> dict[str, Any]:
        """Top-``k`` films for a person who is not in the data (their listed films excluded), each with its
        ``reason``: the listed films that raise its score most (``FoldIn.explain``)."""
        if not self.supports_new_person:
            raise ServiceError(
                501, "new_person_not_supported",
                f"a {self.model.name!r} model cannot place a new person without retraining; serve a model that "
                f"can ({', '.join(models_with_user_fold_in())})",
            )  # fmt: skip
        if len(person.liked) + len(person.disliked) > MAX_RATED:
            raise ServiceError(422, "invalid_request", f"list at most {MAX_RATED} liked and disliked films together")
        info = self.model.info
        rated: dict[int, tuple[str, float]] = {}
        for where, items, rating in (
            ("liked", person.liked, info.rating_max),
            ("disliked", person.disliked, info.rating_min),
        ):
            for position, item in enumerate(items):
                movie = self.resolve_movie(item, f"{where}[{position}]")
                if movie in rated:
                    raise ServiceError(
                        422, "duplicate_movie",
                        f"{where}[{position}]: {self.catalogue.label(movie)} is already listed in {rated[movie][0]}",
                    )  # fmt: skip
                rated[movie] = (f"{where}[{position}]", rating)
        features = self.person_features(person)
        k = self.check_k(k, info.num_movies - len(rated))
        movies, values = check_new_ratings(
            [(movie, rating) for movie, (_, rating) in rated.items()], info.num_movies, self.split.rating_levels
        )
        top, scores, reasons = self.batcher.submit("person", (movies, values, features, k))
        return {
            "model": self.model.name,
            "liked": [self.catalogue.movie(m) for m, (w, _) in rated.items() if w.startswith("liked")],
            "disliked": [self.catalogue.movie(m) for m, (w, _) in rated.items() if w.startswith("disliked")],
            "recommendations": [
                {**self._row(rank, m, s), "reason": why}
                for rank, (m, s, why) in enumerate(zip(top, scores, reasons, strict=True), start=1)
            ],
        }

    # ------------------------------------------------------------------ batch handlers (the worker thread)
    def _top_users(self, payloads: list[tuple[int, int]]) -> list[tuple[list[int], list[float]]]:
        users = torch.tensor([user for user, _ in payloads], dtype=torch.long)
        k = max(k for _, k in payloads)
        top, score = self.model.recommend(users, k=k)
        seen = self.model.seen_mask(users).gather(1, top)
        results = []
        for row, (_, wanted) in enumerate(payloads):
            keep = ~seen[row, :wanted]
            results.append((top[row, :wanted][keep].tolist(), score[row, :wanted][keep].tolist()))
        return results

    def _top_similar(self, payloads: list[tuple[int, int]]) -> list[tuple[list[int], list[float]]]:
        movies = torch.tensor([movie for movie, _ in payloads], dtype=torch.long)
        top, value = self.similarity.top_k(movies, max(k for _, k in payloads))
        return [(top[row, :k].tolist(), value[row, :k].tolist()) for row, (_, k) in enumerate(payloads)]

    def _top_persons(self, payloads: list[tuple[Tensor, Tensor, Tensor | None, int]]) -> list[Any]:
        """One fold-in for all waiting people who gave demographics and one for those who did not (whose
        features the model fills in): each new person is one new row of the same fold-in."""
        results: list[Any] = [None] * len(payloads)
        with_features = [i for i, payload in enumerate(payloads) if payload[2] is not None]
        without = [i for i, payload in enumerate(payloads) if payload[2] is None]
        for group in (with_features, without):
            if group:
                for i, result in zip(group, self._fold_in_people([payloads[i] for i in group]), strict=True):
                    results[i] = result
        return results

    def _fold_in_people(self, people: list[tuple[Tensor, Tensor, Tensor | None, int]]) -> list[Any]:
        info = self.model.info
        rows = torch.cat([torch.full_like(movies, row) for row, (movies, _, _, _) in enumerate(people)])
        support = torch.stack([rows, torch.cat([movies for movies, _, _, _ in people])])
        ratings = torch.cat([values for _, values, _, _ in people])
        features = torch.cat([f for _, _, f, _ in people]) if people[0][2] is not None else None
        try:
            fold = self.model.fold_in("users", support, ratings, num_new=len(people), features=features, explain=True)
        except ValueError as error:
            return [ServiceError(422, "invalid_person", str(error))] * len(people)
        top = fold.top_k(max(k for _, _, _, k in people))
        scores = fold.scores.gather(1, top)
        if self.model.predicts_ratings:
            scores = scores.clamp(info.rating_min, info.rating_max)
        alike = fold.undecided()
        refusal = ServiceError(
            422,
            "no_signal",
            f"the {self.model.name!r} model scores every film alike for this person (it reads neither a profile "
            "nor the films named, or none counts as liked); name films the person liked",
        )
        return [
            refusal
            if bool(alike[row])
            else (top[row, :k].tolist(), scores[row, :k].tolist(), fold.explain(row, top[row, :k], self.labels))
            for row, (_, _, _, k) in enumerate(people)
        ]
