"""Everything a fitted model knows, as files: every user's top-K, every film's most similar films, and the
node embeddings, in Parquet, CSV or JSON Lines.

Each table is computed a bounded chunk of rows at a time (users for the top-K, movies for the similar
films) and streamed into a temporary file beside the target, which is renamed onto it only when complete:
an error or Ctrl-C leaves no half-written file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from gnnrec.evaluation.evaluator import user_chunk_size
from gnnrec.serving.catalogue import Catalogue
from gnnrec.serving.similarity import MovieSimilarity, models_with_embeddings, node_embeddings
from gnnrec.utils import atomic_path

FORMATS = ("parquet", "csv", "jsonl")
SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def table_format(path: str | Path, format: str | None = None) -> str:
    """The format named by ``format``, else by the suffix of ``path``."""
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot tell the format of {path} from its suffix {suffix!r}; name it .parquet, .csv or .jsonl "
            f"or give --format {'|'.join(FORMATS)}"
        )
    return SUFFIXES[suffix]


@contextmanager
def table_writer(path: str | Path, format: str) -> Iterator[Any]:
    """A ``write(frame)`` callable appending DataFrame chunks to ``path`` (atomically replaced on success)."""
    if format == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("Parquet export needs pyarrow: pip install gnnrec[export] (or use CSV/JSONL)") from None
    with atomic_path(path) as tmp:
        if format == "parquet":
            writer = None

            def write(frame: pd.DataFrame) -> None:
                nonlocal writer
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))

            try:
                yield write
            finally:
                if writer is not None:
                    writer.close()
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                first = True

                def write(frame: pd.DataFrame) -> None:
                    nonlocal first
                    if format == "csv":
                        frame.to_csv(handle, header=first, index=False)
                    else:
                        for record in frame.to_dict(orient="records"):
                            handle.write(json.dumps(record, ensure_ascii=False, default=_plain) + "\n")
                    first = False

                yield write


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays inside records."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _progress(total: int, description: str, unit: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, disable=None if enabled else True)


def top_k_frames(
    model: Any, catalogue: Catalogue, k: int, chunk_users: int | None = None, progress: bool = False
) -> Iterable[pd.DataFrame]:
    """Every user's top-``k`` unseen movies as DataFrames of ``user, rank, movie, title, score`` (raw ids),
    ``chunk_users`` users at a time (default: as many as the evaluator's scoring memory budget allows)."""
    num_users, num_movies = model.info.num_users, model.info.num_movies
    if not 1 <= k <= num_movies:
        raise ValueError(f"k must lie in 1..{num_movies}, got {k}")
    size = chunk_users or user_chunk_size(num_movies)
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 user, got {size}")
    user_ids, movie_ids, titles = catalogue.user_ids, catalogue.movie_ids, catalogue.titles
    with _progress(num_users, f"top-{k} of {model.name}", "user", progress) as bar:
        for users in torch.arange(num_users).split(size):
            top, score = model.recommend(users, k=k)
            keep = ~model.seen_mask(users).gather(1, top)  # users who rated all but < k movies get fewer rows
            rows, ranks = keep.nonzero(as_tuple=True)
            movies = top[rows, ranks].tolist()
            yield pd.DataFrame(
                {
                    "user": [user_ids[u] for u in users[rows].tolist()],
                    "rank": (ranks + 1).tolist(),
                    "movie": [movie_ids[m] for m in movies],
                    "title": [titles[m] for m in movies],
                    "score": score[rows, ranks].float().numpy(),
                }
            )
            bar.update(len(users))


def similar_frames(
    similarity: MovieSimilarity, catalogue: Catalogue, k: int, progress: bool = False
) -> Iterable[pd.DataFrame]:
    """Every movie's ``k`` most similar movies: ``movie, title, rank, similar_movie, similar_title, similarity``."""
    movie_ids, titles = catalogue.movie_ids, catalogue.titles
    with _progress(similarity.num_movies, f"{k} similar films", "movie", progress) as bar:
        for movies, top, value in similarity.chunks(k):
            source = movies.repeat_interleave(k).tolist()
            target = top.reshape(-1).tolist()
            yield pd.DataFrame(
                {
                    "movie": [movie_ids[m] for m in source],
                    "title": [titles[m] for m in source],
                    "rank": list(range(1, k + 1)) * len(movies),
                    "similar_movie": [movie_ids[m] for m in target],
                    "similar_title": [titles[m] for m in target],
                    "similarity": value.reshape(-1).numpy(),
                }
            )
            bar.update(len(movies))


def embedding_frames(model: Any, catalogue: Catalogue, chunk_rows: int = 65536) -> Iterable[pd.DataFrame]:
    """Node embeddings: ``node_type, id, title`` (movies only) and ``dim_0 … dim_{d-1}``."""
    embeddings = node_embeddings(model)
    if embeddings is None:
        raise ValueError(
            f"{model.name!r} has no node embeddings to export; models with them: {', '.join(models_with_embeddings())}"
        )
    for node_type, ids in (("user", catalogue.user_ids), ("movie", catalogue.movie_ids)):
        matrix = embeddings[node_type]
        for start in range(0, len(ids), chunk_rows):
            block = matrix[start : start + chunk_rows].numpy()
            frame = pd.DataFrame(block, columns=[f"dim_{j}" for j in range(block.shape[1])])
            frame.insert(0, "title", catalogue.titles[start : start + chunk_rows] if node_type == "movie" else "")
            frame.insert(0, "id", [str(v) for v in ids[start : start + chunk_rows]])
            frame.insert(0, "node_type", node_type)
            yield frame


def write_table(path: str | Path, frames: Iterable[pd.DataFrame], format: str | None = None) -> int:
    """Stream ``frames`` into ``path`` atomically; returns the number of rows written."""
    rows = 0
    with table_writer(path, table_format(path, format)) as write:
        for frame in frames:
            write(frame)
            rows += len(frame)
    return rows
