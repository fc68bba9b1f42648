"""What a run writes for TensorBoard, read back without starting TensorBoard.

    python examples/tensorboard_inspect.py --logdir ~/.cache/gnnrec/runs/benchmark-quick-.../tensorboard
    python examples/tensorboard_inspect.py --fast --data-dir DIR     # train a GNN into --out first

For every sub-run (one per model × split × seed) it lists the scalar curves (last value), the
histograms, the hparams-plugin row and the projector embeddings with their metadata columns.
Then: tensorboard --logdir LOGDIR
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from gnnrec.config import parse_set_options
from gnnrec.data import MovieLens100K
from gnnrec.evaluation import evaluate
from gnnrec.models import create_model
from gnnrec.tensorboard import (
    ProgressWriter,
    log_embeddings,
    log_hparams,
    read_projector_metadata,
    tensorboard_command,
)


def train_into(log_dir: Path, data_dir: str | None, fast: bool, overrides: dict[str, str]) -> None:
    """Train the GNN with a TensorBoard writer, as `gnnrec train gnn` does."""
    split = MovieLens100K(split="u1", source_dir=data_dir).rating_split()
    model = create_model("gnn", {"histogram_every": 1 if fast else 50, **overrides}, test_config=fast)
    writer = ProgressWriter(log_dir / "gnn__u1__seed0", description="gnn", total=model.config.max_epochs)
    model.fit(split, logger=writer)
    result = evaluate(model, split, part="val")
    log_hparams(writer, {"model": "gnn", **vars(model.config)}, {f"val_{k}": v for k, v in result.metrics.items()})
    log_embeddings(writer, model, split.graph, step=len(model.history))
    writer.close()


def describe(run_dir: Path) -> None:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 1})
    events.Reload()
    tags = events.Tags()
    print(f"== {run_dir.name}")
    for tag in tags["scalars"]:
        values = events.Scalars(tag)
        print(f"  scalar    {tag:<32} {len(values):>4} points, last {values[-1].value:.4f} (step {values[-1].step})")
    for tag in tags["histograms"]:
        print(f"  histogram {tag}")
    hparams = events.PluginTagToContent("hparams")
    if "_hparams_/session_start_info" in hparams:
        data = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
        # each hparam is a protobuf Value holding one of number_value, string_value, bool_value
        values = {k: getattr(v, v.WhichOneof("kind")) for k, v in data.session_start_info.hparams.items()}
        shown = ", ".join(f"{k}={values[k]}" for k in sorted(values)[:8])
        print(f"  hparams   {len(values)} values ({shown}, ...)")
    for tag in ("movie", "user"):
        try:
            header, rows = read_projector_metadata(run_dir, tag)
        except FileNotFoundError:
            continue
        print(f"  projector {tag}: {len(rows)} points, metadata columns {', '.join(header)}; first: {rows[0]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Summarise TensorBoard logs written by gnnrec.")
    parser.add_argument("--logdir", help="a TensorBoard directory of gnnrec (default: train a GNN into --out)")
    parser.add_argument("--out", help="where to train when no --logdir is given (default: a temporary directory)")
    parser.add_argument("--data-dir", help="raw MovieLens-100k files (default: $GNNREC_ML100K_DIR, else download)")
    parser.add_argument("--fast", action="store_true", help="train with the tiny test configuration")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="GNN config override")
    args = parser.parse_args(argv)

    if args.logdir:
        log_dir = Path(args.logdir)
    else:
        log_dir = Path(args.out or tempfile.mkdtemp(prefix="gnnrec-tb-"))
        train_into(log_dir, args.data_dir, args.fast, parse_set_options(args.set))
    runs = sorted({path.parent for path in log_dir.rglob("events.out.tfevents.*")})
    if not runs:
        raise SystemExit(f"no TensorBoard event files under {log_dir}")
    for run_dir in runs:
        describe(run_dir)
    print(tensorboard_command(log_dir))


if __name__ == "__main__":
    main()
