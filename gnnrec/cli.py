"""The ``gnnrec`` command (also ``python -m gnnrec``): data, train, evaluate, benchmark, recommend.

Over 400 lines because it holds one section per subcommand plus the argparse definitions of all of
them (most of it option declarations and help text); the work itself lives in the library modules,
which are imported lazily per subcommand (``gnnrec.benchmark`` only by ``gnnrec benchmark``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shlex
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gnnrec.data import DATASETS, DataFormatError, load_split

RECOMMEND_MODEL = "gnn"  # trained on the fly by `gnnrec recommend` when no --checkpoint is given


def _split_help() -> str:
    return "; ".join(f"{name}: {', '.join(cls.splits)}" for name, cls in sorted(DATASETS.items()))


def _add_data_options(parser: argparse.ArgumentParser, *, from_checkpoint: bool = False) -> None:
    """Dataset options; for ``evaluate``/``recommend`` unset ones mean "as the checkpoint was trained"."""
    checkpoint_note = " (default: the checkpoint's)" if from_checkpoint else ""
    parser.add_argument(
        "--dataset",
        default=None if from_checkpoint else "ml-100k",
        choices=sorted(DATASETS),
        help="dataset name" + checkpoint_note,
    )
    parser.add_argument(
        "--split",
        default=None,
        help=f"split name ({_split_help()}); default: "
        + ("the checkpoint's, else " if from_checkpoint else "")
        + "the dataset's first (u1 for ml-100k)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="directory with the raw files (else the dataset's environment variable, e.g. "
        "$GNNREC_ML100K_DIR, else download)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=None if from_checkpoint else 0.05,
        help="share of each user's training ratings for validation" + checkpoint_note,
    )
    parser.add_argument(
        "--data-seed",
        type=int,
        default=None if from_checkpoint else 0,
        help="seed of the validation carve-out and random split" + checkpoint_note,
    )


def _split_from_args(args: argparse.Namespace, recorded: dict[str, Any] | None = None):
    """The split named by the data options; options left unset fall back to ``recorded`` (a checkpoint's split).

    ``recorded`` holds ``dataset`` plus the split's settings (``split``, ``val_fraction``, ``seed``, ...).
    """
    recorded = recorded or {}

    def pick(option: str, key: str, default: Any) -> Any:
        value = getattr(args, option, None)
        return value if value is not None else recorded.get(key, default)

    options = {}
    if recorded.get("split") == "random" and recorded.get("test_fraction") is not None:
        # ML-100k's random split is the one split whose test share is a loader option (not fixed by its name)
        options["test_fraction"] = recorded["test_fraction"]
    return load_split(
        pick("dataset", "dataset", "ml-100k"),
        pick("split", "split", None),
        source_dir=args.data_dir,
        val_fraction=pick("val_fraction", "val_fraction", 0.05),
        seed=pick("data_seed", "seed", 0),
        log=False,
        **options,
    )


def _checkpoint_path(path: str) -> Path:
    """A checkpoint file, or a run directory holding ``model.pt``."""
    candidate = Path(path).expanduser()
    if candidate.is_dir():
        candidate = candidate / "model.pt"
    if not candidate.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {candidate} (give a model.pt file or a `gnnrec train` run directory)"
        )
    return candidate


def _load_checkpoint(path: str, args: argparse.Namespace):
    """Load a checkpoint and the split to use it on (the one it was trained on unless the options say otherwise)."""
    from gnnrec.models import RatingModel

    checkpoint = _checkpoint_path(path)
    info = RatingModel.load(checkpoint).info
    if not info.dataset and args.dataset is None:
        raise ValueError(f"{checkpoint} does not record its dataset (an older checkpoint); give --dataset")
    split = _split_from_args(args, {"dataset": info.dataset or None, **info.settings})
    return RatingModel.load(checkpoint, split), split  # refuses a split the model was not trained on


def _set_overrides(items: list[str] | None) -> dict[str, str]:
    from gnnrec.config import parse_set_options

    return parse_set_options(items or [])


def _slug(name: str) -> str:
    return name.replace("/", "-")


def _timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _command_line(argv: list[str] | None) -> str:
    return "gnnrec " + shlex.join(sys.argv[1:] if argv is None else argv)


def format_metrics_table(results: list[Any]) -> str:
    """Evaluation results side by side: one row per metric, one column per evaluated part."""
    names = list(dict.fromkeys(name for result in results for name in result.metrics))
    header = ["metric"] + [f"{r.model} {r.split} {r.part}" for r in results]
    rows = [[name] + [f"{r.metrics.get(name, float('nan')):.4f}" for r in results] for name in names]
    rows.append(["ratings"] + [str(r.num_ratings) for r in results])
    rows.append(["users"] + [str(r.num_users) for r in results])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# ---------------------------------------------------------------------- gnnrec data
def cmd_data(args: argparse.Namespace) -> int:
    split = _split_from_args(args)
    info = split.describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['dataset']}: {info['users']} users, {info['movies']} movies, fingerprint {split.fingerprint[:12]}")
    levels = list(info["train"]["histogram"])
    print(f"{'part':<6}{'ratings':>9}  " + "".join(f"{'r=' + lv:>8}" for lv in levels))
    for part in ("train", "val", "test"):
        row = info[part]
        print(f"{part:<6}{row['ratings']:>9}  " + "".join(f"{row['histogram'][lv]:>8}" for lv in levels))
    return 0


# ---------------------------------------------------------------------- gnnrec train
def _model_with_seed(model_name: str, overrides: dict[str, Any], seed: int | None, *, test_config: bool):
    from gnnrec.models import create_model, get_model_class

    fields = {f.name for f in dataclasses.fields(get_model_class(model_name).config_class)}
    if seed is not None and "seed" in fields:
        if "seed" in overrides:
            raise ValueError("give the seed once: either --seed or --set seed=...")
        overrides = {**overrides, "seed": seed}
    return create_model(model_name, overrides, test_config=test_config)


def fit_with_progress(model: Any, split: Any, log_dir: Path, description: str) -> tuple[Any, float]:
    """Fit ``model`` with TensorBoard logging under ``log_dir`` (emptied first) and a progress bar.

    Returns the open writer (for final hparams/embeddings) and the fit seconds.
    """
    from gnnrec.config import epochs_hint
    from gnnrec.tensorboard import ProgressWriter

    shutil.rmtree(log_dir, ignore_errors=True)  # a rerun into the same directory replaces, not mixes, the curves
    writer = ProgressWriter(log_dir, description=description, total=epochs_hint(model.config))
    start = time.perf_counter()
    try:
        model.fit(split, logger=writer)
    except BaseException:
        writer.close()
        raise
    return writer, time.perf_counter() - start


def cmd_train(args: argparse.Namespace) -> int:
    from gnnrec import distributed
    from gnnrec.config import config_to_dict
    from gnnrec.evaluation import evaluate
    from gnnrec.tensorboard import log_embeddings, log_hparams, tensorboard_command
    from gnnrec.utils import atomic_write_text, gnnrec_home, seed_everything

    distributed.init_distributed()  # under torchrun: data-parallel; rank 0 alone writes the outputs
    distributed.check_data_parallel(args.model)
    overrides = _set_overrides(args.set)
    model = _model_with_seed(args.model, overrides, args.seed, test_config=args.test_config)
    with distributed.main_first():
        split = _split_from_args(args)
    if not distributed.is_main():
        model.fit(split)
        return 0
    out = (
        Path(args.out)
        if args.out
        else gnnrec_home() / "runs" / f"train-{args.model}-{_slug(split.name)}-{_timestamp()}"
    )
    seed = getattr(model.config, "seed", args.seed if args.seed is not None else 0)
    seed_everything(seed)
    print(f"training {args.model} on {split.name} ({len(split.train)} train / {len(split.val)} val ratings) -> {out}")
    writer, fit_seconds = fit_with_progress(model, split, out / "tensorboard", f"train {args.model}")
    try:
        model.save(out / "model.pt")
        results = [evaluate(model, split, part="val", k=args.k)] if len(split.val) else []
        if args.evaluate_test:
            results.append(evaluate(model, split, part="test", k=args.k))
        metrics = {r.part: r.to_dict() for r in results}
        log_hparams(
            writer,
            {"model": args.model, "split": split.name, **config_to_dict(model.config)},
            {f"{r.part}_{name}": value for r in results for name, value in r.metrics.items()},
        )
        log_embeddings(writer, model, split.graph, step=len(model.history))
    finally:
        writer.close()
    config_record = {
        "model": args.model,
        "config": config_to_dict(model.config),
        # models with dataset presets (GLocal-K, gnn): the config they fitted with, and the preset
        "fit_config": config_to_dict(model.fit_config) if getattr(model, "fit_config", None) is not None else None,
        "preset_name": getattr(model, "preset_name", None),
        "overrides": overrides,
        "seed": seed,
        "dataset": split.dataset,
        "split": split.settings.get("split"),
        "split_name": split.name,
        "split_fingerprint": split.fingerprint,
        "split_settings": split.settings,
        "fit_seconds": fit_seconds,
        "epochs_run": len(model.history),
        "command": _command_line(args.argv),
        "threads": {"requested": args.threads, "torch_threads": args.torch_threads},
    }
    atomic_write_text(out / "config.json", json.dumps(config_record, indent=2, default=str) + "\n")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if results:
        print(format_metrics_table(results))
    print(f"fit {fit_seconds:.1f} s; checkpoint {out / 'model.pt'}")
    if not args.evaluate_test:
        print("test metrics: gnnrec evaluate " + shlex.quote(str(out)))
    print("TensorBoard: " + tensorboard_command(out / "tensorboard"))
    return 0


# ---------------------------------------------------------------------- gnnrec evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from gnnrec.evaluation import evaluate

    model, split = _load_checkpoint(args.checkpoint, args)
    parts = ["val", "test"] if args.part == "both" else [args.part]
    results = [evaluate(model, split, part=part, k=args.k) for part in parts]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_metrics_table(results))
    return 0


# ---------------------------------------------------------------------- gnnrec benchmark
def cmd_benchmark(args: argparse.Namespace) -> int:
    from gnnrec.benchmark import Suite, load_suite, parse_targeted_overrides, run_benchmark, summary_table
    from gnnrec.tensorboard import tensorboard_command

    if args.resume:
        run_dir = Path(args.resume)
        stored = run_dir / "suite.json"
        if not stored.is_file():
            raise FileNotFoundError(f"{run_dir} is not a benchmark run directory (no suite.json)")
        suite = Suite.from_dict(json.loads(stored.read_text(encoding="utf-8")))
        if args.suite is not None and args.suite not in (suite.name, str(stored)):
            raise ValueError(f"{run_dir} holds suite {suite.name!r}, not {args.suite!r}")
        if args.out is not None and Path(args.out) != run_dir:
            raise ValueError("give either --resume RUN_DIR or --out DIR, not both")
    elif args.suite is None:
        raise ValueError("name a suite (e.g. quick) or give --resume RUN_DIR")
    else:
        suite = load_suite(args.suite)
        run_dir = Path(args.out) if args.out else None
    if args.models:
        suite = suite.select_models([name for item in args.models for name in item.split(",") if name])
    if args.splits:
        suite = dataclasses.replace(suite, splits=list(args.splits))
    if args.seeds:
        suite = dataclasses.replace(suite, seeds=list(args.seeds))
    if args.test_config:
        suite = dataclasses.replace(suite, test_config=True)
    suite = suite.with_overrides(parse_targeted_overrides(_set_overrides(args.set)))
    if suite.cold_start is not None:  # issue 12: the cold-start protocol runs in gnnrec.benchmark.cold_start
        from gnnrec.benchmark.cold_start import main_cold_start

        return main_cold_start(suite, run_dir, data_dir=args.data_dir)
    run = run_benchmark(
        suite,
        run_dir,
        data_dir=args.data_dir,
        tensorboard=not args.no_tensorboard,
        projector=not args.no_projector,
        save_models=args.save_models,
        plots=not args.no_plots,
        command=_command_line(args.argv),
        refit=False if args.no_refit else None,
        reuse_stale=args.reuse_stale,
        threads=args.threads,
    )
    print(summary_table(run.results))
    print(f"\nresults: {run.directory / 'results.md'} (also results.json, results.csv, *.png)")
    if not args.no_tensorboard:
        print("TensorBoard: " + tensorboard_command(run.tensorboard_dir))
    failed = run.results["run"]["cells_failed"]
    if failed:
        print(
            f"gnnrec benchmark: {failed} of {len(run.cells)} cells failed; see {run.directory / 'results.md'}",
            file=sys.stderr,
        )
        return 1
    return 0


# ---------------------------------------------------------------------- gnnrec recommend
def _parse_liked(items: list[str], rating_max: float) -> list[tuple[str, float]]:
    """``["50", "172:4"]`` → ``[("50", 5.0), ("172", 4.0)]`` (the default rating is the top of the scale)."""
    liked = []
    for item in items:
        movie, sep, rating = item.partition(":")
        if not movie or (sep and not rating):
            raise ValueError(f"--liked expects MOVIE_ID or MOVIE_ID:RATING, got {item!r}")
        try:
            value = float(rating) if sep else rating_max
        except ValueError:
            raise ValueError(f"--liked {item!r}: rating must be a number") from None
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
    from gnnrec.utils import gnnrec_home

    model = create_model(RECOMMEND_MODEL, overrides)
    key = json.dumps(config_to_dict(model.config), sort_keys=True, default=str)
    digest = hashlib.sha1(f"{split.fingerprint}{key}".encode()).hexdigest()[:12]
    cache = gnnrec_home() / "models" / f"recommend-{RECOMMEND_MODEL}-{_slug(split.name)}-{digest}"
    if (cache / "model.pt").is_file():
        print(f"using the cached {RECOMMEND_MODEL} model {cache / 'model.pt'}", file=sys.stderr)
        return RatingModel.load(cache / "model.pt", split)
    print(
        f"no --checkpoint: training {RECOMMEND_MODEL} on {split.name} with its default config"
        f"{' and the --set overrides' if overrides else ''} (cached in {cache} for the next call)",
        file=sys.stderr,
    )
    writer, seconds = fit_with_progress(model, split, cache / "tensorboard", f"train {RECOMMEND_MODEL}")
    writer.close()
    model.save(cache / "model.pt")
    print(f"trained in {seconds:.1f} s", file=sys.stderr)
    return model


def cmd_recommend(args: argparse.Namespace) -> int:
    from gnnrec.coldstart import movie_indices_from_raw_ids
    from gnnrec.data.display import user_columns

    person = [args.age, args.gender, args.occupation]
    new_person = any(v is not None for v in person) or bool(args.liked)
    if args.user is not None and new_person:
        raise ValueError("give either --user (a known user) or --age/--gender/--occupation/--liked (a new person)")
    if args.user is None and not new_person:
        raise ValueError("give --user RAW_ID for a known user, or --age, --gender, --occupation and --liked")
    overrides = _set_overrides(args.set)
    if args.checkpoint is not None and overrides:
        raise ValueError("--set configures the model trained without --checkpoint; drop one of them")
    if args.checkpoint is not None:
        model, split = _load_checkpoint(args.checkpoint, args)
    else:
        split = _split_from_args(args)
        model = None
    graph = split.graph
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
        liked = _parse_liked(args.liked or [], split.rating_max)
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


# ---------------------------------------------------------------------- parser
def _model_help() -> str:
    from gnnrec.models import available_models

    return f"registered models: {', '.join(available_models())}"


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        default="auto",
        metavar="auto|N",
        help="torch intra-op threads: N, or auto = free cores (cores available minus those busy; default)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnnrec", description="GNN rating prediction and recommendation toolkit")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="locate, verify and describe a dataset split")
    _add_data_options(data)
    data.add_argument("--json", action="store_true", help="print the description as JSON")
    data.set_defaults(func=cmd_data)

    set_help = "config override KEY=VALUE (repeatable)"
    train = sub.add_parser(
        "train",
        help="train one model and save checkpoint, config, validation metrics and TensorBoard logs",
        description="Train MODEL on a split's training ratings (validation ratings for early stopping) and write "
        "model.pt, config.json, metrics.json (validation; test only with --evaluate-test) and tensorboard/ to --out.",
    )
    train.add_argument("model", metavar="MODEL", help=_model_help())
    _add_data_options(train)
    train.add_argument("--seed", type=int, default=None, help="model seed (sets the config's seed)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help=set_help)
    train.add_argument("--test-config", action="store_true", help="start from the model's tiny test configuration")
    train.add_argument(
        "--out", default=None, help="run directory (default: $GNNREC_HOME/runs/train-MODEL-DATASET-SPLIT-TIME)"
    )
    train.add_argument("--evaluate-test", action="store_true", help="also evaluate on the test ratings (touch once)")
    train.add_argument("-k", "--k", type=int, default=10, help="cutoff of the top-K metrics")
    _add_threads_option(train)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a split",
        description="Evaluate a saved model with every metric. The split defaults to the one it was trained on; "
        "a checkpoint is refused on a split it was not trained on.",
    )
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT", help="model.pt file or a `gnnrec train` run directory")
    _add_data_options(evaluate, from_checkpoint=True)
    evaluate.add_argument("--part", choices=["test", "val", "both"], default="test", help="ratings to evaluate on")
    evaluate.add_argument("-k", "--k", type=int, default=10, help="cutoff of the top-K metrics")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")
    _add_threads_option(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser(
        "benchmark",
        help="run a benchmark suite (quick, paper, cv5) and write tables, plots and TensorBoard logs",
        description="Fit and evaluate every model × split × seed of a suite. Finished cells are stored at once; "
        "rerunning into the same directory (--out or --resume) reuses them.",
    )
    bench.add_argument("suite", metavar="SUITE", nargs="?", help="suite name (quick, paper, cv5) or a suite .json path")
    bench.add_argument("--out", default=None, help="run directory (default: $GNNREC_HOME/runs/benchmark-SUITE-TIME)")
    bench.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the run in RUN_DIR")
    bench.add_argument("--models", nargs="+", metavar="MODEL", help="only these model labels or names")
    bench.add_argument("--splits", nargs="+", metavar="SPLIT", help="replace the suite's splits")
    bench.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="replace the suite's seeds")
    bench.add_argument(
        "--set",
        action="append",
        metavar="[MODEL.]KEY=VALUE",
        help="config override for every model that has KEY, or only for MODEL (a name or label); repeatable",
    )
    bench.add_argument("--test-config", action="store_true", help="start every model from its tiny test config")
    bench.add_argument("--data-dir", default=None, help="directory with the raw files (else $GNNREC_ML100K_DIR)")
    bench.add_argument("--save-models", action="store_true", help="also save each cell's checkpoint")
    bench.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard logs")
    bench.add_argument("--no-projector", action="store_true", help="skip the embedding projector output")
    bench.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    bench.add_argument(
        "--no-refit",
        action="store_true",
        help="evaluate the model fitted on train with validation selection, without refitting on train + validation",
    )
    bench.add_argument(
        "--reuse-stale",
        action="store_true",
        help="also reuse finished cells computed by another code version (marked stale in the tables)",
    )
    _add_threads_option(bench)
    bench.set_defaults(func=cmd_benchmark)

    rec = sub.add_parser(
        "recommend",
        help="top-k movies for a known user or a new person",
        description=f"Recommend movies. With --checkpoint the saved model is used (new persons need a "
        f"{RECOMMEND_MODEL!r} checkpoint); without one, {RECOMMEND_MODEL!r} is trained on the split with its default "
        f"config plus --set overrides and cached under $GNNREC_HOME/models for later calls.",
    )
    rec.add_argument("--checkpoint", default=None, help="model.pt or a `gnnrec train` run directory")
    rec.add_argument("--user", type=int, default=None, help="raw MovieLens user id of a known user")
    rec.add_argument("--age", type=float, default=None, help="a new person's age in years")
    rec.add_argument("--gender", default=None, help="a new person's gender (M or F)")
    rec.add_argument("--occupation", default=None, help="a new person's occupation (as in u.occupation)")
    rec.add_argument(
        "--liked",
        nargs="+",
        metavar="ID[:RATING]",
        help="raw MovieLens movie ids the new person rated (default rating: the top of the scale)",
    )
    rec.add_argument("-k", "--k", type=int, default=10, help="number of movies")
    rec.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help=f"config override of the on-the-fly {RECOMMEND_MODEL}"
    )
    rec.add_argument("--json", action="store_true", help="print the recommendations as JSON")
    _add_data_options(rec, from_checkpoint=True)
    _add_threads_option(rec)
    rec.set_defaults(func=cmd_recommend)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from gnnrec.threads import resolve_threads, torch_threads

        if getattr(args, "threads", None) is None:
            return args.func(args)
        args.torch_threads = resolve_threads(args.threads)
        with torch_threads(args.torch_threads):
            return args.func(args)
    except (DataFormatError, ValueError, FileNotFoundError, IndexError) as error:
        print(f"gnnrec {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gnnrec {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
