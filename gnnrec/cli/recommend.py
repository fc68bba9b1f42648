"""``gnnrec recommend``: top-k movies for a known user or a new person."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

from gnnrec.cli.common import (
    check_top_k,
    fit_with_progress,
    load_checkpoint,
    set_overrides,
    slug,
    split_from_args,
    writable_directory,
)

RECOMMEND_MODEL = "gnn"  # trained on the fly by `gnnrec recommend` when no --checkpoint is given


def _parse_liked(items: list[str], rating_min: float, rating_max: float) -> list[tuple[str, float]]:
    """``["50", "172:4"]`` → ``[("50", 5.0), ("172", 4.0)]`` (the default rating is the top of the scale).

    Errors name the id as typed: a repeated movie, a rating that is not a number or lies off the scale.
    """
    liked, first = [], {}
    for item in items:
        movie, sep, rating = item.partition(":")
        movie = movie.strip()
        if not movie or (sep and not rating):
            raise ValueError(f"--liked expects MOVIE_ID or MOVIE_ID:RATING, got {item!r}")
        try:
            value = float(rating) if sep else rating_max
        except ValueError:
            raise ValueError(f"--liked {item!r}: rating must be a number") from None
        if not rating_min <= value <= rating_max:  # NaN fails too
            raise ValueError(f"--liked {item!r}: rating must lie in {rating_min:g}..{rating_max:g}")
        key = movie.lstrip("+").lstrip("0") or "0"
        if key in first:
            raise ValueError(f"--liked lists movie {movie} twice ({first[key]!r} and {item!r}); give each movie once")
        first[key] = item
        liked.append((movie, value))
    return liked


def _display_title(title: str, year: int | None) -> str:
    suffix = f" ({year})"
    return title[: -len(suffix)] if year and title.endswith(suffix) else title


def _recommendation_rows(split: Any, movies: list[int], scores: list[float]) -> list[dict[str, Any]]:
    from gnnrec.data.display import movie_columns

    columns = movie_columns(split.graph)
    rows = []
    for rank, (movie, score) in enumerate(zip(movies, scores, strict=True), start=1):
        year = columns["year"][movie]
        rows.append(
            {
                "rank": rank,
                "movie_id": int(columns["raw_id"][movie]),
                "title": _display_title(columns["title"][movie], year),
                "year": year,
                "genres": columns["genres"][movie],
                "predicted_rating": round(float(score), 3),
            }
        )
    return rows


def _print_recommendations(rows: list[dict[str, Any]]) -> None:
    title_width = min(48, max([len("title")] + [len(r["title"]) for r in rows]))
    print(f"{'#':>3}  {'id':>5}  {'title':<{title_width}}  {'year':>4}  {'rating':>6}  genres")
    for row in rows:
        title = row["title"] if len(row["title"]) <= title_width else row["title"][: title_width - 1] + "…"
        year = str(row["year"] or "?")
        print(
            f"{row['rank']:>3}  {row['movie_id']:>5}  {title:<{title_width}}  {year:>4}  "
            f"{row['predicted_rating']:>6.2f}  {', '.join(row['genres']) or 'none'}"
        )


def _quick_gnn(split: Any, overrides: dict[str, str]) -> Any:
    """The GNN used when ``recommend`` gets no checkpoint: default config (plus --set), cached per split and config."""
    from gnnrec.config import config_to_dict
    from gnnrec.models import RatingModel, create_model
    from gnnrec.models.checkpoint import CHECKPOINT_FILE, CheckpointError
    from gnnrec.utils import gnnrec_home

    model = create_model(RECOMMEND_MODEL, overrides)
    key = json.dumps(config_to_dict(model.config), sort_keys=True, default=str)
    digest = hashlib.sha1(f"{split.fingerprint}{key}".encode()).hexdigest()[:12]
    cache = gnnrec_home() / "models" / f"recommend-{RECOMMEND_MODEL}-{slug(split.name)}-{digest}"
    checkpoint = cache / CHECKPOINT_FILE
    if checkpoint.is_file():
        try:
            model = RatingModel.load(checkpoint, split)
            print(f"using the cached {RECOMMEND_MODEL} model {checkpoint}", file=sys.stderr)
            return model
        except CheckpointError as error:
            print(f"warning: retraining: the cached model cannot be used ({error})", file=sys.stderr)
    print(
        f"no --checkpoint: training {RECOMMEND_MODEL} on {split.name} with its default config"
        f"{' and the --set overrides' if overrides else ''} (cached in {cache} for the next call)",
        file=sys.stderr,
    )
    writable_directory(cache)
    writer, seconds = fit_with_progress(model, split, cache / "tensorboard", f"train {RECOMMEND_MODEL}")
    writer.close()
    model.save(checkpoint)
    print(f"trained in {seconds:.1f} s", file=sys.stderr)
    return model


def cmd_recommend(args: argparse.Namespace) -> int:
    from gnnrec.coldstart import movie_indices_from_raw_ids
    from gnnrec.data.display import user_columns

    check_top_k(args.k)
    person = [args.age, args.gender, args.occupation]
    new_person = any(v is not None for v in person) or bool(args.liked)
    if args.user is not None and new_person:
        raise ValueError("give either --user (a known user) or --age/--gender/--occupation/--liked (a new person)")
    if args.user is None and not new_person:
        raise ValueError("give --user RAW_ID for a known user, or --age, --gender, --occupation and --liked")
    overrides = set_overrides(args.set)
    if args.checkpoint is not None and overrides:
        raise ValueError("--set configures the model trained without --checkpoint; drop one of them")
    if args.checkpoint is not None:
        model, split = load_checkpoint(args.checkpoint, args)
    else:
        split = split_from_args(args)
        model = None
    graph = split.graph
    if args.k > split.num_movies:
        raise ValueError(f"-k {args.k} exceeds the {split.num_movies} movies of {split.name}")
    if args.user is not None:
        users = user_columns(graph)
        raw_ids = users["raw_id"]
        if args.user not in raw_ids:
            raise ValueError(
                f"unknown user id {args.user}; valid user ids lie in {min(raw_ids)}..{max(raw_ids)} "
                f"({len(raw_ids)} users)"
            )
        user = raw_ids.index(args.user)
        model = model or _quick_gnn(split, overrides)
        movies, scores = model.recommend([user], k=args.k)
        movies, scores = movies[0].tolist(), scores[0].tolist()
        profile = [f"{name} {users[name][user]}" for name in ("age", "gender", "occupation") if users[name][user]]
        heading = (
            f"top {args.k} for user {args.user} ({', '.join(profile + [''])}"
            f"{int(model.seen_mask([user]).sum())} known ratings) by {model.name}"
        )
    else:
        occupations = getattr(graph, "occupation_names", None)
        if occupations is None:
            if any(v is not None for v in person):
                raise ValueError(f"{split.name} has no user demographics; describe a new person with --liked only")
        else:
            missing = [n for n, v in zip(("--age", "--gender", "--occupation"), person, strict=True) if v is None]
            if missing:
                raise ValueError(f"a new person needs {', '.join(missing)} (and optionally --liked)")
            # the dataset's feature layout checks the person before any time is spent on training
            split.user_layout.encode(age=args.age, gender=args.gender, occupation=args.occupation)
        liked = _parse_liked(args.liked or [], split.rating_min, split.rating_max)
        indices = movie_indices_from_raw_ids([movie for movie, _ in liked], graph["movie"].raw_id)
        ratings = [(index, rating) for index, (_, rating) in zip(indices, liked, strict=True)]
        model = model or _quick_gnn(split, overrides)
        if not callable(getattr(model, "recommend_new_user", None)):
            raise ValueError(
                f"a {model.name!r} checkpoint cannot place a new person; use a {RECOMMEND_MODEL!r} checkpoint "
                "or leave out --checkpoint"
            )
        top, values = model.recommend_new_user(
            age=args.age, gender=args.gender, occupation=args.occupation, ratings=ratings, k=args.k
        )
        movies, scores = top.tolist(), values.tolist()
        profile = [
            f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"
            for name, value in zip(("age", "gender", "occupation"), person, strict=True)
            if value is not None
        ]
        heading = (
            f"top {args.k} for a new person ({', '.join(profile + [''])}{len(ratings)} rated movie(s)) by {model.name}"
        )
    rows = _recommendation_rows(split, movies, scores)
    if args.json:
        print(json.dumps({"heading": heading, "recommendations": rows}, indent=2))
    else:
        print(heading)
        _print_recommendations(rows)
    return 0
