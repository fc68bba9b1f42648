"""The HTTP face of :class:`~gnnrec.serving.service.Recommender`: a FastAPI application with JSON endpoints,
OpenAPI docs at ``/docs`` and the web page at ``/``.

Every error is JSON ``{"error": CODE, "detail": MESSAGE, ...}``: 404 for an unknown user or movie in the
path, 422 for bad input (bad ``k``, a malformed body, an unknown or ambiguous title with suggestions or
candidates, bad demographics), 501 when the model cannot place a new person.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from gnnrec.serving.service import MAX_K, MAX_RATED, NewPerson, Recommender, ServiceError


class Movie(BaseModel):
    movie_id: int | str
    title: str
    year: int | None = None
    genres: list[str] = []


class Recommendation(Movie):
    rank: int
    score: float = Field(description="predicted rating (ranking-only models: the ranking score)")
    reason: str | None = Field(
        None,
        description="why this film: for a new person, the liked or disliked films that raise its score most "
        "(leave-one-out); null for a known user",
    )


class SimilarMovie(Movie):
    rank: int
    similarity: float = Field(description="cosine similarity to the film asked about")
    reason: str | None = None


class UserRecommendations(BaseModel):
    user_id: int | str
    model: str
    recommendations: list[Recommendation]


class SimilarMovies(BaseModel):
    movie: Movie
    method: str = Field(description="embedding-cosine (the model's movie embeddings) or score-profile-cosine")
    similar: list[SimilarMovie]


class SearchResult(Movie):
    ratings: int = Field(description="number of known ratings (orders equally good matches)")


class SearchResults(BaseModel):
    query: str
    results: list[SearchResult]


class PersonRequest(BaseModel):
    """A new person: the films they liked and disliked (an integer is a movie id, a string a title, with or
    without the year), and optionally their demographics (all of them or none)."""

    model_config = ConfigDict(extra="forbid")

    liked: list[int | str] = Field(default_factory=list, max_length=MAX_RATED)
    disliked: list[int | str] = Field(default_factory=list, max_length=MAX_RATED)
    age: float | None = None
    gender: str | None = None
    occupation: str | None = None
    k: int = Field(10, ge=1, le=MAX_K)


class PersonRecommendations(BaseModel):
    model: str
    liked: list[Movie]
    disliked: list[Movie]
    recommendations: list[Recommendation]


class ErrorResponse(BaseModel):
    error: str
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown user or movie id"},
    422: {"model": ErrorResponse, "description": "bad input (k, body, title, demographics)"},
}


def _error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": code, "detail": detail, **extra})


UNION_TAGS = {"int", "str", "float", "bool"}  # pydantic's last location part for each member of a union


def _validation_message(error: RequestValidationError) -> str:
    """One line: ``field: what is wrong`` per bad field (the alternatives of a union joined by "or")."""
    messages: dict[str, list[str]] = {}
    for item in error.errors():
        if item.get("type") == "json_invalid":
            reason = (item.get("ctx") or {}).get("error", "invalid JSON")
            messages.setdefault("body", []).append(f"malformed JSON ({reason})")
            continue
        loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
        if loc and loc[-1] in UNION_TAGS:
            loc = loc[:-1]
        messages.setdefault(".".join(loc) or "body", []).append(str(item.get("msg")))
    parts = [f"{where}: {' or '.join(dict.fromkeys(texts))}" for where, texts in messages.items()]
    return "; ".join(parts) or "invalid request"


def page_html() -> str:
    """The web page (inline HTML, CSS and JavaScript, no external assets)."""
    return resources.files("gnnrec.serving").joinpath("static/index.html").read_text(encoding="utf-8")


RESPONSE_CACHE = 4096  # precomputed answers kept serialised (they do not change while the model is served)


async def _answer(call: Any, *args: Any, instant: bool) -> Response:
    """``call(*args)`` as JSON: on the event loop when it only looks up precomputed lists (``instant``), else in
    a worker thread (it waits for the model). The response models document the shape; the service builds it."""
    if instant:
        return Response(call(*args), media_type="application/json")
    return JSONResponse(await run_in_threadpool(call, *args))


def _serialised(call: Any) -> Any:
    """``call`` with its answers as cached JSON bytes (for calls whose answers never change)."""

    @functools.lru_cache(maxsize=RESPONSE_CACHE)
    def cached(*args: Any) -> bytes:
        return json.dumps(call(*args), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    return cached


def create_app(recommender: Recommender) -> FastAPI:
    """The application serving ``recommender``."""
    app = FastAPI(
        title="gnnrec",
        summary=f"Recommendations from a {recommender.model.name!r} model on {recommender.model.info.name}",
        version="1",
    )
    page = page_html()
    instant_users = recommender.user_lists is not None
    instant_similar = recommender.similar_lists is not None
    known_user = _serialised(recommender.known_user) if instant_users else recommender.known_user
    similar_movies = _serialised(recommender.similar) if instant_similar else recommender.similar

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        return _error(error.status, error.code, str(error), **error.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return _error(error.status_code, code, f"{request.method} {request.url.path}: {error.detail}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", summary="the model served and what it can do")
    def health() -> dict[str, Any]:
        return recommender.health()

    @app.get(
        "/api/users/{user_id}/recommendations",
        response_model=UserRecommendations,
        responses=ERRORS,
        summary="a known user's top-k unseen films",
    )
    async def user_recommendations(
        user_id: str = Path(description="raw user id, as in the data"),
        k: int = Query(10, ge=1, le=MAX_K, description="number of films"),
    ) -> Response:
        return await _answer(known_user, user_id, k, instant=instant_users)

    @app.get("/api/movies/search", response_model=SearchResults, responses=ERRORS, summary="films by title as typed")
    async def search(
        q: str = Query(min_length=1, max_length=200, description="the title so far"),
        limit: int = Query(10, ge=1, le=MAX_K),
    ) -> JSONResponse:
        return await _answer(recommender.search, q, limit, instant=False)

    @app.get(
        "/api/movies/{movie_id}/similar",
        response_model=SimilarMovies,
        responses=ERRORS,
        summary="the k films most similar to one film",
    )
    async def similar(
        movie_id: str = Path(description="raw movie id"),
        k: int = Query(10, ge=1, le=MAX_K),
    ) -> Response:
        return await _answer(similar_movies, movie_id, k, instant=instant_similar)

    @app.post(
        "/api/recommendations",
        response_model=PersonRecommendations,
        responses={**ERRORS, 501: {"model": ErrorResponse, "description": "the model cannot place new persons"}},
        summary="top-k films for a new person",
    )
    async def person_recommendations(body: PersonRequest) -> JSONResponse:
        person = NewPerson(
            liked=body.liked, disliked=body.disliked, age=body.age, gender=body.gender, occupation=body.occupation
        )
        return await _answer(recommender.new_person, person, body.k, instant=False)

    return app
