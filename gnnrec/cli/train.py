"""``gnnrec data``, ``gnnrec train`` and ``gnnrec evaluate``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from gnnrec.cli.common import (
    check_top_k,
    command_line,
    fit_with_progress,
    format_metrics_table,
    load_checkpoint,
    model_with_seed,
    set_overrides,
    slug,
    split_from_args,
    timestamp,
    writable_directory,
)


def cmd_data(args: argparse.Namespace) -> int:
    split = split_from_args(args)
    info = split.describe()
    if args.plot:
        from gnnrec.data.plots import plot_dataset

        if Path(args.plot).exists() and not Path(args.plot).is_dir():
            raise ValueError(f"--plot {args.plot}: not a directory")
        written, skipped = plot_dataset(split, args.plot)
        notes = [f"{name}: {path}" for name, path in written.items()]
        notes += [f"{name}: skipped ({reason})" for name, reason in skipped.items()]
        print("plots\n  " + "\n  ".join(notes), file=sys.stderr if args.json else sys.stdout)
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


def cmd_train(args: argparse.Namespace) -> int:
    from gnnrec import distributed
    from gnnrec.config import config_to_dict
    from gnnrec.evaluation import evaluate
    from gnnrec.models.checkpoint import CHECKPOINT_FILE
    from gnnrec.tensorboard import log_embeddings, log_hparams, tensorboard_command
    from gnnrec.utils import atomic_write_text, gnnrec_home, seed_everything

    check_top_k(args.k)
    distributed.init_distributed()  # under torchrun: data-parallel; rank 0 alone writes the outputs
    distributed.check_data_parallel(args.model)
    overrides = set_overrides(args.set)
    model = model_with_seed(args.model, overrides, args.seed, test_config=args.test_config)
    with distributed.main_first():
        split = split_from_args(args)
    if not distributed.is_main():
        model.fit(split)
        return 0
    out = (
        Path(args.out) if args.out else gnnrec_home() / "runs" / f"train-{args.model}-{slug(split.name)}-{timestamp()}"
    )
    writable_directory(out)  # before the fit: a read-only --out fails now, not after it
    checkpoint = out / CHECKPOINT_FILE
    seed = getattr(model.config, "seed", args.seed if args.seed is not None else 0)
    seed_everything(seed)
    print(f"training {args.model} on {split.name} ({len(split.train)} train / {len(split.val)} val ratings) -> {out}")
    writer, fit_seconds = fit_with_progress(model, split, out / "tensorboard", f"train {args.model}")
    try:
        model.save(checkpoint)
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
        "command": command_line(args.argv),
        "threads": {"requested": args.threads, "torch_threads": args.torch_threads},
    }
    atomic_write_text(out / "config.json", json.dumps(config_record, indent=2, default=str) + "\n")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if results:
        print(format_metrics_table(results))
    print(f"fit {fit_seconds:.1f} s; checkpoint {checkpoint}")
    if not args.evaluate_test:
        print("test metrics: gnnrec evaluate " + shlex.quote(str(out)))
    print("TensorBoard: " + tensorboard_command(out / "tensorboard"))
    return 0


# ---------------------------------------------------------------------- gnnrec evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from gnnrec.evaluation import evaluate

    check_top_k(args.k)
    model, split = load_checkpoint(args.checkpoint, args)
    parts = ["val", "test"] if args.part == "both" else [args.part]
    results = [evaluate(model, split, part=part, k=args.k) for part in parts]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_metrics_table(results))
    return 0
