"""The ``gnnrec`` command."""

from __future__ import annotations

import argparse
import json
import sys

from gnnrec.data import DATASETS, SPLITS, DataFormatError, get_dataset


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="ml-100k", choices=sorted(DATASETS), help="dataset name")
    parser.add_argument("--split", default="u1", help=f"split name ({', '.join(SPLITS)} for ml-100k)")
    parser.add_argument(
        "--data-dir", default=None, help="directory with the raw files (else $GNNREC_ML100K_DIR, else download)"
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.05, help="share of each user's training ratings for validation"
    )
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the validation carve-out and random split")


def load_split_from_args(args: argparse.Namespace):
    dataset_cls = get_dataset(args.dataset)
    dataset = dataset_cls(
        split=args.split, source_dir=args.data_dir, val_fraction=args.val_fraction, seed=args.data_seed
    )
    return dataset.rating_split()


def cmd_data(args: argparse.Namespace) -> int:
    split = load_split_from_args(args)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnnrec", description="GNN rating prediction and recommendation toolkit")
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="locate, verify and describe a dataset split")
    _add_data_options(data)
    data.add_argument("--json", action="store_true", help="print the description as JSON")
    data.set_defaults(func=cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (DataFormatError, ValueError, FileNotFoundError, IndexError) as error:
        print(f"gnnrec {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
