"""The HTTP face of :class:`~gnnrec.serving.service.Recommender`: a FastAPI application with JSON endpoints,
OpenAPI docs at ``/docs`` and the web page at ``/``.

Every error is JSON ``{"error": CODE, "detail": MESSAGE, ...}``: 404 for an unknown user or movie in the
path, 422 for bad input (bad ``k``, a malformed body, an unknown or ambiguous title with suggestions or
candidates, bad demographics), 501 when the model cannot place a new person.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
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
    reason: str | None = Field(None, description="why this film, when the model gives a reason")


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


def create_app(recommender: Recommender) -> FastAPI:
    """The application serving ``recommender``."""
    app = FastAPI(
        title="gnnrec",
        summary=f"Recommendations from a {recommender.model.name!r} model on {recommender.model.info.name}",
        version="1",
    )
    page = page_html()

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
    def user_recommendations(
        user_id: str = Path(description="raw user id, as in the data"),
        k: int = Query(10, ge=1, le=MAX_K, description="number of films"),
    ) -> dict[str, Any]:
        return recommender.known_user(user_id, k)

    @app.get("/api/movies/search", response_model=SearchResults, responses=ERRORS, summary="films by title as typed")
    def search(
        q: str = Query(min_length=1, max_length=200, description="the title so far"),
        limit: int = Query(10, ge=1, le=MAX_K),
    ) -> dict[str, Any]:
        return recommender.search(q, limit)

    @app.get(
        "/api/movies/{movie_id}/similar",
        response_model=SimilarMovies,
        responses=ERRORS,
        summary="the k films most similar to one film",
    )
    def similar(
        movie_id: str = Path(description="raw movie id"),
        k: int = Query(10, ge=1, le=MAX_K),
    ) -> dict[str, Any]:
        return recommender.similar(movie_id, k)

    @app.post(
        "/api/recommendations",
        response_model=PersonRecommendations,
        responses={**ERRORS, 501: {"model": ErrorResponse, "description": "the model cannot place new persons"}},
        summary="top-k films for a new person",
    )
    def person_recommendations(body: PersonRequest) -> dict[str, Any]:
        person = NewPerson(
            liked=body.liked, disliked=body.disliked, age=body.age, gender=body.gender, occupation=body.occupation
        )
        return recommender.new_person(person, body.k)

    return app
