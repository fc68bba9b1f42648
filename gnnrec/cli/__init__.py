"""The ``gnnrec`` command (also ``python -m gnnrec``): data, train, evaluate, benchmark, recommend, export,
serve.

One module per subcommand (:mod:`.train` holds data, train and evaluate; :mod:`.benchmark`;
:mod:`.recommend`; :mod:`.export`; :mod:`.serve`), the shared helpers in :mod:`.common`, and the argparse
definitions here; the work itself lives in the library modules, imported lazily per subcommand
(``gnnrec.benchmark`` only by ``gnnrec benchmark``).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

from gnnrec.cli.benchmark import cmd_benchmark
from gnnrec.cli.common import add_data_options
from gnnrec.cli.convert import cmd_convert
from gnnrec.cli.errors import DEBUG_ENV, USER_ERRORS, one_line
from gnnrec.cli.export import DEFAULT_OUT, cmd_export
from gnnrec.cli.recommend import RECOMMEND_MODEL, cmd_recommend
from gnnrec.cli.serve import cmd_serve
from gnnrec.cli.train import cmd_data, cmd_evaluate, cmd_train


def _model_help() -> str:
    from gnnrec.models import available_models

    return f"registered models: {', '.join(available_models())}"


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        default="default",
        metavar="default|auto|N",
        help="torch intra-op threads: default = min(cores available, 2), the same whatever the load (recorded with "
        "the results); auto = free cores now (cores available minus those busy, so it varies with the load); or N",
    )


def _add_debug_option(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help=f"show the full traceback of an error instead of one line (also: {DEBUG_ENV}=1)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnnrec", description="GNN rating prediction and recommendation toolkit")
    _add_debug_option(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="locate, verify and describe a dataset split")
    add_data_options(data)
    data.add_argument("--json", action="store_true", help="print the description as JSON")
    data.add_argument(
        "--plot",
        metavar="DIR",
        default=None,
        help="also write PNG plots into DIR: rating histogram, user and movie degrees (log-log), ratings over "
        "time, genres, demographics, density (those the dataset has)",
    )
    data.set_defaults(func=cmd_data)

    set_help = "config override KEY=VALUE (repeatable)"
    train = sub.add_parser(
        "train",
        help="train one model and save checkpoint, config, validation metrics and TensorBoard logs",
        description="Train MODEL on a split's training ratings (validation ratings for early stopping) and write "
        "model.safetensors, config.json, metrics.json (validation; test only with --evaluate-test) and tensorboard/ to "
        "--out.",
    )
    train.add_argument("model", metavar="MODEL", help=_model_help())
    add_data_options(train)
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
    evaluate.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="model.safetensors file or a `gnnrec train` run directory"
    )
    add_data_options(evaluate, from_checkpoint=True)
    evaluate.add_argument("--part", choices=["test", "val", "both"], default="test", help="ratings to evaluate on")
    evaluate.add_argument("-k", "--k", type=int, default=10, help="cutoff of the top-K metrics")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")
    _add_threads_option(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser(
        "benchmark",
        help="run a benchmark suite (quick, paper, cv5, douban, ...) and write tables, plots and TensorBoard logs",
        description="Fit and evaluate every model × split × seed of a suite. Finished cells are stored at once; "
        "rerunning into the same directory (--out or --resume) reuses them.",
    )
    bench.add_argument(
        "suite", metavar="SUITE", nargs="?", help="suite name (quick, paper, cv5, douban, ...) or a suite .json path"
    )
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
    bench.add_argument("--dataset", default=None, help="replace the suite's dataset (e.g. synthetic, douban)")
    bench.add_argument(
        "--dataset-setting",
        action="append",
        metavar="KEY=VALUE",
        help="a setting of the dataset (e.g. num_users=800 for synthetic; VALUE is read as JSON, else as text); "
        "repeatable, merged into the suite's dataset_settings",
    )
    bench.add_argument("--val-fraction", type=float, default=None, help="replace the suite's validation share")
    bench.add_argument("--data-seed", type=int, default=None, help="replace the suite's data seed")
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
        help="also reuse finished cells computed by another code version or CPU product library (marked stale)",
    )
    bench.add_argument(
        "--jobs",
        default="1",
        metavar="N|auto",
        help="fit N cells at once, each in its own process with --threads divided among them (auto: one per "
        "available core); results equal those of one process with that thread count (default 1)",
    )
    _add_threads_option(bench)
    bench.set_defaults(func=cmd_benchmark)

    rec = sub.add_parser(
        "recommend",
        help="top-k movies for a known user or a new person",
        description=f"Recommend movies. With --checkpoint the saved model is used (new persons need a model "
        f"that folds in users); without one, {RECOMMEND_MODEL!r} is trained on the split with its default "
        f"config plus --set overrides and cached under $GNNREC_HOME/models for later calls.",
    )
    rec.add_argument("--checkpoint", default=None, help="model.safetensors or a `gnnrec train` run directory")
    rec.add_argument("--user", type=int, default=None, help="raw MovieLens user id of a known user")
    rec.add_argument("--age", type=float, default=None, help="a new person's age in years")
    rec.add_argument("--gender", default=None, help="a new person's gender (M or F)")
    rec.add_argument("--occupation", default=None, help="a new person's occupation (as in u.occupation)")
    rec.add_argument(
        "--liked",
        nargs="+",
        metavar="FILM[:RATING]",
        help="films the new person liked: raw movie ids or titles (any case or accents, year optional), "
        "default rating the top of the scale",
    )
    rec.add_argument(
        "--disliked",
        nargs="+",
        metavar="FILM[:RATING]",
        help="films the new person disliked, as for --liked; default rating the bottom of the scale",
    )
    rec.add_argument("-k", "--k", type=int, default=10, help="number of movies")
    rec.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help=f"config override of the on-the-fly {RECOMMEND_MODEL}"
    )
    rec.add_argument("--json", action="store_true", help="print the recommendations as JSON")
    add_data_options(rec, from_checkpoint=True)
    _add_threads_option(rec)
    rec.set_defaults(func=cmd_recommend)

    export = sub.add_parser(
        "export",
        help="write every user's top-k, every film's similar films and the node embeddings to files",
        description="Export what a checkpoint knows as Parquet, CSV or JSON Lines (by --format, else each file's "
        f"suffix): --out (top-k per user; default {DEFAULT_OUT} when no file is named), --similar, --embeddings. "
        "Users are scored in memory-bounded chunks; each file is written to a temporary name and renamed when done.",
    )
    export.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint or a `gnnrec train` run directory"
    )
    export.add_argument("--out", default=None, help="top-k table: user, rank, movie, title, score (raw ids)")
    export.add_argument("-k", "--k", type=int, default=50, help="films per user (default 50)")
    export.add_argument(
        "--similar", default=None, metavar="FILE", help="similar films: movie, title, rank, similar_movie, ..."
    )
    export.add_argument("--similar-k", type=int, default=10, help="similar films per film (default 10)")
    export.add_argument("--embeddings", default=None, metavar="FILE", help="node embeddings (models that have them)")
    export.add_argument("--format", choices=["parquet", "csv", "jsonl"], default=None, help="default: by suffix")
    export.add_argument("--chunk-users", type=int, default=None, help="users scored at once (default: by memory)")
    export.add_argument("--quiet", action="store_true", help="no progress bars")
    add_data_options(export, from_checkpoint=True)
    _add_threads_option(export)
    export.set_defaults(func=cmd_export)

    serve = sub.add_parser(
        "serve",
        help="serve a checkpoint: JSON API, OpenAPI docs at /docs and a web page at /",
        description="Serve recommendations from a checkpoint over HTTP (needs pip install gnnrec[serve]): a known "
        "user's top-k, similar films, title search, a new person's recommendations, health; binds 127.0.0.1.",
    )
    serve.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint or a `gnnrec train` run directory"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--quiet", action="store_true", help="no access log")
    add_data_options(serve, from_checkpoint=True)
    _add_threads_option(serve)
    serve.set_defaults(func=cmd_serve)

    convert = sub.add_parser(
        "convert",
        help="rewrite a pickle checkpoint of an older gnnrec as a safetensors checkpoint (trusted files only)",
        description="Older gnnrec versions wrote checkpoints with torch.save (pickle), which gnnrec no longer "
        "loads because unpickling can run code. Convert one you trust: it is read once with "
        "torch.load(weights_only=True) and written to NEW as a safetensors checkpoint.",
    )
    convert.add_argument("old", metavar="OLD", help="the pickle checkpoint (e.g. model.pt)")
    convert.add_argument("new", metavar="NEW", help="where to write the safetensors checkpoint (model.safetensors)")
    convert.add_argument(
        "--trust", action="store_true", help="confirm that OLD comes from a source you trust (required)"
    )
    convert.set_defaults(func=cmd_convert)
    for command in sub.choices.values():
        _add_debug_option(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # Python hides DeprecationWarning outside __main__: show gnnrec's own (e.g. "--set epochs=N" is max_epochs now)
    warnings.filterwarnings("default", category=DeprecationWarning, module=r"gnnrec\.")
    debug = args.debug or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    try:
        from gnnrec.nn.blas import numpy_backend
        from gnnrec.threads import resolve_threads, torch_threads

        numpy_backend()  # a bad $GNNREC_CPU_BLAS is refused before any work starts
        if getattr(args, "threads", None) is None:
            return args.func(args)
        args.torch_threads = resolve_threads(args.threads)
        with torch_threads(args.torch_threads):
            return args.func(args)
    except USER_ERRORS as error:
        if debug:
            traceback.print_exc()
        print(f"gnnrec {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gnnrec {args.command}: interrupted", file=sys.stderr)
        return 130
