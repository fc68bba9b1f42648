"""Similar films from a fitted model: cosine similarity of movie vectors.

A model with node embeddings (a callable ``embeddings()`` returning ``{"user": [U, d], "movie": [M, d]}``,
as the GNN has) gives its movie embeddings. Any other model gives each movie's *score profile*: its scores
for a fixed, evenly spaced sample of users, centred per user, so that two films are similar when the model
scores them alike for the same people.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gnnrec.evaluation.evaluator import user_chunk_size

EMBEDDING = "embedding-cosine"
SCORE_PROFILE = "score-profile-cosine"
PROFILE_USERS = 2048  # users whose scores make a movie's profile (memory: PROFILE_USERS × movies floats)
SIMILARITY_MEMORY_BUDGET = 2**28  # bytes of one chunk's [movies in chunk, all movies] similarity block


def node_embeddings(model: Any) -> dict[str, Tensor] | None:
    """The model's ``{"user": [U, d], "movie": [M, d]}`` embeddings, or None when it has none."""
    get = getattr(model, "embeddings", None)
    if not callable(get):
        return None
    with torch.no_grad():
        return {name: matrix.detach().float().cpu() for name, matrix in get().items()}


def models_with_embeddings() -> list[str]:
    """Registered model names whose class offers ``embeddings()``."""
    from gnnrec.models import available_models, get_model_class

    return [name for name in available_models() if callable(getattr(get_model_class(name), "embeddings", None))]


def score_profiles(model: Any, max_users: int = PROFILE_USERS) -> Tensor:
    """``[num_movies, n]`` scores of every movie for ``n = min(max_users, num_users)`` evenly spaced users,
    each user's scores centred on their mean."""
    num_users = model.info.num_users
    users = torch.linspace(0, num_users - 1, min(max_users, num_users)).round().long().unique()
    chunks = [model.score_matrix(rows, clip=False) for rows in users.split(user_chunk_size(model.info.num_movies))]
    scores = torch.cat(chunks)
    return (scores - scores.mean(dim=1, keepdim=True)).T.contiguous()


@dataclass
class MovieSimilarity:
    """Unit-length movie vectors and how they were made (``method``: :data:`EMBEDDING` or :data:`SCORE_PROFILE`)."""

    vectors: Tensor
    method: str

    @classmethod
    def of(cls, model: Any) -> MovieSimilarity:
        """Movie embeddings when the model has them, else score profiles."""
        embeddings = node_embeddings(model)
        if embeddings is not None and "movie" in embeddings:
            vectors, method = embeddings["movie"], EMBEDDING
        else:
            vectors, method = score_profiles(model), SCORE_PROFILE
        return cls(torch.nn.functional.normalize(vectors.float(), dim=1), method)

    @property
    def num_movies(self) -> int:
        return int(self.vectors.size(0))

    def top_k(self, movies: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """``[len(movies), k]`` most similar other movies and their cosine similarities (ties: lower index)."""
        if not 1 <= k < self.num_movies:
            raise ValueError(f"k must lie in 1..{self.num_movies - 1}, got {k}")
        movies = torch.as_tensor(movies, dtype=torch.long).reshape(-1)
        similarity = self.vectors[movies] @ self.vectors.T
        similarity[torch.arange(len(movies)), movies] = float("-inf")  # a film is not its own neighbour
        top = torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, :k]
        return top, similarity.gather(1, top)

    def chunks(self, k: int, memory_budget: int = SIMILARITY_MEMORY_BUDGET) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """``(movies, top, similarity)`` for every movie, a bounded block of movies at a time."""
        size = max(1, memory_budget // (4 * max(1, self.num_movies)))
        for movies in torch.arange(self.num_movies).split(size):
            top, similarity = self.top_k(movies, k)
            yield movies, top, similarity
