"""Scale invariance, measured: every rating model on ML-100k u1 and on u1 mapped affinely to other units.

    python benchmarks/bench_scale.py --seeds 0 --threads 1 --out benchmarks/results/scale

The maps are r ↦ 1 + 99 (r − 1) / 4 (ratings 1–100, factor 24.75) and r ↦ (r + 1) / 2 (half stars 1–3,
factor 0.5). Each model fits its default config under the honest protocol (selection on the validation
carve-out, no refit) on every version of the split and is tested once; the script prints the test RMSE, the
ratio to the 1–5 RMSE and its deviation from the scale factor (target: within 2%). Writes ``results.md``
and ``results.json`` (with provenance and seeds) to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from gnnrec.benchmark import harness
from gnnrec.benchmark.markers import wrap_table
from gnnrec.benchmark.report import format_mean_std, json_safe
from gnnrec.data import load_split
from gnnrec.evaluation import evaluate
from gnnrec.models import available_models, create_model, get_model_class
from gnnrec.provenance import code_version
from gnnrec.utils import atomic_write_text, seed_everything

# name: (slope, offset) of r ↦ slope · r + offset on the 1–5 stars
SCALES = {"1-5": (1.0, 0.0), "1-100": (99 / 4, 1 - 99 / 4), "half-stars": (0.5, 0.5)}
TOLERANCE = 0.02


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    rating_models = [n for n in available_models() if get_model_class(n).predicts_ratings]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=rating_models, choices=rating_models)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--split", default="u1")
    harness.add_options(parser, data_dir=True, threads="auto")
    parser.add_argument("--out", default=None, help="write results.md and results.json into this folder")
    return parser.parse_args(argv)


def fit_and_test(name: str, split, seed: int) -> tuple[float, float]:
    seed_everything(seed)
    model = create_model(name, {"seed": seed} if "seed" in _fields(name) else None)
    with harness.timed() as fit:
        model.fit(split)
    result = evaluate(model, split, part="test", relevance_threshold=None, metrics=["rmse"])
    return float(result.metrics["rmse"]), fit.seconds


def _fields(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(get_model_class(name).config_class)}


def markdown(rows: list[dict], provenance: dict, args: argparse.Namespace) -> str:
    lines = [
        "# Scale benchmark: RMSE on affine images of ML-100k " + args.split,
        "",
        f"`{provenance['command']}` — git {provenance['commit_short']}"
        + (" (uncommitted changes)" if provenance["dirty"] else "")
        + f", seeds {', '.join(map(str, args.seeds))}, honest protocol (validation selection, no refit).",
        "",
    ]
    table = [
        "| model | scale | factor | test RMSE | RMSE / RMSE(1–5) | deviation | within 2% | fit s |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        table.append(
            f"| {row['model']} | {row['scale']} | {row['factor']:g} | {format_mean_std(row['rmse'])} | "
            f"{row['ratio']:.4f} | {100 * row['deviation']:+.3f}% | {'yes' if row['ok'] else 'NO'} | "
            f"{format_mean_std(row['fit_seconds'], 1)} |"
        )
    return "\n".join(lines) + "\n" + wrap_table("scale", "\n".join(table))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    provenance = code_version()
    base = load_split("ml-100k", args.split, source_dir=args.data_dir, log=False)
    splits = {scale: base.map_ratings(*SCALES[scale]) for scale in SCALES}
    rows: list[dict] = []
    harness.apply_options(args)
    for name in args.models:
        rmse: dict[str, list[float]] = {}
        seconds: dict[str, list[float]] = {}
        for scale, split in splits.items():
            for seed in args.seeds:
                value, fit_s = fit_and_test(name, split, seed)
                rmse.setdefault(scale, []).append(value)
                seconds.setdefault(scale, []).append(fit_s)
                print(f"{name:12s} {scale:10s} seed {seed}: test RMSE {value:.6f} (fit {fit_s:.1f} s)", flush=True)
        reference = sum(rmse["1-5"]) / len(rmse["1-5"])
        for scale in SCALES:
            factor = SCALES[scale][0]
            ratio = (sum(rmse[scale]) / len(rmse[scale])) / reference
            deviation = ratio / factor - 1
            rows.append(
                {
                    "model": name,
                    "scale": scale,
                    "factor": factor,
                    "rmse": rmse[scale],
                    "fit_seconds": seconds[scale],
                    "ratio": ratio,
                    "deviation": deviation,
                    "ok": abs(deviation) <= TOLERANCE,
                }
            )
    text = markdown(rows, provenance, args)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "results.md", text)
        payload = {"provenance": provenance, "seeds": args.seeds, "split": args.split, "scales": SCALES, "rows": rows}
        atomic_write_text(out / "results.json", json.dumps(json_safe(payload), indent=1) + "\n")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
