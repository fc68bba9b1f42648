"""``gnnrec recommend``: top-k movies for a known user or a new person."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
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


def _parse_rated(
    flag: str, items: list[str], default: float, levels: list[float], catalogue: Any, first: dict[int, tuple[str, str]]
) -> list[tuple[int, float]]:
    """``["50", "Fargo:4", "star wars (1977)"]`` → ``[(movie index, rating), ...]``; ``default`` is the rating
    of an item without ``:N``. An item of digits is a raw movie id; anything else a title (case- and
    accent-insensitive, year optional), where a ``:`` tail that is not a number belongs to the title.

    Errors name the item as typed: an unknown id or title (with the closest titles), an ambiguous title (with
    its candidates), a film listed twice (``first`` maps movie index → the flag and item first naming it, across
    ``--liked`` and ``--disliked``), a rating that is not a number or not on the scale.
    """
    rated = []
    low, high = min(levels), max(levels)
    for item in items:
        movie, sep, tail = item.rpartition(":")
        if not sep or not (_is_id(movie) or _is_number(tail)):
            movie, sep, tail = item, "", ""
        movie = movie.strip()
        is_id = _is_id(movie)
        if not movie or (sep and not tail.strip()):
            raise ValueError(f"{flag} expects MOVIE_ID, TITLE, MOVIE_ID:RATING or TITLE:RATING, got {item!r}")
        try:
            value = float(tail) if sep else default
        except ValueError:
            raise ValueError(f"{flag} {item!r}: rating must be a number") from None
        if not low <= value <= high:  # NaN fails too
            raise ValueError(f"{flag} {item!r}: rating must lie in {low:g}..{high:g}")
        if not any(abs(value - level) < 1e-6 for level in levels):
            raise ValueError(f"{flag} {item!r}: rating must be one of {', '.join(f'{v:g}' for v in levels)}")
        index = _movie_index(flag, item, movie, is_id, catalogue)
        if index in first:
            where, earlier = first[index]
            raise ValueError(
                f"{flag} lists movie {movie} twice ({earlier!r} and {item!r}); give each movie once"
                if where == flag
                else f"{flag} {item!r}: {catalogue.label(index)} is already listed in {where} ({earlier!r})"
            )
        first[index] = (flag, item)
        rated.append((index, value))
    return rated


def _is_id(text: str) -> bool:
    return text.strip().lstrip("+").isdigit()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _movie_index(flag: str, item: str, movie: str, is_id: bool, catalogue: Any) -> int:
    """The movie index of a raw id (digits) or a title."""
    from gnnrec.serving.catalogue import UnknownIdError

    if is_id:
        try:
            return catalogue.movie_index(int(movie))
        except UnknownIdError:
            ids = catalogue.movie_ids
            raise ValueError(
                f"{flag} {item!r}: unknown movie id(s) {int(movie)}; valid movie ids lie in {min(ids)}..{max(ids)}"
            ) from None
    try:
        return catalogue.title_index.resolve(movie).index
    except ValueError as error:  # unknown (with the closest titles) or ambiguous (with the candidates)
        raise ValueError(f"{flag} {item!r}: {error}") from None


def _recommendation_rows(
    catalogue: Any,
    movies: list[int],
    scores: list[float],
    reasons: list[str] | None = None,
    score_key: str = "predicted_rating",
) -> list[dict[str, Any]]:
    """One row per recommended movie: rank, the catalogue's id, title, year (the title's) and genres, score, reason."""
    return [
        {
            "rank": rank,
            **catalogue.movie(movie),
            score_key: round(float(score), 3),
            "reason": None if reasons is None else reasons[rank - 1],
        }
        for rank, (movie, score) in enumerate(zip(movies, scores, strict=True), start=1)
    ]


def _print_recommendations(rows: list[dict[str, Any]], score_key: str = "predicted_rating") -> None:
    title_width = min(48, max([len("title")] + [len(r["title"]) for r in rows]))
    header = "rating" if score_key == "predicted_rating" else "score"
    print(f"{'#':>3}  {'id':>5}  {'title':<{title_width}}  {'year':>4}  {header:>6}  genres")
    for row in rows:
        title = row["title"] if len(row["title"]) <= title_width else row["title"][: title_width - 1] + "…"
        year = str(row["year"] or "?")
        print(
            f"{row['rank']:>3}  {row['movie_id']:>5}  {title:<{title_width}}  {year:>4}  "
            f"{row[score_key]:>6.2f}  {', '.join(row['genres']) or 'none'}"
        )
        if row["reason"]:
            print(f"{'':>3}  {'':>5}  {row['reason']}")


def _quick_gnn(split: Any, overrides: dict[str, str]) -> Any:
    """The GNN used when ``recommend`` gets no checkpoint: default config with cold-start training
    (:data:`~gnnrec.models.gnn.presets.COLDSTART_TRAINING`), plus --set; cached per split and config."""
    from gnnrec.config import config_to_dict
    from gnnrec.models import RatingModel, create_model
    from gnnrec.models.checkpoint import CHECKPOINT_FILE, CheckpointError
    from gnnrec.models.gnn.presets import COLDSTART_TRAINING
    from gnnrec.utils import gnnrec_home

    model = create_model(RECOMMEND_MODEL, {**COLDSTART_TRAINING, **overrides})
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
        f"no --checkpoint: training {RECOMMEND_MODEL} on {split.name} with its default config and cold-start "
        f"training{' and the --set overrides' if overrides else ''} (cached in {cache} for the next call)",
        file=sys.stderr,
    )
    writable_directory(cache)
    with warnings.catch_warnings():
        if "max_epochs" not in overrides:  # COLDSTART_TRAINING's budget is chosen on validation cold users, not warm
            warnings.filterwarnings("ignore", message="gnn: the fit reached max_epochs")
        writer, seconds = fit_with_progress(model, split, cache / "tensorboard", f"train {RECOMMEND_MODEL}")
    writer.close()
    model.save(checkpoint)
    print(f"trained in {seconds:.1f} s", file=sys.stderr)
    return model


def cmd_recommend(args: argparse.Namespace) -> int:
    import torch

    from gnnrec.data.display import user_columns

    check_top_k(args.k)
    person = [args.age, args.gender, args.occupation]
    new_person = any(v is not None for v in person) or bool(args.liked) or bool(args.disliked)
    if args.user is not None and new_person:
        raise ValueError(
            "give either --user (a known user) or --age/--gender/--occupation/--liked/--disliked (a new person)"
        )
    if args.user is None and not new_person:
        raise ValueError("give --user RAW_ID for a known user, or --age, --gender, --occupation and --liked/--disliked")
    overrides = set_overrides(args.set)
    if args.checkpoint is not None and overrides:
        raise ValueError("--set configures the model trained without --checkpoint; drop one of them")
    if args.checkpoint is not None:
        model, split = load_checkpoint(args.checkpoint, args)
    else:
        split = split_from_args(args)
        model = None
    from gnnrec.serving.catalogue import Catalogue

    graph = split.graph
    catalogue = Catalogue(split)
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
        reasons = None
        profile = [f"{name} {users[name][user]}" for name in ("age", "gender", "occupation") if users[name][user]]
        heading = (
            f"top {args.k} for user {args.user} ({', '.join(profile + [''])}"
            f"{int(model.seen_mask([user]).sum())} known ratings) by {model.name}"
        )
    else:
        from gnnrec.data.titles import natural_title

        occupations = getattr(graph, "occupation_names", None)
        features = None
        if occupations is None:
            if any(v is not None for v in person):
                raise ValueError(
                    f"{split.name} has no user demographics; describe a new person with --liked/--disliked only"
                )
        else:
            missing = [n for n, v in zip(("--age", "--gender", "--occupation"), person, strict=True) if v is None]
            if missing and len(missing) < len(person):
                raise ValueError(
                    f"a new person needs {', '.join(missing)} too (give all demographics or none; none: the model "
                    "uses the average user's)"
                )
            if not missing:  # the feature layout checks the person before any time is spent on training
                row = split.user_layout.encode(age=args.age, gender=args.gender, occupation=args.occupation)
                features = row.view(1, -1) if row.numel() else None
        levels = [float(v) for v in split.rating_levels.tolist()]
        named: dict[int, tuple[str, str]] = {}
        ratings = _parse_rated("--liked", args.liked or [], split.rating_max, levels, catalogue, named)
        ratings += _parse_rated("--disliked", args.disliked or [], split.rating_min, levels, catalogue, named)
        if args.k > split.num_movies - len(ratings):
            raise ValueError(
                f"-k {args.k} exceeds the {split.num_movies - len(ratings)} movies this person has not rated"
            )
        model = model or _quick_gnn(split, overrides)
        if "users" not in getattr(model, "fold_in_kinds", ()):
            raise ValueError(
                f"a {model.name!r} checkpoint cannot place a new person; use a checkpoint of a model that folds in "
                f"users (e.g. {RECOMMEND_MODEL!r}) or leave out --checkpoint"
            )
        support = torch.tensor([[0] * len(ratings), [movie for movie, _ in ratings]], dtype=torch.long)
        values = torch.tensor([value for _, value in ratings], dtype=torch.float32)
        fold = model.fold_in("users", support, values, num_new=1, features=features, explain=True)
        if bool(fold.undecided()[0]):
            raise ValueError(
                f"{model.name!r} scores every film alike for this person (it reads neither a profile nor the films "
                "named, or none counts as liked); name films the person liked with --liked, or use a model that "
                f"reads a new person's profile (e.g. {RECOMMEND_MODEL!r}, or leave out --checkpoint)"
            )
        top = fold.top_k(args.k)[0]
        chosen = fold.scores[0, top]
        if model.predicts_ratings:
            chosen = chosen.clamp(split.rating_min, split.rating_max)
        movies, scores = top.tolist(), chosen.tolist()
        reasons = fold.explain(0, top, [natural_title(catalogue.label(i)) for i in range(split.num_movies)])
        profile = [
            f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"
            for name, value in zip(("age", "gender", "occupation"), person, strict=True)
            if value is not None
        ]
        heading = (
            f"top {args.k} for a new person ({', '.join(profile + [''])}{len(ratings)} rated movie(s)) by {model.name}"
        )
    score_key = "predicted_rating" if model.predicts_ratings else "score"
    rows = _recommendation_rows(catalogue, movies, scores, reasons, score_key)
    if args.json:
        print(json.dumps({"heading": heading, "recommendations": rows}, indent=2))
    else:
        print(heading)
        _print_recommendations(rows, score_key)
    return 0
