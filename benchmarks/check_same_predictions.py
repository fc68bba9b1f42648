"""Do two checkouts of gnnrec predict the same ML-100k ratings? (Are committed results still the code's?)

    python benchmarks/check_same_predictions.py OLD_CHECKOUT NEW_CHECKOUT --out benchmarks/results/same_predictions.md

Each checkout's ``gnnrec`` is imported in its own subprocess (``PYTHONPATH`` = the checkout), fits short
default-config runs of the GNN and GLocal-K (few epochs, seed 0, one thread) on u1 and predicts the test
ratings; the script reports whether the two prediction vectors are bit-identical and their largest
difference. Equal predictions after the same seeded steps mean the later commits left the ML-100k code path
alone, so results produced at the older commit (e.g. ``benchmarks/results/paper``) still describe the newer
code. Needs the ML-100k files (``$GNNREC_ML100K_DIR``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from gnnrec.utils import atomic_write_text

# short runs: the first epochs exercise every part of the fit (encoder, decoder, losses, EMA, validation)
RUNS = {"gnn": {"epochs": 15, "val_every": 5, "threads": 1}, "glocal-k": {"pretrain_epochs": 3, "finetune_epochs": 2}}

CHILD = """
import sys, torch
torch.set_num_threads(1)
import gnnrec
from gnnrec.data.registry import load_split
from gnnrec.models.registry import create_model
from gnnrec.provenance import code_version
runs = {runs!r}
split = load_split("ml-100k", "u1")
out = {{"version": code_version(), "file": gnnrec.__file__}}
for name, overrides in runs.items():
    torch.manual_seed(0)
    model = create_model(name, overrides).fit(split)
    out[name] = model.predict(split.test.user, split.test.movie)
torch.save(out, sys.argv[1])
"""


def predictions(checkout: Path, target: Path) -> dict:
    """Run the short fits with ``checkout``'s gnnrec in a subprocess; its outputs."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    code = CHILD.format(runs=RUNS)
    subprocess.run([sys.executable, "-c", code, str(target)], env=env, check=True, cwd=checkout)
    result = torch.load(target)
    if not Path(result["file"]).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"{checkout}: imported gnnrec from {result['file']}, not from the checkout")
    return result


def describe(version: dict) -> str:
    """``git <commit>`` and whether the tree was dirty."""
    return f"git {version['commit_short']} ({'dirty' if version['dirty'] else 'clean'} tree)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path, help="checkout (a clean clone) of the older commit")
    parser.add_argument("new", type=Path, help="checkout (a clean clone) of the newer commit")
    parser.add_argument("--out", type=Path, default=None, help="write the report (markdown) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        old = predictions(args.old, Path(scratch) / "old.pt")
        new = predictions(args.new, Path(scratch) / "new.pt")
    lines = [
        "# Same ML-100k predictions at two commits (`benchmarks/check_same_predictions.py`)",
        "",
        f"Command: `python benchmarks/check_same_predictions.py OLD NEW` with OLD = {describe(old['version'])},"
        f" NEW = {describe(new['version'])}; u1, seed 0, one thread.",
        "",
        "| model | short run (overrides) | test predictions bit-identical | max abs difference |",
        "|---|---|---|---:|",
    ]
    for name, overrides in RUNS.items():
        same = torch.equal(old[name], new[name])
        gap = float((old[name] - new[name]).abs().max())
        lines.append(f"| {name} | `{overrides}` | {'yes' if same else 'no'} | {gap:.3g} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out is not None:
        atomic_write_text(args.out, report)


if __name__ == "__main__":
    main()
